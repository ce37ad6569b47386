"""Recurrent layers: lstm, gru, rnn over (T, F) sequences (batch first), with a choice of what
the layer passes on: the whole sequence, the last step, or a mean/max summary over time.

"last" is the final hidden state of the top layer in each direction (h_n), concatenated
[forward, backward]; never output[:, -1], whose backward half has seen a single element.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import WARNING, Diagnostic, ShapeError, format_path
from ..ir.types import TensorType
from .common import channels_read_as_time, check_inferred
from .params import Accepts, Bool, Enum, Float, Int, Param
from .registry import KEEP, USE, USE_LAST, Ctor, Example, OpDef, register

if TYPE_CHECKING:
    from ..ir import Node
    from .common import Inferred
    from .registry import Params

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
CLS = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


def _h_out(p: Params) -> int:
    return p.get("proj_size") or p["hidden_size"]


def weights(p: Params, input_size: int) -> tuple[int, int]:
    """(weight elements without biases, number of layer-direction cells), in PyTorch's layout.
    Closed form: only the first layer reads the input; every later one reads the layer below
    (num_layers may be any int the schema allows, so no per-layer loop)."""
    g, h, dirs = GATES[p["kind"]], p["hidden_size"], 2 if p["bidirectional"] else 1
    hout, proj = _h_out(p), p.get("proj_size") or 0
    first = g * h * (input_size + hout) + proj * h
    later = g * h * (dirs * hout + hout) + proj * h
    n = p["num_layers"]
    return dirs * (first + (n - 1) * later), dirs * n


def _lengths(p: Params, x: TensorType, y: TensorType, axis: int) -> str:
    """Packs a padded batch when time is its first axis (T, F); the state at each true length."""
    if axis != 0:
        return KEEP
    return USE if x.shape[axis] in y.shape else USE_LAST


def _warn(node: Node, x: TensorType) -> list[Diagnostic]:
    out = channels_read_as_time(node, x, "(T, F)")
    if node.params["dropout"] > 0 and node.params["num_layers"] == 1:
        out.append(
            Diagnostic(
                f"dropout has no effect on a single-layer {node.op}",
                format_path((*node.path, "dropout")),
                node.loc_of("dropout"),
                expected="num_layers > 1 for dropout between layers",
                received=f"dropout={node.params['dropout']}, num_layers=1",
                hint="add a `- dropout` layer after it instead",
                severity=WARNING,
                code="layout",
            )
        )
    return out


def _make(kind: str) -> OpDef:
    def validate(p: Params) -> list[ShapeError]:
        errs: list[ShapeError] = []
        proj = p.get("proj_size") or 0
        if proj and proj >= p["hidden_size"]:
            errs.append(
                ShapeError(
                    "proj_size must be smaller than hidden_size",
                    expected=f"0 <= proj_size < {p['hidden_size']}",
                    received=f"proj_size={proj}",
                    param="proj_size",
                )
            )
        return errs

    def infer(p: Params, x: TensorType) -> Inferred:
        feat = x.shape[-1]
        if not isinstance(feat, int):
            hint = "recurrent layers read (T, F): the last axis must be a fixed feature count"
            if x.layout == "channels":
                hint = "a conv1d stack gives (C, L); insert `- transpose: [1, 2]` to read it as (T, F)"
            raise ShapeError(
                f"{kind} needs a fixed number of input features",
                expected="(T, F) with a fixed F",
                received=f"features {feat} of {x.show()}",
                hint=hint,
            )
        check_inferred("input_size", p.get("input_size"), feat, "features")
        width = (2 if p["bidirectional"] else 1) * _h_out(p)
        if p["output"] == "sequence":
            y = TensorType((x.shape[0], width), x.dtype, "sequence")
        else:
            y = TensorType((width,), x.dtype, "")
        return y, {"input_size": feat}

    def params(p: Params, x: TensorType, y: TensorType) -> int:
        g, h = GATES[kind], p["hidden_size"]
        biases = 2 * g * h if p["bias"] else 0
        total, cells = weights({**p, "kind": kind}, p["input_size"])
        return total + cells * biases

    def macs(p: Params, x: TensorType, y: TensorType) -> int | None:
        t = x.shape[0]
        if not isinstance(t, int):
            return None
        return t * weights({**p, "kind": kind}, p["input_size"])[0]

    def lower(p: Params, x: TensorType, y: TensorType) -> Ctor:
        kw = {"mode": CLS[kind], "input_size": p["input_size"], "hidden_size": p["hidden_size"]}
        for name, default in [("num_layers", 1), ("bias", True), ("dropout", 0.0), ("bidirectional", False)]:
            if p[name] != default:
                kw[name] = p[name]
        if kind == "lstm" and p["proj_size"]:
            kw["proj_size"] = p["proj_size"]
        if kind == "rnn" and p["nonlinearity"] != "tanh":
            kw["nonlinearity"] = p["nonlinearity"]
        kw["output"] = p["output"]
        return Ctor("Recurrent", kw)

    ps = [
        Param("hidden_size", Int(sample_values=(1, 3, 8)), doc="features of the hidden state", width=True),
        Param("num_layers", Int(sample_values=(1, 2)), 1, doc="stacked recurrent layers"),
        Param("bidirectional", Bool(), False, doc="also run backwards; outputs are concatenated"),
        Param("dropout", Float(0.0, 1.0, sample_values=(0.0,)), 0.0, doc="dropout between stacked layers"),
        Param("bias", Bool(), True, doc="the two bias vectors (b_ih and b_hh) of PyTorch"),
        Param(
            "output",
            Enum(
                ("sequence", "last", "mean", "max"),
                (
                    "every step: (T, D*H)",
                    "the final state: (D*H)",
                    "the mean over time: (D*H)",
                    "the maximum over time: (D*H)",
                ),
            ),
            "sequence",
            doc="what is passed on: every step (T, D*H), the final state (D*H), or mean/max over time",
        ),
    ]
    if kind == "lstm":
        ps.append(Param("proj_size", Int(0, sample_values=(0, 2)), 0, doc="project h to this size (0: off)"))
    if kind == "rnn":
        ps.append(
            Param(
                "nonlinearity", Enum(("tanh", "relu"), ("tanh(x)", "max(0, x)")), "tanh", doc="activation of the cell"
            )
        )
    ps.append(Param("input_size", Int(), None, doc="inferred from the input; checked if given", inferred=True))

    return OpDef(
        name=kind,
        family="recurrent",
        doc=f"{CLS[kind]} over (T, F) sequences, batch first (nn.{CLS[kind]}). input_size is inferred.",
        params=tuple(ps),
        infer=infer,
        lower=lower,
        accepts=Accepts((2,), axes="(T, F)", sample_dims=(1, 3, 5)),
        param_count=params,
        macs=macs,
        validate=validate,
        shorthand="hidden_size",
        examples=(
            Example({"hidden_size": 20}, (7, 10), (7, 20)),
            Example({"hidden_size": 20, "num_layers": 2, "bidirectional": True, "output": "last"}, (5, 10), (40,)),
            Example({"hidden_size": 8, "output": "mean"}, (6, 3), (8,)),
        ),
        torch_equivalent=f"torch.nn.{CLS[kind]}",
        shape_rule="(T, F) -> (T, D*H) with output sequence, (D*H) with last, mean or max; D = 2 if "
        f"bidirectional else 1, H = {'proj_size if set, else ' if kind == 'lstm' else ''}hidden_size",
        lengths=_lengths,
        recurrent=True,
        low_rank_hint="recurrent layers read (T, F); declare the input as [T, F] or add `- reshape: [-1, 1]`",
        warn=_warn,
    )


for _kind in GATES:
    register(_make(_kind))
