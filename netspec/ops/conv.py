"""Convolutions: conv1d, conv2d, conv3d with PyTorch's semantics and defaults."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..errors import ShapeError
from ..ir.types import TensorType, numel
from .common import AXES, LAYOUT, OUT_AXES, check_inferred, nondefault, sliding_window
from .params import Accepts, Bool, Enum, Int, Ints, Padding, Param
from .registry import MASK, Ctor, Example, OpDef, register

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..ir.types import Dim
    from .common import Inferred
    from .registry import Params

_TORCH_DEFAULTS = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True, "padding_mode": "zeros"}


def _validate(p: Params) -> list[ShapeError]:
    errs: list[ShapeError] = []
    if p["padding"] == "same" and any(s != 1 for s in p["stride"]):
        errs.append(
            ShapeError(
                "padding='same' needs stride 1",
                expected="stride 1 with padding 'same' (PyTorch does not support strided 'same')",
                received=f"stride {list(p['stride'])}",
                hint="use an explicit padding such as (kernel_size - 1) // 2 with the stride",
                param="padding",
            )
        )
    if p["out_channels"] % p["groups"]:
        errs.append(
            ShapeError(
                "out_channels must be divisible by groups",
                expected=f"a multiple of groups={p['groups']}",
                received=f"out_channels={p['out_channels']} ({p['out_channels']} % {p['groups']} = "
                f"{p['out_channels'] % p['groups']})",
                hint=_DEPTHWISE_HINT,
                param="out_channels",
            )
        )
    return errs


# groups is a count, not a width: scale.width leaves it, and a depthwise conv written with groups
# breaks once its channels scale. depthwise: true follows the input instead.
_DEPTHWISE_HINT = "for a depthwise conv write `depthwise: true`: groups then follows in_channels, under scale.width too"


def _check_padding_mode(p: Params, sizes: Sequence[Dim], axes: Sequence[str]) -> None:
    """reflect / circular padding copies input values, so it cannot exceed the input: PyTorch
    needs pad < size for reflect and pad <= size for circular (zeros / replicate: any pad)."""
    mode = p["padding_mode"]
    if mode not in ("reflect", "circular"):
        return
    for i, size in enumerate(sizes):
        if not isinstance(size, int):
            continue  # checked again with the nominal size bound
        if p["padding"] == "same":
            total = p["dilation"][i] * (p["kernel_size"][i] - 1)
            pad = total - total // 2  # PyTorch puts the odd element on the right
        else:
            pad = p["padding"][i]
        limit = size - 1 if mode == "reflect" else size
        if pad > limit:
            raise ShapeError(
                f"{mode} padding is larger than the input",
                expected=f"padding <= {limit} on the {axes[i]} axis ({'<' if mode == 'reflect' else '<='} its size)",
                received=f"padding {pad} for input {axes[i]} {size}",
                hint="reduce padding or use padding_mode 'zeros' or 'replicate'",
                param="padding",
            )


def _uneven_same(p: Params) -> bool:
    """padding 'same' with zeros whose total padding d*(k-1) is odd on some axis (an even kernel)."""
    if p["padding"] != "same" or p["padding_mode"] != "zeros":  # other modes: PyTorch pads explicitly itself
        return False
    return any(d * (k - 1) % 2 for k, d in zip(p["kernel_size"], p["dilation"], strict=True))


def _make(n: int) -> OpDef:
    axes = AXES[n]

    def infer(p: Params, x: TensorType) -> Inferred:
        cin = x.shape[0]
        if not isinstance(cin, int):
            raise ShapeError("the channel dimension must be a fixed size", received=f"channels {cin}")
        check_inferred("in_channels", p.get("in_channels"), cin, "channels")
        groups = cin if p["depthwise"] else p["groups"]
        if p["depthwise"] and p["groups"] not in (1, cin):  # a resolved spec writes both, equal
            raise ShapeError(
                "depthwise sets groups to in_channels",
                expected=f"either `depthwise: true` (groups = in_channels = {cin}) or `groups: n`",
                received=f"depthwise: true and groups: {p['groups']}",
                hint="remove groups",
                param="groups",
            )
        if p["depthwise"] and p["out_channels"] % cin:
            raise ShapeError(
                "a depthwise conv's out_channels must be a multiple of its in_channels",
                expected=f"out_channels = k * {cin} (k filters per input channel)",
                received=f"out_channels={p['out_channels']} for in_channels={cin} from the input "
                f"({p['out_channels']} % {cin} = {p['out_channels'] % cin})",
                hint=f"write out_channels: {cin}, or `${{in.channels}}` inside a block",
                param="out_channels",
            )
        if cin % groups:
            raise ShapeError(
                "in_channels must be divisible by groups",
                expected=f"a multiple of groups={groups}",
                received=f"in_channels={cin} from the input ({cin} % {groups} = {cin % groups})",
                hint="change groups or the channels of the previous layer; " + _DEPTHWISE_HINT,
                param="groups",
            )
        _check_padding_mode(p, x.shape[1:], axes)
        out: list[Dim] = []
        for i, size in enumerate(x.shape[1:]):
            k, s, d = p["kernel_size"][i], p["stride"][i], p["dilation"][i]
            if p["padding"] == "same":
                out.append(size)
                continue
            pad = p["padding"][i]
            out.append(sliding_window(axes[i], size, k, s, 2 * pad, d))
        return TensorType((p["out_channels"], *out), x.dtype, "channels"), {"in_channels": cin, "groups": groups}

    def params(p: Params, x: TensorType, y: TensorType) -> int:
        w = p["out_channels"] * (p["in_channels"] // p["groups"]) * math.prod(p["kernel_size"])
        return w + (p["out_channels"] if p["bias"] else 0)

    def macs(p: Params, x: TensorType, y: TensorType) -> int | None:
        out = numel(y.shape)
        if out is None:
            return None
        return out * (p["in_channels"] // p["groups"]) * math.prod(p["kernel_size"])

    def lower(p: Params, x: TensorType, y: TensorType) -> Ctor:
        kw = {"in_channels": p["in_channels"], "out_channels": p["out_channels"]}
        kw.update(nondefault(p, {}, ["kernel_size"]))
        kw.update(nondefault(p, _TORCH_DEFAULTS, ["stride", "padding", "dilation", "groups", "bias", "padding_mode"]))
        if _uneven_same(p):  # PyTorch would pad one side more and warn: layers.SameConvNd pads explicitly
            del kw["padding"]
            return Ctor(f"SameConv{n}d", kw)
        return Ctor(f"nn.Conv{n}d", kw)

    return OpDef(
        name=f"conv{n}d",
        channels_last=n == 2,
        family="convolution",
        doc=f"{n}-D convolution over {LAYOUT[n]} inputs (nn.Conv{n}d). in_channels is inferred.",
        params=(
            Param("out_channels", Int(), doc="number of output channels (filters)", width=True),
            Param("kernel_size", Ints(n, sample_values=(1, 2, 3)), doc="window size: an int or one per axis"),
            Param("stride", Ints(n), 1, doc="step of the window"),
            Param("padding", Padding(n), 0, doc="zero padding per side: int, per-axis list, 'same' or 'valid'"),
            Param("dilation", Ints(n, sample_values=(1, 2)), 1, doc="spacing between kernel elements"),
            Param("groups", Int(sample_values=(1, 2)), 1, doc="blocked connections; divides both channel counts"),
            Param(
                "depthwise",
                Bool(),
                False,
                doc="one group per input channel (groups = in_channels, inferred, so it follows scale.width); "
                "out_channels a multiple of in_channels",
            ),
            Param("bias", Bool(), True, doc="add a learnable bias"),
            Param(
                "padding_mode",
                Enum(
                    ("zeros", "reflect", "replicate", "circular"),
                    (
                        "pad with zeros",
                        "mirror the edge (without repeating it)",
                        "repeat the edge value",
                        "wrap around",
                    ),
                ),
                "zeros",
                doc="how padding is filled",
            ),
            Param("in_channels", Int(), None, doc="inferred from the input; checked if given", inferred=True),
        ),
        infer=infer,
        lower=lower,
        accepts=Accepts((n + 1,), axes=LAYOUT[n], sample_dims=(4, 6, 9) if n < 3 else (4, 5)),
        param_count=params,
        macs=macs,
        validate=_validate,
        examples=(
            Example(
                {"out_channels": 6, "kernel_size": 5},
                (1, 32, 32)[: n + 1] if n < 3 else (1, 8, 8, 8),
                (6, 28, 28)[: n + 1] if n < 3 else (6, 4, 4, 4),
            ),
            Example(
                {"out_channels": 8, "kernel_size": 3, "padding": "same", "groups": 2},
                (4,) + (10,) * n,
                (8,) + (10,) * n,
            ),
            Example(
                {"out_channels": 8, "kernel_size": 3, "padding": 1, "depthwise": True},
                (4,) + (6,) * n,
                (8,) + (6,) * n,
            ),
            Example(
                {"out_channels": 4, "kernel_size": 3, "stride": 2, "dilation": 2, "bias": False},
                (2,) + (11,) * n,
                (4,) + (4,) * n,
            ),
        ),
        torch_equivalent=f"torch.nn.Conv{n}d",
        shape_rule=f"{LAYOUT[n]} -> (out_channels, {OUT_AXES[n]}) with, per axis, "
        "S' = floor((S + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1; padding 'same' keeps S",
        lengths=MASK,
        folds_bn=lambda p, x, y: f"batchnorm{n}d",
        low_rank_hint="the input lacks a channel axis: add it to the input shape, e.g. [1, ...]",
    )


for _n in (1, 2, 3):
    register(_make(_n))
