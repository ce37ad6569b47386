"""Every kind of user mistake gives one diagnostic that says where (line, column, key path), what
was expected, what was received, and a hint; independent mistakes are all reported in one run.

Locations are computed from each test's own YAML text with `at`, never hard-coded.
"""

from __future__ import annotations

import pytest

from netspec.compiler import compile_text
from netspec.errors import ERROR, WARNING, Diagnostic, did_you_mean
from netspec.spec.parse import RESERVED
from netspec.spec.schema import build_schema

from .conftest import at

FILE = "spec.yaml"


def check(text: str, **kw):
    return compile_text(text, FILE, **kw)


def where(d: Diagnostic) -> tuple[int, int]:
    assert d.loc.file == FILE
    return d.loc.line, d.loc.col


def one(diags, path: str) -> Diagnostic:
    found = [d for d in diags if d.path == path]
    assert len(found) == 1, f"{path}: {found} in {diags}"
    return found[0]


def only_error(res) -> Diagnostic:
    assert not res.ok
    assert len(res.errors) == 1, res.errors
    return res.errors[0]


def spec(*layers: str, shape: str = "[1, 28, 28]", extra: str = "") -> str:
    head = f"netspec: 1\ninputs:\n  x: {{shape: {shape}}}\n{extra}layers:\n"
    return head + "".join(f"  - {layer}\n" for layer in layers)


# ----------------------------------------------------------------------------- schema stage


def test_unknown_top_level_key():
    text = spec("relu", extra="layerz: []\n")
    d = only_error(check(text))
    assert d.message == "unknown key 'layerz'"
    assert d.path == "layerz"
    assert where(d) == at(text, "layerz:")
    assert d.received == "'layerz'"
    top = sorted(build_schema()["properties"])  # the top-level keys grow; take them from the schema
    assert {"description", "dims", "inputs", "layers", "name", "netspec"} <= set(top)
    assert d.expected == "one of the keys allowed here: " + ", ".join(top)
    assert d.hint == "did you mean 'layers'?"
    assert d.code == "schema" and d.severity == ERROR


def test_unknown_param_key_did_you_mean_and_no_second_missing_error():
    text = spec("conv2d: {out_channels: 6, kernal_size: 5}")
    d = only_error(check(text))  # the typo is one mistake: no extra "missing 'kernel_size'"
    assert d.message == "unknown key 'kernal_size'"
    assert d.path == "layers[0].conv2d.kernal_size"
    assert where(d) == at(text, "kernal_size")
    assert d.hint == "did you mean 'kernel_size'?"
    assert d.received == "'kernal_size'"
    assert d.expected.startswith("one of the keys allowed for conv2d: ")
    assert "kernel_size" in d.expected and "out_channels" in d.expected
    assert d.code == "schema"


def test_unknown_key_with_no_close_match_still_reports_the_missing_key():
    text = spec("conv2d: {out_channels: 6, wibble: 5}")
    res = check(text)
    unknown = one(res.errors, "layers[0].conv2d.wibble")
    assert unknown.hint == "remove it: unknown keys are errors, never ignored"
    missing = one(res.errors, "layers[0].conv2d")
    assert missing.message == "missing required key 'kernel_size'"
    assert len(res.errors) == 2


def test_unknown_layer_type_bare_string():
    text = spec("conv2d: {out_channels: 6, kernel_size: 5}", "relux")
    d = only_error(check(text))
    assert d.message == "unknown layer type 'relux'"
    assert d.path == "layers[1]"
    assert where(d) == at(text, "relux")
    assert d.expected == "a layer type (see `netspec ops`) or a block defined under `blocks:`"
    assert d.received == "'relux'"
    assert d.hint == "did you mean 'relu'?"
    assert d.code == "schema"


def test_unknown_layer_type_mapping_form_points_at_the_type_key():
    text = spec("convd2: {out_channels: 6, kernel_size: 5}")
    d = only_error(check(text))
    assert d.message == "unknown layer type 'convd2'"
    assert d.path == "layers[0].convd2"
    assert where(d) == at(text, "convd2")
    assert d.received == "'convd2'"
    assert d.hint == "did you mean 'conv2d'?"  # a swapped pair, not the last of conv1d/2d/3d


def test_unknown_layer_type_case_and_nothing_close():
    text = spec("LSTM: 8", "frobnicate", shape="[5, 3]")
    res = check(text)
    assert one(res.errors, "layers[0].LSTM").hint == "did you mean 'lstm'?"
    assert one(res.errors, "layers[1]").hint == "run `netspec ops` for the list of layer types"


def test_bare_layer_that_needs_parameters():
    text = spec("conv2d")
    d = only_error(check(text))
    assert d.message == "layer 'conv2d' needs parameters"
    assert d.path == "layers[0]"
    assert where(d) == at(text, "conv2d")
    assert d.expected == "a mapping with out_channels, kernel_size"
    assert d.received == "'conv2d'"
    assert d.hint == "write `- conv2d: {out_channels: ..., kernel_size: ...}`"


def test_scalar_for_layer_without_shorthand():
    text = spec("conv2d: 6")
    d = only_error(check(text))
    assert d.message == "wrong type"
    assert d.path == "layers[0].conv2d"
    assert where(d) == at(text, "conv2d: ^6")
    assert d.expected == "a mapping"
    assert d.received == "6 (integer)"
    assert d.hint == "conv2d takes a mapping: `conv2d: {out_channels: ..., kernel_size: ...}`"


def test_missing_required_param():
    text = spec("relu", "conv2d: {out_channels: 6}")
    d = only_error(check(text))
    assert d.message == "missing required key 'kernel_size'"
    assert d.path == "layers[1].conv2d"
    assert where(d) == at(text, "conv2d")
    assert d.expected == "a key 'kernel_size'"
    assert d.hint == "kernel_size: window size: an int or one per axis"
    assert d.code == "schema"


def test_wrong_type_string_for_int():
    text = spec('conv2d: {out_channels: "6", kernel_size: 3}', "conv2d: {out_channels: 6, kernel_size: three}")
    res = check(text)
    quoted = one(res.errors, "layers[0].conv2d.out_channels")
    assert quoted.message == "wrong type"
    assert where(quoted) == at(text, 'out_channels: ^"6"')
    assert quoted.expected == "an integer"
    assert quoted.received == "'6' (string)"
    assert quoted.hint == "write the number without quotes"
    word = one(res.errors, "layers[1].conv2d.kernel_size")
    assert where(word) == at(text, "kernel_size: ^three")
    assert word.expected == "an integer or a list"
    assert word.received == "'three' (string)"
    assert word.hint is None  # "without quotes" would be wrong advice for a word
    assert len(res.errors) == 2


def test_wrong_type_float_and_bool_for_int():
    text = spec("conv2d: {out_channels: 6.5, kernel_size: 3}", "linear: true", shape="[1, 8, 8]")
    res = check(text)
    frac = one(res.errors, "layers[0].conv2d.out_channels")
    assert where(frac) == at(text, "out_channels: ^6.5")
    assert frac.expected == "an integer"
    assert frac.received == "6.5 (number)"
    assert frac.hint == "sizes are whole numbers"
    boolean = one(res.errors, "layers[1].linear")
    assert where(boolean) == at(text, "linear: ^true")
    assert boolean.received == "true (boolean)"  # as YAML spells it, not Python's True


def test_integral_float_is_accepted_as_int():
    res = check(spec("conv2d: {out_channels: 6.0, kernel_size: 3}"))
    assert res.ok, res.diagnostics
    assert res.typed.layers[0].node.params["out_channels"] == 6


def test_wrong_list_length_for_per_axis_value():
    text = spec("conv2d: {out_channels: 6, kernel_size: [3, 3, 3]}")
    d = only_error(check(text))
    assert d.message == "wrong number of items"
    assert d.path == "layers[0].conv2d.kernel_size"
    assert where(d) == at(text, "kernel_size: ^[3, 3, 3]")
    assert d.expected == "a list of exactly 2 items"
    assert d.received == "3 items"
    assert d.hint == "one value per spatial axis, or a single int for all"


@pytest.mark.parametrize(
    ("value", "expected", "received"),
    [
        ("0", "a value >= 1", "0 (integer)"),
        ("-3", "a value >= 1", "-3 (integer)"),
        ("1e30", "a value <= 2147483647", "1e+30 (number)"),
        ("2147483648", "a value <= 2147483647", "2147483648 (integer)"),
        ("1" + "0" * 99, "a value <= 2147483647", "100000000000... (a 100-digit integer)"),
    ],
)
def test_out_of_range_size(value, expected, received):
    text = spec(f"conv2d: {{out_channels: {value}, kernel_size: 3}}")
    d = only_error(check(text))
    assert d.message == "value out of range"
    assert d.path == "layers[0].conv2d.out_channels"
    assert where(d) == at(text, f"out_channels: ^{value}")
    assert d.expected == expected
    assert d.received == received
    assert d.code == "schema"


def test_out_of_range_per_axis_item_and_probability():
    text = spec("conv2d: {out_channels: 4, kernel_size: [3, 0]}", "dropout: 1.0")
    res = check(text)
    item = one(res.errors, "layers[0].conv2d.kernel_size[1]")
    assert where(item) == at(text, "[3, ^0]")
    assert (item.expected, item.received) == ("a value >= 1", "0 (integer)")
    p = one(res.errors, "layers[1].dropout")
    assert where(p) == at(text, "dropout: ^1.0")
    assert (p.expected, p.received) == ("a value < 1.0", "1.0 (number)")
    assert len(res.errors) == 2


def test_enum_value_wrong():
    text = spec("conv2d: {out_channels: 6, kernel_size: 3, padding_mode: zero}")
    d = only_error(check(text))
    assert d.message == "value is not one of the allowed choices"
    assert d.path == "layers[0].conv2d.padding_mode"
    assert where(d) == at(text, "padding_mode: ^zero")
    assert d.expected == "one of 'zeros', 'reflect', 'replicate', 'circular'"
    assert d.received == "'zero' (string)"
    assert d.hint == "did you mean 'zeros'?"


def test_layer_item_with_two_keys_forgotten_dash():
    text = spec("conv2d: {out_channels: 6, kernel_size: 5}\n    relu:")
    d = only_error(check(text))
    assert d.message == "a layer has exactly one key, its type"
    assert d.path == "layers[0]"
    assert where(d) == at(text, "conv2d")
    assert d.expected == "`- <type>: <parameters>`"
    assert d.received == "keys ['conv2d', 'relu']"
    assert "a '-' is missing between two layers" in d.hint


def test_missing_netspec_version():
    text = "inputs:\n  x: {shape: [4]}\nlayers:\n  - relu\n"
    d = only_error(check(text))
    assert d.message == "missing required key 'netspec'"
    assert d.path == ""
    assert where(d) == (1, 1)
    assert d.expected == "a key 'netspec'"
    assert d.hint == "add `netspec: 1` as the first line"


def test_wrong_netspec_version():
    text = spec("relu").replace("netspec: 1", "netspec: 2")
    d = only_error(check(text))
    assert d.message == "unsupported value"
    assert d.path == "netspec"
    assert where(d) == at(text, "netspec: ^2")
    assert (d.expected, d.received) == ("1", "2 (integer)")
    assert d.hint == "write `netspec: 1`, the spec format this version reads"


def test_an_input_no_layer_reads_is_a_warning():
    text = "netspec: 1\ninputs:\n  x: {shape: [4]}\n  y: {shape: [4]}\nlayers:\n  - relu\n"
    res = check(text)
    assert res.ok
    (w,) = res.warnings
    assert w.message == "input 'y' is never read"
    assert w.path == "inputs.y"
    assert where(w) == at(text, "y: {")
    assert w.hint == "read it with `from:`" and w.code == "graph"


def test_input_dtype_and_dimension_mistakes():
    text = 'netspec: 1\ninputs:\n  x-y: {shape: [1, T-1, "32"], dtype: float16}\nlayers:\n  - relu\n'
    res = check(text)
    name = one(res.errors, "inputs.x-y")
    assert name.message == "invalid name 'x-y'"
    assert where(name) == at(text, "x-y")
    arith = one(res.errors, "inputs.x-y.shape[1]")
    assert arith.message == "invalid dimension"
    assert where(arith) == at(text, "T-1")
    assert arith.received == "'T-1' (string)"
    assert "symbol is a plain name" in arith.hint
    quoted = one(res.errors, "inputs.x-y.shape[2]")
    assert where(quoted) == at(text, '"32"')
    assert quoted.hint == "write the number without quotes"
    dtype = one(res.errors, "inputs.x-y.dtype")
    assert where(dtype) == at(text, "float16")
    assert dtype.expected == "one of 'float32', 'int64'"
    assert dtype.hint == "did you mean 'float32'?"
    assert len(res.errors) == 4


def test_invalid_layer_name():
    text = spec("conv2d: {out_channels: 6, kernel_size: 3, name: 1abc}")
    d = only_error(check(text))
    assert d.message == "invalid name"
    assert d.path == "layers[0].conv2d.name"
    assert where(d) == at(text, "1abc")
    assert d.received == "'1abc' (string)"


def test_all_independent_schema_errors_in_one_run():
    text = spec(
        "conv2d: {out_channels: 6, kernal_size: 5}",  # layer 0: typo
        "relu",
        "maxpool2d: 2",
        "conv2d: {out_channels: 16, kernel_size: 0}",  # layer 3: out of range
        "dropout: {p: 0.5, inplace: true}",  # layer 4: unknown key, nothing close
        "linaer: 10",  # layer 5: unknown type
        extra="dims: {T: -1}\n",  # top level: out of range
    )
    res = check(text)
    assert res.typed is None and not res.ok
    got = [(d.path, d.message, where(d)) for d in res.errors]
    assert got == [
        ("dims.T", "value out of range", at(text, "T: ^-1")),
        ("layers[0].conv2d.kernal_size", "unknown key 'kernal_size'", at(text, "kernal_size")),
        ("layers[3].conv2d.kernel_size", "value out of range", at(text, "kernel_size: ^0")),
        ("layers[4].dropout.inplace", "unknown key 'inplace'", at(text, "inplace")),
        ("layers[5].linaer", "unknown layer type 'linaer'", at(text, "linaer")),
    ]  # sorted by position
    assert one(res.errors, "layers[5].linaer").hint == "did you mean 'linear'?"


def test_render_shows_location_source_line_and_caret():
    text = spec("conv2d: {out_channels: 6, kernal_size: 5}")
    res = check(text)
    d = only_error(res)
    line, col = at(text, "kernal_size")
    out = d.render(res.source_lines()).splitlines()
    assert out[0] == f"{FILE}:{line}:{col}: error[schema]: layers[0].conv2d.kernal_size: unknown key 'kernal_size'"
    assert out[1] == f"  {line:>4} | {text.splitlines()[line - 1]}"
    assert out[2] == "       | " + " " * (col - 1) + "^"
    assert out[-1] == "  hint: did you mean 'kernel_size'?"


# ----------------------------------------------------------------------------- names


def test_duplicate_layer_names():
    text = spec(
        "conv2d: {out_channels: 6, kernel_size: 3, name: c1}",
        "relu",
        "conv2d: {out_channels: 6, kernel_size: 3, name: c1}",
    )
    d = only_error(check(text))
    assert d.message == "duplicate name 'c1'"
    assert d.path == "layers[2].conv2d.name"
    assert where(d) == at(text, "c1", nth=2)
    first_line = at(text, "c1")[0]
    assert d.received == f"'c1', already used at line {first_line}"
    assert d.expected == "a name not used before (by an input or a layer)"
    assert d.code == "name"


def test_layer_named_like_the_input():
    text = spec("relu: {name: x}")
    d = only_error(check(text))
    assert d.message == "duplicate name 'x'"
    assert d.received == f"'x', already used at line {at(text, 'x: {')[0]}"


@pytest.mark.parametrize("name", ["forward", "class", "buffers", "named_modules", "order", "self", "_private"])
def test_reserved_layer_name(name):
    text = spec(f"linear: {{out_features: 3, name: {name}}}", shape="[4]")
    d = only_error(check(text))
    assert d.message == f"name '{name}' is reserved"
    assert d.path == "layers[0].linear.name"
    assert where(d) == at(text, f"name: ^{name}")
    assert d.received == repr(name)
    assert d.hint == f"try '{name}_1'"
    assert d.code == "name"


def test_reserved_names_cover_every_nn_module_attribute():
    """add_module refuses any existing attribute name, so `check` must refuse them all."""
    from torch import nn

    public = {n for n in dir(nn.Module()) if not n.startswith("_")}
    assert public <= RESERVED, sorted(public - RESERVED)


def test_name_errors_and_canonical_errors_reported_together():
    text = spec(
        "conv2d: {out_channels: 6, kernel_size: 3, name: c1}",
        "conv2d: {out_channels: 6, kernel_size: 3, name: c1}",
        "conv2d: {out_channels: 6, kernel_size: 3, name: train}",
        "conv2d: {out_channels: 6, kernel_size: 3, groups: 4, padding: same, stride: 2}",
        "dropout: .nan",
    )
    res = check(text)
    # NaN is a schema error and schema errors stop before naming, so check it separately below
    assert [d.path for d in res.errors] == ["layers[4].dropout"]
    res = check(text.replace("dropout: .nan", "dropout: 0.1"))
    paths = sorted(d.path for d in res.errors)
    assert paths == [
        "layers[1].conv2d.name",
        "layers[2].conv2d.name",
        "layers[3].conv2d.out_channels",
        "layers[3].conv2d.padding",
    ]


# ----------------------------------------------------------------------------- input-independent checks


def test_groups_must_divide_out_channels():
    text = spec("conv2d: {out_channels: 6, kernel_size: 3, groups: 4}", shape="[8, 8, 8]")
    d = only_error(check(text))
    assert d.message == "conv2d 'conv2d_1': out_channels must be divisible by groups"
    assert d.path == "layers[0].conv2d.out_channels"
    assert where(d) == at(text, "out_channels: ^6")
    assert d.expected == "a multiple of groups=4"
    assert d.received == "out_channels=6 (6 % 4 = 2)"
    assert d.code == "shape"


def test_groups_must_divide_inferred_in_channels():
    text = spec("conv2d: {out_channels: 8, kernel_size: 3, groups: 4}", shape="[6, 8, 8]")
    d = only_error(check(text))
    assert d.message == "conv2d 'conv2d_1': in_channels must be divisible by groups"
    assert d.path == "layers[0].conv2d.groups"
    assert where(d) == at(text, "groups: ^4")
    assert d.expected == "a multiple of groups=4"
    assert d.received == "in_channels=6 from the input (6 % 4 = 2)"
    assert d.hint.startswith("change groups or the channels of the previous layer; for a depthwise conv write")


def test_padding_same_with_stride_2():
    text = spec("conv2d: {out_channels: 6, kernel_size: 3, padding: same, stride: 2}")
    d = only_error(check(text))
    assert d.message == "conv2d 'conv2d_1': padding='same' needs stride 1"
    assert d.path == "layers[0].conv2d.padding"
    assert where(d) == at(text, "padding: ^same")
    assert d.received == "stride [2, 2]"
    assert "stride 1" in d.expected
    assert d.hint == "use an explicit padding such as (kernel_size - 1) // 2 with the stride"


# ----------------------------------------------------------------------------- shapes


def test_conv_kernel_larger_than_input_shows_the_arithmetic():
    text = spec("conv2d: {out_channels: 6, kernel_size: 5}", shape="[1, 4, 4]")
    d = only_error(check(text))
    assert d.message == "conv2d 'conv2d_1': output height would be 0"
    assert d.path == "layers[0].conv2d.kernel_size"
    assert where(d) == at(text, "kernel_size: ^5")
    assert d.expected == "an input height of at least 5 for this window"
    assert d.received == "input height 4: floor((4 + 0 - 1*(5-1) - 1)/1) + 1 = 0"
    assert d.hint == "reduce kernel_size (window spans 5), add padding, or remove a downsampling layer before this one"
    assert d.code == "shape"


def test_shape_error_after_downsampling_names_the_failing_layer():
    text = spec(
        "conv2d: {out_channels: 4, kernel_size: 3}",  # 8 -> 6
        "maxpool2d: 2",  # 6 -> 3
        "conv2d: {out_channels: 4, kernel_size: 3, stride: 2, dilation: 2}",  # span 5 > 3
        shape="[1, 8, 8]",
    )
    d = only_error(check(text))
    assert d.path == "layers[2].conv2d.kernel_size"
    assert where(d) == at(text, "kernel_size: ^3", nth=2)
    assert d.message == "conv2d 'conv2d_2': output height would be 0"
    assert d.received == "input height 3: floor((3 + 0 - 2*(3-1) - 1)/2) + 1 = 0"
    assert d.expected == "an input height of at least 5 for this window"


def test_rank_mismatch_conv2d_on_flat_vector():
    text = spec("conv2d: {out_channels: 6, kernel_size: 3}", shape="[784]")
    d = only_error(check(text))
    assert d.message == "conv2d 'conv2d_1': conv2d expects (C, H, W) per sample"
    assert d.path == "layers[0].conv2d"
    assert where(d) == at(text, "conv2d")
    assert d.expected == "rank 3 per sample (C, H, W) (plus the batch)"
    assert d.received == "rank 1: (B, 784)"
    assert d.hint == "the input lacks a channel axis: add it to the input shape, e.g. [1, ...]"


def test_rank_mismatch_lstm_on_vector():
    text = spec("lstm: 8", shape="[20]")
    d = only_error(check(text))
    assert d.path == "layers[0].lstm"
    assert where(d) == at(text, "lstm")
    assert d.received == "rank 1: (B, 20)"
    assert d.hint == "recurrent layers read (T, F); declare the input as [T, F] or add `- reshape: [-1, 1]`"


def test_int64_input_to_conv():
    text = spec("conv2d: {out_channels: 6, kernel_size: 3}").replace("[1, 28, 28]}", "[1, 28, 28], dtype: int64}")
    d = only_error(check(text))
    assert d.message == "conv2d 'conv2d_1': wrong input dtype for conv2d"
    assert d.path == "layers[0].conv2d"
    assert where(d) == at(text, "conv2d")
    assert d.expected == "float32 input (C, H, W)"
    assert d.received == "int64 (B, 1, 28, 28)"
    assert d.hint == "integer ids go through an `embedding` layer first"


def test_float_input_to_embedding():
    text = spec("embedding: {num_embeddings: 100, embedding_dim: 8}", shape="[12]")
    d = only_error(check(text))
    assert d.message == "embedding 'embedding_1': wrong input dtype for embedding"
    assert d.received == "float32 (B, 12)"
    assert d.hint == "declare the input with `dtype: int64` (token ids)"


def test_linear_on_symbolic_dim():
    text = spec("linear: 4", "transpose: [1, 2]", "linear: 3", shape="[T, 6]")
    d = only_error(check(text))
    assert d.message == "linear 'linear_2': linear needs a fixed number of input features"
    assert d.path == "layers[2].linear"
    assert where(d) == at(text, "linear: 3")
    assert d.expected == "a fixed last dimension"
    assert d.received == "last dimension T of (B, 4, T)"
    assert "pool over the symbolic axis first" in d.hint


def test_written_in_channels_disagrees_with_inference():
    text = spec("conv2d: {out_channels: 8, kernel_size: 3, in_channels: 1}", shape="[3, 8, 8]")
    d = only_error(check(text))
    assert d.message == "conv2d 'conv2d_1': in_channels does not match the input"
    assert d.path == "layers[0].conv2d.in_channels"
    assert where(d) == at(text, "in_channels: ^1")
    assert d.expected == "in_channels = 1, as written"
    assert d.received == "3 channels from the layer before"
    # An explicit value is a check: the hint must not tell the user to delete it.
    assert d.hint == (
        "if 1 is right, the layers above make 3 channels: fix them; "
        "if not, write in_channels: 3 (or leave it out to take it from the input unchecked)"
    )
    assert not d.hint.startswith("remove")


def test_written_in_channels_that_agree_are_fine():
    res = check(spec("conv2d: {out_channels: 8, kernel_size: 3, in_channels: 3}", shape="[3, 8, 8]"))
    assert res.ok and not res.diagnostics


def test_in_features_of_unflattened_input_hints_flatten():
    text = spec(
        "conv2d: {out_channels: 8, kernel_size: 3}", "linear: {out_features: 10, in_features: 288}", shape="[3, 8, 8]"
    )
    d = only_error(check(text))
    assert d.message == "linear 'linear_1': in_features does not match the input"
    assert d.path == "layers[1].linear.in_features"
    assert where(d) == at(text, "in_features: ^288")
    assert d.expected == "in_features = 288, as written"
    assert d.received == "6 features from the layer before"
    assert d.hint == "the input is (B, 8, 6, 6): add `- flatten` before this layer to get 288 features"


def test_in_features_plainly_wrong():
    text = spec(
        "conv2d: {out_channels: 8, kernel_size: 3}",
        "flatten",
        "linear: {out_features: 10, in_features: 200}",
        shape="[3, 8, 8]",
    )
    d = only_error(check(text))
    assert d.received == "288 features from the layer before"
    assert "the layers above make 288 features: fix them" in d.hint


def test_symbolic_dim_with_too_small_nominal_size():
    text = spec("conv1d: {out_channels: 8, kernel_size: 8}", shape="[6, T]", extra="dims: {T: 3}\n")
    d = only_error(check(text))
    assert d.message == "conv1d 'conv1d_1': with T = 3: output length would be -4"
    assert d.path == "layers[0].conv1d.kernel_size"
    assert where(d) == at(text, "kernel_size: ^8")
    assert d.expected == "an input length of at least 8 for this window"
    assert d.received == "input length 3: floor((3 + 0 - 1*(8-1) - 1)/1) + 1 = -4"


def test_symbolic_dim_sizes_from_dims_argument_override_the_spec():
    text = spec("conv1d: {out_channels: 8, kernel_size: 8}", shape="[6, T]", extra="dims: {T: 100}\n")
    assert check(text).ok
    d = only_error(check(text, dims={"T": 3}))
    assert d.message.startswith("conv1d 'conv1d_1': with T = 3: ")
    unbound = check(text.replace("dims: {T: 100}\n", ""))
    assert unbound.ok and unbound.typed.unbound == ("T",)


# ----------------------------------------------------------------------------- warnings


def test_conv1d_channels_into_lstm_warns_but_compiles():
    text = spec("conv1d: {out_channels: 8, kernel_size: 8}", "lstm: 16", shape="[6, 100]")
    res = check(text)
    assert res.ok  # a warning never fails the spec
    assert not res.errors
    (w,) = res.warnings
    assert w.severity == WARNING and not w.is_error
    assert w.message == "lstm 'lstm_1' reads (C, L) = (8, 93) from a conv1d stack as (T, F)"
    assert w.path == "layers[1].lstm"
    assert where(w) == at(text, "lstm")
    assert w.expected == "(T, F): time first, features last"
    assert w.received == "(B, 8, 93) with channels first, so time would be the 8 channels"
    assert w.hint == "insert `- transpose: [1, 2]` before this layer"
    assert w.code == "layout"
    fixed = check(text.replace("  - lstm: 16", "  - transpose: [1, 2]\n  - lstm: 16"))
    assert fixed.ok and not fixed.diagnostics


def test_dropout_on_single_layer_lstm_warns_but_compiles():
    text = spec("lstm: {hidden_size: 16, dropout: 0.2}", shape="[T, 6]", extra="dims: {T: 50}\n")
    res = check(text)
    assert res.ok and not res.errors
    (w,) = res.warnings  # the symbolic and the nominal-size passes do not both report it
    assert w.message == "dropout has no effect on a single-layer lstm"
    assert w.path == "layers[0].lstm.dropout"
    assert where(w) == at(text, "dropout: ^0.2")
    assert w.expected == "num_layers > 1 for dropout between layers"
    assert w.received == "dropout=0.2, num_layers=1"
    assert w.hint == "add a `- dropout` layer after it instead"
    assert w.severity == WARNING and w.code == "layout"
    assert not check(text.replace("dropout: 0.2", "dropout: 0.2, num_layers: 2")).diagnostics


def test_independent_warnings_on_one_layer_are_both_reported():
    text = spec("conv1d: {out_channels: 8, kernel_size: 8}", "lstm: {hidden_size: 16, dropout: 0.2}", shape="[6, 100]")
    res = check(text)
    assert res.ok
    assert sorted(w.path for w in res.warnings) == ["layers[1].lstm", "layers[1].lstm.dropout"]


def test_warning_and_error_together():
    text = spec("lstm: {hidden_size: 16, dropout: 0.2}", "linear: {out_features: 3, in_features: 5}", shape="[7, 6]")
    res = check(text)
    assert not res.ok
    assert [d.path for d in res.warnings] == ["layers[0].lstm.dropout"]
    assert [d.path for d in res.errors] == ["layers[1].linear.in_features"]


# ----------------------------------------------------------------------------- did you mean


@pytest.mark.parametrize(
    ("word", "choices", "hint"),
    [
        ("convd2", ["conv1d", "conv2d", "conv3d"], "did you mean 'conv2d'?"),
        ("kernal_size", ["kernel_size", "stride"], "did you mean 'kernel_size'?"),
        ("Dropout", ["dropout", "relu"], "did you mean 'dropout'?"),
        ("GRU", ["gru", "lstm"], "did you mean 'gru'?"),
        ("xyz", ["kernel_size", "stride"], None),
    ],
)
def test_did_you_mean(word, choices, hint):
    assert did_you_mean(word, choices) == hint


# ------------------------------------------------------- schema and expression errors at once


def test_expression_errors_come_with_schema_errors():
    """An undefined name and a broken expression are mistakes of their own: reported in the same
    run as a misspelt layer type (which stops the compiler before the graph is built), each once."""
    text = spec(
        'conv2d: {out_channels: "${width}", kernel_size: 3}',
        "relux",
        'linear: {out_features: "${2 +}"}',
    )
    res = check(text)
    got = [(d.code, d.path, where(d)) for d in res.errors]
    assert got == [
        ("expr", "layers[0].conv2d.out_channels", at(text, '"${width}')),
        ("schema", "layers[1]", at(text, "relux")),
        ("expr", "layers[2].linear.out_features", at(text, '"${2 +}')),
    ]
    assert "unknown variable 'width'" in res.errors[0].message
    assert "missing operand" in res.errors[2].message


def test_expression_errors_come_with_schema_errors_in_blocks():
    text = (
        "netspec: 1\ninputs:\n  x: {shape: [3, 8, 8]}\n"
        "blocks:\n  cbr:\n    args: {c: null}\n    layers:\n"
        '      - conv2d: {out_channels: "${c * k}", kernel_size: 3}\n      - relux\n'
        "layers:\n  - cbr: {c: 4}\n  - flatten\n"
    )
    res = check(text)
    assert [(d.code, d.path) for d in res.errors] == [("schema", "blocks.cbr.layers[1]")]
    # the body's expression is evaluated per use, where a schema error may be its cause: not
    # reported with one; alone, it is
    alone = check(text.replace("relux", "relu"))
    assert [(d.code, d.path) for d in alone.errors] == [("expr", "blocks.cbr.layers[0].conv2d.out_channels")]


@pytest.mark.parametrize(
    ("extra", "layer"),
    [
        # a var the schema refuses: the expression reading it fails because of it
        ("vars:\n  w: {a: 1}\n", 'linear: {out_features: "${w * 2}"}'),
        # the schema error covers the expression's place (a layer item of two keys)
        ("", '{linear: {out_features: "${w}"}, relu: null}'),
    ],
)
def test_an_effect_of_a_schema_error_is_not_reported(extra, layer):
    res = check(spec(layer, extra=extra))
    assert [d.code for d in res.errors] == ["schema"], res.errors


def test_a_document_parse_cannot_read_reports_its_schema_errors():
    text = 'netspec: 1\ninputs: 5\nlayers:\n  - linear: {out_features: "${w}"}\n'
    res = check(text)
    assert res.errors and all(d.code == "schema" for d in res.errors)
