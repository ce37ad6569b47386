"""The layer registry: one OpDef per layer type holds every rule about it.

An entry carries its parameter schema, the pure static shape rule, the parameter / buffer / MAC
counts, and the lowering (a constructor description that both the in-process module builder and
the Python code generator use, so they cannot disagree). Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..ir.types import TensorType
from ..record import factory, record
from .params import REQUIRED, Accepts, Param

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up (~4 ms)
if TYPE_CHECKING:
    from typing import Any

Params = Mapping[str, "Any"]


@record
class Ctor:
    """How to construct the torch module: `cls` is `nn.X` or a class in netspec.lower.layers."""

    cls: str
    kwargs: dict = factory(dict)


@record
class Example:
    params: Any  # what a user would write after the layer key (mapping, scalar or None)
    input: tuple  # per-sample input shape
    output: tuple = ()  # the per-sample output shape the shape rule gives (docs; checked by a test)
    note: str = ""


def _zero(p, x, y) -> int:
    return 0


@record
class OpDef:
    name: str
    family: str
    doc: str
    params: tuple[Param, ...]
    # Shape rule: (params with defaults filled, input type) -> (output type, inferred params).
    # Raises errors.ShapeError. Must be pure and import nothing heavy.
    infer: Callable[[Params, TensorType], tuple[TensorType, dict]]
    lower: Callable[[Params, TensorType, TensorType], Ctor]
    accepts: Accepts = factory(Accepts)
    param_count: Callable[[Params, TensorType, TensorType], int] = _zero
    buffer_count: Callable[[Params, TensorType, TensorType], int] = _zero
    # MACs per sample; may return None when a symbolic dimension makes it unknown.
    macs: Callable[[Params, TensorType, TensorType], int | None] = _zero
    # Checks that need no input shape (run for every layer, so all such errors are reported).
    validate: Callable[[Params], list] = lambda p: []
    shorthand: str | None = None  # the parameter a scalar sets: `- linear: 10`
    # Inputs: 1 for ordinary layers (infer gets one TensorType), None for merges, which take two
    # or more (infer gets a tuple of TensorTypes).
    arity: int | None = 1
    examples: tuple[Example, ...] = ()
    torch_equivalent: str = ""
    # The shape rule in words, input -> output per sample, for docs and `netspec ops NAME`
    # (`infer` is the rule itself; each example's output is checked against it).
    shape_rule: str = ""

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def bare_ok(self) -> bool:
        """Can the layer be written as a bare string (`- relu`)?"""
        return not any(p.required for p in self.params)

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params if p.default is not REQUIRED and not p.inferred}


_REGISTRY: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    if op.name in _REGISTRY:
        raise ValueError(f"layer type {op.name!r} registered twice")
    if op.shorthand is not None:
        op.param(op.shorthand)  # must exist
    _REGISTRY[op.name] = op
    return op


_loaded = []  # set once every family is imported: `get` runs per layer, an import statement costs ~5 us


def _load() -> None:
    """Import every family module (each registers its ops on import; later calls are no-ops).
    Not keyed on an empty registry: importing one family first must not hide the others."""
    if _loaded:
        return
    from . import activation, conv, linear, merge, norm, pool, recurrent, shape  # noqa: F401  (registers)

    _loaded.append(True)


def get(name: str) -> OpDef:
    _load()
    return _REGISTRY[name]


def all_ops() -> dict[str, OpDef]:
    _load()
    return dict(_REGISTRY)
