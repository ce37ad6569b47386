"""Attention layers (ops/attention.py) against torch: MACs with torch.utils.flop_counter as the
oracle (FLOPs = 2 * MACs), outputs and parameter counts against nn.MultiheadAttention and
nn.TransformerEncoderLayer holding the same weights, static shape errors with their arithmetic,
and padded variable-length batches giving each series' own result."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from netspec.compiler import compile_text
from netspec.lower.codegen import class_name, model_source
from netspec.lower.module import lower


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def spec(layers: list[str], shape=(8, 16), extra_inputs: str = "", dims: str = "") -> str:
    lines = ["netspec: 1", "inputs:", f"  x: {{shape: {list(shape)}, dtype: float32}}"]
    if extra_inputs:
        lines.append(extra_inputs)
    if dims:
        lines.append(dims)
    return "\n".join([*lines, "layers:", *(f"  - {layer}" for layer in layers), ""])


def flow(params: dict) -> str:
    return "{" + ", ".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in params.items()) + "}"


def compiled(text: str):
    res = compile_text(text)
    assert res.ok, "\n".join(d.render() for d in res.diagnostics)
    return res


def errors(text: str) -> str:
    res = compile_text(text)
    assert not res.ok
    return "\n".join(d.render() for d in res.errors)


def counted_flops(module: nn.Module, *xs: torch.Tensor, train: bool = False) -> int:
    module.train(train)
    with torch.set_grad_enabled(train), FlopCounterMode(display=False) as flops:
        module(*xs)
    return flops.get_total_flops()


# --- MACs: the documented convention, checked by torch's flop counter -------------------------
# (T, E, heads, extra): self-attention 4*T*E*E + 2*T*T*E; the encoder adds 2*T*E*F.

B = 3


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize(("t", "e", "heads"), [(8, 16, 4), (5, 12, 3), (10, 32, 1)])
def test_self_attention_macs(t, e, heads, train):
    res = compiled(spec([f"multihead_attention: {{num_heads: {heads}, dropout: 0.0}}"], (t, e)))
    (layer,) = res.typed.layers
    assert layer.macs == 4 * t * e * e + 2 * t * t * e
    assert counted_flops(lower(res.typed), torch.randn(B, t, e), train=train) == 2 * B * layer.macs


@pytest.mark.parametrize(("t", "e", "s", "ekv", "heads"), [(6, 8, 11, 5, 2), (4, 12, 4, 12, 3)])
def test_cross_attention_macs(t, e, s, ekv, heads):
    text = spec(
        [f"cross_attention: {{num_heads: {heads}, from: [x, m]}}"],
        (t, e),
        extra_inputs=f"  m: {{shape: [{s}, {ekv}], dtype: float32}}",
    )
    res = compiled(text)
    (layer,) = res.typed.layers
    assert layer.macs == 2 * t * e * e + 2 * s * ekv * e + 2 * t * s * e
    assert counted_flops(lower(res.typed), torch.randn(B, t, e), torch.randn(B, s, ekv)) == 2 * B * layer.macs


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_macs(norm_first, train):
    t, e, f = 8, 32, 64
    layer_spec = f"transformer_encoder_layer: {{nhead: 4, dim_feedforward: {f}, dropout: 0.0, norm_first: {str(norm_first).lower()}}}"
    res = compiled(spec([layer_spec], (t, e)))
    (layer,) = res.typed.layers
    assert layer.macs == 4 * t * e * e + 2 * t * t * e + 2 * t * e * f
    assert counted_flops(lower(res.typed), torch.randn(B, t, e), train=train) == 2 * B * layer.macs


@pytest.mark.parametrize("kind", ["learned", "sinusoidal"])
def test_positional_embedding_and_pool_count_no_macs(kind):
    res = compiled(spec([f"positional_embedding: {kind}", "sequence_pool"], (8, 16)))
    assert [la.macs for la in res.typed.layers] == [0, 0]
    assert counted_flops(lower(res.typed), torch.randn(B, 8, 16)) == 0


# --- parameters and outputs against torch's own modules ---------------------------------------


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("bias", [True, False])
def test_self_attention_equals_torch(bias):
    t, e, heads = 7, 12, 3
    res = compiled(spec([f"multihead_attention: {{num_heads: {heads}, bias: {str(bias).lower()}}}"], (t, e)))
    ours = lower(res.typed).eval()
    ref = nn.MultiheadAttention(e, heads, bias=bias, batch_first=True).eval()
    assert res.typed.layers[0].params == n_params(ref) == n_params(ours)
    inner = next(m for m in ours.modules() if isinstance(m, nn.MultiheadAttention))
    ref.load_state_dict(inner.state_dict())  # the same keys as nn.MultiheadAttention
    x = torch.randn(4, t, e)
    lengths = torch.tensor([7, 3, 5, 1])
    pad = torch.arange(t)[None, :] >= lengths[:, None]
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x, x, x, need_weights=False)[0])
        got = inner(x, lengths)  # the layer itself: the spec's input has a fixed length
        want = ref(x, x, x, key_padding_mask=pad, need_weights=False)[0]
    for i, n in enumerate(lengths.tolist()):  # torch's fast path zeroes padded queries: compare real steps
        torch.testing.assert_close(got[i, :n], want[i, :n])


def test_cross_attention_equals_torch():
    t, e, s, ekv, heads = 5, 8, 9, 6, 2
    text = spec(
        [f"cross_attention: {{num_heads: {heads}, from: [x, m]}}"],
        (t, e),
        extra_inputs=f"  m: {{shape: [{s}, {ekv}], dtype: float32}}",
    )
    res = compiled(text)
    ours = lower(res.typed).eval()
    ref = nn.MultiheadAttention(e, heads, kdim=ekv, vdim=ekv, batch_first=True).eval()
    assert res.typed.layers[0].params == n_params(ref) == 4 * e + e * e + 2 * ekv * e + e * e
    inner = next(m for m in ours.modules() if isinstance(m, nn.MultiheadAttention))
    ref.load_state_dict(inner.state_dict())
    q, m = torch.randn(2, t, e), torch.randn(2, s, ekv)
    with torch.no_grad():
        torch.testing.assert_close(ours(q, m), ref(q, m, m, need_weights=False)[0])


@pytest.mark.parametrize(
    "params",
    [
        {"nhead": 4, "dim_feedforward": 64},
        {"nhead": 2, "dim_feedforward": 16, "activation": "gelu", "norm_first": True},
        {"nhead": 1, "dim_feedforward": 8, "bias": False},
    ],
)
def test_encoder_layer_equals_torch(params):
    t, e = 6, 16
    res = compiled(spec([f"transformer_encoder_layer: {flow(params)}"], (t, e)))
    ours = lower(res.typed).eval()
    ref = nn.TransformerEncoderLayer(e, batch_first=True, **params).eval()
    assert res.typed.layers[0].params == n_params(ref) == n_params(ours)
    (inner,) = [m for m in ours.modules() if isinstance(m, nn.TransformerEncoderLayer)]
    ref.load_state_dict(inner.state_dict())
    x = torch.randn(3, t, e)
    lengths = torch.tensor([6, 2, 4])
    pad = torch.arange(t)[None, :] >= lengths[:, None]
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x))
        got, want = inner(x, lengths), ref(x, src_key_padding_mask=pad)
    for i, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(got[i, :n], want[i, :n])


def test_positional_embedding_counts_and_values():
    res = compiled(spec(["positional_embedding: {max_len: 20}"], (8, 6)))
    assert (res.typed.layers[0].params, res.typed.layers[0].buffers) == (20 * 6, 0)
    res = compiled(spec(["positional_embedding: {kind: sinusoidal, max_len: 20}"], (8, 6)))
    assert (res.typed.layers[0].params, res.typed.layers[0].buffers) == (0, 20 * 6)
    module = lower(res.typed)
    assert sum(b.numel() for b in module.buffers()) == 120 and not module.state_dict()  # not persistent
    x = torch.zeros(1, 8, 6)
    y = module(x)[0]
    pos, i = torch.arange(8.0)[:, None], torch.arange(0, 6, 2)
    torch.testing.assert_close(y[:, 0::2], torch.sin(pos / 10000 ** (i / 6)))
    torch.testing.assert_close(y[:, 1::2], torch.cos(pos / 10000 ** (i / 6)))


def decoder_spec(params: dict, t: int, s: int, e: int) -> str:
    layer = f"transformer_decoder_layer: {flow({**params, 'from': '[x, m]'})}"
    return spec([layer], (t, e), extra_inputs=f"  m: {{shape: [{s}, {e}], dtype: float32}}")


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_decoder_layer_macs(train):
    t, s, e, f = 6, 9, 16, 32
    res = compiled(decoder_spec({"nhead": 4, "dim_feedforward": f, "dropout": 0.0, "causal": True}, t, s, e))
    (layer,) = res.typed.layers
    own, cross = 4 * t * e * e + 2 * t * t * e, 2 * t * e * e + 2 * s * e * e + 2 * t * s * e
    assert layer.macs == own + cross + 2 * t * e * f
    flops = counted_flops(lower(res.typed), torch.randn(B, t, e), torch.randn(B, s, e), train=train)
    assert flops == 2 * B * layer.macs


@pytest.mark.parametrize(
    "params",
    [
        {"nhead": 4, "dim_feedforward": 32},
        {"nhead": 2, "dim_feedforward": 16, "activation": "gelu", "norm_first": True, "causal": True},
        {"nhead": 1, "dim_feedforward": 8, "bias": False, "causal": True},
    ],
)
def test_decoder_layer_equals_torch(params):
    t, s, e = 5, 7, 8
    res = compiled(decoder_spec(params, t, s, e))
    ours = lower(res.typed).eval()
    causal = params.pop("causal", False)
    ref = nn.TransformerDecoderLayer(e, batch_first=True, **params).eval()
    assert res.typed.layers[0].params == n_params(ref) == n_params(ours)
    (inner,) = [m for m in ours.modules() if isinstance(m, nn.TransformerDecoderLayer)]
    ref.load_state_dict(inner.state_dict())
    x, m = torch.randn(2, t, e), torch.randn(2, s, e)
    mask = nn.Transformer.generate_square_subsequent_mask(t) if causal else None
    with torch.no_grad():
        torch.testing.assert_close(ours(x, m), ref(x, m, tgt_mask=mask, tgt_is_causal=causal))


@pytest.mark.parametrize(
    "op",
    [
        "multihead_attention: {num_heads: 2, causal: true}",
        "transformer_encoder_layer: {nhead: 2, dim_feedforward: 8, dropout: 0.0, causal: true}",
    ],
)
def test_causal_step_sees_only_earlier_steps(op):
    res = compiled(spec([op], (6, 8)))
    model = lower(res.typed).eval()
    x = torch.randn(1, 6, 8)
    later = x.clone()
    later[:, 4:] += 5.0
    with torch.no_grad():
        a, b = model(x), model(later)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])
    inner = next(m for m in model.modules() if isinstance(m, nn.MultiheadAttention))
    if op.startswith("multihead"):
        ref = nn.MultiheadAttention(8, 2, batch_first=True).eval()
        ref.load_state_dict(inner.state_dict())
        mask = nn.Transformer.generate_square_subsequent_mask(6)
        with torch.no_grad():
            torch.testing.assert_close(a, ref(x, x, x, attn_mask=mask, need_weights=False)[0])


# --- static checks, with the arithmetic in the message -----------------------------------------


def test_heads_must_divide_embed_dim():
    msg = errors(spec(["linear: 10", "multihead_attention: 4"], (5, 3)))
    assert "embed_dim 10 is not divisible by num_heads 4: 10 % 4 = 2" in msg
    assert "num_heads in [1, 2, 5, 10]" in msg
    msg = errors(spec(["transformer_encoder_layer: {nhead: 3, dim_feedforward: 8}"], (5, 8)))
    assert "d_model 8 is not divisible by nhead 3: 8 % 3 = 2" in msg


def test_written_embed_dim_is_checked():
    msg = errors(spec(["multihead_attention: {num_heads: 2, embed_dim: 8}"], (5, 16)))
    assert "embed_dim does not match the input" in msg and "16 features" in msg


def test_positional_embedding_max_len():
    msg = errors(spec(["positional_embedding: {max_len: 6}"], (8, 4)))
    assert "the sequence is longer than max_len: 8 > 6" in msg
    msg = errors(spec(["positional_embedding"], ("T", 4), dims="dims: {T: 10}"))
    assert "needs max_len for the variable length T" in msg


def test_decoder_memory_must_have_d_model_features():
    msg = errors(decoder_spec({"nhead": 2}, 4, 5, 8).replace("m: {shape: [5, 8]", "m: {shape: [5, 6]"))
    assert "the memory has 6 features, the target 8" in msg and "- linear: 8" in msg


def test_cross_attention_reads_two_inputs():
    text = spec(
        ["cross_attention: {num_heads: 2, from: [x, m, m]}"],
        (4, 8),
        extra_inputs="  m: {shape: [3, 8], dtype: float32}",
    )
    assert "cross_attention reads two inputs" in errors(text)


# --- variable-length batches: padding never changes a result ----------------------------------

VARIABLE = spec(
    [
        "linear: 8",
        "positional_embedding: {kind: learned, max_len: 16}",
        "multihead_attention: {num_heads: 2}",
        "transformer_encoder_layer: {nhead: 2, dim_feedforward: 16, dropout: 0.0}",
        "transformer_encoder_layer: {nhead: 4, dim_feedforward: 8, dropout: 0.0, norm_first: true}",
    ],
    ("T", 5),
    dims="dims: {T: 12}",
)


@pytest.mark.parametrize("head", [[], ["sequence_pool"], ["sequence_pool: max", "linear: 3"]])
def test_padded_batch_equals_each_series_alone(head):
    text = VARIABLE.rstrip("\n") + "".join(f"\n  - {h}" for h in head) + "\n"
    res = compiled(text)
    torch.manual_seed(0)
    model = lower(res.typed).eval()
    lengths = torch.tensor([10, 3, 7, 1])
    x = torch.randn(4, 10, 5)
    for i, n in enumerate(lengths.tolist()):
        x[i, n:] = 0.0
    with torch.no_grad():
        batch = model(x, lengths)
        for i, n in enumerate(lengths.tolist()):
            alone = model(x[i : i + 1, :n])[0]
            torch.testing.assert_close(batch[i, :n] if not head else batch[i], alone, atol=1e-5, rtol=1e-5)
            if not head:  # and the padding itself did not leak: changing it changes nothing
                noisy = x.clone()
                noisy[i, n:] = 100.0
                torch.testing.assert_close(model(noisy, lengths)[i, :n], batch[i, :n], atol=1e-5, rtol=1e-5)


def test_generated_model_py_matches_the_module():
    """model.py copies the helper classes (and their Attend base): same weights, same outputs."""
    res = compiled(VARIABLE.rstrip("\n") + "\n  - sequence_pool\n")
    module = lower(res.typed).eval()
    namespace: dict = {}
    exec(compile(model_source(res.typed), "model.py", "exec"), namespace)
    generated = namespace[class_name(res.typed.graph.name)]().eval()
    generated.load_state_dict(module.state_dict())
    x, lengths = torch.randn(2, 9, 5), torch.tensor([9, 4])
    with torch.no_grad():
        torch.testing.assert_close(generated(x, lengths), module(x, lengths))
        torch.testing.assert_close(generated(x), module(x))


def test_reading_a_conv1d_stack_warns():
    res = compile_text(spec(["conv1d: {out_channels: 8, kernel_size: 3}", "multihead_attention: 2"], (3, 20)))
    assert res.ok
    (warning,) = res.warnings
    assert "reads (C, L) = (8, 18) from a conv1d stack as (T, E)" in warning.message
    assert "transpose: [1, 2]" in warning.render()


@pytest.mark.parametrize(("lengths", "causal"), [(None, False), ([6, 2, 4], False), (None, True), ([6, 3, 5], True)])
def test_fused_sdpa_path_equals_the_written_out_one(lengths, causal):
    """On a GPU the layers call F.scaled_dot_product_attention: the same result, masks included,
    and the same MACs (torch's math kernel, which the flop counter sees on the CPU)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from netspec.lower.layers import Attend

    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    x = torch.randn(3, 6, 16)
    lens = None if lengths is None else torch.tensor(lengths)
    with torch.no_grad():
        written = Attend.attend(mha, x, x, lens, causal, fused=False)
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as flops:
            fused = Attend.attend(mha, x, x, lens, causal, fused=True)
    torch.testing.assert_close(fused, written)
    assert flops.get_total_flops() == 2 * 3 * (4 * 6 * 16 * 16 + 2 * 6 * 6 * 16)
