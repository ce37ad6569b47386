"""Writers and checkers of the export formats: ONNX, TorchScript, torch.export programs,
safetensors and standalone Python. Every writer produces bytes that are written atomically; every
checker reloads what was written and compares it with the PyTorch module on fresh inputs at other
batch sizes (and other lengths for a symbolic time axis), which proves the dynamic axes.

Which exporter, and why (torch 2.13):
- ONNX: the TorchScript-based exporter (`dynamo=False`). It maps nn.LSTM/GRU/RNN to ONNX's own
  LSTM/GRU/RNN ops with a dynamic sequence axis and exports any spec here in well under a second.
  The torch.export-based one (torch's default) specializes the time axis of recurrent layers and
  takes 20-40 s per recurrent spec, falling back to tracing; `exporter="dynamo"` selects it.
- TorchScript: torch.jit.trace. The module's forward dispatches through a dict of layers and takes
  `*xs`, which torch.jit.script cannot compile; the traced path has no data-dependent control flow
  (lengths are not part of the exported signature), so a trace is exact at every batch and length.
- Exported program: torch.export with the batch (and time) axes marked dynamic. torch.export
  specializes the time axis of recurrent layers to the example's length (reported in `notes`).
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from ..errors import ShapeError
from ..ir.typed import TypedGraph
from ..ops import get
from ..passes.lengths import lengths_plan, time_symbol
from ..record import factory, record
from ..runtime.atomic import atomic_write_bytes

FORMATS = ("onnx", "torchscript", "exported-program", "safetensors", "python")
SUFFIX = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "exported-program": ".pt2", "safetensors": ".safetensors"}
OPSET = 17  # LayerNormalization is native from 17; onnxruntime 1.1x runs it
EXPORT_BATCH = 2  # not 1: tracers specialize sizes 0 and 1
CHECK = ((1, 0), (3, 5))  # (batch, extra steps on the time axis) of the two checks
TOLERANCE = 1e-3  # float32 rounding of a folded batchnorm is ~1e-6; a wrong export is off by far more
INSTALL = "pip install onnx onnxruntime  (or: pip install 'netspec[export]')"


class ExportError(Exception):
    """A user-fixable export problem (a missing package, an unsupported model): exit code 1."""


@record(frozen=False)
class Written:
    files: list[Path]
    max_diff: float | None = None  # the reload check's max abs difference, None when skipped
    notes: list[str] = factory(list)


class Entry(nn.Module):
    """The model's plain forward(*inputs): the exporters bind every parameter of the signature, and
    SpecModule's optional `lengths` would become a None input."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        # In eval mode itself: the ONNX exporter restores the wrapper's mode when it is done, and a
        # wrapper left in training mode switched the model's dropout (and GRU dropout) back on.
        self.eval()

    def forward(self, *xs: torch.Tensor):
        return self.model(*xs)


def require(module: str, why: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ExportError(f"{why} needs the Python package {module!r}, which is not installed. Install it: {INSTALL}")


# ----------------------------------------------------------------------------- inputs


def _vocab(typed: TypedGraph) -> int:
    """Token ids must index every embedding: below the smallest vocabulary."""
    sizes = [vocab(la.node.params) for la in typed.layers if (vocab := get(la.node.op).vocab_size)]
    return min(sizes, default=2)


_NO_TIME = "--lengths needs an input with a symbolic time axis, e.g. shape: [T, 6]"


def nominal_length(typed: TypedGraph, sym: str) -> int:
    return typed.bindings.get(sym, 16)


def sample_inputs(
    typed: TypedGraph, batch: int, extra: int = 0, seed: int = 0, lengths: bool = False
) -> tuple[torch.Tensor, ...]:
    """Random inputs of the spec's shapes; symbolic axes at their nominal size plus `extra`. With
    `lengths`, also the true lengths of a padded batch: the first series full, the others shorter."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for t in typed.inputs:
        shape = [batch] + [d if isinstance(d, int) else nominal_length(typed, d) + extra for d in t.shape]
        if t.dtype == "int64":
            out.append(torch.randint(0, _vocab(typed), shape, generator=gen))
        else:
            out.append(torch.randn(shape, generator=gen))
    if lengths:
        sym = time_symbol(typed)
        if sym is None:  # check_lengths refuses this first; a clear error for any other caller
            raise ExportError(_NO_TIME)
        steps = nominal_length(typed, sym) + extra
        n = torch.randint(1, steps + 1, (batch,), generator=gen)
        n[0] = steps
        out.append(n)
    return tuple(out)


def check_lengths(typed: TypedGraph) -> None:
    """A lengths input needs a time axis and a network that keeps padding out of real steps."""
    if time_symbol(typed) is None:
        raise ExportError(_NO_TIME)
    try:
        lengths_plan(typed)
    except ShapeError as exc:
        raise ExportError(f"--lengths: {exc.message} ({exc.received}). {exc.hint or ''}".strip()) from None


def _outputs(value) -> list[torch.Tensor]:
    return list(value) if isinstance(value, tuple | list) else [value]


def _max_diff(got, want) -> float:
    got, want = _outputs(got), _outputs(want)
    if len(got) != len(want):
        raise ExportError(f"the reloaded model returns {len(got)} outputs, the model {len(want)}")
    return max(float((torch.as_tensor(g) - w).abs().max()) for g, w in zip(got, want, strict=True))


def check_inputs(typed: TypedGraph, vary_time: bool = True, lengths: bool = False) -> list[tuple[torch.Tensor, ...]]:
    """The inputs of the reload checks, one tuple per CHECK size."""
    return [
        sample_inputs(typed, batch, extra if vary_time else 0, seed=100 + k, lengths=lengths)
        for k, (batch, extra) in enumerate(CHECK)
    ]


def check_outputs(run, typed: TypedGraph, model: nn.Module, vary_time: bool = True, lengths: bool = False) -> float:
    """Max abs difference between `run(inputs)` and the model, over the CHECK sizes."""
    worst = 0.0
    ctx = _quiet()  # torch's own warnings on running a layer (padding='same' copies) say nothing new
    try:
        for xs in check_inputs(typed, vary_time, lengths):
            with torch.no_grad():
                worst = max(worst, _max_diff(run(xs), model(*xs)))
    finally:
        ctx.__exit__(None, None, None)
    return worst


# ----------------------------------------------------------------------------- writers


def _quiet():
    """The exporters warn about their own deprecations on every call; the user can do nothing."""
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("ignore")
    return ctx


def onnx_bytes(
    model: nn.Module, typed: TypedGraph, meta: dict[str, str], exporter: str = "torchscript", lengths: bool = False
) -> bytes:
    """With `lengths`, a second input `lengths` (int64, one per sample) packs the sequences, as
    forward(x, lengths) does: ONNX's LSTM/GRU take them as sequence_lens."""
    require("onnx", "ONNX export")
    import onnx

    if lengths:
        check_lengths(typed)
        if exporter == "dynamo":
            raise ExportError("--lengths needs the torchscript ONNX exporter (torch.export cannot pack sequences)")
    names = [i.name for i in typed.graph.inputs]
    outs = list(typed.graph.outputs)
    xs = sample_inputs(typed, EXPORT_BATCH, lengths=lengths)
    axes = {
        n: {0: "batch", **{k + 1: d for k, d in enumerate(t.shape) if isinstance(d, str)}}
        for n, t in zip(names, typed.inputs, strict=True)
    }
    syms = {s for a in axes.values() for s in a.values()}
    if lengths:
        names.append("lengths")
        axes["lengths"] = {0: "batch"}
    for n, t in zip(outs, typed.outputs, strict=True):  # outputs: batch, and any input symbol kept as is
        axes[n] = {0: "batch", **{k + 1: d for k, d in enumerate(t.shape) if d in syms}}
    buf = io.BytesIO()
    ctx = _quiet()
    try:
        if exporter == "dynamo":
            shapes = (tuple({k: torch.export.Dim.AUTO for k in a} for n, a in axes.items() if n in names),)
            program = torch.onnx.export(
                Entry(model),
                xs,
                dynamo=True,
                dynamic_shapes=shapes,
                input_names=names,
                output_names=outs,
                opset_version=max(OPSET, 18),
            )
            assert program is not None  # the dynamo exporter returns its ONNXProgram (None: the TorchScript one)
            proto = program.model_proto
        else:
            torch.onnx.export(
                Entry(model),
                xs,
                buf,  # pyright: ignore[reportArgumentType]  # a path in torch's annotation; the TorchScript exporter writes a file object too
                dynamo=False,
                input_names=names,
                output_names=outs,
                dynamic_axes=axes,
                opset_version=OPSET,
            )
            proto = onnx.load_from_string(buf.getvalue())
    except Exception as exc:  # the exporters raise many types; say which layer types were involved
        ops = sorted({la.node.op for la in typed.layers})
        other = "dynamo" if exporter != "dynamo" else "torchscript"
        raise ExportError(
            f"ONNX export failed ({type(exc).__name__}: {str(exc).splitlines()[0][:300]}); layer types: {', '.join(ops)}. Try --onnx-exporter {other}"
        ) from None
    finally:
        ctx.__exit__(None, None, None)
    onnx.helper.set_model_props(proto, meta)
    return proto.SerializeToString()


def check_onnx(path: Path, typed: TypedGraph, model: nn.Module, lengths: bool = False) -> float:
    require("onnxruntime", "checking the ONNX file (skip it with --no-check)")
    import onnxruntime

    sess = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return check_outputs(
        lambda xs: sess.run(None, {n: x.numpy() for n, x in zip(names, xs, strict=True)}), typed, model, lengths=lengths
    )


def torchscript_bytes(model: nn.Module, typed: TypedGraph, meta: dict[str, str]) -> bytes:
    ctx = _quiet()
    try:
        traced = torch.jit.trace(Entry(model), sample_inputs(typed, EXPORT_BATCH), check_trace=False)
        buf = io.BytesIO()
        torch.jit.save(traced, buf, _extra_files={"netspec.json": json.dumps(meta)})
    finally:
        ctx.__exit__(None, None, None)
    return buf.getvalue()


def check_torchscript(path: Path, typed: TypedGraph, model: nn.Module) -> float:
    ctx = _quiet()
    try:
        loaded = torch.jit.load(str(path), map_location="cpu")
        return check_outputs(lambda xs: loaded(*xs), typed, model)
    finally:
        ctx.__exit__(None, None, None)


def exported_program(model: nn.Module, typed: TypedGraph) -> tuple[torch.export.ExportedProgram, list[str]]:
    """The program with the batch axis dynamic, and the time axes too where torch.export can; the
    notes name every axis it fixed to the example's size."""
    Dim = torch.export.Dim
    recurrent = any(get(la.node.op).recurrent for la in typed.layers)
    time = Dim.AUTO if recurrent else Dim.DYNAMIC  # AUTO: fixed where a recurrent layer needs it
    shapes = tuple(
        {0: Dim.DYNAMIC, **{k + 1: time for k, d in enumerate(t.shape) if isinstance(d, str)}} for t in typed.inputs
    )
    xs = sample_inputs(typed, EXPORT_BATCH)
    ctx = _quiet()
    try:
        ep = torch.export.export(Entry(model), xs, dynamic_shapes=(shapes,))
    except Exception as exc:
        raise ExportError(f"torch.export failed ({type(exc).__name__}: {str(exc).splitlines()[0][:300]})") from None
    finally:
        ctx.__exit__(None, None, None)
    notes = []
    placeholders = [n for n in ep.graph.nodes if n.op == "placeholder"][-len(xs) :]
    for node, t, inp in zip(placeholders, typed.inputs, typed.graph.inputs, strict=True):
        fake = node.meta.get("val")
        for k, d in enumerate(t.shape):
            # a specialized axis is an int, or a SymInt that prints as one
            if isinstance(d, str) and fake is not None and str(fake.shape[k + 1]).isdigit():
                notes.append(f"input {inp.name}: torch.export fixed {d} = {fake.shape[k + 1]} (recurrent layers)")
    return ep, notes


def check_exported_program(path: Path, typed: TypedGraph, model: nn.Module, fixed: bool) -> float:
    ep = torch.export.load(str(path))
    run = ep.module()
    return check_outputs(lambda xs: run(*xs), typed, model, vary_time=not fixed)  # fixed: the batch only


def safetensors_bytes(model: nn.Module, meta: dict[str, str]) -> bytes:
    require("safetensors", "safetensors export")
    from safetensors.torch import save

    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    return save(state, metadata=meta)


def check_safetensors(path: Path, typed: TypedGraph, model: nn.Module) -> float:
    from safetensors.torch import load_file

    from ..lower.module import lower

    fresh = lower(typed, seed=None).eval()
    fresh.load_state_dict(load_file(str(path)), strict=True)
    return check_outputs(lambda xs: fresh(*xs), typed, model)


def _parses(source: str, where: str) -> None:
    """model.py must be Python before anything runs it: a file that does not parse is netspec's
    bug (every spec string in it is a literal), so this is an internal error, not an ExportError."""
    try:
        ast.parse(source, where)
    except SyntaxError as exc:
        raise RuntimeError(f"netspec generated a {where} that does not parse ({exc.msg}, line {exc.lineno})") from None


def python_files(model: nn.Module, typed: TypedGraph, spec_file: str, description: str) -> dict[str, bytes]:
    from ..lower.codegen import model_source

    source = model_source(typed, spec_file, description)
    _parses(source, "model.py")
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return {"model.py": source.encode(), "weights.pt": buf.getvalue()}


# The check of model.py runs in a child interpreter, never in netspec's own: the file is code built
# from a spec, which is untrusted. -I: no user site, no PYTHON* variables, no cwd on sys.path; -B:
# no __pycache__ left in the export folder. It imports model.py as a user would, loads weights.pt
# (weights_only), runs the inputs the parent wrote and writes the outputs back (tensors only).
_CHILD = """
import importlib.util, sys, torch
folder, cls, inputs, outputs = sys.argv[1:5]
spec = importlib.util.spec_from_file_location("model", folder + "/model.py")
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
model = getattr(mod, cls)().eval()
model.load_state_dict(torch.load(folder + "/weights.pt", weights_only=True), strict=True)
got = []
with torch.no_grad():
    for xs in torch.load(inputs, weights_only=True):
        y = model(*xs)
        got.append(list(y) if isinstance(y, (tuple, list)) else [y])
torch.save(got, outputs)
"""
CHILD_TIMEOUT = 600.0  # seconds; the largest spec here checks in a few


def check_python(folder: Path, typed: TypedGraph, model: nn.Module) -> float:
    """Run the written model.py as a user would (its class, its weights.pt), in a child process."""
    from ..lower.codegen import model_class

    _parses((folder / "model.py").read_text(), "model.py")
    inputs = check_inputs(typed)
    with tempfile.TemporaryDirectory(prefix="netspec-check-") as tmp:
        xs_path, ys_path = Path(tmp) / "inputs.pt", Path(tmp) / "outputs.pt"
        torch.save([list(xs) for xs in inputs], xs_path)
        cmd = [sys.executable, "-I", "-B", "-c", _CHILD, str(folder.resolve()), model_class(typed)]
        try:
            proc = subprocess.run(
                [*cmd, str(xs_path), str(ys_path)],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=CHILD_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise ExportError(
                f"checking {folder / 'model.py'} took over {CHILD_TIMEOUT:.0f} s; skip the check with --no-check"
            ) from None
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1][:300]
            raise ExportError(
                f"the written {folder / 'model.py'} failed to run ({last}): do not use it; please report this "
                "as a bug (with the spec), or try --no-optimize"
            )
        got = torch.load(ys_path, weights_only=True)
    worst = 0.0
    ctx = _quiet()
    try:
        for xs, ys in zip(inputs, got, strict=True):
            with torch.no_grad():
                worst = max(worst, _max_diff(ys, model(*xs)))
    finally:
        ctx.__exit__(None, None, None)
    return worst


# ----------------------------------------------------------------------------- one call


def write(
    fmt: str,
    model: nn.Module,
    typed: TypedGraph,
    out: Path,
    meta: dict[str, str],
    *,
    check: bool = True,
    exporter: str = "torchscript",
    spec_file: str = "<spec>",
    description: str = "",
    reference: nn.Module | None = None,
    lengths: bool = False,
) -> Written:
    """Write `model` (eval mode, the passes already applied) in `fmt` to `out` (a folder for
    python), then, unless `check` is false, reload it and compare it with `reference` (the model
    before the passes, which so checks them too; default `model`)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if lengths and fmt != "onnx":
        raise ExportError(f"--lengths applies to onnx; {fmt} keeps the model's own forward(x, lengths=None)")
    model = model.eval()
    ref = model if reference is None else reference.eval()
    notes: list[str] = []
    if fmt == "python":
        files = python_files(model, typed, spec_file, description)
        for name, blob in files.items():
            atomic_write_bytes(out / name, blob)
        diff = check_python(out, typed, ref) if check else None
        _trust(diff, out)
        return Written([out / name for name in files], diff)
    if fmt == "onnx":
        atomic_write_bytes(out, onnx_bytes(model, typed, meta, exporter, lengths))
        diff = check_onnx(out, typed, ref, lengths) if check else None
    elif fmt == "torchscript":
        atomic_write_bytes(out, torchscript_bytes(model, typed, meta))
        diff = check_torchscript(out, typed, ref) if check else None
    elif fmt == "exported-program":
        ep, notes = exported_program(model, typed)
        buf = io.BytesIO()
        torch.export.save(ep, buf, extra_files={"netspec.json": json.dumps(meta)})
        atomic_write_bytes(out, buf.getvalue())
        diff = check_exported_program(out, typed, ref, bool(notes)) if check else None
    else:
        atomic_write_bytes(out, safetensors_bytes(model, meta))
        diff = check_safetensors(out, typed, ref) if check else None
    _trust(diff, out)
    return Written([out], diff, notes)


def _trust(diff: float | None, out: Path) -> None:
    if diff is not None and diff > TOLERANCE:
        raise ExportError(
            f"the reloaded {out} differs from the PyTorch model by up to {diff:.3g} (more than {TOLERANCE}): "
            "do not use it; please report this as a bug (with the spec), or try --no-optimize"
        )
