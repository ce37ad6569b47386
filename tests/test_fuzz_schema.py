"""Whole specs fuzzed from the JSON Schema, with PyTorch as the oracle.

The chain, graph and contract tests draw parameters from each kind's few hand-picked samples.
Here every parameter value comes from the schema an editor validates against
(spec/schema.build_schema): its types, bounds, enums and list lengths, with edge values (0, the
minimum, 2**31-1, floats at or next to a bound, tiny and huge floats, the odd `${...}`
expression, and one value in fifty just outside the schema), plus `repeat:` and `scale:` from
theirs, over random inputs (1-2 of rank 1-4; small, large or symbolic dims, bound in `dims:` or
not; float32 or int64) and random `from:` wiring of 1-6 layers (one earlier value each, merges
2-3). Whatever comes out, compile_text must not raise; what it rejects it must locate; what it
accepts must run in torch with exactly the inferred shapes, dtypes, parameter, buffer and MAC
counts.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from netspec.compiler import Result, compile_text
from netspec.ir.types import TensorType
from netspec.lower.module import lower
from netspec.ops import all_ops
from netspec.ops.params import IntList
from netspec.spec.schema import build_schema

from .test_graphs import as_tuple, make_inputs
from .test_op_contract import (
    TORCH_DTYPES,
    one_thread,  # noqa: F401  (autouse: tiny tensors run faster on one thread)
    weight_elements,
)
from .test_op_contract import draw_value as contract_value
from .test_property_chains import evaluate, fits

OPS = all_ops()
NAMES = sorted(OPS)
MERGES = [name for name in NAMES if OPS[name].arity is None]
RECURRENT = {name for name in NAMES if OPS[name].family == "recurrent"}
SINGLE = [name for name in NAMES if OPS[name].arity == 1]
SCHEMA = build_schema()
DEFS = SCHEMA["$defs"]
SCALE = SCHEMA["properties"]["scale"]["properties"]
# Up to 1,000 by schema; the generator stays at 50, as one thousand-fold layer costs ~0.2 s per
# compile (and there are up to TRIES * 6 per spec). The 10,000-layer limit has its own tests.
REPEAT = {**DEFS["linear"]["then"]["properties"]["repeat"]["else"], "maximum": 50}
FILE = "<fuzz>"
ROOT = Path(__file__).resolve().parents[1]
BIG = 2**31 - 1
BATCH = 2
TRIES = 3  # draws per layer while the prefix compiles
# beyond these a forward pass costs more than the property is worth; compile_text still runs
MAX_PARAMS = 2_000_000
MAX_ELEMS = 1_000_000  # per sample, any activation or input
MAX_MACS = 20_000_000  # per sample
MAX_LAYERS = 100  # after `repeat:`
MAX_STACKED = 16  # recurrent num_layers summed over the spec: torch builds and runs each one


# --- drawing --------------------------------------------------------------------------------
# Generation goes through a `Draw`, so hypothesis (shrinkable draws) and random.Random (the
# deterministic accepted/rejected count) share one generator. `chance` shrinks toward False.


class HypothesisDraw:
    def __init__(self, data):
        self.data = data

    def pick(self, seq: Sequence):
        return self.data.draw(st.sampled_from(list(seq)))

    def integer(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def real(self, lo: float, hi: float, exclude_max: bool = False) -> float:
        return self.data.draw(st.floats(lo, hi, exclude_max=exclude_max, allow_nan=False, allow_infinity=False))

    def chance(self, p: float) -> bool:
        return self.data.draw(st.integers(0, 99)) >= round(100 * (1 - p))


class RandomDraw:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def pick(self, seq: Sequence):
        return self.rng.choice(list(seq))

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def real(self, lo: float, hi: float, exclude_max: bool = False) -> float:
        x = self.rng.uniform(lo, hi)
        return math.nextafter(hi, -math.inf) if exclude_max and x >= hi else x

    def chance(self, p: float) -> bool:
        return self.rng.random() < p


# --- values from the schema -----------------------------------------------------------------


def param_schema(op: str, param: str) -> dict:
    return DEFS[op]["then"]["properties"][param]


def unwrap(schema: dict) -> dict:
    """The plain value schema inside `exprable`'s if-expression-then-expr-else wrapper."""
    if schema.get("then") == {"$ref": "#/$defs/expr"}:
        return schema["else"]
    return schema


def draw_int(schema: dict, draw) -> int:
    """Mostly small values near the minimum (the plausible ones), sometimes an edge value or
    anything in range."""
    lo, hi = schema.get("minimum", -(2**31)), schema.get("maximum", BIG)
    mode = draw.pick(["tiny"] * 4 + ["small"] * 3 + ["edge", "any"])
    if mode in ("tiny", "small"):
        a = lo if lo > -3 else -2
        return draw.integer(a, min(hi, a + (2 if mode == "tiny" else 8)))
    if mode == "edge":
        return draw.pick(sorted({v for v in (lo, lo + 1, -1, 0, 1, 2**16, hi - 1, hi) if lo <= v <= hi}))
    return draw.integer(lo, hi)


def draw_float(schema: dict, draw) -> float:
    lo, excl = schema.get("minimum"), "exclusiveMaximum" in schema
    if "exclusiveMinimum" in schema:
        lo = math.nextafter(schema["exclusiveMinimum"], math.inf)
    hi = schema.get("exclusiveMaximum", schema.get("maximum"))
    mode = draw.pick(["small"] * 5 + ["edge", "any"])
    if mode == "small":
        a = -2.0 if lo is None else lo
        b = a + 2.0 if hi is None else min(hi, a + 2.0)
        return draw.real(a, b, exclude_max=excl and b == hi)
    if mode == "edge":
        near = [0.0, -0.0, 1.0, 1e-300, 5e-324, 1e-12, 1e30, -1e30, -1.0]
        if lo is not None:
            near += [lo, math.nextafter(lo, math.inf)]
        if hi is not None:
            near += [math.nextafter(hi, -math.inf)] + ([] if excl else [hi])
        return draw.pick(
            [v for v in near if (lo is None or v >= lo) and (hi is None or v < hi or (v == hi and not excl))]
        )
    return draw.real(-1e6 if lo is None else lo, 1e6 if hi is None else hi, exclude_max=excl)


def draw_outside(schema: dict, draw):
    """Mostly a value the schema rejects: one past a bound, a list one too long or empty, another
    type; the schema check must locate it like any other mistake."""
    out: list = ["oops", 1.5, True, None, {}]
    if "minimum" in schema:
        out.append(schema["minimum"] - 1)
    if "maximum" in schema:
        out.append(schema["maximum"] + 1)
    for bound in ("exclusiveMinimum", "exclusiveMaximum"):
        if bound in schema:
            out.append(schema[bound])
    if "maxItems" in schema:
        out.append([1] * (schema["maxItems"] + 1))
    if schema.get("minItems"):
        out.append([])
    return draw.pick(out)


def draw_value(schema: dict, draw):
    """A value valid under `schema` (a param's fragment): any listed type, within its bounds;
    one time in fifty, one outside it."""
    schema = unwrap(schema)
    if draw.chance(0.02):
        return draw_outside(schema, draw)
    if "enum" in schema:
        return draw.pick(schema["enum"])
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    kind = draw.pick(types)
    if kind == "null":
        return None
    if kind == "boolean":
        return draw.pick([False, True])
    if kind == "string":  # Padding: its if-string-then-enum names the words
        return draw.pick(schema["then"]["enum"])
    if kind == "array":
        lo = schema.get("minItems", 0)
        n = draw.integer(lo, schema.get("maxItems", lo + 4))
        return [draw_value(schema["items"], draw) for _ in range(n)]
    value = draw_int(schema, draw) if kind == "integer" else draw_float(schema, draw)
    if draw.chance(0.04):  # the same number, written as an expression the parser evaluates
        return f"${{{json.dumps(value)}}}"
    return value


def draw_params(op, source: TensorType | None, draw) -> dict:
    """Required params always; optional ones often; inferred ones (which the user may write and
    netspec then checks) rarely. A reshape target or a permutation valid by schema rarely fits
    the input, so when the input is known, half the time it is drawn as test_op_contract does."""
    params = {}
    for p in op.params:
        if not draw.chance(0.06 if p.inferred else 1.0 if p.required else 0.35):
            continue
        schema = param_schema(op.name, p.name)
        if isinstance(p.kind, IntList) and source is not None and draw.chance(0.5):
            params[p.name] = contract_value(p, source.shape, draw.pick)
        else:
            params[p.name] = draw_value(schema, draw)
    return params


# --- inputs and wiring ----------------------------------------------------------------------


def draw_dim(draw):
    kind = draw.pick(["small"] * 10 + ["symbol"] * 2 + ["edge"])
    if kind == "small":
        return draw.integer(1, 8)
    if kind == "symbol":
        return draw.pick(["T", "S"])
    return draw.pick([1, 16, 64, 4096, BIG])


def draw_inputs(draw) -> tuple[dict[str, TensorType], dict[str, int]]:
    """One or two inputs of rank 1-4; symbols are mostly bound in `dims:`, to small sizes."""
    inputs = {}
    for name in ["x", "y"][: draw.pick([1, 1, 1, 2])]:
        shape = tuple(draw_dim(draw) for _ in range(draw.integer(1, 4)))
        inputs[name] = TensorType(shape, draw.pick(["float32"] * 3 + ["int64"]))
    symbols = sorted({d for t in inputs.values() for d in t.shape if isinstance(d, str)})
    dims = {s: draw.pick([draw.integer(1, 12), draw.integer(1, 12), BIG]) for s in symbols if draw.chance(0.9)}
    return inputs, dims


def draw_scale(draw) -> dict | None:
    """`scale:` (width, depth, divisor) one spec in ten, each key from its schema or left out."""
    if not draw.chance(0.1):
        return None
    return {key: draw_value(schema, draw) for key, schema in SCALE.items() if draw.chance(0.5)}


def spec_text(
    inputs: dict[str, TensorType], dims: dict, layers: list[str], outputs: list[str] | None, scale: dict | None
) -> str:
    """JSON is valid YAML flow syntax, so every value is written with json.dumps."""
    lines = ["netspec: 1", "inputs:"]
    lines += [f"  {name}: {json.dumps({'shape': list(t.shape), 'dtype': t.dtype})}" for name, t in inputs.items()]
    if dims:
        lines.append(f"dims: {json.dumps(dims)}")
    if scale is not None:
        lines.append(f"scale: {json.dumps(scale)}")
    lines.append("layers:")
    lines += [f"  - {item}" for item in layers]
    if outputs:
        lines.append(f"outputs: {json.dumps(outputs)}")
    return "\n".join(lines) + "\n"


PREV = None  # the layer before, read by default (it may have no name to write)


def layer_item(op, params: dict, name: str | None, sources: list, draw) -> str:
    """One `layers:` entry: bare, null or scalar shorthand where that can say it, else a mapping
    with `from:` as one name or a list, and now and then `repeat:`."""
    if draw.chance(0.08):
        params = {**params, "repeat": draw_value(REPEAT, draw)}
    if name is None and sources == [PREV] and op.arity == 1 and draw.chance(0.7):
        if not params and op.bare_ok:
            return draw.pick([op.name, json.dumps({op.name: None})])
        if op.shorthand and set(params) == {op.shorthand}:
            return json.dumps({op.name: params[op.shorthand]})
    body = dict(params)
    if name is not None:
        body["name"] = name
    if sources != [PREV]:
        body["from"] = sources[0] if len(sources) == 1 and draw.chance(0.5) else sources
    return json.dumps({op.name: body})


def merge_sources(op, values: dict[str, TensorType | None], draw) -> list[str]:
    """2-3 earlier values, mostly of one shape and dtype (for concat: equal but for dim 1) when
    their types are known; the same one may come twice."""
    names = list(values)
    if all(t is not None for t in values.values()) and draw.chance(0.8):
        groups: dict = {}
        for n, t in values.items():
            key = (t.rank, t.shape[1:], t.dtype) if op.name == "concat" else (t.shape, t.dtype)
            groups.setdefault(key, []).append(n)
        names = draw.pick(sorted(groups.values(), key=lambda g: (-len(g), g)))
    return [draw.pick(names) for _ in range(draw.pick([2, 2, 3]))]


def draw_layer(values: dict[str, TensorType | None], prev_type: TensorType | None, draw):
    """(op, sources, type of the first source): a merge one time in five; otherwise one source
    (the previous layer half the time) and, mostly, a layer type that takes its type if known."""
    if draw.chance(0.2):
        op = OPS[draw.pick(MERGES)]
        sources = merge_sources(op, values, draw)
        return op, sources, values[sources[0]]
    sources = [PREV] if draw.chance(0.5) else [draw.pick(list(values))]
    source_type = prev_type if sources == [PREV] else values[sources[0]]
    if source_type is not None and draw.chance(0.8):
        return OPS[draw.pick([n for n in SINGLE if fits(OPS[n], source_type)])], sources, source_type
    return OPS[draw.pick(SINGLE)], sources, source_type


def draw_spec(draw) -> str:
    """Inputs, then 1-6 layers, then maybe `outputs:`. While the prefix compiles, its types steer
    the choice of layer type and merge sources, and a layer that breaks it is redrawn up to
    `tries` times (one spec in three allows one try, so rejections stay common); after the first
    rejection the rest is drawn blind."""
    inputs, dims = draw_inputs(draw)
    scale = draw_scale(draw)
    values: dict[str, TensorType | None] = dict(inputs)
    prev_type: TensorType | None = inputs["x"]
    layers: list[str] = []
    tries = draw.pick([1, TRIES, TRIES])
    for i in range(draw.integer(1, 6)):
        name = f"n{i}" if draw.chance(0.75) else None
        for _ in range(tries if prev_type is not None else 1):
            op, sources, source_type = draw_layer(values, prev_type, draw)
            item = layer_item(op, draw_params(op, source_type, draw), name, sources, draw)
            if prev_type is None:
                break  # blind: nothing to learn from compiling
            res = compile_text(spec_text(inputs, dims, [*layers, item], None, scale), FILE)
            if res.ok:
                break
        layers.append(item)
        if prev_type is not None:
            prev_type = res.typed.output if res.ok else None  # `repeat: 0` adds no layer
        if name is not None:
            values[name] = prev_type
        if prev_type is None:
            values = dict.fromkeys(values)
    named = [n for n in values if n not in inputs]
    outputs = None
    if named and draw.chance(0.15):
        outputs = [draw.pick(named)]
        if draw.chance(0.5):
            outputs.append(draw.pick([n for n in values if n != outputs[0]]))
    return spec_text(inputs, dims, layers, outputs, scale)


# --- checking -------------------------------------------------------------------------------


def assert_diagnostics_well_formed(res: Result) -> None:
    """Every diagnostic names a code, says something and points into the file (a line, or the
    file itself for a whole-file problem)."""
    for d in res.diagnostics:
        assert d.code and d.message.strip(), d.render()
        assert d.loc.file == FILE, d.render()
        assert d.loc.line >= 1 or (d.loc.line == 0 and d.loc.col == 0), d.render()


def runnable(res: Result) -> bool:
    """Accepted and cheap enough to run: every symbol bound, few layers, small weights, MACs and
    activations."""
    typed = res.typed
    if typed.unbound or typed.total_macs is None or len(typed.layers) > MAX_LAYERS:
        return False
    stacked = sum(la.node.params["num_layers"] for la in typed.layers if la.node.op in RECURRENT)
    if typed.total_params > MAX_PARAMS or typed.total_macs > MAX_MACS or stacked > MAX_STACKED:
        return False
    elems = [la.out_elems for la in typed.layers]
    elems += [math.prod(evaluate(d, typed.bindings) for d in t.shape) for t in typed.inputs]
    return all(e is not None and e <= MAX_ELEMS for e in elems)


def run_in_torch(res: Result) -> None:
    """One forward pass in eval mode; forward hooks catch what each layer really returns."""
    typed = res.typed
    model = lower(typed, seed=0).eval()
    xs = make_inputs(typed, BATCH)
    seen: dict[str, torch.Tensor] = {}
    for layer in typed.layers:
        name = layer.node.name
        model.get_submodule(name).register_forward_hook(lambda m, args, out, name=name: seen.__setitem__(name, out))
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        ys = as_tuple(model(*xs))

    counts = flops.get_flop_counts()  # per module, keyed by its qualified name
    for layer in typed.layers:
        name, y = layer.node.name, seen[layer.node.name]
        static = tuple(evaluate(d, typed.bindings) for d in layer.out_type.shape)
        assert tuple(y.shape) == (BATCH, *static), (name, tuple(y.shape), layer.out_type.shape)
        assert math.prod(y.shape[1:]) == layer.out_elems, name
        assert y.dtype == TORCH_DTYPES[layer.out_type.dtype], name
        child = model.get_submodule(name)
        assert layer.params == sum(p.numel() for p in child.parameters()), name
        assert layer.buffers == sum(b.numel() for b in child.buffers()), name
        counted = sum(counts.get(f"{type(model).__name__}.{name}", {}).values())
        if layer.node.op in RECURRENT:
            # T * weight elements; torch's fused (oneDNN) kernels hide their matmuls from the counter
            assert layer.macs == steps(layer, typed) * weight_elements(child), name
            assert counted in (0, 2 * BATCH * layer.macs), (name, counted, layer.macs)
        else:
            assert counted == 2 * BATCH * layer.macs, (name, counted, layer.macs)

    env = {i.name: x for i, x in zip(typed.graph.inputs, xs, strict=True)} | seen
    assert len(ys) == len(typed.outputs)
    for name, y in zip(typed.graph.outputs, ys, strict=True):
        assert y is env[name] or torch.equal(y, env[name]), name
    assert sum(p.numel() for p in model.parameters()) == typed.total_params
    assert sum(b.numel() for b in model.buffers()) == typed.total_buffers


def steps(layer, typed) -> int:
    """The time steps a recurrent layer reads: dim 0 of its (T, F) input, symbols bound."""
    return evaluate(layer.in_type.shape[0], typed.bindings)


def check_spec(text: str) -> tuple[Result, bool]:
    """(the result, whether torch ran it). compile_text must not raise, whatever the text."""
    res = compile_text(text, FILE)
    assert_diagnostics_well_formed(res)
    if not res.ok:
        assert res.errors, "not ok, yet no error was reported"
        return res, False
    if not runnable(res):
        return res, False
    run_in_torch(res)
    return res, True


# --- tests ----------------------------------------------------------------------------------


# About one draw in six runs past hypothesis's entropy budget (6-layer specs with 3 tries each);
# those are just discarded, and they must not trip the data_too_large health check.
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_schema_fuzzed_spec_checks_or_matches_torch(data):
    text = draw_spec(HypothesisDraw(data))
    res, ran = check_spec(text)
    event("ran in torch" if ran else "accepted, too big or unbound" if res.ok else "rejected")


def test_generator_yields_accepted_run_and_rejected_specs():
    """The property means something only if a fixed sample holds all three kinds of spec (about
    60% run in torch, 20% accepted but not run, 20% rejected), the runs wire many layer types
    into graphs with merges, symbols and two inputs, and the rejections come from the schema
    check as well as from shape inference."""
    outcomes = [check_spec(draw_spec(RandomDraw(seed))) for seed in range(120)]
    ran = [res for res, r in outcomes if r]
    rejected = [res for res, _ in outcomes if not res.ok]
    assert len(ran) >= 40, f"only {len(ran)}/120 specs ran in torch"
    assert len(rejected) >= 12, f"only {len(rejected)}/120 specs were rejected"
    assert {"schema", "shape"} <= {d.code for res in rejected for d in res.errors}
    ops = {la.node.op for res in ran for la in res.typed.layers}
    assert len(ops) >= 25, sorted(ops)
    assert set(MERGES) & ops
    assert sum(not res.typed.is_chain for res in ran) >= 10
    assert any(res.typed.bindings for res in ran)
    assert any(len(res.typed.inputs) == 2 for res in ran)


# --- what the fuzzer found ------------------------------------------------------------------


def one_layer(item: str, shape: list) -> str:
    return f"netspec: 1\ninputs:\n  x: {{shape: {json.dumps(shape)}}}\nlayers:\n  - {item}\n"


@pytest.mark.parametrize(
    ("item", "shape"),
    [
        ("{adaptive_avgpool2d: [null, null]}", [3, 4, 5]),
        ("{adaptive_maxpool1d: {output_size: [null]}}", [3, 5]),
    ],
)
def test_adaptive_pool_all_null_output_size_runs(item, shape):
    """Found by this fuzzer: (null, null) was lowered to output_size=None, and torch's 1d adaptive
    pools take no null at all; a null on a fixed axis is now written as that axis's size."""
    res = compile_text(one_layer(item, shape), FILE)
    assert res.ok, [d.render() for d in res.diagnostics]
    run_in_torch(res)


def test_adaptive_pool_1d_cannot_keep_a_run_time_length():
    text = one_layer("{adaptive_avgpool1d: [null]}", [3, "T"]) + "dims: {T: 9}\n"
    (d,) = compile_text(text, FILE).errors
    assert d.message == "adaptive_avgpool1d 'adaptive_avgpool1d_1': adaptive pooling cannot keep the run-time length T"


HUGE_STACK = one_layer("{lstm: {hidden_size: 1, num_layers: 2147483647}}", [3, 4])


def test_huge_num_layers_compiles_quickly():
    """num_layers: 2**31-1, the schema's maximum, once made the weight count loop per layer for
    minutes and end in MemoryError (fixed: closed form). In a child with 1 GiB of address space
    and a 3 s alarm, so a relapse fails this test instead of taking the test run down."""
    script = (
        "import resource, signal, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))\n"
        "signal.alarm(3)\n"
        "from netspec.compiler import compile_text\n"
        "res = compile_text(sys.stdin.read())\n"
        "print(res.ok, [d.render() for d in res.diagnostics])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], input=HUGE_STACK, capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    # -14: the alarm went off (SIGALRM); 1 with MemoryError: the address space ran out
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout.startswith("True"), proc.stdout


def test_published_schema_agrees_with_netspecs_schema_check():
    """What an editor checks (the published schema, tests/test_editor_lsp.py runs it in a language
    server) is what `netspec check`'s schema stage checks, on fuzzed specs of every layer type,
    valid and not: no squiggle on a spec netspec accepts, and none missing on one it refuses (the
    fuzzer writes no blocks, where the editor must allow any name)."""
    from jsonschema import Draft202012Validator

    from netspec.spec.loader import load_text
    from netspec.spec.schema import published_schema
    from netspec.spec.validate import validate

    editor = Draft202012Validator(published_schema())
    verdicts = []
    for seed in range(200):
        doc = load_text(draw_spec(RandomDraw(seed)), FILE)
        accepted = not validate(doc)
        assert editor.is_valid(doc.data) == accepted, (seed, [e.message for e in editor.iter_errors(doc.data)])
        verdicts.append(accepted)
    assert 5 <= verdicts.count(False) <= 195, "the sample must hold accepted and refused specs"
