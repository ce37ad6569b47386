"""Per-layer contract tests driven by the registry, with PyTorch as the oracle.

For every layer type, its registered examples and random parameter draws must compile, lower and
run (forward at eval, and a training step), and the static results must match what torch does:
the output shape and dtype, the parameter and buffer counts, and the MACs (torch's
FlopCounterMode for every non-recurrent layer, so conv/linear and the zero of the rest; T * weight
elements for recurrent ones). Reference numbers come from ../shared/REFERENCE.md and torch, never
from netspec itself.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, settings, target
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from netspec.compiler import Result, compile_text
from netspec.ir.typed import TypedGraph
from netspec.lower.module import lower
from netspec.ops import all_ops
from netspec.ops.params import IntList

OPS = all_ops()
BATCH = 2
TORCH_DTYPES = {"float32": torch.float32, "int64": torch.int64}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The tensors here are tiny: on a busy machine, syncing torch's worker threads costs far more
    than the math (0.5 s instead of 1 ms for a small LSTM)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- building and checking specs ------------------------------------------------------------


def layer_item(op: str, params) -> str:
    """One `layers:` entry; JSON is valid YAML flow syntax, so values need no hand formatting.
    A merge reads the input `x` twice, so its one-layer spec has the two inputs it needs."""
    if OPS[op].arity is None:
        mapping = {} if params is None else params if isinstance(params, dict) else {OPS[op].shorthand: params}
        return json.dumps({op: {**mapping, "from": ["x", "x"]}})
    return json.dumps(op) if params is None else json.dumps({op: params})


def spec_text(layers: list[str], shape, dtype: str = "float32", dims: dict | None = None) -> str:
    lines = ["netspec: 1", "inputs:", f"  x: {{shape: {json.dumps(list(shape))}, dtype: {dtype}}}"]
    if dims:
        lines.append(f"dims: {json.dumps(dims)}")
    lines.append("layers:")
    lines += [f"  - {item}" for item in layers]
    return "\n".join(lines) + "\n"


def input_dtype(op) -> str:
    return "int64" if op.accepts.dtype == "int64" else "float32"


def compile_layer(op, params, shape, dtype: str | None = None) -> Result:
    return compile_text(spec_text([layer_item(op.name, params)], shape, dtype or input_dtype(op)))


def make_input(typed: TypedGraph, batch: int) -> torch.Tensor:
    """A random batch for the compiled spec; symbolic dims take their nominal (`dims:`) sizes."""
    shape = (batch, *(typed.bindings.get(d, d) for d in typed.input.shape))
    if typed.input.dtype == "int64":  # ids valid for every embedding in the chain
        vocab = [layer.node.params["num_embeddings"] for layer in typed.layers if layer.node.op == "embedding"]
        return torch.randint(0, min(vocab, default=10), shape)
    return torch.randn(shape)


def weight_elements(module: nn.Module) -> int:
    """Recurrent weight_* tensors (weight_ih, weight_hh, weight_hr, per layer and direction)."""
    return sum(p.numel() for name, p in module.named_parameters() if name.rsplit(".", 1)[-1].startswith("weight_"))


def assert_diagnostics_well_formed(res: Result) -> None:
    assert res.errors, "not ok, yet no error was reported"
    for d in res.diagnostics:
        assert d.is_error, d.render()  # a single layer has nothing to warn about once it fails
        assert d.code and d.message.strip(), d.render()
        assert d.loc.line > 0, d.render()


def check_against_torch(res: Result, batch: int = BATCH) -> None:
    """The static shape, counts and MACs of a compiled one-layer spec equal what torch does."""
    assert res.ok, "\n".join(d.render() for d in res.diagnostics)
    (layer,) = res.typed.layers
    module = lower(res.typed).eval()
    x = make_input(res.typed, batch)
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        y = module(x)

    assert tuple(y.shape) == (batch, *layer.out_type.shape)
    assert y.dtype == TORCH_DTYPES[layer.out_type.dtype]
    assert layer.params == sum(p.numel() for p in module.parameters())
    assert layer.buffers == sum(b.numel() for b in module.buffers())
    if OPS[layer.node.op].family == "recurrent":
        # FlopCounterMode counts nothing inside aten::lstm; the convention is T * weights.
        assert layer.macs == layer.in_type.shape[0] * weight_elements(module)
    else:
        # FLOPs = 2 * MACs, bias excluded; layers without weights count 0 on both sides.
        assert flops.get_total_flops() == 2 * batch * layer.macs
    train_step(module, x)


def train_step(module: nn.Module, x: torch.Tensor) -> None:
    """A spec that compiles must also train: some checks in torch fire only in training mode
    (batch statistics) or in backward."""
    y = module.train()(x)
    if y.requires_grad:
        y.sum().backward()


# --- the registered examples ----------------------------------------------------------------

EXAMPLES = [
    pytest.param(name, i, id=f"{name}-{i}") for name, op in sorted(OPS.items()) for i in range(len(op.examples))
]


def test_every_op_has_an_example():
    assert all(op.examples for op in OPS.values())


@pytest.mark.parametrize(("name", "index"), EXAMPLES)
def test_example_matches_torch(name, index):
    op = OPS[name]
    example = op.examples[index]
    check_against_torch(compile_layer(op, example.params, example.input))


# The schema gives a shorthand op's scalar form no null alternative (spec/schema.op_schema), so
# `- dropout: null` is rejected while `- relu: null` is accepted. strict: passes once fixed.


@pytest.mark.parametrize(
    "name",
    [name for name, op in sorted(OPS.items()) if op.bare_ok and op.arity == 1],  # a merge needs `from:`
)
def test_curly_null_form_equals_bare_form(name):
    """`- op: null` and `- op` mean the same layer with every default."""
    op = OPS[name]
    shape = op.examples[0].input
    bare = compile_layer(op, None, shape)
    null = compile_text(spec_text([f"{{{name}: null}}"], shape, input_dtype(op)))
    assert bare.ok and null.ok
    assert bare.typed.layers[0].node.params == null.typed.layers[0].node.params


# --- random parameters ----------------------------------------------------------------------
# Drawing goes through `choose(sequence) -> element`, so hypothesis (shrinkable draws) and a
# seeded random.Random (the deterministic valid-share check) share one generator.


def draw_shape(op, choose) -> tuple[int, ...]:
    acc = op.accepts
    ranks = acc.ranks or range(acc.min_rank, acc.min_rank + 3)
    rank = choose(list(ranks))
    return tuple(choose(acc.sample_dims) for _ in range(rank))


def draw_dims(kind: IntList, rank: int, choose) -> list[int]:
    """Dim indices (PyTorch style, batch is 0) for permute/transpose-like parameters."""
    full = rank + 1
    if kind.max_items is not None and kind.max_items < full:
        return [choose(range(-full, full)) for _ in range(kind.max_items)]
    rest = list(range(1, full))
    order = [rest.pop(choose(range(len(rest)))) for _ in range(rank)]
    dims = [0, *order] if choose([True, True, False]) else [*order, 0]  # mostly batch-first
    return [d - full if choose([False, False, True]) else d for d in dims]  # some negative


def draw_target_shape(shape, choose) -> list[int]:
    """A reshape target: the input dims regrouped (same element count), maybe with one -1.
    A group holding a symbolic dim becomes -1 (two such groups make an invalid target)."""
    if choose([False] * 4 + [True]):
        return [choose([1, 2, 3, 5]) for _ in range(choose([1, 2, 3]))]  # most likely wrong
    groups = [shape[0]]
    for d in shape[1:]:
        if choose([True, False]):
            both_fixed = isinstance(groups[-1], int) and isinstance(d, int)
            groups[-1] = groups[-1] * d if both_fixed else "sym"
        else:
            groups.append(d)
    groups = [g if isinstance(g, int) else -1 for g in groups]
    if -1 not in groups and choose([True, False]):
        groups[choose(range(len(groups)))] = -1
    return groups


def draw_value(param, shape, choose):
    samples = tuple(param.kind.samples())
    if not samples and isinstance(param.kind, IntList):
        return (
            draw_target_shape(shape, choose) if param.kind.item_min == -1 else draw_dims(param.kind, len(shape), choose)
        )
    return choose(samples)


def draw_params(op, shape, choose) -> dict:
    params = {}
    for p in op.params:
        if p.inferred or not p.sample:
            continue
        if not p.required and choose([True, False]):
            continue  # leave it to the default
        params[p.name] = draw_value(p, shape, choose)
    return params


def draw_case(op, choose) -> tuple[dict, tuple[int, ...], str]:
    shape = draw_shape(op, choose)
    dtype = choose(["float32", "int64"]) if op.accepts.dtype == "any" else input_dtype(op)
    return draw_params(op, shape, choose), shape, dtype


def check_case(op, params, shape, dtype) -> bool:
    """Compile one drawn layer; a valid one must match torch, an invalid one must say why."""
    res = compile_layer(op, params, shape, dtype)
    if res.ok:
        check_against_torch(res)
    else:
        assert_diagnostics_well_formed(res)
    return res.ok


@pytest.mark.parametrize("name", sorted(OPS))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_random_params_match_torch(name, data):
    op = OPS[name]
    params, shape, dtype = draw_case(op, lambda seq: data.draw(st.sampled_from(list(seq))))
    ok = check_case(op, params, shape, dtype)
    event("valid" if ok else "invalid")
    target(float(ok), label="valid")  # steer generation toward specs that compile
    assume(ok)


@pytest.mark.parametrize("name", sorted(OPS))
def test_random_draws_are_mostly_valid(name):
    """The generator above is useful only if most draws compile: a fixed set of seeds shows it."""
    op = OPS[name]
    ok = 0
    for seed in range(20):
        rng = random.Random(seed)
        ok += check_case(op, *draw_case(op, lambda seq, rng=rng: rng.choice(list(seq))))
    assert ok >= 8, f"only {ok}/20 random {name} layers compiled"


# --- reference numbers (REFERENCE.md), checked through netspec and through torch -------------

RECURRENT_REFERENCE = [
    ("lstm", 10, {"hidden_size": 20}, 2_560),
    ("lstm", 10, {"hidden_size": 20, "num_layers": 2}, 5_920),
    ("lstm", 10, {"hidden_size": 20, "num_layers": 2, "bidirectional": True}, 15_040),
    ("gru", 10, {"hidden_size": 20}, 1_920),
    ("rnn", 10, {"hidden_size": 20}, 640),
    ("lstm", 300, {"hidden_size": 512, "num_layers": 2}, 3_768_320),
]
TORCH_RNN = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


@pytest.mark.parametrize(("op", "features", "kwargs", "expected"), RECURRENT_REFERENCE)
def test_recurrent_reference_counts(op, features, kwargs, expected):
    steps = 7
    reference = TORCH_RNN[op](features, batch_first=True, **kwargs)
    assert sum(p.numel() for p in reference.parameters()) == expected

    res = compile_layer(OPS[op], kwargs, (steps, features))
    assert res.ok
    layer = res.typed.layers[0]
    assert layer.params == expected
    assert layer.macs == steps * weight_elements(reference)


def test_conv_reference_count():
    reference = nn.Conv2d(32, 64, 3, groups=4)
    assert sum(p.numel() for p in reference.parameters()) == 4_672

    res = compile_layer(OPS["conv2d"], {"out_channels": 64, "kernel_size": 3, "groups": 4}, (32, 8, 8))
    assert res.ok
    layer = res.typed.layers[0]
    assert layer.params == 4_672
    # REFERENCE.md: out_elements * (in_channels / groups) * prod(kernel)
    assert layer.macs == (64 * 6 * 6) * (32 // 4) * 3 * 3
    check_against_torch(res)


def test_lenet5_reference():
    """LeNet-5 on 1x32x32: 61,706 params and 416,520 MACs, per-layer params as published."""
    res = compile_text((Path(__file__).parent.parent / "specs" / "lenet5.yaml").read_text())
    assert res.ok
    counts = [layer.params for layer in res.typed.layers if layer.params]
    assert counts == [156, 2_416, 48_120, 10_164, 850]
    assert res.typed.total_params == 61_706
    assert res.typed.total_macs == 416_520


# --- recurrent `output: last` ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "kwargs"),
    [
        ("lstm", {"num_layers": 2}),
        ("gru", {}),
        ("rnn", {"num_layers": 2}),
        ("lstm", {"proj_size": 3}),
    ],
)
def test_last_is_final_state_of_both_directions(op, kwargs):
    """`last` must be h_n of the top layer, [forward, backward]: never output[:, -1], whose
    backward half has seen a single step."""
    params = {"hidden_size": 5, "bidirectional": True, "output": "last", **kwargs}
    res = compile_layer(OPS[op], params, (6, 4))
    check_against_torch(res)
    module = lower(res.typed).eval()
    (inner,) = [m for m in module.modules() if isinstance(m, TORCH_RNN[op])]

    x = torch.randn(3, 6, 4)
    with torch.no_grad():
        got = module(x)
        seq, state = inner(x)
    h_n = state[0] if isinstance(state, tuple) else state
    expected = torch.cat([h_n[-2], h_n[-1]], dim=1)  # top layer: forward, then backward
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, seq[:, -1]), "backward half taken from output[:, -1]"


# --- netspec accepts exactly what torch accepts, at the edges found by the tests above ---------


def torch_runs(module: nn.Module, x: torch.Tensor) -> bool:
    try:
        train_step(module, x)
    except (RuntimeError, ValueError):
        return False
    return True


def agree(op: str, params: dict, shape, module: nn.Module) -> None:
    res = compile_layer(OPS[op], params, shape)
    accepted = torch_runs(module, torch.randn(BATCH, *shape))
    assert res.ok == accepted, f"netspec ok={res.ok}, torch runs={accepted}: {res.diagnostics}"
    if res.ok:
        check_against_torch(res)


@pytest.mark.parametrize("dilation", [1, 2, 3])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4])
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_maxpool_padding_limit_ignores_dilation(kernel, dilation, padding):
    """torch bounds max-pool padding by kernel_size // 2, not by half the dilated window."""
    params = {"kernel_size": kernel, "dilation": dilation, "padding": padding}
    agree("maxpool1d", params, (2, 12), nn.MaxPool1d(kernel, padding=padding, dilation=dilation))


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [1, 2, 3, "same"])
@pytest.mark.parametrize("length", [1, 2, 3])
def test_conv_padding_mode_bounds(mode, padding, length):
    """reflect needs padding < length, circular padding <= length; torch decides."""
    params = {"out_channels": 2, "kernel_size": 4, "padding": padding, "padding_mode": mode}
    module = nn.Conv1d(2, 2, 4, padding=padding, padding_mode=mode)
    agree("conv1d", params, (2, length), module)


@pytest.mark.parametrize("track", [True, False])
@pytest.mark.parametrize("eps", [0.0, 1e-5])
def test_batchnorm_eps_must_be_positive(eps, track):
    params = {"eps": eps, "track_running_stats": track}
    agree("batchnorm1d", params, (3, 4), nn.BatchNorm1d(3, eps=eps, track_running_stats=track))


@pytest.mark.parametrize(("kernel", "padding"), [(2, 0), (2, 1), (4, 0), (4, 1), (4, 2)])
@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_avgpool3d_input_must_cover_kernel(size, kernel, padding):
    """avg_pool3d, unlike 1d/2d, checks the input against kernel_size before padding."""
    params = {"kernel_size": kernel, "padding": padding}
    agree("avgpool3d", params, (2, size, size, size), nn.AvgPool3d(kernel, padding=padding))


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("kernel", "stride"), [(3, 1), (3, 2), (4, 4), (3, 3)])
@pytest.mark.parametrize("size", [1, 2, 3])
def test_ceil_mode_window_may_overhang_a_small_input(kind, kernel, stride, size):
    """With ceil_mode torch keeps a window larger than the input if it starts inside it."""
    params = {"kernel_size": kernel, "stride": stride, "ceil_mode": True}
    module = getattr(nn, f"{kind.capitalize()}Pool1d")(kernel, stride, ceil_mode=True)
    agree(f"{kind}pool1d", params, (2, size), module)
