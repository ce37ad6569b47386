"""Layout layers: flatten, reshape, permute, transpose. Dim indices follow PyTorch (0 is the
batch), so values copied from PyTorch code mean the same here; the batch itself cannot move."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..errors import ShapeError
from ..ir import types as T
from ..ir.types import TensorType
from .common import nondefault, torch_dim
from .params import Accepts, Int, IntList, Param
from .registry import Ctor, Example, OpDef, register

if TYPE_CHECKING:
    from ..ir.types import Dim
    from .common import Inferred
    from .registry import Params

_ANY = Accepts(None, dtype="any", axes="(*)", min_rank=1, sample_dims=(1, 2, 3, 4))


def _flatten_infer(p: Params, x: TensorType) -> Inferred:
    s = torch_dim(p["start_dim"], x.rank, "start_dim", "start_dim") - 1
    e = torch_dim(p["end_dim"], x.rank, "end_dim", "end_dim") - 1
    if s > e:
        raise ShapeError(
            "start_dim comes after end_dim",
            expected="start_dim <= end_dim",
            received=f"start_dim={p['start_dim']}, end_dim={p['end_dim']} on {x.show()}",
            param="start_dim",
        )
    shape = (*x.shape[:s], T.mul(x.shape[s : e + 1]), *x.shape[e + 1 :])
    return TensorType(shape, x.dtype, ""), {}


register(
    OpDef(
        name="flatten",
        family="shape",
        doc="merges dims start_dim..end_dim (PyTorch indexing, 0 is the batch): (C, H, W) -> (C*H*W).",
        params=(
            Param("start_dim", Int(None, sample_values=(1,)), 1, doc="first dim to merge (>= 1; 0 is the batch)"),
            Param("end_dim", Int(None, sample_values=(-1,)), -1, doc="last dim to merge"),
        ),
        infer=_flatten_infer,
        lower=lambda p, x, y: Ctor(
            "nn.Flatten", nondefault(p, {"start_dim": 1, "end_dim": -1}, ["start_dim", "end_dim"])
        ),
        accepts=_ANY,
        examples=(Example(None, (16, 5, 5), (400,)), Example({"start_dim": 2}, (3, 4, 5), (3, 20))),
        torch_equivalent="torch.nn.Flatten",
        shape_rule="dims start_dim..end_dim merged into their product: (C, H, W) -> (C*H*W) by default",
    )
)


def _reshape_infer(p: Params, x: TensorType) -> Inferred:
    target = list(p["shape"])
    if target.count(-1) > 1 or any(d == 0 or d < -1 for d in target):
        raise ShapeError(
            "invalid target shape",
            expected="positive sizes, with at most one -1",
            received=str(target),
            param="shape",
        )
    known = math.prod(d for d in target if d != -1)
    static = math.prod(d for d in x.shape if isinstance(d, int))
    syms = T.symbols(x.shape)
    if -1 in target:
        if static % known:
            raise ShapeError(
                "the target shape does not divide the input",
                expected=f"sizes whose product divides {static if not syms else x.show(None)}",
                received=f"{target}: {static} % {known} = {static % known}",
                param="shape",
            )
        rest = static // known
        target[target.index(-1)] = T.mul([rest, *syms]) if syms else rest
    elif syms or known != static:
        raise ShapeError(
            "the target shape has a different number of elements",
            expected=f"a product of {T.mul(x.shape)} (input {x.show(None)})",
            received=f"{target}, a product of {known}",
            hint="use -1 for the dimension to infer",
            param="shape",
        )
    return TensorType(tuple(target), x.dtype, ""), {}


register(
    OpDef(
        name="reshape",
        family="shape",
        doc="reshapes each sample to `shape` (no batch; one -1 may be inferred), like keras Reshape.",
        params=(Param("shape", IntList(item_min=-1), doc="per-sample target shape, e.g. [16, 5, 5]"),),
        infer=_reshape_infer,
        lower=lambda p, x, y: Ctor("Reshape", {"shape": y.shape}),
        accepts=_ANY,
        shorthand="shape",
        examples=(Example([16, 5, 5], (400,), (16, 5, 5)), Example([-1, 4], (2, 6), (3, 4))),
        torch_equivalent="x.reshape(batch, *shape)",
        shape_rule="(*) -> shape, with as many elements; one -1 takes the size that makes them equal",
    )
)


def _permute_infer(p: Params, x: TensorType) -> Inferred:
    dims: list[int] = [d % (x.rank + 1) if -x.rank - 1 <= d <= x.rank else d for d in p["dims"]]
    if sorted(dims) != list(range(x.rank + 1)):
        raise ShapeError(
            "dims is not a permutation of the input's dims",
            expected=f"a permutation of {list(range(x.rank + 1))} (input {x.show()}, batch is 0)",
            received=str(list(p["dims"])),
            param="dims",
        )
    if dims[0] != 0:
        raise ShapeError(
            "the batch dimension must stay first",
            expected="dims starting with 0",
            received=str(list(p["dims"])),
            hint="to swap channels and time of (B, C, L) write [0, 2, 1]",
            param="dims",
        )
    full: tuple[Dim, ...] = ("B", *x.shape)
    return TensorType(tuple(full[d] for d in dims[1:]), x.dtype, ""), {"dims": tuple(dims)}


register(
    OpDef(
        name="permute",
        family="shape",
        doc="reorders dims (PyTorch indexing, the batch 0 stays first): [0, 2, 1] turns (C, L) into (L, C).",
        params=(Param("dims", IntList(2, item_min=None), doc="a permutation of all dims, batch included"),),
        infer=_permute_infer,
        lower=lambda p, x, y: Ctor("Permute", {"dims": p["dims"]}),
        accepts=_ANY,
        shorthand="dims",
        examples=(Example([0, 2, 1], (8, 20), (20, 8)), Example([0, 3, 1, 2], (4, 5, 6), (6, 4, 5))),
        torch_equivalent="x.permute(*dims)",
        shape_rule="(d1, ..., dn) -> the same dims in the order `dims` gives (0, the batch, stays first)",
    )
)


def _transpose_infer(p: Params, x: TensorType) -> Inferred:
    a, b = (torch_dim(d, x.rank, "dims entry", "dims") for d in p["dims"])
    shape = list(x.shape)
    shape[a - 1], shape[b - 1] = shape[b - 1], shape[a - 1]
    layout = "sequence" if x.layout == "channels" and x.rank == 2 else ""
    return TensorType(tuple(shape), x.dtype, layout), {}


register(
    OpDef(
        name="transpose",
        family="shape",
        doc="swaps two dims (PyTorch indexing, 0 is the batch): [1, 2] turns conv1d's (C, L) into (L, C).",
        params=(Param("dims", IntList(2, 2, item_min=None), doc="the two dims to swap, e.g. [1, 2]"),),
        infer=_transpose_infer,
        lower=lambda p, x, y: Ctor("Transpose", {"dim0": p["dims"][0], "dim1": p["dims"][1]}),
        accepts=Accepts(None, dtype="any", axes="(*)", min_rank=2, sample_dims=(2, 3, 4)),
        shorthand="dims",
        examples=(Example([1, 2], (8, 20), (20, 8)), Example([-1, -2], (2, 3, 4), (2, 4, 3))),
        torch_equivalent="x.transpose(dim0, dim1)",
        shape_rule="(*) -> (*) with the two dims swapped: [1, 2] turns (C, L) into (L, C)",
    )
)
