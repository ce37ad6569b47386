"""Dense layers and pass-throughs: linear, embedding, dropout, identity."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ShapeError
from ..ir.types import INT, TensorType, numel
from .common import check_inferred, nondefault
from .params import Accepts, Bool, Float, Int, Param
from .registry import Ctor, Example, OpDef, register

if TYPE_CHECKING:
    from .common import Inferred
    from .registry import Params


def _linear_infer(p: Params, x: TensorType) -> Inferred:
    fin = x.shape[-1]
    if not isinstance(fin, int):
        raise ShapeError(
            "linear needs a fixed number of input features",
            expected="a fixed last dimension",
            received=f"last dimension {fin} of {x.show()}",
            hint="pool over the symbolic axis first (global_avgpool, or a recurrent layer with output: last)",
        )
    hint = None
    if x.rank > 1 and p.get("in_features") == numel(x.shape):
        hint = f"the input is {x.show()}: add `- flatten` before this layer to get {numel(x.shape)} features"
    check_inferred("in_features", p.get("in_features"), fin, "features", hint)
    # linear acts on the last axis; a leading (T, F) sequence stays a sequence.
    return TensorType((*x.shape[:-1], p["out_features"]), x.dtype, x.layout if x.rank > 1 else ""), {"in_features": fin}


def _linear_macs(p: Params, x: TensorType, y: TensorType) -> int | None:
    out = numel(y.shape)
    return None if out is None else out * p["in_features"]


register(
    OpDef(
        name="linear",
        family="linear",
        doc="y = x W^T + b on the last axis (nn.Linear). in_features is inferred.",
        params=(
            Param("out_features", Int(), doc="size of each output sample", width=True),
            Param("bias", Bool(), True, doc="add a learnable bias"),
            Param("in_features", Int(), None, doc="inferred from the input; checked if given", inferred=True),
        ),
        infer=_linear_infer,
        lower=lambda p, x, y: Ctor(
            "nn.Linear",
            {
                "in_features": p["in_features"],
                "out_features": p["out_features"],
                **nondefault(p, {"bias": True}, ["bias"]),
            },
        ),
        accepts=Accepts(None, axes="(*, F)", min_rank=1, sample_dims=(1, 3, 6)),
        param_count=lambda p, x, y: p["in_features"] * p["out_features"] + (p["out_features"] if p["bias"] else 0),
        macs=_linear_macs,
        shorthand="out_features",
        examples=(Example(10, (84,), (10,)), Example({"out_features": 5, "bias": False}, (7, 3), (7, 5))),
        torch_equivalent="torch.nn.Linear",
        shape_rule="(*, in_features) -> (*, out_features): the last axis is mapped, leading axes are kept",
        # batchnorm1d folds only on (F,): on (T, F) its channels would be the steps, not the features
        folds_bn=lambda p, x, y: "batchnorm1d" if y.rank == 1 else None,
    )
)


def _embedding_validate(p: Params) -> list[ShapeError]:
    idx = p["padding_idx"]
    n = p["num_embeddings"]
    if idx is not None and not -n <= idx < n:
        return [
            ShapeError(
                "padding_idx is out of range",
                expected=f"an index in [{-n}, {n - 1}]",
                received=f"padding_idx={idx}",
                param="padding_idx",
            )
        ]
    return []


register(
    OpDef(
        name="embedding",
        family="linear",
        doc="lookup table from integer ids (int64 input) to vectors: (*) -> (*, embedding_dim).",
        params=(
            Param("num_embeddings", Int(), doc="vocabulary size; ids must be in [0, num_embeddings)"),
            Param("embedding_dim", Int(), doc="size of each vector", width=True),
            Param(
                "padding_idx",
                Int(None, sample_values=(0,)),
                None,
                doc="id whose vector stays zero and gets no gradient",
            ),
        ),
        infer=lambda p, x: (TensorType((*x.shape, p["embedding_dim"]), "float32", "sequence"), {}),
        lower=lambda p, x, y: Ctor(
            "nn.Embedding",
            {
                "num_embeddings": p["num_embeddings"],
                "embedding_dim": p["embedding_dim"],
                **nondefault(p, {"padding_idx": None}, ["padding_idx"]),
            },
        ),
        accepts=Accepts(None, dtype=INT, axes="(T) of int64 ids", min_rank=1, sample_dims=(1, 5, 8)),
        param_count=lambda p, x, y: p["num_embeddings"] * p["embedding_dim"],
        validate=_embedding_validate,
        examples=(Example({"num_embeddings": 100, "embedding_dim": 16}, (12,), (12, 16)),),
        torch_equivalent="torch.nn.Embedding",
        shape_rule="(*) int64 ids -> (*, embedding_dim) float32",
        vocab_size=lambda p: p["num_embeddings"],
    )
)

register(
    OpDef(
        name="dropout",
        family="regularization",
        doc="zeroes elements with probability p during training (nn.Dropout); identity at eval.",
        params=(
            Param("p", Float(0.0, 1.0, exclusive_max=True, sample_values=(0.0, 0.5)), 0.5, doc="drop probability"),
        ),
        infer=lambda p, x: (x, {}),
        lower=lambda p, x, y: Ctor("nn.Dropout", nondefault(p, {"p": 0.5}, ["p"])),
        accepts=Accepts(None, dtype="float32", axes="(*)", min_rank=1, sample_dims=(2, 5)),
        shorthand="p",
        examples=(Example(None, (10,), (10,)), Example(0.2, (3, 4), (3, 4))),
        torch_equivalent="torch.nn.Dropout",
        shape_rule="(*) -> (*): the shape is kept",
        inference_identity=True,
    )
)

register(
    OpDef(
        name="identity",
        family="regularization",
        doc="passes its input through unchanged (nn.Identity); a named placeholder.",
        params=(),
        infer=lambda p, x: (x, {}),
        lower=lambda p, x, y: Ctor("nn.Identity", {}),
        accepts=Accepts(None, dtype="any", axes="(*)", min_rank=1, sample_dims=(2, 5)),
        examples=(Example(None, (3, 4), (3, 4)),),
        torch_equivalent="torch.nn.Identity",
        shape_rule="(*) -> (*): the input itself",
        inference_identity=True,
    )
)
