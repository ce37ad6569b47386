"""Blocks that read their inputs' shapes (`${in.channels}`, layer names), `when:` conditions, a
repeated item's `index`, depthwise convolutions under scale.width, and the classic networks written
with them (MobileNetV2, EfficientNet-B0..B7) against torchvision as the oracle."""

from __future__ import annotations

import textwrap

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netspec.compiler import compile_file, compile_text

from .conftest import ROOT, at
from .test_blocks import FILE, compiled, nodes, only_error, torch_agrees, typed_params, where
from .test_op_contract import one_thread  # noqa: F401  (autouse: tiny tensors run faster on one thread)

INVERTED = """\
netspec: 1
inputs:
  x: {shape: [INPUT, 8, 8]}
blocks:
  inverted:
    args: {channels: null, t: 4, stride: 1}
    layers:
      - conv2d: {name: expand, out_channels: "${in.channels * t}", kernel_size: 1, when: "${t != 1}"}
      - conv2d: {name: dw, out_channels: "${in.channels * t}", kernel_size: 3, padding: 1, stride: "${stride}",
                 depthwise: true}
      - conv2d: {name: project, out_channels: "${channels}", kernel_size: 1}
      - add: {name: residual, from: [x, project], when: "${in.shape == project.shape}"}
layers:
  - inverted: {name: a, channels: 6}
  - inverted: {name: b, channels: 6, t: 1}
  - inverted: {name: c, channels: 10, stride: 2}
"""


def test_a_block_sizes_its_layers_from_its_input_and_torch_agrees():
    res = compiled(INVERTED.replace("INPUT", "6"))
    names = nodes(res)
    # a: 6 -> 24 -> 6, same shape: residual kept; b: t = 1, no expansion (decided when expanded)
    assert "a.expand" in names and "a.residual" in names and "b.expand" not in names
    # c: 6 -> 10 channels and stride 2: the residual is skipped and c is its projection
    assert "c.residual" not in names and res.typed.graph.outputs == ("c.project",)
    assert typed_params(res, "a.expand")["out_channels"] == 24
    assert typed_params(res, "a.dw")["groups"] == 24
    assert typed_params(res, "b.dw")["out_channels"] == 6
    assert typed_params(res, "c.dw")["groups"] == 24
    torch_agrees(res.typed)


def test_the_same_block_follows_another_input_width():
    res = compiled(INVERTED.replace("INPUT", "5"))
    names = nodes(res)
    assert typed_params(res, "a.expand")["out_channels"] == 20
    assert "a.residual" not in names  # 5 -> 6 channels: no residual in a
    assert "b.residual" in names  # 6 -> 6
    torch_agrees(res.typed)


def test_a_skipped_layer_passes_on_what_it_would_have_read():
    text = textwrap.dedent("""\
        netspec: 1
        vars: {extra: false}
        inputs:
          x: {shape: [4]}
        layers:
          - linear: {name: a, out_features: 8}
          - relu: {name: act, when: "${extra}"}
          - linear: {name: b, out_features: 3, from: act}
        """)
    res = compiled(text)
    assert nodes(res) == ["a", "b"] and res.graph.node("b").inputs == ("a",)
    res = compiled(text.replace("extra: false", "extra: true"))
    assert nodes(res) == ["a", "act", "b"]


def test_in_attributes_by_layout():
    text = textwrap.dedent("""\
        netspec: 1
        inputs:
          seq: {shape: [T, 5]}
        dims: {T: 12}
        blocks:
          head:
            layers:
              - lstm: {name: rnn, hidden_size: "${in.features * 2}", output: last}
              - linear: {name: out, out_features: "${rnn.features - 7}"}
        layers:
          - head: {name: h}
        """)
    res = compiled(text)
    assert typed_params(res, "h.rnn")["hidden_size"] == 10
    assert typed_params(res, "h.out")["out_features"] == 3
    torch_agrees(res.typed)


@pytest.mark.parametrize(
    ("expr", "message", "hint"),
    [
        ("${in.channels * t}", None, None),
        ("${in.chanels * t}", "'in.chanels': a tensor has no attribute 'chanels'", "did you mean 'channels'?"),
        (
            "${in.length}",
            "'in.length': (6, 8, 8) is of rank 3, which has no length",
            "index its dims instead: in.shape[k]",
        ),
        ("${in.shape[3]}", "index 3 is out of range for 'in.shape' (valid: 0 to 2, or -3 to -1 from the end)", None),
        ("${in * t}", "arithmetic needs numbers, got (6, 8, 8) (tensor)", None),
        ("${in.channels / 4}", None, None),  # 1.5: refused by the schema, located at the expression
    ],
)
def test_shape_expression_errors_are_located_and_explained(expr, message, hint):
    text = INVERTED.replace("INPUT", "6").replace('"${in.channels * t}", kernel_size: 1', f'"{expr}", kernel_size: 1')
    res = compile_text(text, FILE)
    if expr == "${in.channels * t}":
        assert res.ok
        return
    d = only_error(res)
    assert where(d) == at(text, f'out_channels: ^"{expr}", kernel_size: 1')
    assert "in block `inverted` used at" in " ".join(d.context)
    if message is None:
        assert d.received == f"1.5 (number), the value of {expr}"
    else:
        assert d.message == f"cannot evaluate expression: {message}"
        assert (d.hint or "") == (hint or "")


def test_when_must_be_a_boolean_and_a_use_cannot_depend_on_shapes():
    text = INVERTED.replace("INPUT", "6").replace('when: "${t != 1}"', 'when: "${t}"')
    errors = compile_text(text, FILE).errors  # one per value: t is 4 in a and c, 1 in b
    assert {d.message for d in errors} == {"`when:` must be true or false"}
    assert sorted(d.received for d in errors) == ["1 (integer), the value of ${t}", "4 (integer), the value of ${t}"]
    assert where(errors[0]) == at(text, 'when: ^"${t}"')
    text = INVERTED.replace("INPUT", "6").replace(
        "- inverted: {name: c,", '- inverted: {when: "${in.channels > 1}", name: c,'
    )
    d = only_error(compile_text(text, FILE))
    assert d.message == "cannot evaluate expression: unknown variable 'in'"
    assert d.hint == "`in` is the input of a block, readable inside a block's layers only"
    # inside a block, a use's `when:` must be known when the block expands: not a shape
    nested = text.replace(
        "layers:\n  - inverted: {name: a",
        '  outer:\n    layers:\n      - inverted: {name: z, channels: 6, when: "${in.channels > 1}"}\nlayers:\n  - outer\n  - inverted: {name: a',
    )
    assert "outer:" in nested
    messages = {d.message for d in compile_text(nested, FILE).errors}
    assert "a block use's `when:` cannot read a block input's shape" in messages


def test_null_for_a_required_argument_is_reported_missing():
    text = INVERTED.replace("INPUT", "6").replace("{name: b, channels: 6, t: 1}", "{name: b, channels: null, t: 1}")
    d = only_error(compile_text(text, FILE))
    assert d.message == "block 'inverted' needs a value for 'channels'"
    assert d.path == "layers[1].inverted.channels"
    assert where(d) == at(text, "{name: b, channels: ^null")
    assert d.received == "null, which means not given"


def test_a_repeated_item_reads_its_index():
    text = textwrap.dedent("""\
        netspec: 1
        inputs:
          x: {shape: [3, 16, 16]}
        blocks:
          cell:
            args: {stride: 1}
            layers:
              - conv2d: {name: conv, out_channels: 4, kernel_size: 3, padding: 1, stride: "${stride}"}
        layers:
          - cell: {name: s, stride: "${2 if index == 0 else 1}", repeat: 3}
          - conv2d: {name: w, out_channels: "${4 + index}", kernel_size: 1, repeat: 2}
        """)
    res = compiled(text)
    assert [typed_params(res, f"s{k}.conv")["stride"] for k in range(3)] == [(2, 2), (1, 1), (1, 1)]
    assert [typed_params(res, f"w{k}")["out_channels"] for k in range(2)] == [4, 5]
    torch_agrees(res.typed)


DEPTHWISE = """\
netspec: 1
scale: {width: 0.5}
inputs:
  image: {shape: [3, 16, 16]}
layers:
  - conv2d: {out_channels: 32, kernel_size: 3, padding: 1}
  - conv2d: {out_channels: 32, kernel_size: 3, padding: 1, GROUPS}
  - conv2d: {out_channels: 64, kernel_size: 1}
  - global_avgpool
  - linear: 10
"""


def test_depthwise_follows_width_scaling_and_groups_says_why_it_breaks():
    res = compiled(DEPTHWISE.replace("GROUPS", "depthwise: true"))
    assert typed_params(res, "conv2d_2")["groups"] == 16 and res.typed.total_params == (
        (3 * 9 * 16 + 16) + (16 * 9 + 16) + (16 * 32 + 32) + (32 * 10 + 10)
    )
    torch_agrees(res.typed)
    d = only_error(compile_text(DEPTHWISE.replace("GROUPS", "groups: 32"), FILE))
    assert d.message == "conv2d 'conv2d_2': out_channels must be divisible by groups"
    assert d.received == "out_channels=16 (16 % 32 = 16) (scale.width made out_channels 32 -> 16)"
    assert "`depthwise: true`" in d.hint and "scale.width" in d.hint


# ------------------------------------------------------------------ the classic networks


def _torch_counts(model) -> tuple[int, int]:
    return sum(p.numel() for p in model.parameters()), sum(b.numel() for b in model.buffers())


def _copy_by_order(ours, theirs) -> None:
    a, b = ours.state_dict(), theirs.state_dict()
    assert [tuple(v.shape) for v in a.values()] == [tuple(v.shape) for v in b.values()]
    theirs.load_state_dict(dict(zip(b, a.values(), strict=True)))


@pytest.mark.parametrize(
    ("spec", "factory", "sets"),
    [
        ("mobilenet_v2", "mobilenet_v2", ()),
        ("mobilenet_v2", "mobilenet_v2:1.4", ("scale.width=1.4", "scale.divisor=8")),
        ("efficientnet_b0", "efficientnet_b0", ()),
        ("efficientnet_b0", "efficientnet_b1", ("scale.depth=1.1",)),
        ("efficientnet_b0", "efficientnet_b2", ("scale.width=1.1", "scale.depth=1.2")),
        ("efficientnet_b0", "efficientnet_b3", ("scale.width=1.2", "scale.depth=1.4")),
        ("efficientnet_b0", "efficientnet_b7", ("scale.width=2.0", "scale.depth=3.1")),
    ],
)
def test_classic_networks_count_and_compute_as_torchvision(spec, factory, sets):
    """Counts equal torchvision's, every tensor lines up in order, and with the same weights the
    same logits (eval mode; on the meta device for the big ones: shapes only)."""
    tv = pytest.importorskip("torchvision")
    from netspec.lower.module import lower

    name, _, width = factory.partition(":")
    res = compile_file(ROOT / "specs" / f"{spec}.yaml", sets=list(sets))
    assert res.ok, [d.render() for d in res.errors]
    small = not sets
    with torch.device("cpu" if small else "meta"):
        theirs = getattr(tv.models, name)(**({"width_mult": float(width)} if width else {}))
        ours = lower(res.typed, seed=None if not small else 0)
    assert (res.typed.total_params, res.typed.total_buffers) == _torch_counts(theirs) == _torch_counts(ours)
    _copy_by_order(ours, theirs)
    if small:  # the real thing: same weights, same outputs
        x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            torch.testing.assert_close(ours.eval()(x), theirs.eval()(x), atol=1e-4, rtol=1e-4)


def test_mobilenet_v2_matches_the_published_counts():
    t = compile_file(ROOT / "specs" / "mobilenet_v2.yaml").typed
    assert (t.total_params, t.total_macs, t.total_buffers) == (3_504_872, 300_774_272, 34_164)
    text = (ROOT / "specs" / "mobilenet_v2.yaml").read_text()
    assert "in_channels" not in text  # every width follows from `in`: none is passed by hand


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cin=st.integers(1, 6),
    t=st.integers(1, 3),
    channels=st.integers(1, 6),
    stride=st.sampled_from([1, 2]),
    width=st.sampled_from([0.5, 1.0, 1.5]),
)
def test_shape_reading_blocks_agree_with_torch_for_any_widths(cin, t, channels, stride, width):
    """Whatever the input width, expansion, stride and scale.width, the expanded layers, the
    conditions taken and every count are what the lowered module really does."""
    text = INVERTED.replace("INPUT", str(cin)).replace("  - inverted: {name: a, channels: 6}\n", "")
    text = text.replace("{name: b, channels: 6, t: 1}", f"{{name: b, channels: {channels}, t: {t}, stride: {stride}}}")
    text = text.replace("netspec: 1\n", f"netspec: 1\nscale: {{width: {width}}}\n")
    res = compiled(text)
    names = nodes(res)
    b_in = cin  # the spec input, unscaled
    b_out = typed_params(res, "b.project")["out_channels"]
    assert ("b.expand" in names) == (t != 1)
    assert ("b.residual" in names) == (stride == 1 and b_in == b_out)
    assert typed_params(res, "b.dw")["groups"] == b_in * t
    torch_agrees(res.typed)


def test_a_skipped_item_still_has_its_references_checked():
    text = textwrap.dedent("""\
        netspec: 1
        inputs:
          x: {shape: [4]}
        layers:
          - linear: {name: a, out_features: 8}
          - add: {from: [a, aa], when: false}
          - linear: {name: b, out_features: 3}
        """)
    d = only_error(compile_text(text, FILE))
    assert d.message == "unknown name 'aa'" and d.hint == "did you mean 'a'?"


def test_each_input_of_a_multi_input_block_is_read_by_name():
    text = textwrap.dedent("""\
        netspec: 1
        inputs:
          a: {shape: [3, 8, 8]}
          b: {shape: [5, 8, 8]}
        blocks:
          fuse:
            inputs: [x, skip]
            layers:
              - conv2d: {name: match, out_channels: "${x.channels + skip.channels}", kernel_size: 1, from: x}
              - conv2d: {name: side, out_channels: "${match.channels}", kernel_size: 1, from: skip}
              - add: {name: out, from: [match, side]}
              - linear: {name: last, out_features: "${in.shape[-1] + skip.width}", from: out}
        layers:
          - fuse: {name: f, from: [a, b]}
        """)
    res = compiled(text)
    assert typed_params(res, "f.match")["out_channels"] == 8
    assert typed_params(res, "f.side")["out_channels"] == 8
    assert typed_params(res, "f.last")["out_features"] == 16
    torch_agrees(res.typed)


def test_a_sequence_length_is_symbolic_and_says_so_in_arithmetic():
    text = textwrap.dedent("""\
        netspec: 1
        inputs:
          seq: {shape: [T, 4]}
        blocks:
          head:
            layers:
              - linear: {name: out, out_features: "${in.length * 2}"}
        layers:
          - head: {name: h}
        """)
    d = only_error(compile_text(text, FILE))
    assert d.message == "cannot evaluate expression: arithmetic needs numbers, got 'T' (symbolic dim)"
    assert d.hint.startswith("its size is known only when the model runs")
