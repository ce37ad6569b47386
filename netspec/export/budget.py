"""The static memory check of `netspec export` (no torch): refuse an export the machine cannot hold
from the typed IR's counts, before torch is imported or a weight allocated, as `build` does.

Peak memory of an export in multiples of the model's weights (float32 parameters + buffers), as
measured (ru_maxrss above the imports) on a 32M-parameter MLP, 122 MiB of weights, check on:
onnx 5.2x (the model, torch.onnx's buffer, its getvalue() copy, the parsed proto and its
SerializeToString bytes), torchscript 4.1x, safetensors and python 4.1x (the model, a cloned state
dict, the serialized bytes and a copy), exported-program 3.9x; the check's reload comes after the
serialized copies are freed, so it does not raise the peak. Rounded up to whole copies.
"""

from __future__ import annotations

from pathlib import Path

from ..ir.typed import TypedGraph
from ..memory import BYTES, MemoryLimitError, estimate
from ..summary import human_bytes

EXPORT_COPIES = {"onnx": 6, "torchscript": 5, "safetensors": 5, "python": 5, "exported-program": 4}
# When the passes rewrite the graph (batchnorm folding), the original model stays alive beside the
# rewritten one as the check's reference (measured with two batchnorms: onnx 6.2x, torchscript 5.1x).
REWRITE_COPIES = 1


def check_export(typed: TypedGraph, fmt: str, limit: int, optimize: bool, weights: Path | None = None) -> int:
    """The estimate in bytes; a MemoryLimitError with the arithmetic above `limit`. `weights`: a
    run's weights.pt, which torch.load holds whole beside the model while loading it."""
    from .passes import optimize as rewrite

    model_bytes, lines = estimate(typed)
    copies = EXPORT_COPIES.get(fmt, max(EXPORT_COPIES.values()))
    parts = "the model and its serialized copies"
    if optimize and rewrite(typed, True, True)[0] is not typed:
        copies += REWRITE_COPIES
        parts += ", and the model before the passes"
    need = model_bytes * copies
    lines.append(f"exporting to {fmt}: x {copies} ({parts}) = {human_bytes(need)}")
    if weights is not None and weights.is_file():
        size = weights.stat().st_size
        lines.append(f"loading: the model + {weights.name} ({human_bytes(size)}) = {human_bytes(model_bytes + size)}")
        need = max(need, model_bytes + size)
    if need > limit:
        raise MemoryLimitError(
            f"exporting {typed.graph.name} would need about {human_bytes(need)}, over the limit of "
            f"{human_bytes(limit)}:\n"
            + "\n".join(f"  {ln}" for ln in lines)
            + f"\n  hint: shrink the largest layers (see `netspec summarize`; {BYTES} bytes per float32 value), "
            "or raise --max-memory"
        )
    return need


def precheck(source: Path, fmt: str, limit: int, optimize: bool, sets=None, dims=None) -> None:
    """The same check from a source path, compiling the spec (or a run's spec.resolved.yaml) only:
    the CLI runs it before importing the exporters (torch alone takes ~1 s to import)."""
    from ..runtime.session import RunError, open_run, open_spec, weights_size_error

    if not source.exists():
        return  # export's own message
    if source.is_dir():
        try:
            session, weights = open_run(source)
        except RunError:
            return  # export's own message
        if weights_size_error(weights, session.typed) is None:
            check_export(session.typed, fmt, limit, optimize, weights)
        return
    check_export(open_spec(source, sets, dims, require_train=False, data=False).typed, fmt, limit, optimize)
