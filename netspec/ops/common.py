"""Pure helpers shared by the layer families: spatial arithmetic with readable error messages,
axis names, and kwargs for the lowering that omit PyTorch's defaults so generated code stays short.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import WARNING, Diagnostic, ShapeError, format_path
from ..ir import dims
from ..ir import types as T
from ..ir.types import Dim

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any, TypeAlias

    from ..ir import Node
    from ..ir.types import TensorType
    from .registry import Params

    # What a shape rule (OpDef.infer) returns: the output type and the inferred parameters.
    Inferred: TypeAlias = "tuple[TensorType, dict[str, Any]]"

AXES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
LAYOUT = {1: "(C, L)", 2: "(C, H, W)", 3: "(C, D, H, W)"}
OUT_AXES = {1: "L'", 2: "H', W'", 3: "D', H', W'"}  # output sizes in shape rules


def sliding_window(
    axis: str,
    size: Dim,
    kernel: int,
    stride: int,
    pad_total: int,
    dilation: int = 1,
    *,
    ceil_mode: bool = False,
    pad_left: int | None = None,
    param: str = "kernel_size",
) -> Dim:
    """Output size of a convolution or pooling window along one axis, as PyTorch computes it.

    floor((L + pad - d*(k-1) - 1) / s) + 1; with ceil_mode the last window must still start
    inside the input or the left padding. A result below 1 is a ShapeError showing the arithmetic.
    """
    span = dilation * (kernel - 1) + 1
    left = pad_left if pad_left is not None else pad_total // 2
    if isinstance(size, str):
        out = T.floordiv_plus1(T.add(size, pad_total - span), stride, ceil=ceil_mode)
        if ceil_mode and left + stride - 1 >= span:
            # Where the last ceil window could start past the input and left padding, PyTorch
            # drops it (below): for those sizes the ceil formula is one too big.
            out = dims.smaller(out, T.floordiv_plus1(T.add(size, left - 1), stride))
        return out
    num = size + pad_total - span
    out = (-(-num // stride) if ceil_mode else num // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + left:
        out -= 1
    # PyTorch asks for one window and nothing more: with ceil_mode, a window may overhang an
    # input smaller than itself (num < 0) as long as it starts inside it.
    if out < 1:
        rnd = "ceil" if ceil_mode else "floor"
        expr = f"{rnd}(({size} + {pad_total} - {dilation}*({kernel}-1) - 1)/{stride}) + 1"
        raise ShapeError(
            f"output {axis} would be {out}",
            expected=f"an input {axis} of at least {span - pad_total} for this window",
            received=f"input {axis} {size}: {expr} = {out}",
            hint=f"reduce {param} (window spans {span}), add padding, or remove a downsampling layer before this one",
            param=param,
        )
    return out


def nondefault(params: Params, defaults: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """kwargs for the lowering: the listed params whose value differs from PyTorch's default."""
    out: dict[str, Any] = {}
    for n in names:
        v = params[n]
        # (isinstance makes the Any value a tuple[Unknown, ...]: a per-axis tuple of ints)
        if isinstance(v, tuple) and len(set(v)) == 1 and not isinstance(defaults.get(n), tuple):  # pyright: ignore[reportUnknownArgumentType]
            v = v[0]  # pyright: ignore[reportUnknownVariableType]  (3, 3) -> 3, as a person would write it
        if n in defaults and defaults[n] == v:
            continue
        out[n] = v
    return out


def torch_dim(dim: int, rank: int, what: str = "dim", param: str = "dim") -> int:
    """Normalize a PyTorch dim index (batch is 0) for a per-sample rank; the batch can't be named."""
    full = rank + 1
    if not -full <= dim < full:
        raise ShapeError(
            f"{what} {dim} is out of range",
            expected=f"a dim in [{-full}, {full - 1}] for input of rank {full} with the batch",
            received=str(dim),
            param=param,
        )
    d = dim % full
    if d == 0:
        raise ShapeError(
            f"{what} {dim} is the batch dimension",
            expected="a dim >= 1 (dim 0 is the batch, as in PyTorch)",
            received=str(dim),
            param=param,
        )
    return d


def check_inferred(name: str, given: object, actual: object, what: str, hint: str | None = None) -> None:
    """A user-written value of an inferred parameter is a check: it must equal what inference
    finds. The mismatch may be in the check or in the layers above, so the hint names both (and
    never just "remove it", which would silence the check that caught the mistake)."""
    if given is not None and given != actual:
        raise ShapeError(
            f"{name} does not match the input",
            expected=f"{name} = {given}, as written",
            received=f"{actual} {what} from the layer before",
            hint=hint
            or f"if {given} is right, the layers above make {actual} {what}: fix them; "
            f"if not, write {name}: {actual} (or leave it out to take it from the input unchecked)",
            param=name,
        )


def channels_read_as_time(node: Node, x: TensorType, axes: str) -> list[Diagnostic]:
    """A conv1d stack gives (C, L): a layer that reads `axes` ("(T, F)") time first would take
    its channels for the steps. Legal (the shapes may happen to fit), almost always a mistake."""
    if x.layout != "channels" or x.rank != 2:
        return []
    c, length = x.shape
    return [
        Diagnostic(
            f"{node.op} '{node.name}' reads (C, L) = ({c}, {length}) from a conv1d stack as {axes}",
            format_path(node.path),
            node.loc,
            expected=f"{axes}: time first, features last",
            received=f"{x.show()} with channels first, so time would be the {c} channels",
            hint="insert `- transpose: [1, 2]` before this layer",
            severity=WARNING,
            code="layout",
        )
    ]
