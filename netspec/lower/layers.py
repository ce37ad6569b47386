"""The few modules PyTorch lacks as nn.Modules. The code generator copies these classes' source
into the generated model.py, so it stays standalone: keep them dependent on torch alone."""

import torch
from torch import nn


def zero_padding(x: torch.Tensor, lengths: torch.Tensor, axis: int) -> torch.Tensor:
    """Zero the steps of a padded batch beyond each series' length along `axis`."""
    steps = torch.arange(x.shape[axis], device=x.device)
    valid = steps[None, :] < lengths.to(x.device)[:, None]  # (B, T)
    shape = [x.shape[0]] + [1] * (x.dim() - 1)
    shape[axis] = x.shape[axis]
    return x * valid.reshape(shape).to(x.dtype)


# padding='same' whose padding cannot split evenly (an even kernel_size at an odd dilation): PyTorch
# pads one more zero on the right (bottom, back) and warns on every such run. These pad explicitly,
# exactly as PyTorch does, then convolve unpadded: the same weights, state-dict keys and output.


class SamePadding:
    """Mixin for nn.ConvNd with padding='same' written out: F.pad's (left, right) per axis, last
    axis first, then the convolution unpadded."""

    kernel_size: tuple[int, ...]  # the convolution's, which follows this mixin in the MRO
    dilation: tuple[int, ...]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        totals = [d * (k - 1) for k, d in zip(self.kernel_size, self.dilation, strict=True)]
        self.same_padding = tuple(p for t in reversed(totals) for p in (t // 2, t - t // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(nn.functional.pad(x, self.same_padding))  # pyright: ignore[reportAttributeAccessIssue]  (the conv's)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", same_padding={self.same_padding}"  # pyright: ignore[reportAttributeAccessIssue]  (the conv's)


class SameConv1d(SamePadding, nn.Conv1d):
    """nn.Conv1d with padding='same', the zero padding written out."""


class SameConv2d(SamePadding, nn.Conv2d):
    """nn.Conv2d with padding='same', the zero padding written out."""


class SameConv3d(SamePadding, nn.Conv3d):
    """nn.Conv3d with padding='same', the zero padding written out."""


class Recurrent(nn.Module):
    """LSTM/GRU/RNN, batch first, passing on the sequence, the last state, or a mean/max over time.

    "last" is the top layer's final hidden state in each direction (h_n), concatenated
    [forward, backward]; output[:, -1] would give a backward half that has seen one step.
    """

    def __init__(
        self,
        mode,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        dropout=0.0,
        bidirectional=False,
        proj_size=0,
        nonlinearity="tanh",
        output="sequence",
    ):
        super().__init__()
        kwargs: dict[str, object] = dict(
            num_layers=num_layers, bias=bias, batch_first=True, dropout=dropout, bidirectional=bidirectional
        )
        if mode == "LSTM":
            kwargs["proj_size"] = proj_size
        if mode == "RNN":
            kwargs["nonlinearity"] = nonlinearity
        self.rnn = getattr(nn, mode)(input_size, hidden_size, **kwargs)
        self.output = output
        self.bidirectional = bidirectional  # a plain attribute: `self.rnn.x` goes through Module.__getattr__

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is None:
            seq, state = self.rnn(x)
        else:  # padded batch: run on the packed sequence so padding never enters the state
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            seq, state = self.rnn(packed)
            seq, _ = nn.utils.rnn.pad_packed_sequence(seq, batch_first=True, total_length=x.shape[1])
        if self.output == "last":
            h_n = state[0] if isinstance(state, tuple) else state  # (num_layers * D, B, H_out)
            # Indexing, as a hand-written model does: each extra view op (a slice, transpose, reshape)
            # is one more autograd node: 3% of digits_lstm's training step (bench/workers/step.py).
            if self.bidirectional:
                return torch.cat((h_n[-2], h_n[-1]), dim=1)
            return h_n[-1]
        if self.output == "sequence":
            return seq
        if self.output == "mean":
            if lengths is None:
                return seq.mean(dim=1)
            return seq.sum(dim=1) / lengths.to(seq.device, seq.dtype).unsqueeze(1)  # padded steps are 0
        if lengths is not None:  # "max"
            steps = torch.arange(seq.shape[1], device=seq.device)
            seq = seq.masked_fill((steps[None, :] >= lengths.to(seq.device)[:, None])[:, :, None], float("-inf"))
        return seq.amax(dim=1)


class GlobalPool(nn.Module):
    """Mean or max over every spatial axis of (B, C, *spatial)."""

    def __init__(self, mode, dims, keepdim=False):
        super().__init__()
        self.mode = mode
        self.axes = tuple(range(2, 2 + dims))
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is not None:  # (B, C, L) padded along L: pool over the real steps only
            valid = torch.arange(x.shape[-1], device=x.device)[None, None, :] < lengths.to(x.device)[:, None, None]
            if self.mode == "avg":
                out = x.masked_fill(~valid, 0.0).sum(dim=-1) / lengths.to(x.device, x.dtype)[:, None]
            else:
                out = x.masked_fill(~valid, float("-inf")).amax(dim=-1)
            return out.unsqueeze(-1) if self.keepdim else out
        if self.mode == "avg":
            return x.mean(dim=self.axes, keepdim=self.keepdim)
        return x.amax(dim=self.axes, keepdim=self.keepdim)


class Reshape(nn.Module):
    """Reshape each sample, keeping the batch dimension."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(-1 if isinstance(d, str) else d for d in shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class Permute(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)


class Transpose(nn.Module):
    def __init__(self, dim0, dim1):
        super().__init__()
        self.dim0, self.dim1 = dim0, dim1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(self.dim0, self.dim1)


class Add(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Multiply(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Mean(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.stack(xs).mean(dim=0)


class Concat(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)


class Attend:
    """The attention of an nn.MultiheadAttention's weights, batch first: projections with F.linear,
    softmax(q k^T / sqrt(d)) v per head, the output projection. On a GPU the middle step is
    F.scaled_dot_product_attention (fused flash / memory-efficient kernels); elsewhere it is
    written out as two matmuls, since torch's CPU kernel, like nn.MultiheadAttention's inference
    fast path, is invisible to torch.utils.flop_counter, which checks the MACs netspec reports
    (it counts the GPU kernels, the same MACs). The parameters and state-dict keys are
    nn.MultiheadAttention's. With `lengths`, keys past each series' true length are masked
    (key_padding_mask), so padding never changes a real step's result; with `causal`, step i
    attends to steps 0..i only (masked scores are still computed, and counted)."""

    @staticmethod
    def attend(
        mha,
        query: torch.Tensor,
        kv: torch.Tensor,
        lengths: torch.Tensor | None = None,
        causal: bool = False,
        fused: bool | None = None,
    ) -> torch.Tensor:
        b, t, e = query.shape
        s, h = kv.shape[1], mha.num_heads
        if mha._qkv_same_embed_dim:
            wq, wk, wv = mha.in_proj_weight.chunk(3)
        else:
            wq, wk, wv = mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight
        bq = bk = bv = None
        if mha.in_proj_bias is not None:
            bq, bk, bv = mha.in_proj_bias.chunk(3)
        q = nn.functional.linear(query, wq, bq).view(b, t, h, e // h).transpose(1, 2)
        k = nn.functional.linear(kv, wk, bk).view(b, s, h, e // h).transpose(1, 2)
        v = nn.functional.linear(kv, wv, bv).view(b, s, h, e // h).transpose(1, 2)
        keep = None  # (B or 1, 1, T or 1, S): True where a query may attend to a key
        if lengths is not None:
            keep = (torch.arange(s, device=kv.device)[None, :] < lengths.to(kv.device)[:, None])[:, None, None, :]
        if causal:
            before = torch.ones(t, s, dtype=torch.bool, device=kv.device).tril()[None, None]
            keep = before if keep is None else keep & before
        p = mha.dropout if mha.training else 0.0
        if query.is_cuda if fused is None else fused:
            out = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=p)
        else:
            scores = (q * (e // h) ** -0.5) @ k.transpose(-2, -1)  # (B, H, T, S)
            if keep is not None:
                scores = scores.masked_fill(~keep, float("-inf"))
            out = nn.functional.dropout(scores.softmax(dim=-1), p) @ v
        return mha.out_proj(out.transpose(1, 2).reshape(b, t, e))


class SelfAttention(Attend, nn.MultiheadAttention):
    """nn.MultiheadAttention(batch_first=True) on one sequence (query = key = value): the output only."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, causal=False):
        super().__init__(embed_dim, num_heads, dropout=dropout, bias=bias, batch_first=True)
        self.causal = causal

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.attend(self, x, x, lengths, self.causal)


class CrossAttention(Attend, nn.MultiheadAttention):
    """nn.MultiheadAttention(batch_first=True): a query sequence attends to a memory (key = value)."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, kdim=None, vdim=None):
        super().__init__(embed_dim, num_heads, dropout=dropout, bias=bias, kdim=kdim, vdim=vdim, batch_first=True)

    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        return self.attend(self, query, memory)


class BatchFirstLayer:
    """Mixin for nn.Transformer{Encoder,Decoder}Layer: batch first always, and a `causal` flag."""

    def __init__(
        self,
        d_model,
        nhead,
        dim_feedforward=2048,
        dropout=0.1,
        activation="relu",
        norm_first=False,
        bias=True,
        causal=False,
    ):
        # A mixin: the nn layer class follows it in the MRO and takes these arguments.
        super().__init__(
            d_model,  # pyright: ignore[reportCallIssue]
            nhead,
            dim_feedforward=dim_feedforward,
            dropout=dropout,
            activation=activation,
            batch_first=True,
            norm_first=norm_first,
            bias=bias,
        )
        self.causal = causal


class EncoderLayer(Attend, BatchFirstLayer, nn.TransformerEncoderLayer):
    """nn.TransformerEncoderLayer(batch_first=True): the same submodules, parameters and
    state-dict keys; the forward written out (post-norm, or pre-norm with norm_first) so padded
    keys can be masked by `lengths` (and later steps with `causal`) and the MACs are seen by torch's
    flop counter."""

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.dropout1(self.attend(self.self_attn, h, h, lengths, self.causal))
            return x + self.feed_forward(self.norm2(x))
        x = self.norm1(x + self.dropout1(self.attend(self.self_attn, x, x, lengths, self.causal)))
        return self.norm2(x + self.feed_forward(x))

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class PositionalEmbedding(nn.Module):
    """Adds a position vector to each step of (B, T, E): learned (a (max_len, E) parameter) or
    sinusoidal (Vaswani et al. 2017: sin on even features, cos on odd; a buffer, not saved)."""

    def __init__(self, kind, max_len, embed_dim):
        super().__init__()
        self.kind = kind
        if kind == "learned":
            self.weight = nn.Parameter(torch.empty(max_len, embed_dim))
            nn.init.trunc_normal_(self.weight, std=0.02)
        else:
            pos = torch.arange(max_len, dtype=torch.float32)[:, None]
            freq = 10000.0 ** (-torch.arange(0, embed_dim, 2, dtype=torch.float32) / embed_dim)
            table = torch.zeros(max_len, embed_dim)
            table[:, 0::2] = torch.sin(pos * freq)
            table[:, 1::2] = torch.cos(pos * freq[: embed_dim // 2])
            self.register_buffer("weight", table, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.weight.shape[0]:
            raise ValueError(f"sequence of {x.shape[1]} steps is longer than max_len {self.weight.shape[0]}")
        return x + self.weight[: x.shape[1]]

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, max_len={self.weight.shape[0]}, embed_dim={self.weight.shape[1]}"


class SequencePool(nn.Module):
    """Mean or max over the steps of (B, T, F) -> (B, F); with `lengths`, over the real steps only."""

    def __init__(self, mode="avg"):
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is None:
            return x.mean(dim=1) if self.mode == "avg" else x.amax(dim=1)
        valid = torch.arange(x.shape[1], device=x.device)[None, :, None] < lengths.to(x.device)[:, None, None]
        if self.mode == "avg":
            return x.masked_fill(~valid, 0.0).sum(dim=1) / lengths.to(x.device, x.dtype)[:, None]
        return x.masked_fill(~valid, float("-inf")).amax(dim=1)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class DecoderLayer(Attend, BatchFirstLayer, nn.TransformerDecoderLayer):
    """nn.TransformerDecoderLayer(batch_first=True): the same submodules, parameters and
    state-dict keys; the forward written out (post-norm, or pre-norm with norm_first): self-attention
    on the target (causal: step i sees steps 0..i), attention to the memory, a feed-forward network."""

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.dropout1(self.attend(self.self_attn, h, h, causal=self.causal))
            x = x + self.dropout2(self.attend(self.multihead_attn, self.norm2(x), memory))
            return x + self.dropout3(self.feed_forward(self.norm3(x)))
        x = self.norm1(x + self.dropout1(self.attend(self.self_attn, x, x, causal=self.causal)))
        x = self.norm2(x + self.dropout2(self.attend(self.multihead_attn, x, memory)))
        return self.norm3(x + self.dropout3(self.feed_forward(x)))

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))
