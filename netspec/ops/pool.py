"""Pooling: max/avg (1d-3d), adaptive max/avg (1d-3d), and global max/avg over all spatial axes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ShapeError
from ..ir.types import TensorType
from .common import AXES, LAYOUT, OUT_AXES, nondefault, sliding_window
from .params import Accepts, Bool, Ints, OutputSize, Param
from .registry import KEEP, USE_LAST, Ctor, Example, OpDef, register

if TYPE_CHECKING:
    from ..ir.types import Dim
    from .common import Inferred
    from .registry import Params


def _window_params(n: int, kind: str) -> tuple[Param, ...]:
    ps = [
        Param("kernel_size", Ints(n, sample_values=(1, 2, 3)), doc="window size: an int or one per axis"),
        Param("stride", Ints(n, sample_values=(1, 2, 3)), None, doc="step of the window; defaults to kernel_size"),
        Param(
            "padding", Ints(n, 0, sample_values=(0, 1)), 0, doc="implicit padding per side (at most kernel_size // 2)"
        ),
    ]
    if kind == "max":
        ps.append(Param("dilation", Ints(n, sample_values=(1, 2)), 1, doc="spacing between window elements"))
    ps.append(Param("ceil_mode", Bool(), False, doc="use ceil instead of floor for the output size"))
    if kind == "avg":
        ps.append(Param("count_include_pad", Bool(), True, doc="include the zero padding in the average"))
    return tuple(ps)


def _make_window(n: int, kind: str) -> OpDef:
    axes = AXES[n]
    name = f"{kind}pool{n}d"
    cls = f"nn.{'Max' if kind == 'max' else 'Avg'}Pool{n}d"

    def resolve(p: Params) -> tuple[tuple[int, ...], tuple[int, ...]]:
        stride = p["stride"] if p["stride"] is not None else p["kernel_size"]
        dilation = p.get("dilation", (1,) * n)
        return stride, dilation

    def validate(p: Params) -> list[ShapeError]:
        for i in range(n):
            # PyTorch bounds the padding by half the kernel_size itself, for max pooling too:
            # dilation does not raise the limit (max_pool checks kW / 2 >= padW).
            limit = p["kernel_size"][i] // 2
            if p["padding"][i] > limit:
                return [
                    ShapeError(
                        "padding must be at most half the kernel_size",
                        expected=f"padding <= {limit} for kernel_size {p['kernel_size'][i]}",
                        received=f"padding {p['padding'][i]} on the {axes[i]} axis",
                        hint="PyTorch rejects larger padding; reduce it or enlarge kernel_size",
                        param="padding",
                    )
                ]
        return []

    def infer(p: Params, x: TensorType) -> Inferred:
        stride, dilation = resolve(p)
        out: list[Dim] = []
        for i, size in enumerate(x.shape[1:]):
            k, s, pad = p["kernel_size"][i], stride[i], p["padding"][i]
            if kind == "avg" and n == 3 and isinstance(size, int) and size < k:
                # Unlike the 1d/2d versions, avg_pool3d checks the input against the kernel
                # before padding, so padding cannot make up for a small input there.
                raise ShapeError(
                    f"input {axes[i]} is smaller than kernel_size",
                    expected=f"an input {axes[i]} of at least {k} (avgpool3d does not count the padding)",
                    received=f"input {axes[i]} {size}",
                    hint="reduce kernel_size or remove a downsampling layer before this one",
                    param="kernel_size",
                )
            out.append(
                sliding_window(axes[i], size, k, s, 2 * pad, dilation[i], ceil_mode=p["ceil_mode"], pad_left=pad)
            )
        return TensorType((x.shape[0], *out), x.dtype, "channels"), {"stride": stride}

    def lower(p: Params, x: TensorType, y: TensorType) -> Ctor:
        kw = nondefault(p, {}, ["kernel_size"])
        if p["stride"] != p["kernel_size"]:
            kw.update(nondefault(p, {}, ["stride"]))
        names = ["padding", "ceil_mode"] + (["dilation"] if kind == "max" else ["count_include_pad"])
        kw.update(nondefault(p, {"padding": 0, "dilation": 1, "ceil_mode": False, "count_include_pad": True}, names))
        return Ctor(cls, kw)

    return OpDef(
        name=name,
        family="pooling",
        doc=f"{kind} pooling over {LAYOUT[n]} inputs ({cls}).",
        params=_window_params(n, kind),
        infer=infer,
        lower=lower,
        accepts=Accepts((n + 1,), axes=LAYOUT[n], sample_dims=(4, 6, 9) if n < 3 else (4, 5)),
        validate=validate,
        shorthand="kernel_size",
        examples=(
            Example(2, (6,) + (28,) * n if n < 3 else (2, 8, 8, 8), (6,) + (14,) * n if n < 3 else (2, 4, 4, 4)),
            Example(
                {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, (3,) + (10,) * n, (3,) + (6,) * n
            ),
        ),
        torch_equivalent=f"torch.{cls}",
        shape_rule=f"{LAYOUT[n]} -> (C, {OUT_AXES[n]}) with, per axis, S' = "
        f"floor((S + 2*padding - {'dilation*' if kind == 'max' else ''}(kernel_size - 1) - 1) / stride) + 1 "
        "(ceil with ceil_mode); stride defaults to kernel_size",
    )


def _make_adaptive(n: int, kind: str) -> OpDef:
    cls = f"nn.Adaptive{'Max' if kind == 'max' else 'Avg'}Pool{n}d"

    def infer(p: Params, x: TensorType) -> Inferred:
        if n == 1 and p["output_size"] == (None,) and not isinstance(x.shape[1], int):
            # torch's 1d adaptive pools take no null, and a length known only at run time cannot
            # be written in its place
            raise ShapeError(
                f"adaptive pooling cannot keep the run-time length {x.shape[1]}",
                expected="an output size, or null on an axis of fixed size",
                received=f"output_size [null] on {x.show()}",
                hint="leave the layer out (keeping the length is the identity), or give a size",
                param="output_size",
            )
        out = tuple(size if o is None else o for o, size in zip(p["output_size"], x.shape[1:], strict=True))
        return TensorType((x.shape[0], *out), x.dtype, "channels"), {}

    def lower(p: Params, x: TensorType, y: TensorType) -> Ctor:
        # null keeps an axis: write the size when it is known (torch's 1d pools take no null), and
        # never collapse (null, null) to a bare null, which torch reads as no size at all
        sizes = zip(p["output_size"], x.shape[1:], strict=True)
        o = tuple(size if v is None and isinstance(size, int) else v for v, size in sizes)
        return Ctor(cls, {"output_size": o[0] if len(set(o)) == 1 and o[0] is not None else o})

    return OpDef(
        name=f"adaptive_{kind}pool{n}d",
        family="pooling",
        doc=f"adaptive {kind} pooling to a fixed output size ({cls}); null keeps an axis.",
        params=(Param("output_size", OutputSize(n), doc="target size: an int or one per axis (null keeps it)"),),
        infer=infer,
        lower=lower,
        accepts=Accepts((n + 1,), axes=LAYOUT[n], sample_dims=(3, 4, 7) if n < 3 else (3, 4)),
        shorthand="output_size",
        examples=(Example(1, (4,) + (7,) * n, (4,) + (1,) * n), Example(3, (2,) + (9,) * n, (2,) + (3,) * n)),
        torch_equivalent=f"torch.{cls}",
        shape_rule=f"{LAYOUT[n]} -> (C, *output_size); a null entry keeps that axis",
    )


def _global_lengths(p: Params, x: TensorType, y: TensorType, axis: int) -> str:
    """Over (C, T): pools each series over its true length only (the padding is left out)."""
    return USE_LAST if x.rank == 2 and axis == 1 else KEEP


def _make_global(kind: str) -> OpDef:
    def infer(p: Params, x: TensorType) -> Inferred:
        if p["keepdim"]:
            return TensorType((x.shape[0],) + (1,) * (x.rank - 1), x.dtype, "channels"), {}
        return TensorType((x.shape[0],), x.dtype, ""), {}

    def lower(p: Params, x: TensorType, y: TensorType) -> Ctor:
        return Ctor("GlobalPool", {"mode": kind, "dims": x.rank - 1, "keepdim": p["keepdim"]})

    return OpDef(
        name=f"global_{kind}pool",
        family="pooling",
        doc=f"global {kind} over every spatial axis of (C, *spatial): (C, L) or (C, H, W) -> (C).",
        params=(Param("keepdim", Bool(), False, doc="keep the pooled axes with size 1"),),
        infer=infer,
        lower=lower,
        accepts=Accepts(None, axes="(C, *spatial)", min_rank=2, sample_dims=(2, 3, 5)),
        examples=(Example(None, (64, 7, 7), (64,)), Example({"keepdim": True}, (8, 20), (8, 1))),
        torch_equivalent=f"x.{'mean' if kind == 'avg' else 'amax'}(dim=spatial)",
        shape_rule="(C, *spatial) -> (C); with keepdim (C, 1, ...), one 1 per spatial axis",
        lengths=_global_lengths,
    )


for _n in (1, 2, 3):
    for _kind in ("max", "avg"):
        register(_make_window(_n, _kind))
for _n in (1, 2, 3):
    for _kind in ("max", "avg"):
        register(_make_adaptive(_n, _kind))
for _kind in ("max", "avg"):
    register(_make_global(_kind))
