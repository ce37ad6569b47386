"""Attention: multihead self-attention, cross-attention, transformer encoder and decoder layers,
positional embeddings, and the mean/max over time that ends a sequence classifier, over (T, E)
sequences (batch first). Self-attention reads one input; cross-attention and the decoder layer read
`from: [query, memory]` (a layer reads one input or, as merges do, two or more: hence two types).

MACs per sample, the convention (torch.utils.flop_counter counts the same, FLOPs = 2 * MACs):
the query, key, value and output projections (T*E*E + 2*S*Ekv*E + T*E*E; 4*T*E*E for
self-attention, where S = T), the scores q k^T (T*S*E over all heads) and the weighted sum of the
values (T*S*E). Softmax, scaling, masking, biases, residual adds and layer norms are not counted;
a causal mask hides scores but they are still computed, and counted. A transformer layer adds its
feed-forward network, 2*T*E*dim_feedforward.

Variable-length batches: attention reads every step, so it takes the batch's lengths and masks
the keys past each series' length (key_padding_mask); the real steps never see the padding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import Diagnostic, ShapeError
from ..ir.types import TensorType
from .common import channels_read_as_time, check_inferred, nondefault
from .params import Accepts, Bool, Enum, Float, Int, Param
from .registry import KEEP, MIX, USE, USE_LAST, Ctor, Example, OpDef, register

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..ir import Node
    from ..ir.types import Dim
    from .common import Inferred
    from .registry import Params

_SEQ = Accepts((2,), axes="(T, E)", sample_dims=(4, 8))
_HEADS = Int(sample_values=(1, 2, 4))


def _features(name: str, x: TensorType, what: str = "input") -> int:
    e = x.shape[-1]
    if not isinstance(e, int):
        raise ShapeError(
            f"{name} needs a fixed number of features",
            expected="(T, E) with a fixed E",
            received=f"features {e} of the {what} {x.show()}",
            hint="attention reads (T, E): time first, features last",
        )
    return e


def _divisible(embed: int, heads: int, name: str = "embed_dim", heads_name: str = "num_heads") -> None:
    if embed % heads:
        raise ShapeError(
            f"{name} {embed} is not divisible by {heads_name} {heads}: {embed} % {heads} = {embed % heads}",
            expected=f"{name} a multiple of {heads_name} (each head gets {name} / {heads_name} features)",
            received=f"{name} {embed}, {heads_name} {heads}",
            hint=f"use {heads_name} in {[h for h in range(1, embed + 1) if embed % h == 0]}, or change {name}",
            param=heads_name,
        )


def _attention_macs(t: Dim, s: Dim, e: int, ekv: int) -> int | None:
    """Projections, scores and weighted sum per sample (the module docstring's convention)."""
    if not isinstance(t, int) or not isinstance(s, int):
        return None
    return 2 * t * e * e + 2 * s * ekv * e + 2 * t * s * e


def _layout_warn(node: Node, x: TensorType) -> list[Diagnostic]:
    return channels_read_as_time(node, x, "(T, E)")


def _seq_lengths(p: Params, x: TensorType, y: TensorType, axis: int) -> str:
    """Masks padded keys when time is the first axis of (T, E)."""
    return USE if axis == 0 else MIX


_CAUSAL = Param("causal", Bool(), False, doc="causal mask: step i attends to steps 0..i only")
_ATTN_PARAMS = (
    Param("num_heads", _HEADS, doc="parallel attention heads; embed_dim must be a multiple of it"),
    Param(
        "dropout",
        Float(0.0, 1.0, exclusive_max=True, sample_values=(0.0, 0.1)),
        0.0,
        doc="dropout on the attention weights",
    ),
    Param("bias", Bool(), True, doc="biases of the input and output projections"),
    Param("embed_dim", Int(), None, doc="inferred from the (query) input's last axis; checked if given", inferred=True),
)


def _attn_param_count(p: Params, kdim: int, vdim: int) -> int:
    e = p["embed_dim"]
    weights = e * e + kdim * e + vdim * e + e * e
    return weights + (4 * e if p["bias"] else 0)


# ---------------------------------------------------------------- multihead_attention (self)


def _self_infer(p: Params, x: TensorType) -> Inferred:
    e = _features("multihead_attention", x)
    check_inferred("embed_dim", p.get("embed_dim"), e, "features")
    _divisible(e, p["num_heads"])
    return TensorType(x.shape, x.dtype, "sequence"), {"embed_dim": e}


register(
    OpDef(
        name="multihead_attention",
        family="attention",
        doc="multihead self-attention over (T, E), batch first: the parameters of "
        "nn.MultiheadAttention(batch_first=True), query = key = value; passes on the output only. "
        "embed_dim is inferred. With variable-length input, padded keys are masked.",
        params=(*_ATTN_PARAMS[:3], _CAUSAL, _ATTN_PARAMS[3]),
        infer=_self_infer,
        lower=lambda p, x, y: Ctor(
            "SelfAttention",
            {
                "embed_dim": p["embed_dim"],
                "num_heads": p["num_heads"],
                **nondefault(p, {"dropout": 0.0, "bias": True, "causal": False}, ["dropout", "bias", "causal"]),
            },
        ),
        accepts=_SEQ,
        param_count=lambda p, x, y: _attn_param_count(p, p["embed_dim"], p["embed_dim"]),
        macs=lambda p, x, y: _attention_macs(x.shape[0], x.shape[0], p["embed_dim"], p["embed_dim"]),
        shorthand="num_heads",
        examples=(
            Example({"num_heads": 4}, (10, 16), (10, 16)),
            Example({"num_heads": 2, "bias": False, "dropout": 0.1}, (7, 8), (7, 8)),
            Example({"num_heads": 2, "causal": True}, (5, 4), (5, 4)),
        ),
        torch_equivalent="torch.nn.MultiheadAttention",
        shape_rule="(T, E) -> (T, E); E % num_heads = 0. MACs 4*T*E*E (projections) + T*T*E (scores) "
        "+ T*T*E (weighted sum); softmax not counted; causal masks scores, it does not skip them",
        lengths=_seq_lengths,
        low_rank_hint="attention reads (T, E); declare the input as [T, E]",
        warn=_layout_warn,
    )
)


# ---------------------------------------------------------------- cross_attention


def _two(op: str, names: tuple[str, str], xs: tuple[TensorType, ...]) -> tuple[TensorType, TensorType]:
    """The two inputs of a layer that attends from one sequence to another, of one dtype."""
    if len(xs) != 2:
        raise ShapeError(
            f"{op} reads two inputs",
            expected=f"`from: [{names[0]}, {names[1]}]`",
            received=f"{len(xs)} inputs: " + ", ".join(x.show() for x in xs),
        )
    a, b = xs
    if a.dtype != b.dtype:
        raise ShapeError(f"{names[0]} and {names[1]} of different dtypes", received=f"{a.dtype} and {b.dtype}")
    return a, b


def _cross_infer(p: Params, xs: tuple[TensorType, ...]) -> Inferred:
    q, m = _two("cross_attention", ("query", "memory"), xs)
    e = _features("cross_attention", q, "query")
    ekv = _features("cross_attention", m, "memory")
    check_inferred("embed_dim", p.get("embed_dim"), e, "query features")
    check_inferred("kdim", p.get("kdim"), ekv, "memory features")
    s = m.shape[0] if isinstance(m.shape[0], int) else None
    check_inferred("memory_len", p.get("memory_len"), s, "memory steps")
    _divisible(e, p["num_heads"])
    return TensorType(q.shape, q.dtype, "sequence"), {"embed_dim": e, "kdim": ekv, "memory_len": s}


def _cross_lower(p: Params, x: TensorType, y: TensorType) -> Ctor:
    kw = {"embed_dim": p["embed_dim"], "num_heads": p["num_heads"]}
    kw.update(nondefault(p, {"dropout": 0.0, "bias": True}, ["dropout", "bias"]))
    if p["kdim"] != p["embed_dim"]:
        kw["kdim"] = kw["vdim"] = p["kdim"]
    return Ctor("CrossAttention", kw)


def _cross_macs(p: Params, x: TensorType, y: TensorType) -> int | None:
    # `x` is the query (the first input); the memory's length S comes from infer (memory_len).
    s = p["memory_len"]
    return None if s is None else _attention_macs(x.shape[0], s, p["embed_dim"], p["kdim"])


register(
    OpDef(
        name="cross_attention",
        family="attention",
        doc="multihead cross-attention, batch first: a query (T, E) attends to a memory (S, Ekv) "
        "(key = value = memory), with the parameters of nn.MultiheadAttention(batch_first=True, "
        "kdim=vdim=Ekv); passes on the output only. embed_dim and kdim are inferred.",
        params=(
            *_ATTN_PARAMS,
            Param(
                "kdim",
                Int(),
                None,
                doc="features of the memory (key and value); inferred, checked if given",
                inferred=True,
            ),
            Param(
                "memory_len",
                Int(),
                None,
                doc="steps S of the memory (for the MACs); inferred, checked if given",
                inferred=True,
            ),
        ),
        infer=_cross_infer,
        lower=_cross_lower,
        accepts=_SEQ,
        param_count=lambda p, x, y: _attn_param_count(p, p["kdim"], p["kdim"]),
        macs=_cross_macs,
        shorthand="num_heads",
        arity=None,
        examples=(Example({"num_heads": 2}, (6, 8), (6, 8), note="query and memory from: [a, b]"),),
        torch_equivalent="torch.nn.MultiheadAttention",
        shape_rule="query (T, E), memory (S, Ekv) -> (T, E); E % num_heads = 0. MACs 2*T*E*E + 2*S*Ekv*E "
        "(projections) + T*S*E (scores) + T*S*E (weighted sum); softmax not counted",
        low_rank_hint="attention reads (T, E); declare the input as [T, E]",
        warn=_layout_warn,
    )
)


# ---------------------------------------------------------------- transformer_encoder_layer / decoder


def _enc_infer(p: Params, x: TensorType) -> Inferred:
    e = _features("transformer_encoder_layer", x)
    check_inferred("d_model", p.get("d_model"), e, "features")
    _divisible(e, p["nhead"], "d_model", "nhead")
    return TensorType(x.shape, x.dtype, "sequence"), {"d_model": e}


def _dec_infer(p: Params, xs: tuple[TensorType, ...]) -> Inferred:
    x, m = _two("transformer_decoder_layer", ("target", "memory"), xs)
    e = _features("transformer_decoder_layer", x, "target")
    em = _features("transformer_decoder_layer", m, "memory")
    check_inferred("d_model", p.get("d_model"), e, "target features")
    if em != e:
        raise ShapeError(
            f"the memory has {em} features, the target {e}",
            expected=f"a memory (S, {e}): nn.TransformerDecoderLayer attends to a memory of d_model features",
            received=f"target {x.show()}, memory {m.show()}",
            hint=f"project the memory first: `- linear: {e}` on it",
        )
    _divisible(e, p["nhead"], "d_model", "nhead")
    s = m.shape[0] if isinstance(m.shape[0], int) else None
    check_inferred("memory_len", p.get("memory_len"), s, "memory steps")
    return TensorType(x.shape, x.dtype, "sequence"), {"d_model": e, "memory_len": s}


def _ffn_and_norms(p: Params, norms: int) -> int:
    e, f = p["d_model"], p["dim_feedforward"]
    return 2 * e * f + norms * e + (f + e + norms * e if p["bias"] else 0)


def _enc_params(p: Params, x: TensorType, y: TensorType) -> int:
    return _attn_param_count({**p, "embed_dim": p["d_model"]}, p["d_model"], p["d_model"]) + _ffn_and_norms(p, 2)


def _dec_params(p: Params, x: TensorType, y: TensorType) -> int:
    return 2 * _attn_param_count({**p, "embed_dim": p["d_model"]}, p["d_model"], p["d_model"]) + _ffn_and_norms(p, 3)


def _enc_macs(p: Params, x: TensorType, y: TensorType) -> int | None:
    t, e = x.shape[0], p["d_model"]
    attn = _attention_macs(t, t, e, e)
    return None if attn is None else attn + 2 * t * e * p["dim_feedforward"]


def _dec_macs(p: Params, x: TensorType, y: TensorType) -> int | None:
    t, e, s = x.shape[0], p["d_model"], p["memory_len"]
    own, cross = _attention_macs(t, t, e, e), _attention_macs(t, s, e, e)
    return None if own is None or cross is None else own + cross + 2 * t * e * p["dim_feedforward"]


_LAYER_DEFAULTS = {
    "dim_feedforward": 2048,
    "dropout": 0.1,
    "activation": "relu",
    "norm_first": False,
    "bias": True,
    "causal": False,
}
_LAYER_PARAMS = (
    Param("nhead", _HEADS, doc="attention heads; d_model must be a multiple of it"),
    Param("dim_feedforward", Int(sample_values=(4, 16)), 2048, doc="width of the feed-forward network", width=True),
    Param("dropout", Float(0.0, 1.0, exclusive_max=True, sample_values=(0.0, 0.1)), 0.1, doc="dropout probability"),
    Param(
        "activation",
        Enum(("relu", "gelu"), ("max(0, x)", "Gaussian error linear unit")),
        "relu",
        doc="activation of the feed-forward network",
    ),
    Param("norm_first", Bool(), False, doc="layer norm before attention and feed-forward (pre-norm)"),
    Param("bias", Bool(), True, doc="biases of the linear layers and layer norms"),
    _CAUSAL,
    Param("d_model", Int(), None, doc="inferred from the input's last axis; checked if given", inferred=True),
)


def _layer_lower(cls: str) -> Callable[[Params, TensorType, TensorType], Ctor]:
    return lambda p, x, y: Ctor(
        cls, {"d_model": p["d_model"], "nhead": p["nhead"], **nondefault(p, _LAYER_DEFAULTS, list(_LAYER_DEFAULTS))}
    )


register(
    OpDef(
        name="transformer_encoder_layer",
        family="attention",
        doc="a transformer encoder layer over (T, E), batch first (nn.TransformerEncoderLayer): "
        "self-attention and a feed-forward network, each with a residual and a layer norm (after "
        "it, or before it with norm_first). d_model is inferred. With variable-length input, "
        "padded keys are masked.",
        params=_LAYER_PARAMS,
        infer=_enc_infer,
        lower=_layer_lower("EncoderLayer"),
        accepts=_SEQ,
        param_count=_enc_params,
        macs=_enc_macs,
        shorthand="nhead",
        examples=(
            Example({"nhead": 4, "dim_feedforward": 64}, (10, 32), (10, 32)),
            Example(
                {"nhead": 2, "dim_feedforward": 16, "activation": "gelu", "norm_first": True, "dropout": 0.0},
                (5, 8),
                (5, 8),
            ),
        ),
        torch_equivalent="torch.nn.TransformerEncoderLayer",
        shape_rule="(T, E) -> (T, E); E % nhead = 0. MACs 4*T*E*E + 2*T*T*E (attention, as multihead_attention) "
        "+ 2*T*E*dim_feedforward (feed-forward); softmax, norms and activations not counted; causal "
        "masks scores, it does not skip them",
        lengths=_seq_lengths,
        low_rank_hint="attention reads (T, E); declare the input as [T, E]",
        warn=_layout_warn,
    )
)

register(
    OpDef(
        name="transformer_decoder_layer",
        family="attention",
        doc="a transformer decoder layer, batch first (nn.TransformerDecoderLayer): self-attention on "
        "the target (causal: each step sees the steps before it), attention to the memory, and a "
        "feed-forward network, each with a residual and a layer norm (after it, or before it with "
        "norm_first). Reads `from: [target, memory]`; d_model is inferred.",
        params=(
            *_LAYER_PARAMS,
            Param(
                "memory_len",
                Int(),
                None,
                doc="steps S of the memory (for the MACs); inferred, checked if given",
                inferred=True,
            ),
        ),
        infer=_dec_infer,
        lower=_layer_lower("DecoderLayer"),
        accepts=_SEQ,
        param_count=_dec_params,
        macs=_dec_macs,
        shorthand="nhead",
        arity=None,
        examples=(
            Example({"nhead": 2, "dim_feedforward": 16, "causal": True}, (6, 8), (6, 8), note="target and memory"),
        ),
        torch_equivalent="torch.nn.TransformerDecoderLayer",
        shape_rule="target (T, E), memory (S, E) -> (T, E); E % nhead = 0. MACs 4*T*E*E + 2*T*T*E "
        "(self-attention) + 2*T*E*E + 2*S*E*E + 2*T*S*E (attention to the memory) + "
        "2*T*E*dim_feedforward; softmax, norms and activations not counted",
        low_rank_hint="attention reads (T, E); declare the input as [T, E]",
        warn=_layout_warn,
    )
)


# ---------------------------------------------------------------- positional_embedding


def _pos_infer(p: Params, x: TensorType) -> Inferred:
    t = x.shape[0]
    e = _features("positional_embedding", x)
    check_inferred("embed_dim", p.get("embed_dim"), e, "features")
    max_len = p["max_len"]
    if max_len is None:
        if not isinstance(t, int):
            raise ShapeError(
                f"positional_embedding needs max_len for the variable length {t}",
                expected="max_len: the longest sequence it will see",
                received=f"{x.show()} and no max_len",
                param="max_len",
            )
        max_len = t
    elif isinstance(t, int) and t > max_len:
        raise ShapeError(
            f"the sequence is longer than max_len: {t} > {max_len}",
            expected=f"at most max_len = {max_len} steps",
            received=f"{t} steps in {x.show()}",
            hint=f"raise max_len to at least {t}",
            param="max_len",
        )
    return TensorType(x.shape, x.dtype, x.layout or "sequence"), {"embed_dim": e, "max_len": max_len}


register(
    OpDef(
        name="positional_embedding",
        family="attention",
        doc="adds a position vector to each step of (T, E): learned (max_len*E parameters) or "
        "sinusoidal (a max_len*E buffer, recomputed, not saved in the state dict). embed_dim is "
        "inferred; max_len defaults to a fixed T.",
        params=(
            Param(
                "kind",
                Enum(("learned", "sinusoidal"), ("a trained table of vectors", "fixed sine and cosine waves")),
                "learned",
                doc="a learned table or fixed sinusoids",
            ),
            Param("max_len", Int(sample_values=(8, 16)), None, doc="longest sequence; defaults to T when T is fixed"),
            Param("embed_dim", Int(), None, doc="inferred from the input's last axis; checked if given", inferred=True),
        ),
        infer=_pos_infer,
        lower=lambda p, x, y: Ctor(
            "PositionalEmbedding", {"kind": p["kind"], "max_len": p["max_len"], "embed_dim": p["embed_dim"]}
        ),
        accepts=Accepts((2,), axes="(T, E)", sample_dims=(2, 3, 6)),
        param_count=lambda p, x, y: p["max_len"] * p["embed_dim"] if p["kind"] == "learned" else 0,
        buffer_count=lambda p, x, y: p["max_len"] * p["embed_dim"] if p["kind"] == "sinusoidal" else 0,
        shorthand="kind",
        examples=(
            Example(None, (8, 32), (8, 32)),
            Example({"kind": "sinusoidal", "max_len": 64}, (10, 16), (10, 16)),
        ),
        torch_equivalent="x + table[:T] (an nn.Parameter, or a buffer)",
        shape_rule="(T, E) -> (T, E), T <= max_len; step t gets row t of the table. MACs 0 (an add)",
        # Positions count from the first step and padding comes last: the real steps are unchanged.
        lengths=lambda p, x, y, axis: KEEP if axis == 0 else MIX,
        low_rank_hint="a positional embedding reads (T, E); declare the input as [T, E]",
        warn=_layout_warn,
    )
)


# ---------------------------------------------------------------- sequence_pool


def _seqpool_infer(p: Params, x: TensorType) -> Inferred:
    return TensorType(x.shape[1:], x.dtype, ""), {}


register(
    OpDef(
        name="sequence_pool",
        family="attention",
        doc="mean or max over the steps of a (T, F) sequence -> (F): the pooling that ends a "
        "transformer classifier. With variable-length input, over each series' real steps only.",
        params=(
            Param(
                "mode",
                Enum(("avg", "max"), ("the mean over time", "the maximum over time")),
                "avg",
                doc="mean or max over time",
            ),
        ),
        infer=_seqpool_infer,
        lower=lambda p, x, y: Ctor("SequencePool", nondefault(p, {"mode": "avg"}, ["mode"])),
        accepts=Accepts((2,), axes="(T, F)", sample_dims=(1, 3, 5)),
        shorthand="mode",
        examples=(Example(None, (8, 32), (32,)), Example("max", (5, 3), (3,))),
        torch_equivalent="x.mean(dim=1) (or amax)",
        shape_rule="(T, F) -> (F): the time axis is pooled. MACs 0",
        lengths=lambda p, x, y, axis: USE_LAST if axis == 0 else MIX,
        low_rank_hint="sequence_pool reads (T, F); declare the input as [T, F]",
        warn=_layout_warn,
    )
)
