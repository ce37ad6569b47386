"""Graphs: `from:`, merge layers, several inputs and named outputs, with PyTorch as the oracle.

A property test grows random DAGs over one or two inputs (single-input layers whose `accepts`
fits, and add / multiply / mean / concat merges of compatible values) and checks every valid one
against torch layer by layer, against the generated model.py, and through the resolved spec.
Then the graph diagnostics (exact location, path and wording), three classic architectures
(residual block, inception block, LSTM-FCN) against hand-written torch modules and a fresh
interpreter, and a two-input, two-output graph through the CLI.

Locations are computed from each test's own YAML text with `at`, never hard-coded.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import subprocess
import sys
import textwrap

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings, target
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from netspec.compiler import Result, compile_text
from netspec.errors import Diagnostic
from netspec.ir.types import TensorType
from netspec.lower.codegen import class_name, model_source, resolved_spec
from netspec.lower.module import lower
from netspec.ops import all_ops

from .conftest import at
from .test_op_contract import (
    TORCH_DTYPES,
    draw_params,
    one_thread,  # noqa: F401  (autouse: tiny tensors run faster on one thread)
    weight_elements,
)
from .test_property_chains import assert_diagnostics_located, evaluate, fits, seeded

OPS = all_ops()
SINGLE = [op for _, op in sorted(OPS.items()) if op.arity == 1]
MERGES = ["add", "multiply", "mean", "concat"]
BATCH = 3
TRIES = 3  # draws per position before the graph ends with a layer that does not fit
FILE = "spec.yaml"


# --- generation -----------------------------------------------------------------------------
# Drawing goes through `choose(sequence) -> element`, so hypothesis (shrinkable draws) and a
# seeded random.Random (the deterministic valid-share check) share one generator.

INPUTS = [
    ((3, 12), "float32"),
    ((4, 16), "float32"),
    ((2, 8), "float32"),
    ((2, 6, 6), "float32"),
    ((3, 8, 8), "float32"),
    ((6,), "float32"),
    ((8,), "float32"),
    ((9,), "int64"),  # token ids: embedding, or the dtype-agnostic layers and merges
    ((3, "T"), "float32"),  # a symbolic length: merges compare symbolic dims
]
DIMS = {"T": 12}  # the nominal size of T, for counts and the torch run


def draw_inputs(choose) -> dict[str, TensorType]:
    """One or two inputs; a second one is often shaped like the first, or differs in dim 1 only,
    so that merges of the two are likely to fit."""
    shape, dtype = choose(INPUTS)
    inputs = {"x": TensorType(shape, dtype)}
    if choose([False, True]):
        other = choose(["same", "sibling", "any"])
        if other == "same":
            inputs["y"] = TensorType(shape, dtype)
        elif other == "sibling":
            inputs["y"] = TensorType((shape[0] + choose([1, 2, 3]), *shape[1:]), dtype)
        else:
            inputs["y"] = TensorType(*choose(INPUTS))
    return inputs


def graph_text(inputs: dict[str, TensorType], layers: list[str], outputs: list[str] | None = None) -> str:
    lines = ["netspec: 1", "inputs:"]
    lines += [f"  {name}: {{shape: {json.dumps(list(t.shape))}, dtype: {t.dtype}}}" for name, t in inputs.items()]
    if any(not t.is_static for t in inputs.values()):
        lines.append(f"dims: {json.dumps(DIMS)}")
    lines.append("layers:")
    lines += [f"  - {item}" for item in layers]
    if outputs is not None:
        lines.append(f"outputs: {json.dumps(outputs)}")
    return "\n".join(lines) + "\n"


def merge_sources(op: str, values: dict[str, TensorType], choose) -> list[str]:
    """2-3 names of compatible values (equal shapes; for concat along dim 1 every other dim
    equal), the same value possibly twice; one draw in five ignores compatibility."""
    names = list(values)
    k = choose([2, 2, 3])
    if choose([False] + [True] * 4):

        def key(t):
            return (t.rank, t.shape[1:], t.dtype) if op == "concat" else (t.shape, t.dtype)

        groups: dict = {}
        for name, t in values.items():
            groups.setdefault(key(t), []).append(name)
        # a group of one gives `from: [a, a]`: legal, but prefer distinct values
        best = [g for g in groups.values() if len(g) > 1] or list(groups.values())
        names = choose(best)
    return [choose(names) for _ in range(k)]


def draw_layer(values: dict[str, TensorType], index: int, default: str, choose) -> str:
    """One `layers:` entry reading existing values; JSON is valid YAML flow syntax."""
    names = list(values)
    extra: dict = {}
    if choose(["single"] * 3 + ["merge"] * 2) == "merge":
        op = choose(MERGES)
        params = {"dim": choose([1, 1, 1, -1])} if op == "concat" and choose([True, False]) else {}
        extra["from"] = merge_sources(op, values, choose)
    else:
        src = choose([default, default, *names])  # favour depth: the previous layer, often
        t = values[src]
        op = choose([o for o in SINGLE if fits(o, t)]).name
        params = draw_params(OPS[op], t.shape, choose)
        if src != default or choose([True, False]):  # leave the default `from:` out sometimes
            extra["from"] = src if choose([True, False]) else [src]
    if choose([True, False]):
        extra["name"] = f"n{index}"
    body = {**params, **extra}
    return json.dumps({op: body}) if body else json.dumps(op)


def draw_graph(choose) -> str:
    """A spec of 3-10 layers over 1-2 inputs, each layer drawn among up to `tries` candidates
    until one compiles; when none does, the graph ends with the last (invalid) one. One graph in
    three allows a single try, so invalid specs occur too. Outputs: the default, or 1-2 layers."""
    inputs = draw_inputs(choose)
    values: dict[str, TensorType] = dict(inputs)
    layers: list[str] = []
    made: list[str] = []
    tries = choose([1, TRIES, TRIES])
    default = "x"
    for index in range(choose(range(3, 11))):
        for _ in range(tries):
            item = draw_layer(values, index, default, choose)
            res = compile_text(graph_text(inputs, [*layers, item]))
            if res.ok:
                break
        layers.append(item)
        if not res.ok:
            break
        layer = res.typed.layers[-1]
        values[layer.node.name] = layer.out_type
        made.append(layer.node.name)
        default = layer.node.name
    outputs = None
    if made and choose([False, True]):
        first = choose(made)
        rest = [m for m in made if m != first]
        outputs = [first, choose(rest)] if rest and choose([True, False]) else [first]
    return graph_text(inputs, layers, outputs)


# --- checking -------------------------------------------------------------------------------


def make_inputs(typed, batch: int = BATCH) -> list[torch.Tensor]:
    """Random inputs; ids valid for every embedding. Adding or multiplying ids may leave the
    vocabulary, so a graph that does gets all-zero ids."""
    vocab = [layer.node.params["num_embeddings"] for layer in typed.layers if layer.node.op == "embedding"]
    arithmetic = any(la.node.op in ("add", "multiply") and la.out_type.dtype == "int64" for la in typed.layers)
    high = 1 if arithmetic else min(vocab, default=10)
    xs = []
    for t in typed.inputs:
        shape = (batch, *(typed.bindings.get(d, d) for d in t.shape))
        xs.append(torch.randint(0, high, shape) if t.dtype == "int64" else torch.randn(shape))
    return xs


def as_tuple(y) -> tuple[torch.Tensor, ...]:
    return y if isinstance(y, tuple) else (y,)


def check_layer(child: nn.Module, layer, xs: list[torch.Tensor], bindings) -> torch.Tensor:
    """Shape (a symbolic dim evaluated at the nominal sizes), dtype, counts and MACs."""
    with FlopCounterMode(display=False) as flops:
        y = child(*xs)
    name = layer.node.name
    static = tuple(evaluate(d, bindings) for d in layer.out_type.shape)
    assert tuple(y.shape) == (BATCH, *static), (name, tuple(y.shape), layer.out_type.shape)
    assert math.prod(y.shape[1:]) == layer.out_elems, name
    assert y.dtype == TORCH_DTYPES[layer.out_type.dtype], name
    assert layer.params == sum(p.numel() for p in child.parameters()), name
    assert layer.buffers == sum(b.numel() for b in child.buffers()), name
    if OPS[layer.node.op].family == "recurrent":
        assert layer.macs == xs[0].shape[1] * weight_elements(child), name
    else:
        assert flops.get_total_flops() == 2 * BATCH * layer.macs, name
    return y


def load_model_py(source: str, path, module_name: str):
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(module_name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_counter = itertools.count()


def check_against_torch(res: Result, tmp_dir) -> None:
    """Layer by layer (following `from:`), the whole forward, model.py and the resolved spec."""
    typed = res.typed
    module = lower(typed).eval()
    xs = make_inputs(typed)
    with torch.no_grad():
        env = {i.name: x for i, x in zip(typed.graph.inputs, xs, strict=True)}
        for layer in typed.layers:
            child = getattr(module, layer.node.name)
            env[layer.node.name] = check_layer(child, layer, [env[s] for s in layer.node.inputs], typed.bindings)
        ys = as_tuple(module(*xs))
    assert len(ys) == len(typed.graph.outputs) == len(typed.outputs)
    for name, static, y in zip(typed.graph.outputs, typed.outputs, ys, strict=True):
        assert tuple(y.shape) == (BATCH, *(evaluate(d, typed.bindings) for d in static.shape)), name
        assert torch.equal(y, env[name]), name
    assert sum(p.numel() for p in module.parameters()) == typed.total_params
    assert sum(b.numel() for b in module.buffers()) == typed.total_buffers

    # model.py, executed from a file, holds the same submodules and computes the same values
    n = next(_counter)
    mod = load_model_py(model_source(typed), tmp_dir / f"model_{n}.py", f"netspec_graph_model_{n}")
    generated = getattr(mod, class_name(typed.graph.name))()
    generated.load_state_dict(module.state_dict())  # strict: the same keys and shapes
    with torch.no_grad():
        ys_gen = as_tuple(generated.eval()(*xs))
    assert len(ys_gen) == len(ys)
    assert all(torch.equal(a, b) for a, b in zip(ys, ys_gen, strict=True))

    # the resolved spec (every `from:` and `outputs:` written out) compiles to the same graph
    again = compile_text(resolved_spec(typed, res.doc.data))
    assert again.ok, [d.render() for d in again.diagnostics]
    assert again.typed.graph.outputs == typed.graph.outputs
    assert [i.type for i in again.typed.graph.inputs] == [i.type for i in typed.graph.inputs]
    for a, b in zip(typed.layers, again.typed.layers, strict=True):
        assert (a.node.name, a.node.op, a.node.inputs) == (b.node.name, b.node.op, b.node.inputs)
        assert dict(a.node.params) == dict(b.node.params)
        assert (a.out_type, a.params, a.buffers, a.macs) == (b.out_type, b.params, b.buffers, b.macs)


def check_graph(text: str, tmp_dir) -> Result:
    res = compile_text(text)  # must not raise, whatever the graph
    assert_diagnostics_located(res)
    if res.ok:
        check_against_torch(res, tmp_dir)
    else:
        assert res.errors, "not ok, yet no error was reported"
    return res


def merges_in(res: Result) -> int:
    return sum(OPS[layer.node.op].arity is None for layer in res.typed.layers) if res.ok else 0


# --- random graphs --------------------------------------------------------------------------


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_graph_matches_torch(data, tmp_path_factory):
    text = draw_graph(lambda seq: data.draw(st.sampled_from(list(seq))))
    res = check_graph(text, tmp_path_factory.mktemp("graph", numbered=True))
    event("valid" if res.ok else "invalid")
    if res.ok:
        event(f"{len(res.typed.inputs)} input(s), {len(res.typed.outputs)} output(s)")
    target(float(merges_in(res)), label="merges in a valid graph")  # favour graphs that branch


def test_generated_graphs_are_mostly_valid_and_branch(tmp_path):
    """The property above means something only if most graphs compile, merge and vary."""
    results = [check_graph(draw_graph(seeded(seed)), tmp_path) for seed in range(40)]
    valid = [r for r in results if r.ok]
    assert len(valid) >= 25, f"only {len(valid)}/40 graphs compiled"
    assert sum(merges_in(r) > 0 for r in valid) >= 15
    ops = {layer.node.op for r in valid for layer in r.typed.layers}
    assert set(MERGES) <= ops, set(MERGES) - ops
    assert any(len(r.typed.inputs) == 2 for r in valid)
    assert any(len(r.typed.outputs) == 2 for r in valid)
    assert sum(not r.typed.is_chain for r in valid) >= 15
    assert max(len(r.typed.layers) for r in valid) >= 6
    assert any(r.typed.bindings for r in valid)  # a symbolic length, merged or not


# --- diagnostics ----------------------------------------------------------------------------


def check(text: str) -> Result:
    return compile_text(text, FILE)


def where(d: Diagnostic) -> tuple[int, int]:
    assert d.loc.file == FILE
    return d.loc.line, d.loc.col


def only_error(res: Result) -> Diagnostic:
    assert not res.ok
    assert len(res.errors) == 1, [d.render() for d in res.errors]
    return res.errors[0]


def spec(*layers: str, inputs: str = "x: {shape: [8, 16]}", extra: str = "") -> str:
    head = "netspec: 1\ninputs:\n" + "".join(f"  {i}\n" for i in inputs.split("; ")) + "layers:\n"
    return head + "".join(f"  - {layer}\n" for layer in layers) + extra


def test_unknown_name_in_from_suggests_the_close_one():
    text = spec("conv1d: {out_channels: 8, kernel_size: 3, name: conv}", "relu: {from: cnov}")
    d = only_error(check(text))
    assert d.message == "unknown name 'cnov'"
    assert d.path == "layers[1].relu.from"
    assert where(d) == at(text, "from: ^cnov")
    assert d.expected == "a graph input or a layer: one of conv, x"
    assert d.received == "'cnov'"
    assert d.hint == "did you mean 'conv'?"
    assert d.code == "graph"


def test_unknown_name_in_a_from_list_points_at_the_item():
    text = spec("relu: {name: a}", "add: {from: [a, b2]}")
    d = only_error(check(text))
    assert (d.message, d.path) == ("unknown name 'b2'", "layers[1].add.from[1]")
    assert where(d) == at(text, "[a, ^b2]")
    assert d.expected == "a graph input or a layer: one of a, x"


def test_name_defined_later():
    text = spec("relu: {from: b}", "tanh: {name: b}")
    d = only_error(check(text))
    assert d.message == "'b' is defined later"
    assert d.path == "layers[0].relu.from"
    assert where(d) == at(text, "from: ^b")
    assert d.expected == (
        "a graph input or a layer defined above this point (layers run in order, so a graph has no cycles)"
    )
    assert d.received == f"'b', defined at line {at(text, 'name: b')[0]}"
    assert d.hint == "move this layer below the one it reads"
    assert d.code == "graph"


def test_layer_reading_itself():
    """A one-layer cycle: the name exists, so 'unknown name' would send the reader looking for
    a typo that is not there."""
    text = spec("relu: {name: a, from: a}")
    d = only_error(check(text))
    assert d.message == "layer 'a' reads itself"
    assert d.path == "layers[0].relu.from"
    assert where(d) == at(text, "from: ^a")
    assert d.expected == "a graph input or a layer defined above this one (a graph has no cycles)"
    assert d.received == "'a'"
    assert d.code == "graph"


def test_single_input_layer_given_two_names():
    text = spec("relu: {name: a}", "tanh: {from: [a, x]}")
    d = only_error(check(text))
    assert d.message == "tanh reads one input"
    assert d.path == "layers[1].tanh.from"
    assert where(d) == at(text, "from: ^[a, x]")
    assert d.expected == "one name in `from:`"
    assert d.received == "2 names: ['a', 'x']"
    assert d.hint == "combine them first with add, concat, multiply or mean"
    assert d.code == "graph"


@pytest.mark.parametrize("given", ["[a]", "a"])
def test_merge_given_one_name(given):
    text = spec("relu: {name: a}", f"add: {{from: {given}}}")
    d = only_error(check(text))
    assert d.message == "add merges two or more inputs"
    assert d.path == "layers[1].add.from"
    assert where(d) == at(text, f"from: ^{given}")
    assert d.expected == "`from: [a, b, ...]` naming two or more earlier layers or inputs"
    assert d.received == "1 input: ['a']"
    assert d.code == "graph"


def test_merge_without_from_reads_only_the_previous_layer():
    text = spec("relu: {name: a}", "concat")
    d = only_error(check(text))
    assert (d.message, d.path) == ("concat merges two or more inputs", "layers[1].concat")
    assert where(d) == at(text, "concat")
    assert d.received == "1 input: ['a']"


def test_add_of_different_shapes_names_both_and_the_dim():
    text = spec("add: {from: [x, y]}", inputs="x: {shape: [8, 16]}; y: {shape: [4, 16]}")
    d = only_error(check(text))
    assert d.message == "add 'add_1': add needs inputs of the same shape"
    assert d.path == "layers[0].add"
    assert where(d) == at(text, "add:")
    assert d.expected == "input 1 shaped like input 0: (B, 8, 16)"
    assert d.received == "input 1: (B, 4, 16); dim 1 (batch is 0) is 4, not 8"
    assert d.hint == "add a linear or 1x1 conv to match them, or use concat"
    assert d.code == "shape"


def test_concat_with_a_mismatching_other_dim():
    text = spec("concat: {from: [x, y]}", inputs="x: {shape: [8, 16]}; y: {shape: [4, 12]}")
    d = only_error(check(text))
    assert d.message == "concat 'concat_1': concat along dim 1 needs every other dim equal"
    assert d.path == "layers[0].concat"
    assert where(d) == at(text, "concat:")
    assert d.expected == "input 1 matching input 0 (B, 8, 16) except in dim 1"
    assert d.received == "input 1: (B, 4, 12); dim 2 (batch is 0) is 12, not 16"
    assert d.hint == "pool or reshape one branch first, or concat along another dim"
    assert d.code == "shape"


def test_merge_dtype_rules():
    mixed = spec("multiply: {from: [x, y]}", inputs="x: {shape: [4]}; y: {shape: [4], dtype: int64}")
    d = only_error(check(mixed))
    assert d.message == "multiply 'multiply_1': inputs of different dtypes"
    assert d.received == "float32 (B, 4), int64 (B, 4)"
    ints = spec("mean: {from: [x, x]}", inputs="x: {shape: [4], dtype: int64}")
    d = only_error(check(ints))
    assert d.message == "mean 'mean_1': wrong input dtype for mean"
    assert check(ints.replace("mean:", "add:")).ok  # add, multiply and concat take any one dtype


def test_errors_in_independent_branches_are_all_reported():
    text = spec(
        "conv1d: {out_channels: 4, kernel_size: 32, name: a}",
        "linear: {from: x, out_features: 4, name: b}",
        "maxpool1d: {from: x, kernel_size: 40, name: c}",
        "add: {from: [a, c]}",  # reads two failed layers: nothing more to say about it
        "add: {from: [b, x]}",  # (8, 4) + (8, 16): its own error, in a third branch
    )
    res = check(text)
    assert not res.ok
    got = {d.path: d for d in res.errors}
    assert sorted(got) == ["layers[0].conv1d.kernel_size", "layers[2].maxpool1d.kernel_size", "layers[4].add"]
    # by hand: floor((16 - 31 - 1) / 1) + 1 = -15 and floor((16 - 39 - 1) / 40) + 1 = 0
    assert where(got["layers[0].conv1d.kernel_size"]) == at(text, "kernel_size: ^32")
    assert got["layers[0].conv1d.kernel_size"].message == "conv1d 'a': output length would be -15"
    assert where(got["layers[2].maxpool1d.kernel_size"]) == at(text, "kernel_size: ^40")
    assert got["layers[2].maxpool1d.kernel_size"].message == "maxpool1d 'c': output length would be 0"
    assert got["layers[4].add"].received == "input 1: (B, 8, 16); dim 2 (batch is 0) is 16, not 4"


def test_unknown_name_in_outputs():
    text = spec("relu: {name: act}", extra="outputs: [act, akt, zzz]\n")
    res = check(text)
    assert not res.ok
    typo, unknown = res.errors
    assert (typo.message, typo.path) == ("unknown name 'akt'", "outputs[1]")
    assert where(typo) == at(text, "act, ^akt")
    assert typo.expected == "an output: one of act, x"
    assert typo.hint == "did you mean 'act'?"
    assert (unknown.message, unknown.path, unknown.hint) == ("unknown name 'zzz'", "outputs[2]", None)
    assert where(unknown) == at(text, "zzz")


def test_unused_layer_is_a_warning():
    text = spec("relu: {name: a}", "tanh: {from: x, name: b}")
    res = check(text)
    assert res.ok and not res.errors
    (w,) = res.warnings
    assert w.message == "layer 'a' does not reach any output"
    assert w.path == "layers[0].relu"
    assert where(w) == at(text, "relu:")
    assert w.expected == "every layer on a path to an output"
    assert w.received == "outputs: ['b']"
    assert w.hint == "read it with `from:` in a later layer, list it in `outputs:`, or remove it"
    assert w.code == "graph" and not w.is_error


def test_unread_input_is_a_warning():
    text = spec("relu: {from: y}", inputs="x: {shape: [8, 16]}; y: {shape: [4, 16]}")
    res = check(text)
    assert res.ok
    (w,) = res.warnings
    assert w.message == "input 'x' is never read"
    assert w.path == "inputs.x"
    assert where(w) == at(text, "x: {")
    assert w.expected == "every input read by a layer on a path to an output"
    assert w.received == "outputs: ['relu_1']"
    assert w.hint == "read it with `from:`" and w.code == "graph"


@pytest.mark.parametrize(
    ("name", "layer", "inputs", "needle", "path"),
    [
        ("self", "relu: {name: self}", "x: {shape: [4]}", "name: ^self", "layers[0].relu.name"),
        ("self", "relu", "self: {shape: [4]}", "self", "inputs.self"),
        # model.py's chain forward takes `lengths` (and calls `zero_padding`) beside the input
        ("lengths", "lstm: 5", "lengths: {shape: [T, 4]}", "lengths", "inputs.lengths"),
        ("lengths", "relu: {name: lengths}", "x: {shape: [4]}", "name: ^lengths", "layers[0].relu.name"),
        ("zero_padding", "relu", "zero_padding: {shape: [4]}", "zero_padding", "inputs.zero_padding"),
    ],
)
def test_reserved_names(name, layer, inputs, needle, path):
    text = spec(layer, inputs=inputs)
    d = only_error(check(text))
    assert d.message == f"name '{name}' is reserved"
    assert d.path == path
    assert where(d) == at(text, needle)
    assert d.received == repr(name)
    assert d.hint == f"try '{name}_1'"
    assert d.code == "name"


def test_input_and_layer_names_share_one_namespace():
    text = spec("relu: {name: y}", inputs="x: {shape: [4]}; y: {shape: [4]}")
    d = only_error(check(text))
    assert d.message == "duplicate name 'y'"
    assert d.path == "layers[0].relu.name"
    assert where(d) == at(text, "name: ^y")
    assert d.received == f"'y', already used at line {at(text, 'y: {')[0]}"


# --- classic architectures, against hand-written torch modules -------------------------------
# Each hand-written module names its submodules like the spec's layers, so the lowered module's
# state dict loads into it (strict): the same parameters, and the same values out.

RESNET = """\
netspec: 1
name: residual_block
inputs:
  x: {shape: [8, 10, 10]}
layers:
  - conv2d: {name: conv1, out_channels: 8, kernel_size: 3, padding: 1, bias: false}
  - batchnorm2d: {name: bn1}
  - relu: {name: relu1}
  - conv2d: {name: conv2, out_channels: 8, kernel_size: 3, padding: 1, bias: false}
  - batchnorm2d: {name: bn2}
  - add: {name: residual, from: [bn2, x]}
  - relu: {name: out}
"""


class ResidualBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(h)) + x)


INCEPTION = """\
netspec: 1
name: inception
inputs:
  image: {shape: [4, 12, 12]}
layers:
  - conv2d: {name: b1, out_channels: 8, kernel_size: 1}
  - conv2d: {name: b2_reduce, from: image, out_channels: 4, kernel_size: 1}
  - relu
  - conv2d: {name: b2, out_channels: 8, kernel_size: 3, padding: same}
  - maxpool2d: {name: b3_pool, from: image, kernel_size: 3, stride: 1, padding: 1}
  - conv2d: {name: b3, out_channels: 4, kernel_size: 1}
  - concat: {name: joined, from: [b1, b2, b3]}
  - relu
  - global_avgpool
  - linear: {name: head, out_features: 3}
"""


class Inception(nn.Module):
    def __init__(self):
        super().__init__()
        self.b1 = nn.Conv2d(4, 8, 1)
        self.b2_reduce = nn.Conv2d(4, 4, 1)
        self.b2 = nn.Conv2d(4, 8, 3, padding=1)
        self.b3 = nn.Conv2d(4, 4, 1)
        self.head = nn.Linear(20, 3)

    def forward(self, image):
        b1 = self.b1(image)
        b2 = self.b2(torch.relu(self.b2_reduce(image)))
        b3 = self.b3(nn.functional.max_pool2d(image, 3, stride=1, padding=1))
        h = torch.relu(torch.cat([b1, b2, b3], dim=1))
        return self.head(h.mean(dim=(2, 3)))


LSTM_FCN = """\
netspec: 1
name: lstm_fcn
inputs:
  series: {shape: [3, 24]}
layers:
  - transpose: {name: steps, dims: [1, 2]}
  - lstm: {name: lstm, hidden_size: 8, output: last}
  - dropout: {name: lstm_drop, p: 0.8}
  - conv1d: {name: conv1, from: series, out_channels: 16, kernel_size: 7, padding: same}
  - batchnorm1d: {name: bn1}
  - relu
  - conv1d: {name: conv2, out_channels: 32, kernel_size: 5, padding: same}
  - batchnorm1d: {name: bn2}
  - relu
  - conv1d: {name: conv3, out_channels: 16, kernel_size: 3, padding: same}
  - batchnorm1d: {name: bn3}
  - relu
  - global_avgpool: {name: gap}
  - concat: {name: features, from: [lstm_drop, gap]}
  - linear: {name: head, out_features: 5}
"""


class LastState(nn.Module):
    def __init__(self, features, hidden):
        super().__init__()
        self.rnn = nn.LSTM(features, hidden, batch_first=True)

    def forward(self, x):
        _, (h_n, _) = self.rnn(x)
        return h_n[-1]


class LstmFcn(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = LastState(3, 8)
        self.lstm_drop = nn.Dropout(0.8)
        self.conv1, self.bn1 = nn.Conv1d(3, 16, 7, padding="same"), nn.BatchNorm1d(16)
        self.conv2, self.bn2 = nn.Conv1d(16, 32, 5, padding="same"), nn.BatchNorm1d(32)
        self.conv3, self.bn3 = nn.Conv1d(32, 16, 3, padding="same"), nn.BatchNorm1d(16)
        self.head = nn.Linear(8 + 16, 5)

    def forward(self, series):
        a = self.lstm_drop(self.lstm(series.transpose(1, 2)))
        h = series
        for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)):
            h = torch.relu(bn(conv(h)))
        return self.head(torch.cat([a, h.mean(dim=2)], dim=1))


ARCHITECTURES = {
    "residual_block": (RESNET, ResidualBlock),
    "inception": (INCEPTION, Inception),
    "lstm_fcn": (LSTM_FCN, LstmFcn),
}

FRESH = textwrap.dedent(
    """
    import importlib.util, sys, torch
    torch.set_num_threads(1)  # as in-process (one_thread): a conv's sums depend on the split
    for out in sys.argv[1:]:
        spec = importlib.util.spec_from_file_location("model", out + "/model.py")
        mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
        assert not any(m.startswith("netspec") for m in sys.modules), "model.py must not need netspec"
        model = getattr(mod, open(out + "/class.txt").read())()
        model.load_state_dict(torch.load(out + "/weights.pt", weights_only=True))
        xs = torch.load(out + "/xs.pt", weights_only=True)
        with torch.no_grad():
            torch.save(model.eval()(*xs), out + "/y_fresh.pt")
    """
)


def two_inputs_two_outputs_text(train: str = "") -> str:
    return (
        "netspec: 1\n"
        "name: two_heads\n"
        "inputs:\n"
        "  image: {shape: [3, 8, 8]}\n"
        "  meta: {shape: [5]}\n"
        "layers:\n"
        "  - conv2d: {name: conv, out_channels: 4, kernel_size: 3}\n"
        "  - global_avgpool: {name: pooled}\n"
        "  - linear: {name: embed, from: meta, out_features: 4}\n"
        "  - concat: {name: both, from: [pooled, embed]}\n"
        "  - linear: {name: logits, out_features: 2}\n"
        "  - multiply: {name: gated, from: [pooled, embed]}\n"
        "outputs: [gated, logits]\n" + train
    )


BUILT = {**{name: text for name, (text, _) in ARCHITECTURES.items()}, "two_heads": two_inputs_two_outputs_text()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """`netspec build` for each spec, then one fresh interpreter that imports every model.py with
    its weights (one interpreter start, not four). name -> (typed, inputs, fresh outputs, dir)."""
    from netspec.cli import main

    out = {}
    for name, text in BUILT.items():
        root = tmp_path_factory.mktemp(name)
        path = root / f"{name}.yaml"
        path.write_text(text)
        assert main(["build", str(path), "-o", str(root / "build")]) == 0
        res = compile_text(text)
        assert res.ok, [d.render() for d in res.diagnostics]
        xs = make_inputs(res.typed, 2)
        torch.save(xs, root / "build" / "xs.pt")
        (root / "build" / "class.txt").write_text(class_name(res.typed.graph.name))
        out[name] = (res.typed, xs, root / "build")
    dirs = [str(d) for _, _, d in out.values()]
    proc = subprocess.run([sys.executable, "-c", FRESH, *dirs], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return {
        name: (typed, xs, torch.load(d / "y_fresh.pt", weights_only=True), d) for name, (typed, xs, d) in out.items()
    }


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_architecture_matches_hand_written_torch(name, built):
    typed, xs, y_fresh, out = built[name]
    reference = ARCHITECTURES[name][1]()
    assert typed.total_params == sum(p.numel() for p in reference.parameters())
    assert typed.total_buffers == sum(b.numel() for b in reference.buffers())
    assert json.loads((out / "summary.json").read_text())["total_params"] == typed.total_params

    module = lower(typed, seed=0).eval()  # seed 0: the very weights build wrote
    reference.load_state_dict(module.state_dict())  # strict: the same names and shapes
    with torch.no_grad():
        y = module(*xs)
        torch.testing.assert_close(y, reference.eval()(*xs))
    assert torch.equal(y, y_fresh)
    assert not typed.is_chain


def test_residual_block_resolved_spec_names_every_source():
    res = compile_text(RESNET)
    text = resolved_spec(res.typed, res.doc.data)
    assert "      name: conv1\n      from: [x]  # default\n" in text
    assert "      name: residual\n      from: [bn2, x]\n" in text
    assert "      name: out\n      from: [residual]  # default\n" in text
    assert text.endswith("outputs: [out]  # default\n")
    assert "  # generated" not in text  # every layer has its own name
    auto = compile_text(INCEPTION)
    assert "      name: relu_1  # generated\n      from: [b2_reduce]  # default\n" in resolved_spec(
        auto.typed, auto.doc.data
    )


# --- two inputs, two outputs -----------------------------------------------------------------


def test_two_outputs_come_back_as_a_tuple_in_outputs_order(built):
    typed, (image, meta), y_fresh, _ = built["two_heads"]
    assert [i.name for i in typed.graph.inputs] == ["image", "meta"]
    assert typed.graph.outputs == ("gated", "logits")
    assert [t.shape for t in typed.outputs] == [(4,), (2,)]
    module = lower(typed, seed=0).eval()
    with torch.no_grad():
        gated, logits = module(image, meta)
        pooled = module.conv(image).mean(dim=(2, 3))
        embed = module.embed(meta)
        assert torch.equal(gated, pooled * embed)
        assert torch.equal(logits, module.logits(torch.cat([pooled, embed], dim=1)))
    assert isinstance(y_fresh, tuple) and len(y_fresh) == 2  # model.py returns the same tuple
    assert torch.equal(y_fresh[0], gated) and torch.equal(y_fresh[1], logits)
    with pytest.raises(ValueError, match="chains of layers only"):
        module(image, meta, lengths=torch.tensor([8, 8]))


def test_summarize_json_lists_inputs_outputs_and_sources(tmp_path, cli):
    path = tmp_path / "two_heads.yaml"
    path.write_text(two_inputs_two_outputs_text())
    code, out, err = cli("summarize", path, "-f", "json", "-b", "2")
    assert code == 0, err
    data = json.loads(out)
    assert data["inputs"] == {"image": [2, 3, 8, 8], "meta": [2, 5]}
    assert data["outputs"] == {"gated": [2, 4], "logits": [2, 2]}
    assert list(data["outputs"]) == ["gated", "logits"]  # the forward's order
    sources = {layer["name"]: layer["from"] for layer in data["layers"]}
    assert sources == {
        "conv": ["image"],
        "pooled": ["conv"],
        "embed": ["meta"],
        "both": ["pooled", "embed"],
        "logits": ["both"],
        "gated": ["pooled", "embed"],
    }
    for fmt in ("text", "markdown"):
        code, out, err = cli("summarize", path, "-f", fmt)
        assert code == 0, err
        assert "gated" in out and "logits" in out


def test_train_refuses_a_graph_with_two_inputs(tmp_path, cli):
    path = tmp_path / "two_heads.yaml"
    text = two_inputs_two_outputs_text("train:\n  data: digits\n  epochs: 1\n")
    path.write_text(text)
    code, _, err = cli("train", path, "-o", tmp_path / "run", "-q")
    assert code == 1
    assert "training needs one input and one output" in err
    assert f":{at(text, 'train:')[0]}:" in err  # located at the train: key
    assert not (tmp_path / "run").exists()


def test_variable_length_needs_a_chain():
    """A symbolic time axis in a graph compiles (fixed-length use), but lengths are refused."""
    text = spec(
        "conv1d: {name: a, out_channels: 4, kernel_size: 3, padding: same}",
        "add: {from: [a, x]}",
        inputs="x: {shape: [4, T]}",
        extra="dims: {T: 10}\n",
    )
    res = check(text)
    assert res.ok and not res.typed.is_chain
    module = lower(res.typed).eval()
    x = torch.randn(2, 4, 10)
    with torch.no_grad():
        assert torch.equal(module(x), module.a(x) + x)
    with pytest.raises(ValueError, match="chains of layers only"):
        module(x, lengths=torch.tensor([10, 7]))
    assert "lengths" not in model_source(res.typed)


# --- symbolic dims and other corners ---------------------------------------------------------


def test_symbolic_dims_that_agree_merge_though_written_differently():
    """Two kernel-2 convs and one kernel-3 conv both give T-2 (symbolic dims are kept in canonical
    form, ir/dims.py), so the add is legal (torch runs it at any T); a real difference is still an
    error."""
    text = spec(
        "conv1d: {name: a1, out_channels: 4, kernel_size: 2}",
        "conv1d: {name: a2, out_channels: 4, kernel_size: 2}",
        "conv1d: {name: b, from: x, out_channels: 4, kernel_size: 3}",
        "add: {name: sum, from: [a2, b]}",
        "concat: {name: cat, from: [b, sum, a2]}",
        inputs="x: {shape: [4, T]}",
        extra="dims: {T: 12}\n",
    )
    res = check(text)
    assert res.ok, [d.render() for d in res.diagnostics]
    module = lower(res.typed).eval()
    for length in (3, 12, 31):
        x = torch.randn(2, 4, length)
        with torch.no_grad():
            y = module(x)
            assert torch.equal(y[:, 4:8], module.a2(module.a1(x)) + module.b(x))
        (shape,) = res.typed.outputs
        assert tuple(y.shape) == (2, *(evaluate(d, {"T": length}) for d in shape.shape))

    wrong = spec(
        "conv1d: {name: a, out_channels: 4, kernel_size: 2}",
        "conv1d: {name: b, from: x, out_channels: 4, kernel_size: 3}",
        "add: {from: [a, b]}",
        inputs="x: {shape: [4, T]}",
    )
    d = only_error(check(wrong))
    assert d.message == "add 'add_1': add needs inputs of the same shape"
    assert d.received == "input 1: (B, 4, T-2); dim 2 (batch is 0) is T-2, not T-1"  # constants folded
    other_symbol = spec("add: {from: [x, y]}", inputs="x: {shape: [4, T]}; y: {shape: [4, S]}")
    assert only_error(check(other_symbol)).received == "input 1: (B, 4, S); dim 2 (batch is 0) is S, not T"


def test_an_input_may_be_an_output(tmp_path):
    text = spec("relu: {name: act}", extra="outputs: [x, act]\n")
    res = check(text)
    assert res.ok and not res.diagnostics
    module = lower(res.typed).eval()
    x = torch.randn(2, 8, 16)
    same, act = module(x)
    assert same is x and torch.equal(act, torch.relu(x))
    mod = load_model_py(model_source(res.typed), tmp_path / "model.py", "netspec_graph_input_out")
    generated = getattr(mod, class_name(res.typed.graph.name))().eval()
    assert [torch.equal(a, b) for a, b in zip(generated(x), (x, act), strict=True)] == [True, True]
