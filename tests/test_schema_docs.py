"""Editor support and layer docs, from the registry: every field of the published JSON Schema has a
title, a description, valid examples and (where the registry has one) its default, so
yaml-language-server can offer completion and hover docs; and every layer's documented example
compiles to the output shape the docs state for it."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from netspec.compiler import compile_text
from netspec.docs import example_comment, example_spec, example_yaml, layers_markdown
from netspec.ops import all_ops
from netspec.ops.params import REQUIRED
from netspec.spec.fastschema import compile_schema
from netspec.spec.loader import load_text
from netspec.spec.schema import build_schema, evaluated_layer_schema, published_schema
from netspec.spec.train_schema import SECTIONS, TRAIN
from netspec.spec.validate import block_signature

from .conftest import ROOT

OPS = all_ops()
RESNET = load_text((ROOT / "specs" / "resnet18.yaml").read_text(), "resnet18.yaml").data
SCHEMAS = {
    "published": published_schema(),
    "with blocks": build_schema(block_signature(RESNET)),  # a document's own schema: its block uses
    "evaluated": evaluated_layer_schema(),
}


def fields(schema, path=(), parent=None):
    """(path, schema, parent) of every property of every object, anywhere in `schema`."""
    if isinstance(schema, list):
        for s in schema:
            yield from fields(s, path, parent)
        return
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        if key == "properties":
            for name, sub in value.items():
                yield (*path, name), sub, schema
                yield from fields(sub, (*path, name), schema)
        elif key == "$defs":
            for name, sub in value.items():
                yield from fields(sub, (name,), None)
        elif key in ("items", "additionalProperties", "if", "then", "else", "not", "propertyNames"):
            yield from fields(value, path, parent)


def validator(root: dict, sub: dict) -> Draft202012Validator:
    """A validator of one field's schema whose `$ref`s resolve in the whole document."""
    return Draft202012Validator({**sub, "$defs": root["$defs"]})


@pytest.mark.parametrize("which", SCHEMAS)
def test_every_field_is_annotated_with_valid_examples(which):
    root = SCHEMAS[which]
    Draft202012Validator.check_schema(root)
    seen = 0
    for path, sub, parent in fields(root):
        where = ".".join(map(str, path))
        if set(sub) == {"$ref"}:  # a layer type's key: its definition carries the docs
            target = root["$defs"][sub["$ref"].removeprefix("#/$defs/")]
            assert target.get("title") and target.get("description"), f"{where}: {sub['$ref']}"
            continue
        assert sub.get("title") == path[-1], f"{where}: title"
        assert sub.get("description", "").strip(), f"{where}: description"
        assert sub.get("examples"), f"{where}: examples"
        if path[-1] in parent.get("required", ()):
            assert "required" in sub["description"], f"{where}: a required field's description says so"
        check = validator(root, sub)
        for ex in sub["examples"]:
            assert check.is_valid(ex), f"{where}: example {ex!r} is invalid"
        if "default" in sub:
            assert check.is_valid(sub["default"]), f"{where}: default {sub['default']!r} is invalid"
        seen += 1
    assert seen > 100


def test_the_walk_reaches_every_kind_of_field():
    paths = {p for p, _, _ in fields(SCHEMAS["with blocks"])}
    for expected in [
        ("netspec",),
        ("inputs", "shape"),
        ("conv2d", "kernel_size"),
        ("lstm", "output"),
        ("block", "args"),
        ("block:basic", "channels"),
        ("train", "data", "source"),
        ("train", "early_stopping", "patience"),
        ("scale", "divisor"),
    ]:
        assert any(p[-len(expected) :] == expected for p in paths), expected


def test_defaults_are_the_registrys():
    defs = SCHEMAS["published"]["$defs"]
    for name, op in OPS.items():
        props = defs[name]["then"]["properties"]
        for p in op.params:
            d = p.default
            if d is REQUIRED or d is None:
                assert "default" not in props[p.name], f"{name}.{p.name}"
                assert p.inferred or p.doc, f"{name}.{p.name}: say what no value means"
            else:
                assert props[p.name]["default"] == (list(d) if isinstance(d, tuple) else d), f"{name}.{p.name}"
            if p.required:
                assert "required" in props[p.name]["description"]
    train = SCHEMAS["published"]["properties"]["train"]["properties"]
    tables = [((k,), row) for k, row in TRAIN.items()]
    tables += [((s, k), row) for s, table in SECTIONS.items() for k, row in table.items()]
    for path, (_, default, _) in tables:
        sub = train[path[0]] if len(path) == 1 else train[path[0]].get("else", train[path[0]])["properties"][path[1]]
        assert sub.get("default") == default, path


def test_annotations_leave_validation_alone():
    """The fast validator treats the annotations as documentation: a schema with them accepts and
    refuses what the same schema without them does."""

    def strip(s):
        if isinstance(s, dict):
            return {
                k: (strip(v) if k != "properties" else {n: strip(x) for n, x in v.items()})
                for k, v in s.items()
                if k not in ("title", "description", "default", "examples") or k == "properties"
            }
        return [strip(x) for x in s] if isinstance(s, list) else s

    root = SCHEMAS["with blocks"]
    bare_fast, bare_slow = compile_schema(strip(root)), Draft202012Validator(strip(root))
    fast = compile_schema(root)
    bad = {**RESNET, "layers": [{"conv2d": {"out_channels": 0, "kernel_size": 3}}]}
    for doc in (RESNET, bad, {**RESNET, "netspec": 2}):
        assert fast(doc) == bare_fast(doc) == bare_slow.is_valid(doc)


# --- layer docs -----------------------------------------------------------------------------

EXAMPLES = [pytest.param(n, i, id=f"{n}-{i}") for n, op in sorted(OPS.items()) for i in range(len(op.examples))]


@pytest.mark.parametrize(("name", "index"), EXAMPLES)
def test_documented_example_gives_the_stated_shape(name, index):
    """The snippet docs/layers.md shows, compiled in a small spec, has the output shape the docs
    state (torch agrees with the compiler: tests/test_op_contract.py)."""
    op = OPS[name]
    ex = op.examples[index]
    assert op.shape_rule and ex.output, "state the shape rule and the example's output"
    res = compile_text(example_spec(op, ex))
    assert res.ok, "\n".join(d.render() for d in res.diagnostics)
    assert res.typed.output.shape == tuple(ex.output), f"{example_yaml(op, ex)} {example_comment(op, ex)}"


def test_layers_md_shows_each_rule_and_example():
    text = layers_markdown(OPS)
    for op in OPS.values():
        section = text.split(f"### `{op.name}`\n", 1)[1].split("\n### ", 1)[0]
        assert op.shape_rule in section
        for ex in op.examples:
            assert f"{example_yaml(op, ex)}  {example_comment(op, ex)}" in section


def test_ops_name_shows_rule_and_examples(cli):
    code, out, _ = cli("ops", "maxpool2d")
    op = OPS["maxpool2d"]
    assert code == 0 and f"shape rule: {op.shape_rule}" in out
    for ex in op.examples:
        assert example_yaml(op, ex) in out and example_comment(op, ex) in out


def test_editors_doc_names_the_schema():
    text = (ROOT / "docs" / "editors.md").read_text()
    assert "yaml-language-server: $schema=" in text and "yaml.schemas" in text
    # which style completes best, and which mistakes only `netspec check` shows (issue 24)
    assert "## Which style completes best" in text and "| Mistake | Editor | `netspec check` | Why |" in text
    assert (ROOT / "schemas" / "netspec.schema.json").exists()
