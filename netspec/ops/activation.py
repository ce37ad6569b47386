"""Activations: elementwise maps that keep the shape, plus softmax/log_softmax along a dim and
PReLU with learnable slopes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ShapeError
from ..ir.types import TensorType
from .common import nondefault, torch_dim
from .params import Accepts, Enum, Float, Int, Param
from .registry import KEEP, MIX, Ctor, Example, OpDef, register

if TYPE_CHECKING:
    from .common import Inferred
    from .registry import Params

_ANY = Accepts(None, axes="(*)", min_rank=1, sample_dims=(1, 3, 4))


def _same(p: Params, x: TensorType) -> Inferred:
    return x, {}


def _elementwise(
    name: str,
    cls: str,
    doc: str,
    params: tuple[Param, ...] = (),
    shorthand: str | None = None,
    examples: tuple[Example, ...] = (),
) -> OpDef:
    defaults = {q.name: q.default for q in params}

    def lower(p: Params, x: TensorType, y: TensorType) -> Ctor:
        return Ctor(f"nn.{cls}", nondefault(p, defaults, [q.name for q in params]))

    return OpDef(
        name=name,
        family="activation",
        doc=doc,
        params=tuple(params),
        infer=_same,
        lower=lower,
        accepts=_ANY,
        shorthand=shorthand,
        examples=examples or (Example(None, (4, 5), (4, 5)),),
        torch_equivalent=f"torch.nn.{cls}",
        shape_rule="(*) -> (*): elementwise, the shape is kept",
    )


for _name, _cls, _doc in [
    ("relu", "ReLU", "max(0, x)"),
    ("relu6", "ReLU6", "min(max(0, x), 6)"),
    ("sigmoid", "Sigmoid", "1 / (1 + exp(-x))"),
    ("tanh", "Tanh", "hyperbolic tangent"),
    ("silu", "SiLU", "x * sigmoid(x) (swish)"),
    ("hardswish", "Hardswish", "x * relu6(x + 3) / 6"),
]:
    register(_elementwise(_name, _cls, _doc))

register(
    _elementwise(
        "leaky_relu",
        "LeakyReLU",
        "max(0, x) + negative_slope * min(0, x)",
        (Param("negative_slope", Float(sample_values=(0.01, 0.2)), 0.01, doc="slope for x < 0"),),
        shorthand="negative_slope",
        examples=(Example(None, (3,), (3,)), Example(0.2, (2, 5), (2, 5))),
    )
)
register(
    _elementwise(
        "elu",
        "ELU",
        "x if x > 0 else alpha * (exp(x) - 1)",
        (Param("alpha", Float(sample_values=(1.0, 0.5)), 1.0, doc="scale of the negative part"),),
        shorthand="alpha",
    )
)
register(
    _elementwise(
        "gelu",
        "GELU",
        "Gaussian error linear unit",
        (
            Param(
                "approximate",
                Enum(("none", "tanh"), ("the exact erf form", "the faster tanh approximation")),
                "none",
                doc="'tanh' uses the tanh approximation",
            ),
        ),
        shorthand="approximate",
    )
)


def _softmax_lengths(p: Params, x: TensorType, y: TensorType, axis: int) -> str:
    """Per step, unless it normalizes over the time axis itself (`dim` counts the batch)."""
    return MIX if p["dim"] % (x.rank + 1) == axis + 1 else KEEP


def _make_softmax(name: str, cls: str) -> OpDef:
    def infer(p: Params, x: TensorType) -> Inferred:
        torch_dim(p["dim"], x.rank)
        return x, {}

    return OpDef(
        name=name,
        family="activation",
        doc=f"{cls} along `dim` (PyTorch indexing: 0 is the batch; default -1, the last axis).",
        params=(Param("dim", Int(None, sample_values=(-1, 1)), -1, doc="axis to normalize over (0 is the batch)"),),
        infer=infer,
        lower=lambda p, x, y: Ctor(f"nn.{cls}", {"dim": p["dim"]}),
        accepts=_ANY,
        shorthand="dim",
        examples=(Example(None, (10,), (10,)), Example(1, (3, 4), (3, 4))),
        torch_equivalent=f"torch.nn.{cls}",
        shape_rule="(*) -> (*): the shape is kept; values along `dim` are normalized",
        lengths=_softmax_lengths,
    )


register(_make_softmax("softmax", "Softmax"))
register(_make_softmax("log_softmax", "LogSoftmax"))


def _prelu_infer(p: Params, x: TensorType) -> Inferred:
    n = p["num_parameters"]
    if n != 1 and (x.rank < 1 or x.shape[0] != n):
        raise ShapeError(
            "num_parameters must be 1 or the number of channels",
            expected=f"1 or {x.shape[0]} (channels, dim 1 of the input)",
            received=f"num_parameters={n}",
            param="num_parameters",
        )
    return x, {}


register(
    OpDef(
        name="prelu",
        family="activation",
        doc="max(0, x) + a * min(0, x) with learnable a: one shared, or one per channel (dim 1).",
        params=(
            Param("num_parameters", Int(sample_values=(1,)), 1, doc="1 (shared) or the number of channels"),
            Param("init", Float(sample_values=(0.25,)), 0.25, doc="initial value of a"),
        ),
        infer=_prelu_infer,
        lower=lambda p, x, y: Ctor(
            "nn.PReLU", nondefault(p, {"num_parameters": 1, "init": 0.25}, ["num_parameters", "init"])
        ),
        accepts=_ANY,
        param_count=lambda p, x, y: p["num_parameters"],
        shorthand="num_parameters",
        examples=(Example(None, (4, 6), (4, 6)), Example(4, (4, 6), (4, 6))),
        torch_equivalent="torch.nn.PReLU",
        shape_rule="(C, *) -> (C, *): elementwise, the shape is kept",
    )
)
