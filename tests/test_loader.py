"""The YAML loader: syntax errors with line:col, safe loading (no tags, no alias bombs, bounded
nesting), YAML 1.2 scalars, duplicate keys, merge keys and the source map behind every location."""

from __future__ import annotations

import itertools
import time

import pytest

from netspec.compiler import compile_file, compile_text
from netspec.errors import SpecError
from netspec.spec.loader import MAX_BYTES, MAX_DEPTH, MAX_NODES, load_file, load_text

from .conftest import at

FILE = "spec.yaml"


def load_error(text: str):
    """The single diagnostic load_text raises for `text`."""
    with pytest.raises(SpecError) as info:
        load_text(text, FILE)
    (d,) = info.value.diagnostics
    assert d.loc.file == FILE and d.is_error
    return d


def where(d) -> tuple[int, int]:
    return d.loc.line, d.loc.col


# ----------------------------------------------------------------------------- syntax


def test_invalid_yaml_reports_line_and_column():
    text = "netspec: 1\ninputs:\n  x: {shape: [1, 2}\nlayers:\n  - relu\n"
    d = load_error(text)
    assert where(d) == at(text, "2^}")
    start = at(text, "^[1, 2}")
    assert d.message == (
        "invalid YAML: expected ',' or ']', but got '}' "
        f"(while parsing a flow sequence that starts at line {start[0]}, column {start[1]})"
    )
    assert d.code == "yaml" and d.path == ""


def test_invalid_yaml_bad_indentation_hint():
    text = "netspec: 1\nlayers:\n  - relu\n - tanh\n"
    d = load_error(text)
    assert where(d) == at(text, "^- tanh")
    assert d.message.startswith("invalid YAML: expected <block end>")
    assert "indentation" in d.hint


def test_unquoted_colon_in_value_hint():
    text = "netspec: 1\nname: a: b\n"
    d = load_error(text)
    assert where(d) == at(text, "a^: b")
    assert d.message == "invalid YAML: mapping values are not allowed here"
    assert "quote" in d.hint


def test_tab_indentation_hint_mentions_tabs():
    text = "netspec: 1\nlayers:\n\t- relu\n"
    d = load_error(text)
    assert where(d) == at(text, "\t")
    assert "'\\t'" in d.message
    assert d.hint == "YAML does not allow tabs for indentation; use spaces"


def test_tab_inside_nested_block_hint():
    text = "netspec: 1\ninputs:\n  x:\n\t  shape: [1]\n"
    d = load_error(text)
    assert where(d) == at(text, "\t")
    assert "tabs" in d.hint


def test_two_documents_in_one_file():
    text = "netspec: 1\n---\nlayers: []\n"
    d = load_error(text)
    assert where(d) == at(text, "---")
    assert d.message == "invalid YAML: expected a single document in the stream, but found another document"
    assert d.hint == "a spec is a single YAML document; remove the second '---'"


def test_control_character_has_a_location():
    text = "netspec: 1\nname: a\x00b\n"
    d = load_error(text)
    assert where(d) == at(text, "\x00")
    assert d.message == "invalid YAML: control character U+0000 is not allowed"


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    raw = "netspec: 1\nname: café\n".encode("latin-1")
    path.write_bytes(raw)
    with pytest.raises(SpecError) as info:
        load_file(path)
    (d,) = info.value.diagnostics
    assert d.message == "the spec is not valid UTF-8"
    assert (d.loc.file, d.loc.line, d.loc.col) == (str(path), 2, len("name: caf") + 1)
    offset = raw.index(b"\xe9")
    assert d.received == f"byte 0xe9 at offset {offset}"
    assert d.hint == "save the file as UTF-8"
    assert d.code == "yaml"
    res = compile_file(path)  # never raises for a user mistake
    assert not res.ok and res.errors[0].message == "the spec is not valid UTF-8"


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffnetspec: 1\ninputs:\n  x: {shape: [4]}\nlayers:\n  - relu\n".encode())
    assert compile_file(path).ok


def test_missing_and_oversized_files(tmp_path):
    res = compile_file(tmp_path / "nope.yaml")
    assert not res.ok and res.errors[0].code == "io"
    assert res.errors[0].message.startswith("cannot read the spec")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_BYTES + 1))
    with pytest.raises(SpecError) as info:
        load_file(big)
    (d,) = info.value.diagnostics
    assert d.message == "the spec file is too large" and d.received == f"{MAX_BYTES + 1:,} bytes"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file(text):
    d = load_error(text)
    assert d.message == "the spec is empty"
    assert where(d) == (1, 1)
    assert d.expected == "a mapping with 'layers'"


def test_empty_file_on_disk(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    res = compile_file(path)
    assert [d.message for d in res.errors] == ["the spec is empty"]


@pytest.mark.parametrize(("text", "kind"), [("- relu\n- tanh\n", "list"), ("hello\n", "string"), ("42\n", "integer")])
def test_top_level_must_be_a_mapping(text, kind):
    res = compile_text(text, FILE)
    assert not res.ok
    (d,) = res.errors
    assert d.message == "the spec must be a mapping"
    assert d.expected == "a mapping with netspec, inputs and layers"
    assert d.received == kind
    assert (d.loc.line, d.loc.col) == (1, 1)


# ----------------------------------------------------------------------------- duplicate keys


def test_duplicate_top_level_key_names_both_lines():
    text = "netspec: 1\ninputs:\n  x: {shape: [4]}\nlayers:\n  - relu\nnetspec: 1\n"
    d = load_error(text)
    first, second = at(text, "netspec")[0], at(text, "netspec", nth=2)[0]
    assert d.message == f"duplicate key 'netspec' on line {second} (first defined on line {first})"
    assert where(d) == at(text, "netspec", nth=2)
    assert d.path == "netspec"
    assert d.hint == "YAML keeps only one of them; remove or rename one"
    assert d.code == "yaml"


def test_every_duplicate_key_is_reported():
    text = "a: 1\nb: {x: 1, x: 2}\na: 3\n"
    with pytest.raises(SpecError) as info:
        load_text(text, FILE)
    got = [(d.path, d.message, (d.loc.line, d.loc.col)) for d in info.value.diagnostics]
    assert got == [
        ("b.x", "duplicate key 'x' on line 2 (first defined on line 2)", at(text, "x", nth=2)),
        ("a", "duplicate key 'a' on line 3 (first defined on line 1)", at(text, "a: 3")),
    ]


# ----------------------------------------------------------------------------- scalars


def test_yaml12_scalars():
    text = (
        "lr: 1e-3\nbig: 1E3\nexp: 1.5e+2\nhalf: .5\nint: 42\nhex: 0x1F\nunder: 1_000\n"
        "on: on\nyes: yes\nno: no\noff: off\ny: y\nt: true\nf: False\nnull: ~\nempty:\nneg: -7\n"
    )
    data = load_text(text, FILE).data
    assert data["lr"] == 0.001 and isinstance(data["lr"], float)
    assert data["big"] == 1000.0 and isinstance(data["big"], float)
    assert data["exp"] == 150.0 and data["half"] == 0.5
    assert data["int"] == 42 and type(data["int"]) is int
    assert data["hex"] == 31 and data["under"] == 1000 and data["neg"] == -7
    # YAML 1.1 booleans stay strings, as keys and as values
    assert (data["on"], data["yes"], data["no"], data["off"], data["y"]) == ("on", "yes", "no", "off", "y")
    assert data["t"] is True and data["f"] is False
    assert data["null"] is None and data["empty"] is None


def test_float_literal_reaches_the_layer():
    res = compile_text("netspec: 1\ninputs:\n  x: {shape: [4]}\nlayers:\n  - dropout: 1e-1\n", FILE)
    assert res.ok, res.diagnostics
    assert res.typed.layers[0].node.params["p"] == 0.1


def test_integer_literal_too_long():
    text = "n: " + "9" * 5000 + "\n"
    d = load_error(text)
    assert d.message == "integer literal is too long"
    assert d.received == "5000 digits"
    assert where(d) == at(text, "n: ^9")


@pytest.mark.parametrize(
    ("layer", "needle", "path", "received"),
    [
        ("dropout: {p: .nan}", "p: ^.nan", "layers[0].dropout.p", "nan (number)"),
        ("dropout: .nan", "dropout: ^.nan", "layers[0].dropout", "nan (number)"),
        ("linear: .inf", "linear: ^.inf", "layers[0].linear", "inf (number)"),
        ("linear: -.inf", "linear: ^-.inf", "layers[0].linear", "-inf (number)"),
        ("linear: 1e999", "linear: ^1e999", "layers[0].linear", "inf (number)"),
    ],
)
def test_nan_and_inf_are_rejected(layer, needle, path, received):
    text = f"netspec: 1\ninputs:\n  x: {{shape: [4]}}\nlayers:\n  - {layer}\n"
    res = compile_text(text, FILE)
    assert not res.ok
    (d,) = res.errors  # once, not also as a wrong type and a bound
    assert d.message == "not a finite number"
    assert d.path == path
    assert (d.loc.line, d.loc.col) == at(text, needle)
    assert d.received == received
    assert d.code == "schema"


def test_nan_reported_with_other_schema_errors():
    text = "netspec: 1\ninputs:\n  x: {shape: [4]}\nlayers:\n  - dropout: .nan\n  - linaer: 3\n"
    res = compile_text(text, FILE)
    assert [d.path for d in res.errors] == ["layers[0].dropout", "layers[1].linaer"]


# ----------------------------------------------------------------------------- unsafe input


def test_python_tag_is_rejected_and_never_run(tmp_path):
    target = tmp_path / "pwned"
    text = f'netspec: 1\nx: !!python/object/apply:os.system ["echo pwned > {target}"]\n'
    d = load_error(text)
    assert not target.exists()
    assert d.message == "YAML tag '!!python/object/apply:os.system' is not allowed"
    assert d.path == "x"
    assert where(d) == at(text, "!!python")
    assert d.code == "yaml"
    res = compile_text(text, FILE)
    assert not res.ok and not target.exists()


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("!!python/name:os.system ''", "!!python/name:os.system"),
        ("!!binary aGVsbG8=", "!!binary"),
        ("!include other.yaml", "!include"),
        ("!custom {a: 1}", "!custom"),
    ],
)
def test_other_tags_are_rejected(value, shown):
    text = f"netspec: 1\nx: {value}\n"
    d = load_error(text)
    assert d.message == f"YAML tag '{shown}' is not allowed"
    assert where(d) == at(text, "x: ^!")


def test_standard_tags_are_fine():
    data = load_text("a: !!str 5\nb: !!int '7'\nc: !!float 1\n", FILE).data
    assert data == {"a": "5", "b": 7, "c": 1.0}


def _laughs(levels: int = 9, width: int = 9) -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    names = "abcdefghijklmnopqrstuvwxyz"
    for prev, name in itertools.pairwise(names[:levels]):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_rejected_fast():
    text = _laughs()  # 9**9 strings once expanded
    start = time.perf_counter()
    d = load_error(text)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"took {elapsed:.2f}s"
    assert d.message == f"the document expands to more than {MAX_NODES:,} values"
    assert "billion laughs" in d.hint
    assert d.loc.line > 1  # points into the anchors, not at the top of the file


def test_modest_aliasing_is_fine():
    data = load_text(_laughs(levels=3, width=3), FILE).data
    assert data["c"] == [[["lol"] * 9] * 3] * 3


@pytest.mark.parametrize("depth", [MAX_DEPTH + 5, 20_000])
def test_deep_nesting_is_rejected(depth):
    text = "a: " + "[" * depth + "]" * depth + "\n"
    start = time.perf_counter()
    d = load_error(text)  # a SpecError, never a RecursionError
    assert time.perf_counter() - start < 5.0
    assert d.message == f"the document nests deeper than {MAX_DEPTH} levels"
    assert d.loc.line == 1


def test_deep_block_nesting_is_rejected():
    text = "".join(" " * i + "a:\n" for i in range(200))
    d = load_error(text)
    assert d.message == f"the document nests deeper than {MAX_DEPTH} levels"


def test_self_referencing_anchor_is_rejected():
    d = load_error("a: &a [1, *a]\n")
    assert d.message == f"the document nests deeper than {MAX_DEPTH} levels"


def test_compile_text_never_raises_for_hostile_input():
    for text in [_laughs(), "a: " + "[" * 5000, "a: &a [*a]", "\x00", "a: !!python/none ''"]:
        res = compile_text(text, FILE)
        assert not res.ok and res.errors


# ----------------------------------------------------------------------------- merge keys


MERGE = """netspec: 1
inputs:
  x: {shape: [3, 16, 16]}
layers:
  - conv2d: &block {out_channels: 8, kernel_size: 3, padding: 1}
  - conv2d:
      <<: *block
      kernel_size: 5
  - conv2d: {<<: [*block, {stride: 2}], name: down}
"""


def test_merge_keys_work():
    doc = load_text(MERGE, FILE)
    layers = doc.data["layers"]
    assert layers[1] == {"conv2d": {"out_channels": 8, "kernel_size": 5, "padding": 1}}  # explicit wins
    assert layers[2] == {"conv2d": {"out_channels": 8, "kernel_size": 3, "padding": 1, "stride": 2, "name": "down"}}
    assert all("<<" not in item["conv2d"] for item in layers)
    res = compile_text(MERGE, FILE)
    assert res.ok, res.diagnostics
    assert [layer.node.params["kernel_size"] for layer in res.typed.layers] == [(3, 3), (5, 5), (3, 3)]
    assert res.typed.output.shape == (8, 7, 7)  # 16 -> 16 (k3 p1) -> 14 (k5 p1) -> 7 (k3 p1 s2)


def test_merge_keys_keep_the_locations_of_explicit_keys():
    doc = load_text(MERGE, FILE)
    loc = doc.loc(("layers", 1, "conv2d", "kernel_size"))
    assert (loc.line, loc.col) == at(MERGE, "kernel_size: ^5")
    key = doc.loc(("layers", 1, "conv2d", "kernel_size"), key=True)
    assert (key.line, key.col) == at(MERGE, "^kernel_size: 5")
    # merged keys point where their value was written: the anchor
    merged = doc.loc(("layers", 1, "conv2d", "out_channels"))
    assert (merged.line, merged.col) == at(MERGE, "out_channels: ^8")
    stride = doc.loc(("layers", 2, "conv2d", "stride"))
    assert (stride.line, stride.col) == at(MERGE, "stride: ^2")


def test_error_in_merged_override_points_at_the_override():
    text = MERGE.replace("kernel_size: 5", "kernel_size: 0")
    res = compile_text(text, FILE)
    (d,) = res.errors
    assert d.path == "layers[1].conv2d.kernel_size"
    assert (d.loc.line, d.loc.col) == at(text, "kernel_size: ^0")


def test_merge_of_a_non_mapping_is_one_error_at_the_merge_key():
    text = "a: &a [1, 2]\nb:\n  <<: *a\n"
    d = load_error(text)
    assert d.message == "a YAML merge key '<<' needs a mapping or a list of mappings"
    assert d.path == "b"
    assert where(d) == at(text, "<<")


# ----------------------------------------------------------------------------- source map


def test_source_map_nested_keys_and_values():
    text = (
        "netspec: 1\n"
        "inputs:\n"
        "  image: {shape: [1, 32, 32]}\n"
        "layers:\n"
        "  - relu\n"
        "  - conv2d:\n"
        "      out_channels: 6\n"
        "      kernel_size: [3, 5]\n"
    )
    doc = load_text(text, FILE)

    def loc(path, key=False):
        location = doc.loc(path, key=key)
        assert location.file == FILE
        return location.line, location.col

    assert loc(("layers", 1, "conv2d", "out_channels"), key=True) == at(text, "out_channels")
    assert loc(("layers", 1, "conv2d", "out_channels")) == at(text, "out_channels: ^6")
    assert loc(("layers", 1, "conv2d", "kernel_size", 1)) == at(text, "[3, ^5]")
    assert loc(("layers", 1, "conv2d"), key=True) == at(text, "conv2d")
    assert loc(("layers", 0)) == at(text, "relu")
    assert loc(("inputs", "image", "shape", 2)) == at(text, "[1, 32, ^32]")
    # a path that does not exist falls back to its nearest ancestor
    assert loc(("layers", 1, "conv2d", "stride")) == loc(("layers", 1, "conv2d"))
    assert loc(("nope",)) == (1, 1)
    # and the same location reaches a diagnostic
    bad = text.replace("[3, 5]", "[3, 0]")
    (d,) = compile_text(bad, FILE).errors
    assert d.path == "layers[1].conv2d.kernel_size[1]"
    assert (d.loc.line, d.loc.col) == at(bad, "[3, ^0]")


def test_load_is_deterministic_and_plain():
    text = "netspec: 1\ninputs:\n  x: {shape: [T, 4]}\nlayers:\n  - lstm: 8\n"
    a, b = load_text(text, FILE), load_text(text, FILE)
    assert a.data == b.data == {"netspec": 1, "inputs": {"x": {"shape": ["T", 4]}}, "layers": [{"lstm": 8}]}


@pytest.mark.parametrize("mb", [30])
def test_a_file_of_tens_of_megabytes_is_refused_before_it_is_read(tmp_path, cli, mb):
    """Refused from its size alone: no YAML parse, so it takes no longer than a small file."""
    big = tmp_path / "huge.yaml"
    line = b"  - linear: {out_features: 8}\n"
    big.write_bytes(b"netspec: 1\ninputs: {x: {shape: [8]}}\nlayers:\n" + line * (mb * 2**20 // len(line)))
    start = time.perf_counter()
    code, out, _ = cli("check", big)
    assert time.perf_counter() - start < 5  # a hang guard; docs/reliability.md has the measured time
    assert code == 1 and "the spec file is too large" in out and f"at most {MAX_BYTES // 2**20} MiB" in out
    assert "hint: a spec is a few KB" in out


def test_a_spec_with_too_many_layers_is_refused_before_the_schema_check():
    text = "netspec: 1\ninputs: {x: {shape: [8]}}\nlayers:\n" + "  - relu\n" * 10_001
    start = time.perf_counter()
    res = compile_text(text)
    assert time.perf_counter() - start < 5
    (d,) = res.errors
    assert d.message == "too many layers" and d.received == "10,001 layers"
