"""Blocks, vars, repeat and scale: reusable groups of layers expanded into nodes named by module
path, `${...}` values evaluated in each block's scope, and whole-network width/depth scaling.

PyTorch is the oracle for every shape and count: the lowered module's state-dict keys, the
per-layer parameters, buffers and output shapes, and the generated model.py run in a fresh
interpreter. Diagnostics inside a block point at its definition and name the use site in
`Diagnostic.context`. The reference summaries live in tests/golden/ (regenerate them with
NETSPEC_UPDATE_GOLDEN=1 after checking the totals they carry).

Locations are computed from each test's own YAML text with `at`, never hard-coded.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from netspec.compiler import compile_file, compile_text
from netspec.errors import WARNING
from netspec.lower.codegen import class_name, model_source
from netspec.lower.module import ctor_of, lower
from netspec.passes.scale import scaled_width

from .conftest import ROOT, at
from .test_build import FRESH
from .test_op_contract import one_thread  # noqa: F401  (autouse: tiny tensors run faster on one thread)

FILE = "spec.yaml"
GOLDEN = ROOT / "tests" / "golden"


def compiled(text: str):
    res = compile_text(text, FILE)
    assert res.ok, "\n".join(d.render(text.splitlines()) for d in res.diagnostics)
    return res


def only_error(res):
    assert not res.ok
    assert len(res.errors) == 1, [d.render() for d in res.errors]
    return res.errors[0]


def where(d) -> tuple[int, int]:
    assert d.loc.file == FILE
    return d.loc.line, d.loc.col


def used_at(text: str, needle: str, name: str, block: str) -> str:
    """The context line a diagnostic carries for the block use written at `needle`."""
    line, col = at(text, needle)
    return f"in block `{block}` used at {FILE}:{line}:{col} as '{name}'"


def nodes(res) -> list[str]:
    return [n.name for n in res.graph.nodes]


def typed_params(res, name: str) -> dict:
    """A layer's parameters after inference (inferred sizes such as in_channels filled in)."""
    return next(dict(la.node.params) for la in res.typed.layers if la.node.name == name)


def torch_agrees(typed, batch: int = 2, seed: int = 0):
    """Lower `typed`, run it on random input and compare every layer's output shape, parameters
    and buffers with the static ones; returns (module, output)."""
    model = lower(typed, seed=seed).eval()
    shapes = {}
    for layer in typed.layers:
        sub = model.get_submodule(layer.node.name)  # the node name is the module path
        assert layer.params == sum(p.numel() for p in sub.parameters()), layer.node.name
        assert layer.buffers == sum(b.numel() for b in sub.buffers()), layer.node.name

        def hook(_mod, _args, out, name=layer.node.name):
            shapes[name] = tuple(out.shape)

        sub.register_forward_hook(hook)
    assert typed.total_params == sum(p.numel() for p in model.parameters())
    assert typed.total_buffers == sum(b.numel() for b in model.buffers())
    gen = torch.Generator().manual_seed(seed)
    xs = []
    for t in typed.inputs:
        shape = (batch, *(typed.bindings.get(d, d) for d in t.shape))
        xs.append(torch.randn(shape, generator=gen) if t.dtype == "float32" else torch.randint(0, 4, shape))
    with torch.no_grad():
        out = model(*xs)
    for layer in typed.layers:
        want = (batch, *(typed.bindings.get(d, d) for d in layer.out_type.shape))
        assert shapes[layer.node.name] == want, layer.node.name
    return model, out


# ----------------------------------------------------------------------------- semantics

NESTED = """\
netspec: 1
name: tiny
inputs:
  x: {shape: [3, 8, 8]}
vars:
  base: 4
  wide: ${base * 2}
blocks:
  cbr:
    args: {c: null, k: 3, pad: "${k // 2}"}
    layers:
      - conv2d: {name: conv, out_channels: "${c}", kernel_size: "${k}", padding: "${pad}"}
      - batchnorm2d: {name: bn}
      - relu: {name: act}
  res:
    args: {c: "${wide}"}
    layers:
      - cbr: {name: a, c: "${c}"}
      - cbr: {name: b, c: "${c}", k: 1}
      - add: {name: sum, from: [b, x]}
layers:
  - cbr: {name: stem, c: "${wide}"}
  - res: {name: stage, repeat: 2}
  - relu: {name: post, from: stage}
  - global_avgpool: {name: gap}
  - linear: {name: fc, out_features: 5}
"""


def test_nested_blocks_expand_to_module_paths_that_torch_agrees_with():
    res = compiled(NESTED)
    cbr = ["conv", "bn", "act"]
    res_block = [f"a.{n}" for n in cbr] + [f"b.{n}" for n in cbr] + ["sum"]
    expected = (
        [f"stem.{n}" for n in cbr]
        + [f"stage0.{n}" for n in res_block]
        + [f"stage1.{n}" for n in res_block]
        + ["post", "gap", "fc"]
    )
    assert nodes(res) == expected
    graph = res.graph
    # `stage` (a repeated block) is its last copy; each copy reads the one before
    assert graph.node("post").inputs == ("stage1.sum",)
    assert graph.node("stage1.a.conv").inputs == ("stage0.sum",)
    assert graph.node("stage0.sum").inputs == ("stage0.b.act", "stem.act")  # `x` is the block's input
    # vars use vars (wide = base * 2); an arg default uses an earlier arg (pad = k // 2)
    a_conv, b_conv = graph.node("stage0.a.conv").params, graph.node("stage0.b.conv").params
    assert (a_conv["out_channels"], a_conv["kernel_size"], a_conv["padding"]) == (8, (3, 3), (1, 1))
    assert (b_conv["out_channels"], b_conv["kernel_size"], b_conv["padding"]) == (8, (1, 1), (0, 0))
    args = {i.path: dict(i.args) for i in graph.instances}
    assert args["stem"] == {"c": 8, "k": 3, "pad": 1}
    assert args["stage1"] == {"c": 8}
    assert args["stage1.b"] == {"c": 8, "k": 1, "pad": 0}
    assert sorted(args) == sorted(["stem", "stage0", "stage1", "stage0.a", "stage0.b", "stage1.a", "stage1.b"])

    model, out = torch_agrees(res.typed)
    conv_keys = ["weight", "bias"]
    bn_keys = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    want_keys = []
    for name in expected:
        if name.endswith("conv"):
            want_keys += [f"{name}.{k}" for k in conv_keys]
        elif name.endswith("bn"):
            want_keys += [f"{name}.{k}" for k in bn_keys]
    want_keys += ["fc.weight", "fc.bias"]
    assert list(model.state_dict()) == want_keys
    assert tuple(out.shape) == (2, 5) and res.typed.output.shape == (5,)
    # by hand: conv k*k*cin*cout + cout, batch norm 2c (+ 2c+1 buffers), linear 8*5 + 5
    cbr3 = lambda cin, c, k: k * k * cin * c + c + 2 * c  # noqa: E731
    assert res.typed.total_params == cbr3(3, 8, 3) + 2 * (cbr3(8, 8, 3) + cbr3(8, 8, 1)) + 8 * 5 + 5
    assert res.typed.total_buffers == 5 * (2 * 8 + 1)


def test_args_override_vars_and_defaults_see_earlier_args_and_vars():
    text = textwrap.dedent("""\
        netspec: 1
        inputs:
          x: {shape: [4, 8]}
        vars:
          c: 100
          m: 2
        blocks:
          b:
            args: {c: 3, d: "${c * m}", e: "${d + c}"}
            layers:
              - conv1d: {name: conv, out_channels: "${e}", kernel_size: 1}
        layers:
          - b: {name: u}
          - b: {name: v, c: 5}
          - b: {name: w, d: 1}
        """)
    res = compiled(text)
    got = {n.name: n.params["out_channels"] for n in res.graph.nodes}
    # the arg c (3) hides the var c (100); d defaults from c and the var m; e from d and c
    assert got == {"u.conv": 3 * 2 + 3, "v.conv": 5 * 2 + 5, "w.conv": 1 + 3}
    torch_agrees(res.typed)


def test_multi_input_block_reads_from_in_order():
    text = textwrap.dedent("""\
        netspec: 1
        inputs:
          x: {shape: [4, 8]}
        blocks:
          merge:
            inputs: [x, skip]
            layers:
              - conv1d: {name: proj, from: skip, out_channels: 4, kernel_size: 1}
              - add: {name: sum, from: [x, proj]}
        layers:
          - conv1d: {name: a, out_channels: 6, kernel_size: 1}
          - merge: {name: m, from: [x, a]}
          - relu: {name: out}
        """)
    res = compiled(text)
    graph = res.graph
    assert nodes(res) == ["a", "m.proj", "m.sum", "out"]
    assert graph.node("m.proj").inputs == ("a",)  # skip <- a
    assert graph.node("m.sum").inputs == ("x", "m.proj")  # x <- x
    (inst,) = graph.instances
    assert (inst.path, inst.inputs, inst.sources, inst.outputs) == ("m", ("x", "skip"), ("x", "a"), ("m.sum",))
    assert typed_params(res, "m.proj")["in_channels"] == 6  # inferred from `a`
    model, out = torch_agrees(res.typed)
    assert set(model.state_dict()) == {"a.weight", "a.bias", "m.proj.weight", "m.proj.bias"}
    assert tuple(out.shape) == (2, 4, 8)


def test_multi_input_block_with_the_wrong_number_of_sources():
    text = textwrap.dedent("""\
        netspec: 1
        inputs:
          x: {shape: [4, 8]}
        blocks:
          merge:
            inputs: [x, skip]
            layers:
              - add: {name: sum, from: [x, skip]}
        layers:
          - relu: {name: a}
          - merge: {name: m, from: [a]}
        """)
    d = only_error(compile_text(text, FILE))
    assert d.message == "block 'merge' reads 2 inputs (x, skip)"
    assert d.path == "layers[1].merge.from"
    assert where(d) == at(text, "from: ^[a]")
    assert d.received == "1: ['a']"


ENC = """\
netspec: 1
inputs:
  x: {shape: [4, 8]}
blocks:
  enc:
    layers:
      - lstm: {name: rnn, hidden_size: 6, output: sequence}
      - tanh: {name: h}
      - sigmoid: {name: c, from: rnn}
    outputs: [h, c]
layers:
  - enc: {name: enc}
"""


def test_multi_output_block_is_read_by_output_name():
    text = ENC + "  - multiply: {name: gate, from: [enc.h, enc.c]}\n"
    res = compiled(text)
    assert nodes(res) == ["enc.rnn", "enc.h", "enc.c", "gate"]
    assert res.graph.node("gate").inputs == ("enc.h", "enc.c")
    (inst,) = res.graph.instances
    assert inst.outputs == ("enc.h", "enc.c")
    model, out = torch_agrees(res.typed)
    assert all(k.startswith("enc.rnn.") for k in model.state_dict())
    assert tuple(out.shape) == (2, 4, 6)


@pytest.mark.parametrize(
    ("layer", "needle", "what"),
    [
        ("  - relu: {name: r, from: enc}\n", "from: ^enc}", "'enc'"),
        ("  - relu: {name: r}\n", "{name: r}", "the previous layer"),
    ],
    ids=["from", "previous"],
)
def test_a_bare_multi_output_block_name_is_an_error(layer, needle, what):
    text = ENC + layer
    d = only_error(compile_text(text, FILE))
    assert d.message == f"{what} is block instance 'enc', which has 2 outputs"
    assert d.received == "h, c"
    assert d.hint == "write `from: enc.h`"
    assert where(d) == at(text, needle)


def test_multi_output_block_as_the_last_layer_needs_outputs():
    res = compile_text(ENC, FILE)
    assert not res.ok
    assert any(d.message == "the last layer is block instance 'enc', which has 2 outputs" for d in res.errors)


def test_repeat_names_copies_and_digit_ending_names():
    text = textwrap.dedent("""\
        netspec: 1
        inputs:
          x: {shape: [4, 8]}
        blocks:
          unit:
            layers:
              - conv1d: {name: conv, out_channels: 4, kernel_size: 3, padding: 1}
              - relu: {name: act}
        layers:
          - unit: {name: u, repeat: 2}
          - unit: {name: s1, repeat: 2}
          - relu: {name: act2, repeat: 3}
          - tanh: {name: t, repeat: 1}
          - sigmoid: {name: last, from: s1}
        """)
    res = compiled(text)
    assert nodes(res) == [
        "u0.conv", "u0.act", "u1.conv", "u1.act",
        "s1_0.conv", "s1_0.act", "s1_1.conv", "s1_1.act",
        "act2_0", "act2_1", "act2_2",
        "t0",
        "last",
    ]  # fmt: skip
    g = res.graph
    assert g.node("u1.conv").inputs == ("u0.act",)
    assert g.node("s1_0.conv").inputs == ("u1.act",)
    assert g.node("act2_0").inputs == ("s1_1.act",)
    assert g.node("act2_2").inputs == ("act2_1",)
    assert g.node("last").inputs == ("s1_1.act",)  # `s1` is the last copy
    model, _ = torch_agrees(res.typed)
    assert {k.rsplit(".", 1)[0] for k in model.state_dict()} == {"u0.conv", "u1.conv", "s1_0.conv", "s1_1.conv"}


def test_repeat_zero_passes_the_input_through():
    text = textwrap.dedent("""\
        netspec: 1
        inputs:
          x: {shape: [4, 8]}
        vars: {n: 0}
        blocks:
          unit:
            layers:
              - conv1d: {name: conv, out_channels: 7, kernel_size: 1}
        layers:
          - relu: {name: a}
          - unit: {name: gone, repeat: "${n}"}
          - tanh: {name: none, repeat: 0}
          - linear: {name: fc, out_features: 3}
          - sigmoid: {name: s, from: gone}
        outputs: [fc, s]
        """)
    res = compiled(text)
    assert nodes(res) == ["a", "fc", "s"]
    assert res.graph.instances == ()
    assert res.graph.node("fc").inputs == ("a",)
    assert res.graph.node("s").inputs == ("a",)  # `gone` is what it would have read
    assert typed_params(res, "fc")["in_features"] == 8
    _, (fc, s) = torch_agrees(res.typed)
    assert tuple(fc.shape) == (2, 4, 3) and tuple(s.shape) == (2, 4, 8)


def test_string_values_come_from_vars_and_interpolation():
    text = textwrap.dedent("""\
        netspec: 1
        inputs:
          x: {shape: [4, 8]}
        vars: {pad: same, mode: flect}
        blocks:
          b:
            args: {p: "${pad}"}
            layers:
              - conv1d: {name: conv, out_channels: 5, kernel_size: 3, padding: "${p}", padding_mode: "re${mode}"}
        layers:
          - b: {name: u}
        """)
    res = compiled(text)
    params = res.graph.node("u.conv").params
    assert params["padding"] == "same" and params["padding_mode"] == "reflect"
    model, out = torch_agrees(res.typed)
    conv = model.get_submodule("u.conv")
    assert conv.padding == "same" and conv.padding_mode == "reflect"
    assert tuple(out.shape) == (2, 5, 8)


def test_integral_float_results_become_ints():
    text = textwrap.dedent("""\
        netspec: 1
        inputs:
          x: {shape: [4, 8]}
        vars: {w: 0.5}
        blocks:
          b:
            args: {c: 12}
            layers:
              - conv1d: {name: conv, out_channels: "${c * w}", kernel_size: "${c / 4}", padding: same}
        layers:
          - b: {name: u}
        """)
    res = compiled(text)
    p = res.graph.node("u.conv").params
    assert p["out_channels"] == 6 and type(p["out_channels"]) is int
    assert p["kernel_size"] == (3,)
    torch_agrees(res.typed)


# ----------------------------------------------------------------------------- model.py

BUILD = """\
netspec: 1
name: blocky_net
inputs:
  x: {shape: [3, 16]}
vars:
  base: 4
blocks:
  unit:
    args: {channels: null, k: 3}
    layers:
      - conv1d: {name: conv, out_channels: "${channels}", kernel_size: "${k}", padding: same}
      - batchnorm1d: {name: bn}
      - relu: {name: act}
  fuse:
    inputs: [x, skip]
    args: {channels: null}
    layers:
      - unit: {name: body, channels: "${channels}"}
      - conv1d: {name: proj, from: skip, out_channels: "${channels}", kernel_size: 1}
      - add: {name: sum, from: [body, proj]}
  split:
    args: {channels: null}
    layers:
      - unit: {name: a, channels: "${channels}"}
      - unit: {name: b, from: x, channels: "${channels}", k: 1}
    outputs: [a, b]
  stage:
    args: {channels: null, n: 2}
    layers:
      - unit: {name: block, channels: "${channels}", repeat: "${n}"}
layers:
  - stage: {name: stem, channels: "${base * 2}"}
  - split: {name: sp, channels: 12}
  - fuse: {name: f, from: [sp.a, sp.b], channels: 12}
  - fuse: {name: g, from: [f, stem], channels: 16}
  - global_avgpool: {name: gap}
  - linear: {name: head, out_features: 5}
"""


def block_classes(source: str) -> list[str]:
    return re.findall(r"^class (\w+)\(nn\.Module\):", source, re.M)


def helper_classes(typed) -> set[str]:
    return {ctor_of(la).cls for la in typed.layers if not ctor_of(la).cls.startswith("nn.")}


@pytest.mark.parametrize("scale", ["", "scale: {width: 0.5, depth: 1.5}\n"], ids=["plain", "scaled"])
def test_built_model_py_matches_in_process_module_in_a_fresh_interpreter(scale, tmp_path, cli):
    spec = tmp_path / "blocky.yaml"
    spec.write_text(BUILD.replace("blocks:\n", scale + "blocks:\n", 1))
    out = tmp_path / "build"
    code, _, err = cli("build", spec, "-o", out, "--seed", "5")
    assert code == 0, err
    typed = compile_file(spec).typed
    source = (out / "model.py").read_text()
    names = block_classes(source)
    for block in ("unit", "fuse", "split", "stage"):
        assert names.count(class_name(block)) == 1, names
    assert names.count("BlockyNet") == 1
    if not scale:  # f and g differ in `channels`: a parameter named after the argument
        ctor = re.search(r"class Fuse\(nn\.Module\):.*?def __init__\(self, ([^)]*)\)", source, re.S).group(1)
        assert ctor.startswith("channels: int"), ctor

    x = torch.randn(3, 3, 16)
    torch.save(x, out / "x.pt")
    run = subprocess.run([sys.executable, "-c", FRESH, str(out), "BlockyNet"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    y_fresh = torch.load(out / "y_fresh.pt", weights_only=True)
    torch_agrees(typed)
    model = lower(typed, seed=5).eval()
    weights = torch.load(out / "weights.pt", weights_only=True)
    state = model.state_dict()
    assert list(weights) == list(state)
    assert all(torch.equal(weights[k], state[k]) for k in state)  # --seed 5: the very same weights
    with torch.no_grad():  # this process runs torch on one thread: the sums may round differently
        torch.testing.assert_close(model(x), y_fresh, rtol=1e-5, atol=1e-6)


def test_resnet18_model_py_has_one_class_per_block_and_parameterized_ctors():
    typed = compile_file(ROOT / "specs" / "resnet18.yaml").typed
    source = model_source(typed)
    names = block_classes(source)
    blocks = ["Basic", "Down", "Stage", "DownStage"]
    assert sorted(set(names) - helper_classes(typed)) == sorted([*blocks, "Resnet18"])
    assert all(names.count(b) == 1 for b in blocks), names
    assert "class Basic(nn.Module):" in source
    assert re.search(r"class Basic\(nn\.Module\):.*?def __init__\(self, channels: int\) -> None:", source, re.S)
    assert re.search(r"class DownStage\(nn\.Module\):.*?def __init__\(self, channels: int\b", source, re.S)
    assert re.search(r"class Stage\(nn\.Module\):.*?def __init__\(self\) -> None:", source, re.S)
    assert "self.stage2 = DownStage(channels=128" in source


def test_a_block_used_at_two_depths_gets_one_class():
    spec = BUILD.replace('  - stage: {name: stem, channels: "${base * 2}"}', "  - unit: {name: stem, channels: 8}")
    source = model_source(compiled(spec).typed)
    names = block_classes(source)
    assert names.count("Unit") == 1 and "Unit2" not in names, names


# ----------------------------------------------------------------------------- diagnostics

H = "netspec: 1\ninputs:\n  x: {shape: [4, 8]}\n"


def test_unknown_variable_in_a_block_points_at_the_definition_with_a_hint():
    text = H + textwrap.dedent("""\
        vars:
          width: 4
        blocks:
          b:
            args: {c: 4}
            layers:
              - conv1d: {out_channels: "${widht}", kernel_size: 3}
        layers:
          - b: {name: u}
        """)
    d = only_error(compile_text(text, FILE))
    assert d.message == "cannot evaluate expression: unknown variable 'widht'"
    assert d.path == "blocks.b.layers[0].conv1d.out_channels"
    assert where(d) == at(text, '"${widht}"')
    assert d.hint == "did you mean 'width'?"
    assert d.code == "expr"
    assert d.context == (used_at(text, "b: {name: u}", "u", "b"),)


def test_a_float_where_an_integer_is_needed_names_the_expression():
    text = H + textwrap.dedent("""\
        blocks:
          b:
            args: {c: 4}
            layers:
              - conv1d: {name: conv, out_channels: "${c / 2}", kernel_size: 1}
        layers:
          - b: {name: ok}
          - b: {name: odd, c: 5}
        """)
    d = only_error(compile_text(text, FILE))
    assert d.message == "wrong type"
    assert d.expected == "an integer"
    assert d.received == "2.5 (number), the value of ${c / 2}"
    assert where(d) == at(text, '"${c / 2}"')
    assert d.context == (used_at(text, "b: {name: odd", "odd", "b"),)


def test_out_of_range_after_evaluation_is_reported_once_for_two_uses():
    text = H + textwrap.dedent("""\
        blocks:
          b:
            args: {c: 4}
            layers:
              - conv1d: {name: conv, out_channels: "${c - 4}", kernel_size: 1}
        layers:
          - b: {name: u}
          - b: {name: v}
        """)
    d = only_error(compile_text(text, FILE))  # the same mistake in two instances: one report
    assert d.message == "value out of range"
    assert d.expected == "a value >= 1"
    assert d.received == "0 (integer), the value of ${c - 4}"
    assert d.path == "blocks.b.layers[0].conv1d.out_channels"
    assert where(d) == at(text, '"${c - 4}"')
    assert d.context == (used_at(text, "b: {name: u}", "u", "b"),)


def test_unknown_and_missing_block_arguments():
    base = H + textwrap.dedent("""\
        blocks:
          b:
            args: {channels: null}
            layers:
              - conv1d: {name: conv, out_channels: "${channels}", kernel_size: 1}
        layers:
        """)
    text = base + "  - b: {name: u, chanels: 3}\n"
    d = only_error(compile_text(text, FILE))
    assert d.message == "unknown key 'chanels'"
    assert d.hint == "did you mean 'channels'?"
    assert where(d) == at(text, "chanels")
    assert "channels" in d.expected and "repeat" in d.expected

    text = base + "  - b: {name: u}\n"
    d = only_error(compile_text(text, FILE))
    assert d.message == "missing required key 'channels'"
    assert d.path == "layers[0].b"
    assert where(d) == at(text, "b: {name: u}")
    assert d.hint == "block b has no default for channels"


def test_missing_argument_of_a_nested_use():
    text = H + textwrap.dedent("""\
        blocks:
          outer:
            layers:
              - inner: {name: i}
          inner:
            args: {c: null}
            layers:
              - conv1d: {name: conv, out_channels: "${c}", kernel_size: 1}
        layers:
          - outer: {name: u}
        """)
    d = only_error(compile_text(text, FILE))
    assert d.message == "missing required key 'c'"
    assert d.path == "blocks.outer.layers[0].inner"
    assert where(d) == at(text, "inner: {name: i}")


def test_a_block_named_like_a_layer_type():
    text = H + "blocks:\n  relu:\n    layers:\n      - tanh\nlayers:\n  - relu\n"
    d = only_error(compile_text(text, FILE))
    assert d.message == "block 'relu' has the name of a layer type"
    assert where(d) == at(text, "relu:")


def test_recursive_blocks_name_the_chain():
    text = H + textwrap.dedent("""\
        blocks:
          a:
            layers:
              - b: {name: inner}
          b:
            layers:
              - a: {name: inner}
        layers:
          - a: {name: top}
        """)
    d = only_error(compile_text(text, FILE))
    assert d.message == "block 'a' uses itself"
    assert d.received == "a -> b -> a"
    assert where(d) == at(text, "a: {name: inner}")
    assert d.context == (
        used_at(text, "b: {name: inner}", "top.inner", "b"),
        used_at(text, "a: {name: top}", "top", "a"),
    )


def test_a_block_cannot_read_an_outer_layer():
    text = H + textwrap.dedent("""\
        blocks:
          b:
            layers:
              - add: {name: s, from: [x, stem]}
        layers:
          - conv1d: {name: stem, out_channels: 4, kernel_size: 1}
          - b: {name: u}
        """)
    d = only_error(compile_text(text, FILE))
    assert d.message == "unknown name 'stem'"
    assert d.path == "blocks.b.layers[0].add.from[1]"
    assert where(d) == at(text, "x, ^stem]")
    assert d.expected == "an input of the block or a layer above: one of x"
    assert "inputs:" in d.hint and "block reads only its inputs" in d.hint
    assert d.context == (used_at(text, "b: {name: u}", "u", "b"),)


def test_a_shape_error_inside_one_instance_names_that_use():
    text = H + textwrap.dedent("""\
        blocks:
          b:
            args: {c: 4}
            layers:
              - conv1d: {name: conv, out_channels: "${c}", kernel_size: 1}
              - add: {name: s, from: [conv, x]}
        layers:
          - b: {name: fine}
          - b: {name: bad, c: 6}
        """)
    d = only_error(compile_text(text, FILE))
    assert d.code == "shape"
    assert "add needs inputs of the same shape" in d.message and "bad.s" in d.message
    assert d.path == "blocks.b.layers[1].add"
    assert where(d) == at(text, "add: {name: s")
    assert d.context == (used_at(text, "b: {name: bad", "bad", "b"),)


def test_an_unused_block_is_a_warning():
    text = H + "blocks:\n  spare:\n    layers:\n      - relu\nlayers:\n  - tanh\n"
    res = compile_text(text, FILE)
    assert res.ok
    (w,) = res.warnings
    assert w.severity == WARNING
    assert w.message == "block 'spare' is never used"
    assert where(w) == at(text, "spare:")


def test_only_single_input_layers_repeat():
    text = H + "layers:\n  - relu: {name: a}\n  - add: {name: s, from: [a, x], repeat: 2}\n"
    d = only_error(compile_text(text, FILE))
    assert d.message == "only a layer that reads one value can repeat"
    assert where(d) == at(text, "repeat: ^2")
    assert d.received == "2 inputs"


def test_negative_repeat_counts():
    text = H + "layers:\n  - relu: {name: a, repeat: -1}\n"
    d = only_error(compile_text(text, FILE))
    assert d.message == "value out of range"
    assert d.path == "layers[0].relu.repeat"
    assert where(d) == at(text, "-1")

    text = H + 'vars: {n: -2}\nlayers:\n  - relu: {name: a, repeat: "${n}"}\n'
    d = only_error(compile_text(text, FILE))
    assert d.message == "invalid repeat count"
    assert d.received == "-2 (integer) from ${n}"
    assert d.expected == "an integer from 0 to 1000"
    assert where(d) == at(text, '"${n}"')


def test_nested_repeats_past_the_expansion_limit_fail_fast_with_one_error():
    text = H + textwrap.dedent("""\
        blocks:
          inner:
            layers:
              - relu: {name: r, repeat: 1000}
        layers:
          - inner: {name: a, repeat: 1000}
        """)
    start = time.perf_counter()
    res = compile_text(text, FILE)
    assert time.perf_counter() - start < 5
    d = only_error(res)
    assert "expands to more than" in d.message


@pytest.mark.parametrize("arg", ["class", "self", "lambda", "_private", "nn"])
def test_block_args_that_cannot_be_python_parameters(arg):
    text = H + f"blocks:\n  b:\n    args: {{{arg}: 3}}\n    layers:\n      - relu\nlayers:\n  - b: {{name: u}}\n"
    d = only_error(compile_text(text, FILE))
    assert d.message == f"name '{arg}' is reserved"
    assert d.path == f"blocks.b.args.{arg}"
    assert where(d) == at(text, f"{arg}: 3")


@pytest.mark.parametrize("order", [("a", "a.b"), ("a.b", "a")], ids=["layer-first", "dotted-first"])
def test_a_dotted_name_inside_a_layer(order):
    text = H + "layers:\n" + "".join(f"  - relu: {{name: {n}}}\n" for n in order)
    d = only_error(compile_text(text, FILE))
    assert d.message == "name 'a.b' puts a layer inside layer 'a'"
    assert d.hint == "'a' is a layer; rename one of them"
    assert where(d)[0] == at(text, "name: a.b")[0]


def test_a_dotted_name_error_points_at_the_name():
    text = H + "layers:\n  - relu: {name: a}\n  - relu: {name: a.b}\n"
    d = only_error(compile_text(text, FILE))
    assert d.path == "layers[1].relu.name"
    assert where(d) == at(text, "name: ^a.b")


def test_check_cli_shows_the_use_site(tmp_path, cli):
    text = H + textwrap.dedent("""\
        blocks:
          b:
            args: {c: 4}
            layers:
              - conv1d: {name: conv, out_channels: "${c - 4}", kernel_size: 1}
        layers:
          - b: {name: u}
        """)
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    code, out, _ = cli("check", spec)
    assert code == 1
    line, col = at(text, '"${c - 4}"')
    use_line, use_col = at(text, "b: {name: u}")
    assert f"{spec}:{line}:{col}: error[schema]: blocks.b.layers[0].conv1d.out_channels: value out of range" in out
    assert f"  in block `b` used at {spec}:{use_line}:{use_col} as 'u'" in out.splitlines()
    assert "1 error" in out

    code, out, _ = cli("check", spec, "--format", "json")
    assert code == 1
    (diag,) = json.loads(out)["diagnostics"]
    assert diag["context"] == [f"in block `b` used at {spec}:{use_line}:{use_col} as 'u'"]


# Bugs found while writing these tests: compile must report, never raise, and what `check`
# accepts must build.


def test_a_repeat_copy_clashing_with_a_later_name_is_a_diagnostic():
    text = H + "layers:\n  - relu: {name: act, repeat: 2}\n  - tanh: {name: act1}\n"
    d = only_error(compile_text(text, FILE))
    assert d.message.startswith("duplicate name 'act1'")


def test_a_generated_name_never_clashes_with_a_repeat_copy():
    text = H + "layers:\n  - relu: {name: relu_, repeat: 2}\n  - relu\n"
    res = compile_text(text, FILE)
    assert res.ok and len(set(nodes(res))) == 3


def test_a_dotted_name_equal_to_a_layer_of_a_block_instance_is_a_diagnostic():
    text = H + textwrap.dedent("""\
        blocks:
          b:
            layers:
              - conv1d: {name: conv, out_channels: 4, kernel_size: 1}
        layers:
          - b: {name: u}
          - relu: {name: u.conv}
        """)
    d = only_error(compile_text(text, FILE))
    assert "u.conv" in d.message


def test_a_dotted_name_inside_a_block_instance_is_rejected():
    text = H + textwrap.dedent("""\
        blocks:
          b:
            layers:
              - conv1d: {name: conv, out_channels: 4, kernel_size: 1}
        layers:
          - b: {name: u}
          - conv1d: {name: u.extra, out_channels: 3, kernel_size: 1}
        """)
    (d,) = compile_text(text, FILE).errors
    assert d.message == "name 'u.extra' puts a layer inside block instance 'u'"
    assert (d.loc.line, d.loc.col) == at(text, "u.extra")


@pytest.mark.parametrize("arg", ["super", "Add"])
def test_block_args_shadowing_names_model_py_uses(arg):
    text = H + textwrap.dedent(f"""\
        blocks:
          b:
            args: {{{arg}: 4}}
            layers:
              - conv1d: {{name: conv, out_channels: "${{{arg}}}", kernel_size: 1}}
              - add: {{name: sum, from: [conv, conv]}}
        layers:
          - b: {{name: u}}
          - b: {{name: v, {arg}: 5}}
        """)
    res = compile_text(text, FILE)
    if res.ok:
        assert_model_py_runs(res.typed)


def assert_model_py_runs(typed):
    """model.py's classes build and compute what the in-process module computes."""
    source = model_source(typed)
    namespace: dict = {"__name__": "generated_model"}
    exec(compile(source, "model.py", "exec"), namespace)
    ours = lower(typed, seed=0).eval()
    theirs = namespace[class_name(typed.graph.name)]().eval()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, *typed.input.shape)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


# ----------------------------------------------------------------------------- scaling


def conv(k: int, cin: int, cout: int) -> int:
    """Weights of a bias-free k x k convolution."""
    return k * k * cin * cout


def bn(c: int) -> int:
    """Parameters of a batch norm: weight and bias."""
    return 2 * c


def bn_buffers(c: int) -> int:
    """running_mean, running_var and num_batches_tracked."""
    return 2 * c + 1


def resnet18_counts(c1: int, c2: int, c3: int, c4: int, classes: int = 1000) -> tuple[int, int]:
    """Parameters and buffers of torchvision's resnet18 with stage widths c1..c4, by hand."""
    params = conv(7, 3, c1) + bn(c1)  # stem
    buffers = bn_buffers(c1)
    # stage1: two basic blocks, conv-bn-relu-conv-bn + identity
    params += 2 * (conv(3, c1, c1) + bn(c1) + conv(3, c1, c1) + bn(c1))
    buffers += 2 * 2 * bn_buffers(c1)
    for cin, c in ((c1, c2), (c2, c3), (c3, c4)):
        # down: stride-2 conv-bn-relu-conv-bn + 1x1 projection-bn; then one basic block
        params += conv(3, cin, c) + bn(c) + conv(3, c, c) + bn(c) + conv(1, cin, c) + bn(c)
        params += conv(3, c, c) + bn(c) + conv(3, c, c) + bn(c)
        buffers += 5 * bn_buffers(c)
    params += c4 * classes + classes  # fc (with bias)
    return params, buffers


def with_scale(text: str, scale: str) -> str:
    return text.replace("\nblocks:\n", f"\nscale: {scale}\nblocks:\n", 1)


def test_resnet18_hand_counts_match_the_reference():
    typed = compile_file(ROOT / "specs" / "resnet18.yaml").typed
    assert resnet18_counts(64, 128, 256, 512) == (11_689_512, 9_620) == (typed.total_params, typed.total_buffers)


def test_resnet18_at_half_width():
    text = (ROOT / "specs" / "resnet18.yaml").read_text()
    res = compiled(with_scale(text, "{width: 0.5}"))
    typed = res.typed
    params, buffers = resnet18_counts(32, 64, 128, 256)  # fc 256 -> 1000 keeps its 1000 outputs
    assert (typed.total_params, typed.total_buffers) == (params, buffers)
    assert res.graph.node("fc").params["out_features"] == 1000
    assert res.graph.node("stage4.down.proj").params["out_channels"] == 256
    model = lower(typed, seed=0)
    assert sum(p.numel() for p in model.parameters()) == params
    assert sum(b.numel() for b in model.buffers()) == buffers
    assert model.get_submodule("stage3.block0.conv2").weight.shape == (128, 128, 3, 3)
    with torch.no_grad():
        assert tuple(model.eval()(torch.randn(1, 3, 64, 64)).shape) == (1, 1000)


TWO_HEADS = """\
netspec: 1
inputs:
  x: {shape: [4, 16]}
scale: SCALE
layers:
  - conv1d: {name: trunk, out_channels: 16, kernel_size: 3, padding: 1}
  - relu: {name: r1}
  - conv1d: {name: mid, out_channels: 32, kernel_size: 3, padding: 1}
  - relu: {name: r2}
  - global_avgpool: {name: gap}
  - linear: {name: cls, out_features: 10}
  - conv1d: {name: aux, from: r1, out_channels: 3, kernel_size: 1}
  - relu: {name: aux_act}
outputs: [cls, aux_act]
"""


def test_width_scaling_keeps_every_head():
    res = compiled(TWO_HEADS.replace("SCALE", "{width: 0.5}"))
    widths = {n.name: n.params.get("out_channels", n.params.get("out_features")) for n in res.graph.nodes}
    assert widths["trunk"] == 8 and widths["mid"] == 16  # scaled
    assert widths["cls"] == 10 and widths["aux"] == 3  # heads: the first width layer behind an output
    assert typed_params(res, "cls")["in_features"] == 16
    _, (cls, aux) = torch_agrees(res.typed)
    assert tuple(cls.shape) == (2, 10) and tuple(aux.shape) == (2, 3, 16)
    expected = (3 * 4 * 8 + 8) + (3 * 8 * 16 + 16) + (16 * 10 + 10) + (8 * 3 + 3)
    assert res.typed.total_params == expected


def test_width_scaling_rounds_to_the_divisor():
    # 64 * 0.3 = 19.2 rounds to 16, more than 10% below: 24 (MobileNet's _make_divisible)
    assert [scaled_width(v, 0.3, 8) for v in (64, 100, 10, 20, 160)] == [24, 32, 8, 8, 48]
    res = compiled(TWO_HEADS.replace("SCALE", "{width: 0.3, divisor: 8}"))
    # 16 * 0.3 = 4.8 -> 8 (never below the divisor); 32 * 0.3 = 9.6 -> 8, 17% low -> 16
    assert res.graph.node("trunk").params["out_channels"] == 8
    assert res.graph.node("mid").params["out_channels"] == 16
    assert res.graph.node("cls").params["out_features"] == 10  # heads are not rounded either
    torch_agrees(res.typed)
    res = compiled(TWO_HEADS.replace("SCALE", "{width: 2.5, divisor: 8}"))
    assert res.graph.node("trunk").params["out_channels"] == 40  # 16 * 2.5 = 40
    assert res.graph.node("mid").params["out_channels"] == 80
    torch_agrees(res.typed)


def test_depth_multiplies_repeat_counts_rounding_up():
    text = textwrap.dedent("""\
        netspec: 1
        inputs:
          x: {shape: [4, 8]}
        scale: {depth: 1.5}
        blocks:
          unit:
            layers:
              - conv1d: {name: conv, out_channels: 4, kernel_size: 1}
          stage:
            args: {n: 2}
            layers:
              - unit: {name: block, repeat: "${n}"}
        layers:
          - stage: {name: s}
          - relu: {name: r, repeat: 1}
          - tanh: {name: t, repeat: 0}
        """)
    res = compiled(text)
    assert nodes(res) == ["s.block0.conv", "s.block1.conv", "s.block2.conv", "r0", "r1"]
    torch_agrees(res.typed)


def test_depth_scaling_is_exact():
    text = H + "scale: {depth: 1.1}\nlayers:\n  - relu: {name: r, repeat: 50}\n"
    assert len(compiled(text).graph.nodes) == 55


# ----------------------------------------------------------------------------- summaries


def test_summarize_depth(cli):
    spec = ROOT / "specs" / "resnet18.yaml"
    code, out, _ = cli("summarize", spec, "--format", "text", "--depth", "1")
    assert code == 0
    labels = [line.split()[0] for line in out.splitlines()[2:] if line.strip() and ":" not in line]
    assert labels == ["conv1", "bn1", "relu", "pool", "stage1", "stage2", "stage3", "stage4", "avgpool", "fc"]
    assert not any(line.startswith(" ") for line in out.splitlines())  # nothing inside a block
    assert re.search(r"^stage2 +block down_stage +\(1, 128, 28, 28\) +525,568 ", out, re.M)

    code, out, _ = cli("summarize", spec, "--format", "text", "--depth", "2")
    assert code == 0
    assert re.search(r"^  block0 +block basic ", out, re.M)
    assert re.search(r"^  down +block down ", out, re.M)
    assert not re.search(r"^    conv1 ", out, re.M)

    code, out, _ = cli("summarize", spec, "--format", "text")
    lines = out.splitlines()
    down = next(i for i, line in enumerate(lines) if line.startswith("  down "))
    assert lines[down + 1].startswith("    conv1 ") and "conv2d" in lines[down + 1]
    assert "(1, 128, 28, 28)" in lines[down + 1] and "73,728" in lines[down + 1]  # 3*3*64*128


def test_summary_json_block_totals(cli):
    code, out, _ = cli("summarize", ROOT / "specs" / "resnet18.yaml", "--format", "json")
    assert code == 0
    data = json.loads(out)
    blocks = {b["name"]: b for b in data["blocks"]}
    assert len(blocks) == 4 + 2 + 3 * 2  # four stages; stage1: 2 basic; stage2-4: down + basic
    for name, b in blocks.items():
        inside = [la for la in data["layers"] if la["name"].startswith(name + ".")]
        assert b["params"] == sum(la["params"] for la in inside), name
        assert b["buffers"] == sum(la["buffers"] for la in inside), name
        assert b["macs"] == sum(la["macs"] for la in inside), name
    assert blocks["stage2"]["type"] == "down_stage" and blocks["stage2"]["args"] == {"channels": 128, "blocks": 2}
    assert blocks["stage2.down"]["output_shape"] == [1, 128, 28, 28]
    top = [la["params"] for la in data["layers"] if "." not in la["name"]]
    assert sum(top) + sum(b["params"] for n, b in blocks.items() if "." not in n) == data["total_params"]


def test_summary_depth_one_accounts_for_dotted_layer_names():
    from netspec.summary import rows, summary_data

    text = H + textwrap.dedent("""\
        blocks:
          b:
            layers:
              - conv1d: {name: conv, out_channels: 4, kernel_size: 1}
        layers:
          - b: {name: u}
          - global_avgpool
          - linear: {name: head.fc, out_features: 3}
        """)
    data = summary_data(compiled(text).typed)
    assert sum(r["params"] for r in rows(data, depth=1)) == data["total_params"]


GOLDEN_SPECS = [
    "vgg16",
    "resnet18",
    "resnet_ts",
    "lstm_fcn",
    "text_bilstm",
    "lenet5",
    "mobilenet_v2",
    "efficientnet_b0",
]
REFERENCE = {  # totals from the papers / torchvision, checked before the golden files were written
    "vgg16": {"params": 138_357_544, "macs": 15_470_264_320},
    "resnet18": {"params": 11_689_512, "macs": 1_814_073_344, "buffers": 9_620},
    "lenet5": {"params": 61_706, "macs": 416_520},
    # torchvision's counts (tests/test_block_shapes.py compares the modules themselves)
    "mobilenet_v2": {"params": 3_504_872, "macs": 300_774_272, "buffers": 34_164},
    "efficientnet_b0": {"params": 5_288_548, "macs": 385_814_752, "buffers": 42_065},
}


@pytest.mark.parametrize("stem", sorted(REFERENCE))
def test_reference_totals(stem):
    typed = compile_file(ROOT / "specs" / f"{stem}.yaml").typed
    ref = REFERENCE[stem]
    assert typed.total_params == ref["params"]
    assert typed.total_macs == ref["macs"]
    if "buffers" in ref:
        assert typed.total_buffers == ref["buffers"]


@pytest.mark.parametrize("stem", GOLDEN_SPECS)
def test_golden_summaries(stem, cli):
    code, out, err = cli("summarize", ROOT / "specs" / f"{stem}.yaml", "--format", "text")
    assert code == 0, err
    golden = GOLDEN / f"{stem}.txt"
    if os.environ.get("NETSPEC_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(out)
    assert golden.exists(), f"{golden} is missing: run with NETSPEC_UPDATE_GOLDEN=1"
    assert out == golden.read_text(), f"summary of {stem} changed; if intended, rerun with NETSPEC_UPDATE_GOLDEN=1"
    if stem in REFERENCE:
        assert f"Total params: {REFERENCE[stem]['params']:,}" in out
        assert f"MACs per sample: {REFERENCE[stem]['macs']:,} " in out


# ----------------------------------------------------------------------------- property


@st.composite
def block_specs(draw):
    """A spec with a random length-keeping conv1d/batchnorm1d/relu block (widths `${c * m}`,
    sometimes a residual add), sometimes wrapped in a repeating `group` block, used 1-3 times
    with random args and repeat counts. Returns (text, whether every shape fits)."""
    cin = draw(st.integers(1, 4))
    length = draw(st.integers(3, 9))
    body, mults = [], []
    for i in range(draw(st.integers(2, 4))):
        kind = draw(st.sampled_from(["conv1d", "conv1d", "batchnorm1d", "relu"]))
        if kind == "conv1d":
            m, k = draw(st.integers(1, 3)), draw(st.sampled_from([1, 3, 5]))
            pad = draw(st.sampled_from(["same", f"${{{k} // 2}}"]))
            body.append(f'conv1d: {{name: l{i}, out_channels: "${{c * {m}}}", kernel_size: {k}, padding: "{pad}"}}')
            mults.append(m)
        else:
            body.append(f"{kind}: {{name: l{i}}}")
            mults.append(None)
    residual = draw(st.booleans())
    if residual:
        body.append(f"add: {{name: res, from: [l{len(mults) - 1}, x]}}")
    nested = draw(st.booleans())
    base = draw(st.integers(1, 4))
    uses = draw(st.lists(st.tuples(st.one_of(st.none(), st.integers(1, 4)), st.integers(0, 2)), min_size=1, max_size=3))

    lines = [
        "netspec: 1",
        "inputs:",
        f"  x: {{shape: [{cin}, {length}]}}",
        f"vars: {{base: {base}}}",
        "blocks:",
        "  unit:",
        '    args: {c: "${base}"}',
        "    layers:",
        *(f"      - {item}" for item in body),
        "  group:",
        "    args: {c: null, n: 1}",
        "    layers:",
        '      - unit: {name: u, c: "${c}", repeat: "${n}"}',
        "layers:",
    ]
    ch, fits = cin, True
    for j, (c, n) in enumerate(uses):
        value = base if c is None else c
        if nested:
            lines.append(f"  - group: {{name: g{j}, c: {value}, n: {n}}}")
        else:
            arg = "" if c is None else f", c: {c}"
            lines.append(f"  - unit: {{name: b{j}, repeat: {n}{arg}}}")
        for _ in range(n):
            start = ch
            for m in mults:
                ch = ch if m is None else value * m
            fits = fits and (not residual or ch == start)
    return "\n".join(lines) + "\n", fits


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block_specs())
def test_random_blocks_agree_with_torch(case):
    text, fits = case
    event("valid" if fits else "shape error")
    event("nested" if "  - group:" in text else "flat")
    res = compile_text(text, FILE)  # never raises
    assert res.ok == fits, [d.render() for d in res.diagnostics]
    if not fits:
        for d in res.errors:
            assert d.code == "shape" and d.path.startswith("blocks.unit.layers["), d.render()
            assert any(c.startswith("in block `unit` used at spec.yaml:") for c in d.context), d.context
        return
    names = nodes(res)
    assert len(names) == len(set(names))
    for name in names:
        parts = name.split(".")
        assert parts[-1].startswith(("l", "res")) and len(parts) in (2, 3), name
    torch_agrees(res.typed, seed=len(text))
