"""Inputs written to break netspec rather than to describe a network: names with a trailing newline
or other whitespace, labels that spreadsheets run as formulas, weights files that are not weights
(or that carry a pickle payload), block cycles hidden behind `repeat: 0`, and models too large to
export. Each is refused as a user error (exit 1) with a diagnostic or message that says what and
where, never a traceback or exit 2, and nothing of the payload runs."""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netspec.compiler import compile_text
from netspec.ops.params import NAME_PATTERN
from netspec.runtime.session import _csv_text
from netspec.spec.fastschema import compile_schema, ecma_regex
from netspec.spec.schema import DIR_NAME_PATTERN, REF_PATTERN
from netspec.spec.train_schema import SOURCE_PATTERN
from netspec.spec.validate import jsonschema_validator
from netspec.tune.specfile import flow

from .conftest import ROOT, at
from .test_train import NPZ_MLP, _npz, run_cli, train_ok, write

FILE = "spec.yaml"

# ----------------------------------------------------------------------------- 1. names

# Whitespace and control characters a name can carry without looking different in an editor.
SPACES = ["\n", "\r\n", "\r", "\t", " ", "\x0b", "\x0c", "\x00", "\x85", "\u00a0", "\u2003", "\u2028", "\u3000"]

# (what, spec text with NAME where the name goes); each name is written as a double-quoted YAML
# scalar (json.dumps), which keeps every character above.
PLACES = {
    "layer name": "netspec: 1\ninputs:\n  x: {shape: [4]}\nlayers:\n  - linear: {name: NAME, out_features: 3}\n",
    "model name": "netspec: 1\nname: NAME\ninputs:\n  x: {shape: [4]}\nlayers:\n  - linear: 3\n",
    "input name": "netspec: 1\ninputs:\n  NAME: {shape: [4]}\nlayers:\n  - linear: 3\n",
    "dim symbol": "netspec: 1\ninputs:\n  x: {shape: [NAME, 4]}\nlayers:\n  - linear: 3\n",
    "dims key": "netspec: 1\ninputs:\n  x: {shape: [4]}\ndims: {NAME: 3}\nlayers:\n  - linear: 3\n",
    "var": "netspec: 1\nvars: {NAME: 3}\ninputs:\n  x: {shape: [4]}\nlayers:\n  - linear: 3\n",
    "block name": "netspec: 1\nblocks:\n  NAME: {layers: [relu]}\ninputs:\n  x: {shape: [4]}\nlayers:\n  - linear: 3\n",
    "block argument": "netspec: 1\nblocks:\n  b: {args: {NAME: 1}, layers: [relu]}\ninputs:\n  x: {shape: [4]}\n"
    "layers:\n  - b\n",
    "block input": "netspec: 1\nblocks:\n  b: {inputs: [NAME], layers: [relu]}\ninputs:\n  x: {shape: [4]}\n"
    "layers:\n  - b\n",
    "from": "netspec: 1\ninputs:\n  x: {shape: [4]}\nlayers:\n  - linear: {name: a, out_features: 3}\n"
    "  - relu: {from: NAME}\n",
}
BASE = {"dim symbol": "T", "from": "a", "block argument": "k", "block input": "x"}


def refused_at(what: str, name: str):
    """The one diagnostic of a spec whose only mistake is `name` in the place `what`."""
    quoted = json.dumps(name)
    text = PLACES[what].replace("NAME", quoted)
    assert yaml.safe_load(text) is not None  # the YAML itself is fine: the name is the mistake
    res = compile_text(text, FILE)
    assert not res.ok, (what, name)
    assert len(res.errors) == 1, res.errors
    (d,) = res.errors
    assert (d.loc.file, d.loc.line, d.loc.col) == (FILE, *at(text, quoted)), d
    assert repr(name) in d.received
    assert d.expected
    assert "\n" not in d.message and "\r" not in d.message  # the name is shown escaped
    return d


@pytest.mark.parametrize("what", list(PLACES))
@pytest.mark.parametrize("space", ["\n", "\r\n", "\t", " ", "\u00a0", "\u3000"], ids=repr)
def test_a_trailing_newline_or_space_is_refused_where_it_is_written(what, space):
    """Python's `$` matches before a final newline, so `fc\\n` used to pass the schema: model.py then
    failed with an IndentationError, and a model named `evil\\n` made a run folder with a newline."""
    base = BASE.get(what, "fc")
    assert compile_text(PLACES[what].replace("NAME", json.dumps(base)), FILE).ok
    d = refused_at(what, base + space)
    assert d.hint == f"remove the {space!r} at its end"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    what=st.sampled_from(list(PLACES)),
    before=st.lists(st.sampled_from(SPACES), max_size=2),
    after=st.lists(st.sampled_from(SPACES), max_size=2),
)
def test_whitespace_around_any_name_is_refused(what, before, after):
    if not before and not after:
        after = ["\n"]
    base = BASE.get(what, "fc")
    d = refused_at(what, "".join(before) + base + "".join(after))
    assert d.hint and d.hint.startswith("remove the ")


def test_a_data_source_with_a_final_newline_is_refused():
    head = "netspec: 1\ninputs:\n  x: {shape: [4]}\nlayers:\n  - linear: 3\ntrain:\n  data: {source: SRC}\n"
    assert compile_text(head.replace("SRC", '"my data.csv"'), FILE).ok  # a space in a path is fine
    text = head.replace("SRC", '"my data.csv\\n"')
    d = only_one(text)
    assert d.message == "invalid data source" and d.path == "train.data.source"
    assert (d.loc.line, d.loc.col) == at(text, '"my data')
    assert d.expected == "digits, synthetic, ucr:<Name>, or a path ending in .npz or .csv"
    assert d.hint == "remove the '\\n' at its end"
    d = only_one(head.replace("SRC", '"my data.txt"'))  # not a whitespace problem: no such hint
    assert d.message == "invalid data source" and d.hint is None


def test_a_dim_computed_from_a_var_is_held_to_the_same_rule():
    """A var's string becomes a dim symbol only if it is a plain ASCII name, as a written one must be."""
    head = 'netspec: 1\nvars: {d: VALUE}\ninputs:\n  x: {shape: ["${d}", 4]}\nlayers:\n  - linear: 3\n'
    assert compile_text(head.replace("VALUE", '"T"'), FILE).ok
    for value in ["T\u03bb", "T\n", " T"]:
        text = head.replace("VALUE", json.dumps(value))
        d = only_one(text)
        assert d.message == "invalid dimension" and d.path == "inputs.x.shape[0]", d
        assert (d.loc.line, d.loc.col) == at(text, '"${d}"')


def only_one(text: str):
    res = compile_text(text, FILE)
    assert not res.ok and len(res.errors) == 1, res.errors
    return res.errors[0]


def test_a_model_name_with_a_newline_makes_no_run_folder(tmp_path, monkeypatch, cli):
    spec = tmp_path / "evil.yaml"
    spec.write_text(PLACES["model name"].replace("NAME", json.dumps("evil\n")))
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("train", spec)
    assert code == 1, out + err
    assert "error[schema]: name: invalid name" in err and "remove the '\\n' at its end" in err
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("pattern", "good", "bad"),
    [
        (NAME_PATTERN, ["fc", "_x1"], ["fc\n", "fc\r\n", "fc\n\n", "\nfc", "f c", "1fc"]),
        (REF_PATTERN, ["a.b"], ["a.b\n", "a.\nb"]),
        (DIR_NAME_PATTERN, ["m-1.v2"], ["m\n", ".", "..", "..\n", "a/b"]),
        (SOURCE_PATTERN, ["digits", "ucr:GunPoint", "d/x.csv"], ["digits\n", "x.csv\n", "ucr:Gun\nPoint"]),
    ],
)
def test_both_checkers_read_dollar_as_the_end_of_input(pattern, good, bad):
    """JSON Schema patterns are ECMA-262 regexes: `$` is the end of input. The fast check and the
    jsonschema that explains its refusals agree on that."""
    fast, slow = compile_schema({"pattern": pattern}), jsonschema_validator({"pattern": pattern})
    for s in good:
        assert fast(s) and slow.is_valid(s), s
    for s in bad:
        assert not fast(s) and not slow.is_valid(s), s


def test_ecma_translation_keeps_literal_dollars():
    assert ecma_regex(r"^a$").pattern == r"^a\Z"
    assert ecma_regex(r"^a\$$").pattern == r"^a\$\Z"  # an escaped $ stays a character
    assert ecma_regex(r"^[$]+$").pattern == r"^[$]+\Z"  # so does one in a class
    assert ecma_regex(r"^[]$]$").pattern == r"^[]$]\Z"  # `]` first in a class is a literal
    assert ecma_regex(r"^(?!\.{1,2}$)x$").pattern == r"^(?!\.{1,2}\Z)x\Z"
    assert ecma_regex(r"\$\{").pattern == r"\$\{"


def _patterns(schema):
    if isinstance(schema, dict):
        for k, v in schema.items():
            if k == "pattern" and isinstance(v, str):
                yield v
            else:
                yield from _patterns(v)
    elif isinstance(schema, list):
        for v in schema:
            yield from _patterns(v)


PUBLISHED = json.loads((ROOT / "schemas" / "netspec.schema.json").read_text())
# Python-only regex syntax an editor's ECMA-262 engine would read differently or reject: \Z and \A
# are not anchors there (\Z matches a "Z"), (?P<...>) is not a group, inline flags do not exist.
PYTHON_ONLY = re.compile(r"\\[ZAz]|\(\?P|\(\?[aiLmsux]")


def test_the_published_schema_uses_ecma_anchors():
    patterns = sorted(set(_patterns(PUBLISHED)))
    assert len(patterns) >= 4
    for p in patterns:
        assert not PYTHON_ONLY.search(p), p
        assert p == r"\$\{" or (p.startswith("^") and p.endswith("$")), p


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_published_pattern_accepts_a_final_newline(data):
    """Whatever a pattern of the schema accepts, it refuses with a newline (or \\r\\n) after it."""
    p = data.draw(st.sampled_from(sorted(p for p in set(_patterns(PUBLISHED)) if p.endswith("$"))))
    s = data.draw(st.from_regex(ecma_regex(p), fullmatch=True).filter(lambda s: "\n" not in s))
    fast = compile_schema({"pattern": p})
    assert fast(s)
    for tail in ("\n", "\r\n"):
        assert not fast(s + tail) and not jsonschema_validator({"pattern": p}).is_valid(s + tail)


def test_tune_writes_a_name_with_a_newline_quoted():
    """tune writes each trial's spec with flow(): a plain scalar `a\\n` would read back as `a`."""
    for value in ["a\n", "a\r\n", "a.b\n"]:
        assert yaml.safe_load(f"k: {flow(value)}")["k"] == value
    assert flow("a.b-c") == "a.b-c"


# ----------------------------------------------------------------------------- 2. predictions CSV

LABELS = ["x,y", "=1+2", '"quoted"', "new\nline", "@SUM(A1)", "-1+2", "+cmd", "\tlead", "-1", "plain"]


def test_csv_cells_are_quoted_and_formula_labels_neutralised():
    header = ["prediction"] + [f"p_{c}" for c in LABELS]
    rows = [[label] + ["0.1"] * len(LABELS) for label in LABELS]
    back = list(csv.reader(io.StringIO(_csv_text(header, rows, text_columns=1))))
    assert [len(r) for r in back] == [1 + len(LABELS)] * (1 + len(LABELS))
    assert back[0] == header  # "p_..." never starts a formula
    want = ["x,y", "'=1+2", '"quoted"', "new\nline", "'@SUM(A1)", "'-1+2", "'+cmd", "'\tlead", "-1", "plain"]
    assert [r[0] for r in back[1:]] == want


def test_csv_regression_numbers_stay_numbers():
    text = _csv_text(["y0", "y1"], [["-0.5", "1e-05"], ["-3", "+2"]], text_columns=0)
    assert list(csv.reader(io.StringIO(text))) == [["y0", "y1"], ["-0.5", "1e-05"], ["-3", "+2"]]
    assert text == "y0,y1\n-0.5,1e-05\n-3,+2\n"


@pytest.fixture(scope="module")
def label_run(tmp_path_factory):
    """A finished run whose class labels are hostile strings; one cluster per label."""
    d = tmp_path_factory.mktemp("labels")
    labels = ["x,y", "=1+2", '"q"', "a\nb"]
    rng = np.random.default_rng(3)
    centers = np.eye(4, dtype=np.float32) * 8
    idx = np.arange(80) % 4
    x = (centers[idx] + rng.standard_normal((80, 4))).astype(np.float32)
    _npz(d / "data.npz", x=x, y=np.array(labels)[idx])
    text = NPZ_MLP.replace("DATA", "data.npz").replace("linear: 3", "linear: 4").replace("epochs: 2", "epochs: 8")
    spec = write(d, text)
    run = d / "run"
    train_ok(spec, run, "-q")
    return run, x, centers


def test_predict_csv_reads_back_with_the_labels(label_run, tmp_path):
    run, _, centers = label_run
    classes = json.loads((run / "data.json").read_text())["classes"]
    assert sorted(classes) == sorted(["x,y", "=1+2", '"q"', "a\nb"])
    inp = _npz(tmp_path / "in.npz", x=np.repeat(centers, 3, axis=0))
    out_csv = tmp_path / "pred.csv"
    code, out, err = run_cli("predict", run, "--input", inp, "--output", out_csv)
    assert code == 0, out + err
    back = list(csv.reader(io.StringIO(out_csv.read_text(), newline="")))
    assert back[0] == ["prediction"] + [f"p_{c}" for c in classes]
    assert len(back) == 13 and all(len(r) == 1 + len(classes) for r in back)
    shown = {c: "'" + c if c.startswith("=") else c for c in classes}
    assert {r[0] for r in back[1:]} <= set(shown.values())
    assert all(abs(sum(float(p) for p in r[1:]) - 1) < 1e-4 for r in back[1:])
    out_json = tmp_path / "pred.json"
    code, _, _ = run_cli("predict", run, "--input", inp, "--output", out_json)
    data = json.loads(out_json.read_text())  # JSON keeps the labels as they are
    assert code == 0 and [shown[d["prediction"]] for d in data] == [r[0] for r in back[1:]]


# ----------------------------------------------------------------------------- 3. weights files


class Payload:
    """Unpickling this creates a file: the test checks that it never exists."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _hostile(kind: str, good: Path, target: Path, marker: Path) -> None:
    target.unlink(missing_ok=True)
    state = torch.load(good, weights_only=True)
    if kind == "reduce payload (torch.save)":
        torch.save({**state, "evil": Payload(marker)}, target)
    elif kind == "reduce payload (bare pickle)":
        target.write_bytes(pickle.dumps(Payload(marker), protocol=2))
    elif kind == "truncated":
        target.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "random bytes":
        target.write_bytes(np.random.default_rng(0).bytes(2000))
    elif kind == "zero bytes":
        target.write_bytes(b"")
    elif kind == "a folder":
        target.mkdir()
    elif kind == "wrong keys":
        torch.save({"nope.weight": torch.zeros(3)}, target)
    elif kind == "wrong shapes":
        torch.save({k: torch.zeros(*(s + 1 for s in v.shape)) for k, v in state.items()}, target)
    elif kind == "not a dict":
        torch.save(list(state.values()), target)
    elif kind == "a dict of non-tensors":
        torch.save({k: 1 for k in state}, target)
    elif kind == "far too large":
        target.write_bytes(b"\0" * (good.stat().st_size * 4 + 2**21))
    else:
        raise AssertionError(kind)


KINDS = [
    "reduce payload (torch.save)",
    "reduce payload (bare pickle)",
    "truncated",
    "random bytes",
    "zero bytes",
    "a folder",
    "wrong keys",
    "wrong shapes",
    "not a dict",
    "a dict of non-tensors",
    "far too large",
]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("weights")
    rng = np.random.default_rng(1)
    _npz(d / "data.npz", x=rng.standard_normal((40, 4)).astype(np.float32), y=np.arange(40) % 3)
    run = d / "run"
    train_ok(write(d, NPZ_MLP.replace("DATA", "data.npz")), run, "-q")
    return run


@pytest.mark.parametrize("kind", KINDS)
def test_a_hostile_weights_file_is_a_user_error(good_run, tmp_path, kind):
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    marker = tmp_path / "payload-ran"
    _hostile(kind, good_run / "weights.pt", run / "weights.pt", marker)
    inp = _npz(tmp_path / "in.npz", x=np.zeros((2, 4), np.float32))
    commands = [
        ("evaluate", run),
        ("predict", run, "--input", inp, "--output", tmp_path / "p.csv"),
        ("export", run, "-f", "safetensors", "-o", tmp_path / "m.safetensors", "--no-check"),
    ]
    for args in commands:
        code, out, err = run_cli(*args)
        assert code == 1, (args[0], out + err)
        assert f"{run / 'weights.pt'} cannot be loaded as weights: " in err, err
        assert "Traceback" not in err and "bug in netspec" not in err
        assert not marker.exists(), "the pickle payload ran"
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "m.safetensors").exists()


def test_the_unpickler_stays_weights_only(good_run, tmp_path):
    """The payload refused above is refused by weights_only, not by luck: plain pickle would run it."""
    marker = tmp_path / "ran"
    blob = pickle.dumps(Payload(marker), protocol=2)
    pickle.loads(blob)
    assert marker.exists()
    marker.unlink()
    from netspec.runtime.session import RunError, load_weights

    (tmp_path / "w.pt").write_bytes(blob)
    with pytest.raises(RunError, match="cannot be loaded as weights: UnpicklingError"):
        load_weights(torch.nn.Linear(2, 2), tmp_path / "w.pt")
    assert not marker.exists()


def test_a_corrupt_data_json_is_a_user_error(good_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    (run / "data.json").write_text("{not json")
    code, _, err = run_cli("evaluate", run)
    assert code == 1 and "data.json cannot be read" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- 4. block cycles

H = "netspec: 1\ninputs:\n  x: {shape: [4, 8]}\n"


@pytest.mark.parametrize(
    ("text", "closing", "chain"),
    [
        (  # a -> b (0 times) -> a
            H + "blocks:\n  a:\n    layers:\n      - b: {name: inner, repeat: 0}\n"
            "  b:\n    layers:\n      - a: {name: back}\nlayers:\n  - a: {name: top}\n",
            "a: {name: back}",
            "a -> b -> a",
        ),
        (  # the only use repeats 0 times
            H + "blocks:\n  a:\n    layers:\n      - relu\n      - a\nlayers:\n  - relu\n  - a: {repeat: 0}\n",
            "- ^a\nlayers",
            "a -> a",
        ),
        (  # 0 from an expression, two levels down
            H + 'vars: {n: 1}\nblocks:\n  a:\n    layers:\n      - c: {repeat: "${n - 1}"}\n'
            "  c:\n    layers:\n      - b: {repeat: 2}\n  b:\n    layers:\n      - relu\n      - c\n"
            "layers:\n  - a: {name: top}\n",
            "- ^c\nlayers",
            "c -> b -> c",
        ),
    ],
    ids=["through-another", "top-level", "expression"],
)
def test_a_cycle_behind_repeat_0_is_an_error(text, closing, chain):
    """docs/blocks.md: "A block that uses itself, directly or through others, is an error that
    prints the cycle" — whatever the repeat counts, since a count is only a number in a use."""
    res = compile_text(text, FILE)
    assert not res.ok
    (d,) = [e for e in res.errors if "uses itself" in e.message]
    assert d.received == chain and d.code == "graph"
    assert (d.loc.line, d.loc.col) == at(text, closing)
    assert "repeats 0 times" in d.hint
    assert all("in block `" in c for c in d.context)


def test_repeat_0_of_an_acyclic_block_is_still_fine():
    text = H + "blocks:\n  a:\n    layers:\n      - b: {repeat: 0}\n  b:\n    layers:\n      - relu\n"
    text += "layers:\n  - a: {name: top}\n  - a: {repeat: 0}\n"
    assert compile_text(text, FILE).ok


def test_a_long_chain_of_blocks_behind_repeat_0_is_walked_without_recursion():
    n = 3000  # past Python's recursion limit
    blocks = "".join(f"  b{i}:\n    layers:\n      - b{i + 1}\n" for i in range(n))
    text = H + "blocks:\n" + blocks + f"  b{n}:\n    layers:\n      - b0\n" + "layers:\n  - b0: {repeat: 0}\n"
    t = time.perf_counter()
    res = compile_text(text, FILE)
    assert time.perf_counter() - t < 20
    (d,) = [e for e in res.errors if "uses itself" in e.message]
    assert d.received.startswith("b0 -> b1 -> ") and d.received.endswith(f"b{n} -> b0")
    assert d.path == f"blocks.b{n}.layers[0].b0"


# ----------------------------------------------------------------------------- 5. export memory

HUGE = textwrap.dedent("""\
    netspec: 1
    name: huge
    inputs:
      x: {shape: [100000]}
    layers:
      - linear: 1000000000
    """)


def test_export_refuses_a_model_too_big_before_allocating(tmp_path, cli):
    spec = write(tmp_path, HUGE)
    t = time.perf_counter()
    code, out, err = cli("export", spec, "-o", tmp_path / "m.onnx")
    took = time.perf_counter() - t
    assert code == 1, out + err
    assert took < 1, took
    assert "exporting huge would need about" in err and "over the limit of" in err
    assert "parameters 100,001,000,000,000 x 4 B" in err
    assert "exporting to onnx: x 6 (the model and its serialized copies)" in err
    assert "--max-memory" in err and not (tmp_path / "m.onnx").exists()


def test_export_refuses_without_importing_torch(tmp_path):
    spec = write(tmp_path, HUGE)
    code = (
        "import sys; from netspec.cli import main; "
        f"rc = main(['export', {str(spec)!r}, '-f', 'torchscript', '-o', {str(tmp_path / 'm.pt')!r}]); "
        "print(rc, 'torch' in sys.modules)"
    )
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert p.stdout.split() == ["1", "False"], p.stdout + p.stderr
    assert "exporting to torchscript: x 5" in p.stderr
    assert time.perf_counter() - t < 10


def test_export_max_memory_option(tmp_path, cli, good_run):
    text = NPZ_MLP.replace("DATA", "x.npz")
    spec = write(tmp_path, text)
    code, out, err = cli("export", spec, "-f", "safetensors", "-o", tmp_path / "a.st", "--max-memory", "1KB")
    assert code == 1 and "over the limit of 1.00 KiB" in err, err
    code, out, err = cli("export", spec, "-f", "safetensors", "-o", tmp_path / "a.st", "--max-memory", "lots")
    assert code == 1 and "--max-memory: not a size" in err
    code, out, err = cli("export", spec, "-f", "safetensors", "-o", tmp_path / "a.st", "--max-memory", "1GB")
    assert code == 0, out + err
    # A run: its spec.resolved.yaml is compiled and checked before weights.pt is read
    code, out, err = cli("export", good_run, "-f", "safetensors", "-o", tmp_path / "b.st", "--max-memory", "1KB")
    assert code == 1 and "exporting npz_mlp would need" in err and "loading: the model + weights.pt" in err, err


def test_export_of_a_run_checks_its_resolved_spec_before_loading(good_run, tmp_path, cli):
    """A run whose resolved spec was edited to a huge model is refused from the counts: lowering it
    would allocate 400 GB before load_state_dict could complain."""
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    resolved = run / "spec.resolved.yaml"
    text = resolved.read_text()
    assert "out_features: 8" in text
    resolved.write_text(text.replace("features: 8", "features: 1000000000"))  # 8e9 parameters
    t = time.perf_counter()
    code, out, err = cli("export", run, "-f", "onnx", "-o", tmp_path / "m.onnx", "--max-memory", "16GB")
    assert code == 1, out + err
    assert time.perf_counter() - t < 5
    assert "exporting npz_mlp would need about 178.81 GiB, over the limit of 16.00 GiB" in err, err
    assert "parameters 8,000,000,003 x 4 B = 29.80 GiB" in err


def test_library_export_checks_memory_too(tmp_path):
    from netspec.export.pipeline import ExportError, export

    with pytest.raises(ExportError, match=r"would need about .* over the limit of 1\.00 KiB"):
        export(write(tmp_path, NPZ_MLP.replace("DATA", "x.npz")), "safetensors", tmp_path / "a.st", max_memory=1024)
    assert not (tmp_path / "a.st").exists()


# ----------------------------------------------------------------------------- checkpoints on --resume


def _foreign_checkpoint(kind: str, good: dict) -> object:
    if kind == "a list":
        return [1, 2, 3]
    if kind == "no spec hash":
        return {k: v for k, v in good.items() if k != "spec_hash"}
    if kind == "wrong shapes":
        return {**good, "model": {k: torch.zeros(1) for k in good["model"]}}
    if kind == "no rng":
        return {k: v for k, v in good.items() if k != "rng"}
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["a list", "no spec hash", "wrong shapes", "no rng"])
def test_resume_from_a_foreign_checkpoint_is_a_user_error(good_run, tmp_path, kind):
    """A checkpoint that unpickles (weights_only) but is not this run's: exit 1, never exit 2."""
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    ckpts = run / "checkpoints"
    good = torch.load(ckpts / "last.pt", map_location="cpu", weights_only=True)
    for p in ckpts.iterdir():
        p.unlink()
    buf = io.BytesIO()
    torch.save(_foreign_checkpoint(kind, good), buf)
    (ckpts / "last.pt").write_bytes(buf.getvalue())
    code, out, err = run_cli("train", good_run.parent / "spec.yaml", "-o", run, "--resume", "-q")
    assert code == 1, out + err
    assert "is not a checkpoint of this run" in err, err
    assert "Traceback" not in err and "bug in netspec" not in err
