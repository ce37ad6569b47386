"""`netspec export` as one library call: load a run (trained weights) or a spec (seeded initial
weights), apply the inference passes, write one format, reload it and compare."""

from __future__ import annotations

import json
from pathlib import Path

from .. import __version__
from ..record import record
from .formats import FORMATS, SUFFIX, ExportError, Written, write
from .passes import Plan


@record(frozen=False)
class Exported:
    name: str
    source: str  # "run" or "spec"
    out: Path
    written: Written
    plan: Plan | None  # None with the passes turned off
    params: tuple[int, int]  # parameters before and after the passes


def default_out(source: Path, name: str, fmt: str, is_run: bool) -> Path:
    """RUN_DIR/export/model.<ext> (python: RUN_DIR/export/python/) for a run; <name>.<ext>
    (python: <name>_python/) in the current folder for a spec."""
    if is_run:
        return source / "export" / ("python" if fmt == "python" else "model" + SUFFIX[fmt])
    return Path(f"{name}_python" if fmt == "python" else name + SUFFIX[fmt])


def _refuse_overwrite(out: Path, fmt: str, force: bool) -> None:
    taken = out.exists() and (not out.is_dir() or any(out.iterdir())) if fmt == "python" else out.exists()
    if fmt != "python" and out.is_dir():
        raise ExportError(f"{out} is a folder; the {fmt} format writes one file: give a file path with -o")
    if taken and not force:
        raise ExportError(f"{out} exists; pass --force to overwrite it, or choose another path with -o")


def load_source(source: Path, sets: list[str] | None, dims: dict | None, seed: int | None, before_load=None):
    """(session, eval-mode model, spec hash, extra metadata, is_run). `before_load(typed, weights)`
    runs once the spec is compiled statically, before anything is allocated."""
    from ..runtime.session import RunError, load_run, open_spec

    if not source.exists():
        raise ExportError(f"{source} does not exist; expected a finished run directory or a spec file")
    if source.is_dir():
        if sets or dims or seed is not None:
            raise ExportError("--set, --dim and --seed apply to a spec; a run directory exports the model it trained")
        try:
            session, model, info = load_run(source, before_load)
        except RunError as exc:
            raise ExportError(f"{exc}; export a spec file instead for its initial weights") from None
        extra = {k: json.dumps(info[k]) for k in ("classes", "standardize") if info.get(k) is not None}
        return session, model, info.get("spec_hash", session.hash), extra, True
    from ..lower.module import lower

    session = open_spec(source, sets, dims, require_train=False, data=False)  # export reads no data
    if seed is None:
        seed = session.cfg["seed"] if session.cfg else 0
    if before_load is not None:
        before_load(session.typed, None)
    model = lower(session.typed, seed=seed).eval()
    return session, model, session.hash, {"seed": str(seed)}, False


def export(
    source: Path,
    fmt: str,
    out: Path | None = None,
    *,
    optimize: bool = True,
    check: bool = True,
    force: bool = False,
    exporter: str = "torchscript",
    sets: list[str] | None = None,
    dims: dict | None = None,
    seed: int | None = None,
    lengths: bool = False,
    max_memory: int | None = None,
) -> Exported:
    """`max_memory`: bytes the static estimate may reach (default: the machine's memory)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if max_memory is None:
        from ..memory import default_limit

        max_memory = default_limit()

    def before_load(typed, weights):  # from the static counts, before a weight is allocated
        from ..memory import MemoryLimitError
        from .budget import check_export

        try:
            check_export(typed, fmt, max_memory, optimize, weights)
        except MemoryLimitError as exc:
            raise ExportError(str(exc)) from None

    session, model, spec_hash, extra, is_run = load_source(source, sets, dims, seed, before_load)
    typed = session.typed
    name = typed.graph.name
    out = out or default_out(source, name, fmt, is_run)
    _refuse_overwrite(out, fmt, force)
    plan, original = None, model
    before = typed.total_params
    if optimize:
        from .weights import optimized

        typed, model, plan = optimized(typed, model)
    meta = {
        "netspec_version": __version__,
        "name": name,
        "spec_hash": spec_hash,
        "source": str(source),
        "passes": plan.describe() if plan else "off",
        "inputs": json.dumps(
            {i.name: [list(t.shape), t.dtype] for i, t in zip(typed.graph.inputs, typed.inputs, strict=True)}
        ),
        **extra,
    }
    written = write(
        fmt,
        model,
        typed,
        out,
        meta,
        check=check,
        exporter=exporter,
        spec_file=str(session.spec_path),
        description=session.data.get("description", ""),
        reference=original,
        lengths=lengths,
    )
    return Exported(name, "run" if is_run else "spec", out, written, plan, (before, typed.total_params))


__all__ = ["ExportError", "Exported", "export"]
