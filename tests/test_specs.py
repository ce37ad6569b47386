"""Every spec in specs/ checks, lowers and runs with exactly the static shapes and counts; the
checked-in schema and layer docs match the registry; LeNet-5 matches the published numbers."""

import json

import pytest
import torch

from netspec.compiler import compile_file, compile_text
from netspec.docs import layers_markdown, train_markdown
from netspec.lower.codegen import resolved_spec
from netspec.lower.module import lower
from netspec.ops import all_ops
from netspec.spec.schema import build_schema, schema_text

from .conftest import ROOT, SPECS


def test_there_are_the_required_specs():
    names = {p.stem for p in SPECS}
    assert {"lenet5", "digits_cnn", "lstm_classifier", "gru_classifier", "conv1d_fcn"} <= names


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_spec_checks_and_matches_torch(path):
    res = compile_file(path)
    assert res.ok and not res.warnings, [d.render() for d in res.diagnostics]
    typed = res.typed
    model = lower(typed).eval()
    shape = tuple(typed.bindings.get(d, d) for d in typed.input.shape)
    x = torch.randint(0, 10, (3, *shape)) if typed.input.dtype == "int64" else torch.randn(3, *shape)
    with torch.no_grad():
        y = model(x)
    out = tuple(typed.bindings.get(d, d) for d in typed.output.shape)
    assert tuple(y.shape) == (3, *out)
    assert sum(p.numel() for p in model.parameters()) == typed.total_params
    assert sum(b.numel() for b in model.buffers()) == typed.total_buffers
    # The schema comment lets editors validate; every spec carries it.
    assert path.read_text().startswith("# yaml-language-server: $schema=../schemas/netspec.schema.json")


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_resolved_spec_round_trips(path):
    res = compile_file(path)
    text = resolved_spec(res.typed, res.doc.data, str(path))
    again = compile_text(text, "resolved.yaml")
    assert again.ok, [d.render() for d in again.diagnostics]
    a, b = res.typed, again.typed
    assert [(la.node.name, la.node.op, la.out_type, la.params, la.macs) for la in a.layers] == [
        (lb.node.name, lb.node.op, lb.out_type, lb.params, lb.macs) for lb in b.layers
    ]
    assert "# inferred" in text and "# default" in text


def test_lenet5_reference_numbers():
    """../shared/REFERENCE.md: LeNet-5 per-layer params and shapes, totals."""
    typed = compile_file(ROOT / "specs" / "lenet5.yaml").typed
    assert typed.total_params == 61_706
    assert typed.total_macs == 416_520
    with_params = [la.params for la in typed.layers if la.params]
    assert with_params == [156, 2_416, 48_120, 10_164, 850]
    shapes = [la.out_type.shape for la in typed.layers if la.node.op in ("conv2d", "avgpool2d", "flatten", "linear")]
    assert shapes == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (400,), (120,), (84,), (10,)]


def test_checked_in_schema_is_current():
    assert (ROOT / "schemas" / "netspec.schema.json").read_text() == schema_text(), "run `make schema`"
    json.loads(schema_text())


def test_publishing_the_schema_changes_nothing_it_is_built_from():
    """published_schema adds editor keywords to a copy: the tables build_schema reads stay as they
    were, so the text is the same however often it is made (it once grew markers in place)."""
    before = json.dumps(build_schema())
    first = schema_text()
    assert schema_text() == first and json.dumps(build_schema()) == before


def test_layer_docs_are_current():
    assert (ROOT / "docs" / "layers.md").read_text() == layers_markdown(all_ops()), "run `make schema`"
    assert (ROOT / "docs" / "train.md").read_text() == train_markdown(), "run `make schema`"


def test_specs_validate_against_checked_in_schema():
    import yaml
    from jsonschema import Draft202012Validator

    schema = json.loads((ROOT / "schemas" / "netspec.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    for path in SPECS:
        assert not list(validator.iter_errors(yaml.safe_load(path.read_text()))), path
