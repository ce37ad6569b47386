"""The layer registry: one OpDef per layer type holds every rule about it.

An entry carries its parameter schema, the pure static shape rule, the parameter / buffer / MAC
counts, and the lowering (a constructor description that both the in-process module builder and
the Python code generator use, so they cannot disagree). Nothing here imports torch.

It also carries the layer's traits: every rule that passes, export and the runtime apply to some
layer types and not others (sequence lengths, batchnorm folding, inference-time identities, export
and runtime notes, diagnostic hints and warnings). Code outside ops/ asks the OpDef and never names
a layer type, so a layer is added in one file: a module that calls `register` (tests/test_one_file.py).

Extra layer modules outside netspec: name them in the environment variable NETSPEC_OPS
(comma-separated importable module names, e.g. `NETSPEC_OPS=mylayers,lab.ops`); they are imported
after the built-in families, before the registry is first used.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ..errors import Diagnostic, Location, SpecError
from ..ir.types import TensorType
from ..record import factory, record
from .params import REQUIRED, Accepts, Param

if TYPE_CHECKING:
    from typing import Any, TypeAlias

    from ..errors import ShapeError
    from ..ir import Node

    # A hook's input: one TensorType, or a tuple of them for a merge (arity None). Any, so that
    # each layer's hook can name the one it takes (a Callable's parameters are contravariant).
    In: TypeAlias = Any

Params = Mapping[str, "Any"]


def _no_kwargs() -> dict[str, Any]:
    return {}


@record
class Ctor:
    """How to construct the torch module: `cls` is `nn.X` or a class in netspec.lower.layers."""

    cls: str
    kwargs: dict[str, Any] = factory(_no_kwargs)


@record
class Example:
    params: Any  # what a user would write after the layer key (mapping, scalar or None)
    input: tuple[int | str, ...]  # per-sample input shape
    output: tuple[int | str, ...] = ()  # the per-sample output shape the shape rule gives (docs; checked by a test)
    note: str = ""


def _zero(p: Params, x: In, y: TensorType) -> int:
    return 0


def _no_fold(p: Params, x: TensorType, y: TensorType) -> str | None:
    return None


# How a layer treats the lengths of a zero-padded, variable-length batch (passes/lengths.py) when
# its input still has the time axis: the value of OpDef.lengths, or what its hook returns.
USE = "use"  # called as module(x, lengths) (it packs the sequence); the time axis survives
USE_LAST = "use_last"  # called as module(x, lengths); the output has no time axis left
KEEP = "keep"  # called plainly; acts per step, so it must keep the time axis where it was
MASK = "mask"  # like KEEP but it reaches across steps (a 'same' conv): padded steps are zeroed first
MIX = "mix"  # it mixes steps (softmax over time): padding would leak into real steps, an error


@record
class OpDef:
    name: str
    family: str
    doc: str
    params: tuple[Param, ...]
    # Shape rule: (params with defaults filled, input type) -> (output type, inferred params).
    # Raises errors.ShapeError. Must be pure and import nothing heavy.
    infer: Callable[[Params, In], tuple[TensorType, dict[str, Any]]]
    lower: Callable[[Params, In, TensorType], Ctor]
    accepts: Accepts = factory(Accepts)
    param_count: Callable[[Params, In, TensorType], int] = _zero
    buffer_count: Callable[[Params, In, TensorType], int] = _zero
    # MACs per sample; may return None when a symbolic dimension makes it unknown.
    macs: Callable[[Params, In, TensorType], int | None] = _zero
    # Checks that need no input shape (run for every layer, so all such errors are reported).
    validate: Callable[[Params], list[ShapeError]] = lambda p: []
    shorthand: str | None = None  # the parameter a scalar sets: `- linear: 10`
    # Inputs: 1 for ordinary layers (infer gets one TensorType), None for merges, which take two
    # or more (infer gets a tuple of TensorTypes).
    arity: int | None = 1
    examples: tuple[Example, ...] = ()
    torch_equivalent: str = ""
    # The shape rule in words, input -> output per sample, for docs and `netspec ops NAME`
    # (`infer` is the rule itself; each example's output is checked against it).
    shape_rule: str = ""

    # ---- traits: the per-layer rules of passes, export and the runtime (none of them names a layer)
    # Sequence lengths: USE, USE_LAST, KEEP, MASK or MIX, or a hook (params, x, y, axis of the time
    # symbol in x) -> one of them. KEEP and MASK still require the time axis to stay where it was.
    lengths: str | Callable[[Params, TensorType, TensorType, int], str] = KEEP
    # Steps through time carrying a state (nn.LSTM-like): torch.export may have to fix the time axis.
    recurrent: bool = False
    # The identity at inference (dropout): export's passes drop it from the graph.
    inference_identity: bool = False
    # Runs faster on CUDA with channels-last (NHWC) tensors (cuDNN's 2-D convolutions): under
    # train.channels_last: auto, a model with such a layer trains in that memory format on CUDA.
    channels_last: bool = False
    # The batchnorm layer type that folds into this layer's output at export, when that batchnorm
    # reads this layer alone: (params, x, y) -> its name, or None. The layer has a `bias` parameter
    # and a `weight` whose first axis is its output channels (export/weights.py folds into them).
    folds_bn: Callable[[Params, TensorType, TensorType], str | None] = _no_fold
    # For a layer reading integer token ids: how many ids it indexes (synthetic data and export's
    # sample inputs draw ids below it).
    vocab_size: Callable[[Params], int] | None = None
    # Said once by `train` when the layer trains on zero-padded variable-length batches.
    padding_note: str = ""
    # The hint of the rank error for an input with fewer axes than the layer accepts.
    low_rank_hint: str | None = None
    # Legal but suspicious uses: (the layer's node, params with defaults filled, input type) ->
    # warnings (errors.Diagnostic with severity WARNING); every one that applies is reported.
    warn: Callable[[Node, TensorType], list[Diagnostic]] | None = None
    # For a layer torch has no module for: a function returning the nn.Module classes its Ctor.cls
    # names, defined inside that function in the layer's own file (it imports torch in its body,
    # so only lowering pays for it and the front end stays torch-free). The in-process builder
    # uses the classes themselves; model.py copies their source, which may use torch and nn only
    # (lower/own.py checks). No text is ever run: the classes are ordinary imported code.
    # (netspec/lower/layers.py holds the built-in ones.)
    modules: Callable[[], tuple[type, ...]] | None = None

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def bare_ok(self) -> bool:
        """Can the layer be written as a bare string (`- relu`)?"""
        return not any(p.required for p in self.params)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params if p.default is not REQUIRED and not p.inferred}


_REGISTRY: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    if op.name in _REGISTRY:
        raise ValueError(f"layer type {op.name!r} registered twice")
    if op.shorthand is not None:
        op.param(op.shorthand)  # must exist
    _REGISTRY[op.name] = op
    return op


_loaded: list[bool] = []  # set once NETSPEC_OPS is imported: `get` runs per layer, an import statement costs ~5 us


def _load() -> None:
    """Import the extra layer modules NETSPEC_OPS names (each registers its ops on import; later
    calls are no-ops). The built-in families are imported by the package (ops/__init__.py), so any
    import of netspec.ops has them all, and this module imports none of them: no cycle."""
    if _loaded:
        return
    _loaded.append(True)
    extra = [m.strip() for m in os.environ.get("NETSPEC_OPS", "").split(",") if m.strip()]
    if extra:
        import importlib

        try:
            for module in extra:
                try:
                    importlib.import_module(module)  # registers its ops
                except ModuleNotFoundError as exc:
                    if exc.name is None or not (module == exc.name or module.startswith(exc.name + ".")):
                        raise  # the module itself failed to import something: its own traceback
                    raise _not_found(module, exc) from None
        except BaseException:
            _loaded.clear()
            raise


def _not_found(module: str, exc: ModuleNotFoundError) -> Exception:
    return SpecError(
        [
            Diagnostic(
                f"cannot import the layer module {module!r} ({exc})",
                loc=Location("NETSPEC_OPS"),
                expected="importable module names, comma-separated",
                received=os.environ.get("NETSPEC_OPS", ""),
                hint="add the folder that holds it to PYTHONPATH, or install its package",
                code="ops",
            )
        ]
    )


def get(name: str) -> OpDef:
    _load()
    return _REGISTRY[name]


def all_ops() -> dict[str, OpDef]:
    _load()
    return dict(_REGISTRY)
