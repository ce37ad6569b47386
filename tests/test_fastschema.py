"""The compiled yes/no schema check (spec/fastschema.py) gives jsonschema's answer, always.

validate() trusts a "valid" from the fast check and never asks jsonschema, so any document the
two disagree on would either slip through unchecked or be rejected with no diagnostic. jsonschema
is the oracle here: on every spec in specs/, thousands of mutated ones (the fuzzer's mutations),
hypothesis-drawn specs, and the JSON Schema corner cases the fast check reimplements.
"""

import copy
import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netspec.spec.fastschema import compile_schema, unsupported
from netspec.spec.loader import load_text
from netspec.spec.schema import build_schema, evaluated_layer_schema
from netspec.spec.validate import block_signature, jsonschema_validator, validate

from .conftest import ROOT
from .fuzz import mutate_data
from .test_fuzz_schema import HypothesisDraw, RandomDraw, draw_spec

SPECS = sorted((ROOT / "specs").glob("*.yaml"))
_cache: dict = {}


def answers(data) -> tuple[bool, bool]:
    """(fast check, jsonschema) on a document, with the schema its blocks give it."""
    sig = block_signature(data)
    if sig not in _cache:
        schema = build_schema(sig)
        _cache[sig] = (compile_schema(schema), jsonschema_validator(schema))
    fast, slow = _cache[sig]
    return fast(data), slow.is_valid(data)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_shipped_spec_is_valid_for_both(path):
    data = load_text(path.read_text(), str(path)).data
    assert answers(data) == (True, True)


def test_mutated_specs_get_the_same_answer():
    """2,000 documents, one to three structural mutations each (deleted keys, extremes, other
    types, typo'd keys, reordered lists, other layer types, wiring, repeats, expressions, nesting,
    block wrappers): both say valid, or both say invalid."""
    rng = random.Random(7)
    docs = [load_text(p.read_text(), str(p)).data for p in SPECS]
    verdicts = {True: 0, False: 0}
    for case in range(2000):
        data = copy.deepcopy(rng.choice(docs))
        for _ in range(rng.randint(1, 3)):
            mutate_data(rng, data)
        fast, slow = answers(data)
        assert fast == slow, f"case {case}: fast {fast}, jsonschema {slow}: {data!r:.2000}"
        verdicts[slow] += 1
    assert min(verdicts.values()) > 200, verdicts  # both answers are well represented


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_drawn_specs_get_the_same_answer(data):
    """Specs drawn from each layer's schema (values in and just outside the bounds)."""
    text = draw_spec(HypothesisDraw(data))
    doc = load_text(text, "drawn.yaml").data
    fast, slow = answers(doc)
    assert fast == slow, text


def test_seeded_drawn_specs_get_the_same_answer():
    """The same generator with 400 fixed seeds (the hypothesis test above varies per run)."""
    for seed in range(400):
        text = draw_spec(RandomDraw(seed))
        assert answers(load_text(text, "drawn.yaml").data)[0] == answers(load_text(text, "drawn.yaml").data)[1], text


def test_validate_explains_what_the_fast_check_rejects():
    """The fast check only decides; a rejected document still gets jsonschema's diagnostics."""
    doc = load_text("netspec: 1\ninputs: {x: {shape: [4]}}\nlayers:\n  - linear: {out_features: 0}\n", "f.yaml")
    diags = validate(doc)
    assert [d.path for d in diags] == ["layers[0].linear.out_features"]
    assert validate(load_text("netspec: 1\ninputs: {x: {shape: [4]}}\nlayers: [relu]\n", "f.yaml")) == []


EVALUATED = jsonschema_validator(evaluated_layer_schema())
IS_EVALUATED = compile_schema(evaluated_layer_schema())


@pytest.mark.parametrize(
    "item",
    [
        {"conv2d": {"out_channels": 8, "kernel_size": 3}},
        {"conv2d": {"out_channels": 0, "kernel_size": 3}},
        {"conv2d": {"out_channels": 8.0, "kernel_size": [3, 3]}},
        {"conv2d": {"out_channels": True, "kernel_size": 3}},
        {"linear": {"out_features": 2**31}},
        {"dropout": {"p": 1.5}},
        {"maxpool2d": {"kernel_size": [2, 2, 2]}},
        {"lstm": {"hidden_size": 8, "bidirectional": 1}},
    ],
)
def test_evaluated_layer_schema_same_answer(item):
    assert IS_EVALUATED(item) == EVALUATED.is_valid(item)


# JSON Schema semantics the fast check reimplements, each against jsonschema itself.
CORNERS = [
    ({"type": "integer"}, [1, 1.0, 1.5, True, "1", None, 2**70]),
    ({"type": "number"}, [1, 1.5, True, False, "1.5"]),
    ({"type": ["string", "null"]}, ["a", None, 0, []]),
    ({"enum": [1, "a", [1, 2], {"k": 1}]}, [1, 1.0, True, "a", [1, 2], [1.0, 2], [True, 2], {"k": 1}, {"k": True}]),
    ({"enum": [True, 0]}, [True, 1, 0, False, 0.0]),
    ({"const": 1}, [1, 1.0, True, "1"]),
    ({"minimum": 1, "maximum": 3}, [0, 1, 3, 3.5, "x", True, math.nan, math.inf]),
    ({"exclusiveMinimum": 0, "exclusiveMaximum": 1}, [0, 0.5, 1, [0]]),
    ({"pattern": "^a+$"}, ["a", "aa", "ba", 1, None]),
    ({"pattern": "b"}, ["abc", "a"]),  # search, not match
    # ECMA-262's `$` is the end of input, not before a final newline (Python's); the netspec
    # validator of both checkers reads it so, and `\\$` and a `$` in a class stay literal
    ({"pattern": "^a+$"}, ["a\n", "a\r\n", "\na", "a\n\n"]),
    ({"pattern": "^(?!b$)[ab]+$"}, ["b", "b\n", "ab", "ab\n"]),
    ({"pattern": r"^a\$$"}, ["a$", "a$\n", "a"]),
    ({"pattern": "^[$]$"}, ["$", "$\n"]),
    ({"items": {"type": "integer"}, "minItems": 1, "maxItems": 2}, [[], [1], [1, 2], [1, 2, 3], [1.5], "ab", {}]),
    ({"uniqueItems": True}, [[1, 2], [1, 1.0], [1, True], [[1], [1]], [{"a": 1}, {"a": 1.0}], "aa"]),
    ({"uniqueItems": False}, [[1, 1]]),
    (
        {"properties": {"a": {"type": "integer"}}, "additionalProperties": False, "required": ["a"]},
        [{"a": 1}, {"a": "x"}, {}, {"a": 1, "b": 2}, [1], "a"],
    ),
    ({"additionalProperties": {"type": "string"}}, [{"x": "y"}, {"x": 1}, {}]),
    ({"propertyNames": {"pattern": "^[a-z]+$"}, "minProperties": 1, "maxProperties": 2}, [{}, {"ab": 1}, {"A": 1}]),
    ({"if": {"type": "string"}, "then": {"enum": ["a"]}, "else": {"type": "integer"}}, ["a", "b", 1, 1.5]),
    ({"if": {"type": "string"}, "then": {"pattern": "x"}}, ["x", "y", 3]),
    ({"not": {"enum": ["a"]}}, ["a", "b"]),
    ({"$defs": {"n": {"type": "array", "items": {"$ref": "#/$defs/n"}}}, "$ref": "#/$defs/n"}, [[], [[[]]], [[1]]]),
    ({"type": "object", "title": "t", "description": "d", "default": {}, "examples": [{}]}, [{}, []]),
    (True, [1, None]),
    (False, [1, None]),
]


@pytest.mark.parametrize(("schema", "instances"), CORNERS, ids=[str(i) for i in range(len(CORNERS))])
def test_corner_cases_match_jsonschema(schema, instances):
    fast, slow = compile_schema(schema), jsonschema_validator(schema)
    for x in instances:
        assert fast(x) == slow.is_valid(x), (schema, x)


@pytest.mark.parametrize("schema", [{"minLength": 1}, {"oneOf": [{}]}, {"format": "email"}, {"$ref": "other.json"}])
def test_unknown_keywords_fail_loudly(schema):
    """A keyword the fast check does not implement must never be skipped silently."""
    with pytest.raises(ValueError, match="fastschema"):
        compile_schema(schema)(1)


def test_published_schema_compiles_completely():
    """No keyword anywhere in the published, a per-document or the evaluated schema is one the
    fast check cannot check (it compiles properties and refs lazily, at first use)."""
    for schema in (build_schema(), build_schema((("b", ("c",), ("c",)),)), evaluated_layer_schema()):
        assert unsupported(schema) == []
    assert unsupported({"properties": {"a": {"items": {"format": "email"}}}}) == ["#/properties/a/items: format"]


def test_lazy_schema_equals_the_full_one_where_it_was_used():
    """The fast path's schema makes a layer type's schema only when a spec uses it, and makes it
    exactly as the published schema has it."""
    full, lazy = build_schema(()), build_schema((), lazy=True)
    assert "conv2d" not in lazy["$defs"] and lazy["$defs"]["conv2d"] == full["$defs"]["conv2d"]
    assert set(lazy["$defs"]) == {"layer", "block", "expr", "conv2d"}
    assert compile_schema(lazy)({"netspec": 1, "inputs": {"x": {"shape": [3]}}, "layers": [{"linear": 4}]})
    assert "linear" in lazy["$defs"] and "conv1d" not in lazy["$defs"]
