"""Normalization: batchnorm1d/2d/3d (running statistics are buffers) and layernorm."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..errors import ShapeError
from ..ir.types import TensorType
from .common import check_inferred, nondefault
from .params import Accepts, Bool, Float, Int, IntList, Param
from .registry import KEEP, MIX, Ctor, Example, OpDef, register

if TYPE_CHECKING:
    from .common import Inferred
    from .registry import Params

_BN_DEFAULTS = {"eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True}
_BN_RANKS = {1: ((1, 2), "(C) or (C, L)"), 2: ((3,), "(C, H, W)"), 3: ((4,), "(C, D, H, W)")}


def _bn_validate(p: Params) -> list[ShapeError]:
    # PyTorch divides by sqrt(var + eps) and refuses eps = 0 whenever batch statistics are used
    # (every training step), so a spec with eps 0 would compile and then fail to train.
    if p["eps"] <= 0:
        return [
            ShapeError(
                "eps must be positive",
                expected="eps > 0 (PyTorch rejects 0 in training)",
                received=f"eps={p['eps']}",
                param="eps",
            )
        ]
    return []


def _make_bn(n: int) -> OpDef:
    def infer(p: Params, x: TensorType) -> Inferred:
        c = x.shape[0]
        if not isinstance(c, int):
            raise ShapeError("the channel dimension must be a fixed size", received=f"channels {c}")
        check_inferred("num_features", p.get("num_features"), c, "channels")
        return TensorType(x.shape, x.dtype, x.layout or "channels"), {"num_features": c}

    ranks, axes = _BN_RANKS[n]
    return OpDef(
        name=f"batchnorm{n}d",
        family="normalization",
        doc=f"batch normalization over the channels of {axes} (nn.BatchNorm{n}d). num_features is inferred.",
        params=(
            Param("eps", Float(0.0, sample_values=(1e-5,)), 1e-5, doc="added to the variance"),
            Param("momentum", Float(0.0, 1.0, sample_values=(0.1,)), 0.1, doc="running statistics update rate"),
            Param("affine", Bool(), True, doc="learnable scale and shift"),
            Param("track_running_stats", Bool(), True, doc="keep running mean/var buffers"),
            Param("num_features", Int(), None, doc="inferred from the input; checked if given", inferred=True),
        ),
        infer=infer,
        lower=lambda p, x, y: Ctor(
            f"nn.BatchNorm{n}d",
            {"num_features": p["num_features"], **nondefault(p, _BN_DEFAULTS, list(_BN_DEFAULTS))},
        ),
        accepts=Accepts(ranks, axes=axes, sample_dims=(2, 3, 5)),
        param_count=lambda p, x, y: 2 * p["num_features"] if p["affine"] else 0,
        # running_mean, running_var, and the scalar num_batches_tracked
        buffer_count=lambda p, x, y: 2 * p["num_features"] + 1 if p["track_running_stats"] else 0,
        validate=_bn_validate,
        examples=(
            Example(None, (6,) + (5,) * max(n, 1), (6,) + (5,) * max(n, 1)),
            Example({"affine": False}, (3,) + (4,) * n, (3,) + (4,) * n),
        ),
        torch_equivalent=f"torch.nn.BatchNorm{n}d",
        shape_rule=f"{axes} -> the same shape (num_features = C)",
        padding_note="warning: batchnorm statistics include the zero padding of shorter series in training",
    )


for _n in (1, 2, 3):
    register(_make_bn(_n))


def _ln_infer(p: Params, x: TensorType) -> Inferred:
    given = p.get("normalized_shape")
    k = len(given) if given else 1
    if k > x.rank:
        raise ShapeError(
            "normalized_shape has more dims than the input",
            expected=f"at most {x.rank} trailing dims of {x.show()}",
            received=str(list(given or ())),  # (given: k is 1 without it, and accepts takes rank >= 1)
            param="normalized_shape",
        )
    actual = tuple(x.shape[-k:])
    if any(not isinstance(d, int) for d in actual):
        raise ShapeError(
            "layernorm needs fixed trailing dims",
            received=f"trailing dims {actual} of {x.show()}",
            param="normalized_shape",
        )
    check_inferred(
        "normalized_shape", tuple(given) if given else None, actual, f"the input's trailing dims are {list(actual)}"
    )
    return x, {"normalized_shape": actual}


def _ln_lengths(p: Params, x: TensorType, y: TensorType, axis: int) -> str:
    """Per step, unless the time axis is among the normalized trailing dims."""
    return MIX if axis >= x.rank - len(p["normalized_shape"]) else KEEP


def _ln_params(p: Params, x: TensorType, y: TensorType) -> int:
    if not p["elementwise_affine"]:
        return 0
    return math.prod(p["normalized_shape"]) * (2 if p["bias"] else 1)


register(
    OpDef(
        name="layernorm",
        family="normalization",
        doc="layer normalization over the trailing dims (nn.LayerNorm); normalized_shape defaults to the last dim.",
        params=(
            Param("eps", Float(0.0, sample_values=(1e-5,)), 1e-5, doc="added to the variance"),
            Param("elementwise_affine", Bool(), True, doc="learnable per-element scale (and bias)"),
            Param("bias", Bool(), True, doc="learnable shift (with elementwise_affine)"),
            Param(
                "normalized_shape", IntList(item_min=1), None, doc="trailing dims to normalize; inferred", inferred=True
            ),
        ),
        infer=_ln_infer,
        lower=lambda p, x, y: Ctor(
            "nn.LayerNorm",
            {
                "normalized_shape": p["normalized_shape"],
                **nondefault(
                    p, {"eps": 1e-5, "elementwise_affine": True, "bias": True}, ["eps", "elementwise_affine", "bias"]
                ),
            },
        ),
        accepts=Accepts(None, axes="(*, F)", min_rank=1, sample_dims=(2, 3, 6)),
        param_count=_ln_params,
        examples=(Example(None, (10, 16), (10, 16)), Example({"normalized_shape": [4, 5]}, (3, 4, 5), (3, 4, 5))),
        torch_equivalent="torch.nn.LayerNorm",
        shape_rule="(*, F) -> (*, F): the shape is kept; the trailing normalized_shape dims are normalized",
        lengths=_ln_lengths,
    )
)
