"""Merge layers: combine the outputs of two or more earlier layers (named with `from:`).

add and mean need equal shapes; multiply also broadcasts a size-1 axis (a (C, 1, 1) gate times a
(C, H, W) feature map, as squeeze-and-excitation does), but never a rank or any other size, so it
cannot silently pair the wrong axes. concat joins along `dim` (PyTorch indexing, 0 is the
batch; default 1, the channel axis of (C, ...) and the feature axis of flat vectors) and needs
every other axis equal. A mismatch names both shapes and the axis that disagrees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ShapeError
from ..ir import types as T
from ..ir.types import TensorType
from .common import torch_dim
from .params import Accepts, Int, Param
from .registry import Ctor, Example, OpDef, register

if TYPE_CHECKING:
    from ..ir.types import Dim
    from .common import Inferred
    from .registry import Params

_ANY = Accepts(None, dtype="any", axes="(*) from each input", min_rank=1, sample_dims=(2, 3, 4))


def _same_dtype(xs: tuple[TensorType, ...]) -> None:
    if len({x.dtype for x in xs}) > 1:
        raise ShapeError(
            "inputs of different dtypes",
            expected="inputs of one dtype",
            received=", ".join(f"{x.dtype} {x.show()}" for x in xs),
        )


def _same_dim(a: Dim, b: Dim) -> bool:
    """Dims are ints or symbolic dims in canonical form (ir/dims.py): equal exactly when their
    texts are, so `T-2+1-2+1` from two convs of kernel 2 meets `T-3+1` from one of kernel 3."""
    return a == b


def _same_shape(a: TensorType, b: TensorType) -> bool:
    return a.rank == b.rank and all(_same_dim(x, y) for x, y in zip(a.shape, b.shape, strict=True))


def _broadcast(xs: tuple[TensorType, ...]) -> tuple[Dim, ...] | None:
    """The shape of same-rank inputs whose dims agree or are 1 (torch's broadcasting, with the
    ranks equal), or None."""
    first = xs[0]
    if any(x.rank != first.rank for x in xs):
        return None
    shape: list[Dim] = []
    for dims in zip(*(x.shape for x in xs), strict=True):
        big = [d for d in dims if d != 1]
        if big and not all(_same_dim(d, big[0]) for d in big):
            return None
        shape.append(big[0] if big else 1)
    return tuple(shape)


def _elementwise(name: str, cls: str, doc: str, dtype: str = "any", broadcast: bool = False) -> OpDef:
    def infer(p: Params, xs: tuple[TensorType, ...]) -> Inferred:
        _same_dtype(xs)
        first = xs[0]
        shape = _broadcast(xs) if broadcast else None
        if shape is not None:
            layout = first.layout if all(x.layout == first.layout for x in xs) else ""
            return TensorType(shape, first.dtype, layout), {}
        for i, x in enumerate(xs[1:], start=1):
            if not _same_shape(x, first):
                axis = _disagreeing_axis(first, x)
                raise ShapeError(
                    f"{name} needs inputs of the same shape",
                    expected=f"input {i} shaped like input 0: {first.show()}",
                    received=f"input {i}: {x.show()}; {axis}",
                    hint="add a linear or 1x1 conv to match them, or use concat"
                    + (" (multiply broadcasts only axes of size 1)" if broadcast else ""),
                )
        layout = first.layout if all(x.layout == first.layout for x in xs) else ""
        return TensorType(first.shape, first.dtype, layout), {}

    return OpDef(
        name=name,
        family="merge",
        doc=doc,
        params=(),
        infer=infer,
        lower=lambda p, x, y: Ctor(cls, {}),
        accepts=_ANY if dtype == "any" else Accepts(None, dtype=dtype, axes="(*) from each input", min_rank=1),
        arity=None,
        examples=(Example(None, (4, 6), (4, 6)),),
        torch_equivalent=doc.split(":")[0],
        shape_rule="(*), (*), ... -> (*): two or more inputs of one shape give that shape"
        + ("; an axis of size 1 in some inputs takes the others' size (same rank only)" if broadcast else ""),
    )


def _disagreeing_axis(a: TensorType, b: TensorType) -> str:
    if a.rank != b.rank:
        return f"rank {b.rank} instead of {a.rank}"
    for i, (da, db) in enumerate(zip(a.shape, b.shape, strict=True)):
        if not _same_dim(da, db):
            return f"dim {i + 1} (batch is 0) is {db}, not {da}"
    return "shapes differ"


register(_elementwise("add", "Add", "x0 + x1 + ...: the residual connection"))
register(
    _elementwise(
        "multiply",
        "Multiply",
        "x0 * x1 * ...: elementwise product (gating); an axis of size 1 broadcasts, e.g. a (C, 1, 1) gate",
        broadcast=True,
    )
)
register(_elementwise("mean", "Mean", "(x0 + x1 + ...) / n: elementwise mean", dtype="float32"))


def _concat_infer(p: Params, xs: tuple[TensorType, ...]) -> Inferred:
    _same_dtype(xs)
    first = xs[0]
    for i, x in enumerate(xs[1:], start=1):
        if x.rank != first.rank:
            raise ShapeError(
                "concat needs inputs of the same rank",
                expected=f"rank {first.rank} like input 0 {first.show()}",
                received=f"input {i}: {x.show()}",
            )
    d = torch_dim(p["dim"], first.rank) - 1
    for i, x in enumerate(xs[1:], start=1):
        for axis in range(first.rank):
            if axis != d and not _same_dim(x.shape[axis], first.shape[axis]):
                raise ShapeError(
                    f"concat along dim {d + 1} needs every other dim equal",
                    expected=f"input {i} matching input 0 {first.show()} except in dim {d + 1}",
                    received=f"input {i}: {x.show()}; dim {axis + 1} (batch is 0) is {x.shape[axis]}, "
                    f"not {first.shape[axis]}",
                    hint="pool or reshape one branch first, or concat along another dim",
                    param="dim",
                )
    sizes = [x.shape[d] for x in xs]
    total = T.total(sizes)
    shape = list(first.shape)
    shape[d] = total
    layout = first.layout if all(x.layout == first.layout for x in xs) else ""
    return TensorType(tuple(shape), first.dtype, layout), {}


register(
    OpDef(
        name="concat",
        family="merge",
        doc="joins its inputs along `dim` (PyTorch indexing, 0 is the batch; default 1): torch.cat.",
        params=(Param("dim", Int(None, sample_values=(1, -1)), 1, doc="axis to join along (0 is the batch)"),),
        infer=_concat_infer,
        lower=lambda p, x, y: Ctor("Concat", {"dim": p["dim"]}),
        accepts=_ANY,
        arity=None,
        shorthand="dim",
        examples=(Example(None, (4, 6), (8, 6)), Example(-1, (3, 5), (3, 10))),
        torch_equivalent="torch.cat(xs, dim)",
        shape_rule="inputs equal in every dim but `dim` -> that shape with the sizes along `dim` summed: "
        "(4, 6), (4, 6) with dim 1 -> (8, 6)",
    )
)
