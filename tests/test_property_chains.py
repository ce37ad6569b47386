"""Property test over generated multi-layer chains, with PyTorch as the oracle.

A chain starts from an image, volume, sequence (also with a symbolic length), vector or token-id
input and grows one layer at a time, each chosen among the layer types whose `accepts` fits the
type inferred so far (the prefix is compiled to know it). Whatever comes out, compile_text must
not raise; a valid spec must run in torch with every layer's shape and counts as inferred, and
an invalid one must say where and why.
"""

from __future__ import annotations

import math
import random

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings, target
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from netspec.compiler import Result, compile_text
from netspec.ir.types import TensorType
from netspec.lower.module import lower
from netspec.ops import all_ops

from .test_op_contract import (
    TORCH_DTYPES,
    draw_params,
    layer_item,
    make_input,
    one_thread,  # noqa: F401  (autouse: tiny tensors run faster on one thread)
    spec_text,
    weight_elements,
)

OPS = {name: op for name, op in all_ops().items() if op.arity == 1}  # merges: tests/test_graphs.py
BATCH = 3
TRIES = 3  # draws per position before the chain ends with a layer that does not fit

# (per-sample shape, dtype, nominal sizes of its symbols)
INPUTS = [
    ((3, 12, 12), "float32", None),
    ((2, 6, 7, 8), "float32", None),
    ((4, 16), "float32", None),
    ((10, 6), "float32", None),
    ((20,), "float32", None),
    ((9,), "int64", None),
    (("T",), "int64", {"T": 7}),
    (("T", 5), "float32", {"T": 11}),
    ((4, "T"), "float32", {"T": 16}),
]


# --- generation -----------------------------------------------------------------------------


def fits(op, x: TensorType) -> bool:
    return op.accepts.ok_rank(x.rank) and op.accepts.dtype in ("any", x.dtype)


def draw_chain(choose) -> str:
    """A spec text of 1-8 layers. Each position gets up to `tries` draws among the layer types
    that accept the current type; when none compiles, the chain ends with the last (invalid) one.
    One chain in three allows a single try, so invalid specs occur too."""
    shape, dtype, dims = choose(INPUTS)
    current = TensorType(shape, dtype)
    layers: list[str] = []
    tries = choose([1, TRIES, TRIES])
    for _ in range(choose(range(1, 9))):
        candidates = [op for name, op in sorted(OPS.items()) if fits(op, current)]
        for _ in range(tries):
            op = choose(candidates)
            item = layer_item(op.name, draw_params(op, current.shape, choose) or None)
            res = compile_text(spec_text([*layers, item], shape, dtype, dims))
            if res.ok:
                break
        layers.append(item)
        if not res.ok:
            break
        current = res.typed.output
    return spec_text(layers, shape, dtype, dims)


# --- checking -------------------------------------------------------------------------------


def assert_diagnostics_located(res: Result) -> None:
    """Errors and warnings alike name a code, say something, and point at a line."""
    for d in res.diagnostics:
        assert d.code and d.message.strip(), d.render()
        assert d.loc.line > 0, d.render()


def assert_layer_output(y: torch.Tensor, layer) -> None:
    """Fixed dims must match exactly; a symbolic dim is checked through the element count,
    which inference computes with the nominal sizes bound."""
    static = layer.out_type.shape
    real = tuple(y.shape[1:])
    assert len(real) == len(static), (layer.node.name, real, static)
    assert all(s == r for s, r in zip(static, real, strict=True) if isinstance(s, int)), (layer.node.name, real, static)
    assert math.prod(real) == layer.out_elems, (layer.node.name, real, layer.out_elems)
    assert y.dtype == TORCH_DTYPES[layer.out_type.dtype]


def check_layer(child, layer, x: torch.Tensor) -> torch.Tensor:
    with FlopCounterMode(display=False) as flops:
        y = child(x)
    assert_layer_output(y, layer)
    assert layer.params == sum(p.numel() for p in child.parameters()), layer.node.name
    assert layer.buffers == sum(b.numel() for b in child.buffers()), layer.node.name
    if OPS[layer.node.op].family == "recurrent":
        assert layer.macs == x.shape[1] * weight_elements(child), layer.node.name
    else:
        assert flops.get_total_flops() == 2 * BATCH * layer.macs, layer.node.name
    return y


def check_against_torch(res: Result) -> None:
    typed = res.typed
    module = lower(typed).eval()
    x = make_input(typed, BATCH)
    with torch.no_grad():
        h = x
        for layer, child in zip(typed.layers, module.children(), strict=True):
            h = check_layer(child, layer, h)
        y = module(x)
    assert tuple(y.shape) == tuple(h.shape)
    assert sum(p.numel() for p in module.parameters()) == typed.total_params
    assert sum(b.numel() for b in module.buffers()) == typed.total_buffers


def check_chain(text: str) -> Result:
    res = compile_text(text)  # must not raise, whatever the chain
    assert_diagnostics_located(res)
    if res.ok:
        check_against_torch(res)
    else:
        assert res.errors, "not ok, yet no error was reported"
    return res


def seeded(seed: int):
    rng = random.Random(seed)
    return lambda seq: rng.choice(list(seq))


# --- tests ----------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_chain_matches_torch(data):
    text = draw_chain(lambda seq: data.draw(st.sampled_from(list(seq))))
    res = check_chain(text)
    length = len(res.typed.layers) if res.ok else 0
    event("valid" if res.ok else "invalid")
    target(float(length), label="valid layers")  # favour long chains that compile


def test_generated_chains_are_mostly_valid_and_varied():
    """The property above means something only if most chains compile and mix families."""
    results = [check_chain(draw_chain(seeded(seed))) for seed in range(40)]
    valid = [r for r in results if r.ok]
    assert len(valid) >= 20, f"only {len(valid)}/40 chains compiled"
    families = {OPS[layer.node.op].family for r in valid for layer in r.typed.layers}
    assert {"convolution", "pooling", "normalization", "activation", "recurrent", "shape"} <= families
    assert max(len(r.typed.layers) for r in valid) >= 5


# --- symbolic shapes evaluate to the real ones ----------------------------------------------


def evaluate(dim, bindings: dict) -> int:
    if isinstance(dim, int):
        return dim
    return eval(dim, {"__builtins__": {}, "floor": math.floor, "ceil": math.ceil, "min": min}, dict(bindings))


def assert_symbolic_shapes_evaluate(layers: list[str], shape, sizes: dict) -> None:
    """Each symbolic output dim, evaluated at T = 1..29, equals the shape netspec infers for the
    same spec with T written as a number (which the chain test checks against torch)."""
    res = compile_text(spec_text(layers, shape, dims=sizes))
    assert res.ok, [d.render() for d in res.diagnostics]
    for size in range(1, 30):
        bound = {**sizes, "T": size}
        concrete = compile_text(spec_text(layers, [bound.get(d, d) for d in shape]))
        if not concrete.ok:
            continue
        for sym, real in zip(res.typed.layers, concrete.typed.layers, strict=True):
            got = tuple(evaluate(d, bound) for d in sym.out_type.shape)
            assert got == real.out_type.shape, (size, sym.node.name, sym.out_type.shape, real.out_type.shape)


@pytest.mark.parametrize(
    "layers",
    [
        # ceil_mode drops a last window that would start in the right padding: T = 5 gives 3
        ["{maxpool1d: {kernel_size: 2, stride: 2, padding: 1, ceil_mode: true}}"],
        ["{avgpool1d: {kernel_size: 2, stride: 3, padding: 1, ceil_mode: true}}"],
        ["{conv1d: {out_channels: 2, kernel_size: 3, padding: same}}", "relu"],
    ],
)
def test_symbolic_shapes_evaluate_to_concrete_ones(layers):
    assert_symbolic_shapes_evaluate(layers, (4, "T"), {"T": 16})


@pytest.mark.parametrize(
    "layer",
    [
        "{conv1d: {out_channels: 2, kernel_size: 4, stride: 2}}",
        "{avgpool1d: {kernel_size: 1, stride: 3, ceil_mode: true}}",
    ],
)
def test_symbolic_strided_window_shape(layer):
    assert_symbolic_shapes_evaluate([layer], (4, "T"), {"T": 16})
