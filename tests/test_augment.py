"""train.data.augment: the registry's contract (data/augment.py), driven by REGISTRY with PyTorch
and torchvision as the oracle, the static errors `netspec check` reports for it, and the lowered
pipelines (data/transforms.py).

For every op, its example and default arguments on real tensors of several sizes and channel
counts: the static rule's output (channels, size, dtype, value range) equals what the lowered
transform produces. Then the schema side (every op documented, its example valid, the bare form
iff nothing is required, published by `netspec schema`), each static mistake as a diagnostic with
file:line:col, a property over random image chains (a chain that checks clean gives exactly the
declared shape, at training and at evaluation), determinism of the seeded transforms, and a
front end that stays torch-free.
"""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from netspec.compiler import compile_text
from netspec.data import augment, transforms
from netspec.data.augment import REGISTRY, Sample
from netspec.data.stream import Keyed, sample_seed
from netspec.spec.schema import for_editors

from .conftest import ROOT, at

FILE = "spec.yaml"
NAMES = sorted(REGISTRY)
CLASSES = 5


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: torch's worker threads cost more than the math (as in test_op_contract)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- helpers


def arg_sets(op) -> list[tuple[str, dict]]:
    """The op's example and, where nothing is required, its defaults, resolved."""
    out = [("example", op.resolve(op.example))]
    if not op.required:
        out.append(("defaults", op.resolve(None)))
    return out


def tensor_shape(s: Sample) -> tuple[int, ...]:
    if s.kind == "image":
        return (s.channels, *s.size)
    if s.kind == "series":
        return (s.channels, *s.size) if s.time_axis == 1 else (*s.size, s.channels)
    return tuple(s.size)


def make_tensor(s: Sample) -> torch.Tensor:
    shape = tensor_shape(s)
    if s.dtype == "uint8":
        return torch.randint(0, 256, shape, dtype=torch.uint8)
    return torch.rand(shape) if s.kind == "image" else torch.randn(shape)


def lower_one(name: str, args: dict, s: Sample) -> list:
    """The steps `transforms.pipeline` makes for one op: ToFloat where the op leaves uint8."""
    op = REGISTRY[name]
    after, problems = augment.run_chain(s, [(0, name, args)])
    assert not problems
    steps = [transforms.ToFloat()] if s.dtype == "uint8" and after.dtype != "uint8" else []
    return [*steps, op.lower(transforms._namespace(CLASSES), args, s)]


def crop_extent(args: dict) -> int:
    size = args.get("size")
    return 0 if size is None else max(size) if isinstance(size, list) else size


def samples_for(op, args) -> list[Sample]:
    """Inputs of every kind the op applies to: decoded uint8 and float images of 1 and 3 channels
    and two aspect ratios (large enough for the op's crop), (C, L) and (T, F) series, vectors."""
    out = []
    if "image" in op.kinds:
        base = max(crop_extent(args), 20)
        for c in (1, 3):
            for hw in ((base, base + 7), (base + 9, base), (base + 2, 2 * base + 3)):
                out.append(Sample("image", c, hw, "uint8", "uint8"))
                out.append(Sample("image", c, hw, "float32", "any"))
    if "series" in op.kinds:
        for c, length in ((1, 50), (3, 64), (2, 17)):
            out.append(Sample("series", c, (length,), "float32", "any", time_axis=1))
            out.append(Sample("series", c, (length,), "float32", "any", time_axis=0))
    if "vector" in op.kinds:
        out += [Sample("vector", None, (12,), "float32", "any"), Sample("vector", None, (1,), "float32", "any")]
    return out


def assert_in_range(y: torch.Tensor, s: Sample) -> None:
    if s.range == "uint8":
        assert y.dtype == torch.uint8
    elif s.range == "unit":
        assert y.min() >= 0 and y.max() <= 1, (float(y.min()), float(y.max()))


DTYPES = {"uint8": torch.uint8, "float32": torch.float32}

CONTRACT = [
    pytest.param(name, which, args, id=f"{name}-{which}")
    for name in NAMES
    for which, args in arg_sets(REGISTRY[name])
    if not REGISTRY[name].batch
]
BATCH_OPS = [
    pytest.param(name, which, args, id=f"{name}-{which}")
    for name in NAMES
    for which, args in arg_sets(REGISTRY[name])
    if REGISTRY[name].batch
]


# ----------------------------------------------------------------------------- 1. rule == torch


@pytest.mark.parametrize(("name", "which", "args"), CONTRACT)
def test_rule_matches_the_lowered_transform(name, which, args):
    """Per-sample ops: for every accepted input the static Sample out has the tensor's shape and
    dtype (and range: uint8 stays 0..255, unit stays within 0..1)."""
    op = REGISTRY[name]
    accepted = 0
    for s in samples_for(op, args):
        after, problems = augment.run_chain(s, [(0, name, args)])
        if problems:
            continue
        accepted += 1
        steps = lower_one(name, args, s)
        for seed in range(3):
            torch.manual_seed(seed)
            y = transforms.Chain(steps)(make_tensor(s))
            where = f"{name} {args} on {s}"
            assert tuple(y.shape) == tensor_shape(after), where
            assert y.dtype == DTYPES[after.dtype], where
            assert after.channels == s.channels  # no op changes the channel count
            assert_in_range(y, after)
    assert accepted, f"{name} {which}: no input of its kinds {op.kinds} is accepted"


@pytest.mark.parametrize("name", [n for n in NAMES if REGISTRY[n].random and not REGISTRY[n].batch])
def test_random_ops_actually_vary(name):
    """A random op is random: some seed changes the sample (else `random` is wrong or p is 0)."""
    op = REGISTRY[name]
    args = op.resolve(op.example)
    s = next(s for s in samples_for(op, args) if not augment.run_chain(s, [(0, name, args)])[1] and s.dtype != "uint8")
    chain = transforms.Chain(lower_one(name, args, s))
    torch.manual_seed(0)
    x = make_tensor(s)
    outs = []
    for seed in range(8):
        torch.manual_seed(seed)
        outs.append(chain(x.clone()))
    assert any(o.shape != outs[0].shape or not torch.equal(o, outs[0]) for o in outs[1:])


@pytest.mark.parametrize(("shape", "time_axis"), [((3, 40), 1), (("T", 3), 0)])
def test_series_ops_act_per_channel_along_the_time_axis(shape, time_axis):
    """(C, L) and (T, F): scaling draws one factor per channel, normalize uses one mean/std per
    channel, window_slice keeps the channel count and the length; the channel axis is 1 - time."""
    data = {
        "augment": [{"scaling": 0.5}, {"normalize": {"mean": [1, 2, 3], "std": [1, 2, 4]}}, {"window_slice": 0.5}],
        "crop_pct": 0.875,
    }
    s = augment.input_sample(shape, "float32", decoded=False)
    assert s.time_axis == time_axis and s.channels == 3
    p = transforms.pipeline(data, shape, "float32", decoded=False, train=True, classes=CLASSES)
    length = 40
    x = torch.ones((3, length) if time_axis == 1 else (length, 3))
    torch.manual_seed(0)
    y = p.sample(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    per_channel = y if time_axis == 1 else y.T  # (C, L)
    torch.testing.assert_close(per_channel, per_channel[:, :1].expand(-1, length))  # constant along time
    torch.manual_seed(0)
    factors = 1 + 0.5 * torch.randn(3)  # Scaling's one draw: a factor per channel
    torch.testing.assert_close(per_channel[:, 0], (factors - torch.tensor([1.0, 2, 3])) / torch.tensor([1.0, 2, 4]))


@given(h=st.integers(1, 200), w=st.integers(1, 200), size=st.integers(1, 64))
@settings(max_examples=60, deadline=None)
def test_resize_rule_rounds_as_torchvision(h, w, size):
    s = Sample("image", 1, (h, w), "uint8", "uint8")
    after = REGISTRY["resize"].rule(s, {"size": size})
    y = lower_one("resize", {"size": size}, s)[0](torch.zeros((1, h, w), dtype=torch.uint8))
    assert tuple(y.shape[1:]) == after.size


@pytest.mark.parametrize(("name", "which", "args"), BATCH_OPS)
@pytest.mark.parametrize("kind", ["image", "series", "vector"])
def test_batch_op_soft_targets(name, which, args, kind):
    """mixup/cutmix on a collated batch with int labels: x keeps its shape and dtype, y becomes
    (B, K) float probabilities (each row sums to 1); soft labels in stay soft."""
    op = REGISTRY[name]
    shape = {"image": (3, 12, 10), "series": (2, 30), "vector": (7,)}[kind]
    s = augment.input_sample(shape, "float32", decoded=False)
    after, problems = augment.run_chain(s, [(0, name, args)])
    if kind not in op.kinds:
        assert problems
        return
    assert not problems and after == s
    mix = op.lower(transforms._namespace(CLASSES), args, s)
    for seed in range(4):
        torch.manual_seed(seed)
        x, y = torch.rand(6, *shape), torch.randint(0, CLASSES, (6,))
        xm, ym = mix(x, y)
        assert xm.shape == x.shape and xm.dtype == torch.float32
        assert ym.shape == (6, CLASSES) and ym.dtype == torch.float32
        assert (ym >= 0).all()
        torch.testing.assert_close(ym.sum(1), torch.ones(6))
        assert (xm >= 0).all() and (xm <= 1).all()  # a convex blend of 0..1 values
        _, again = mix(x, ym)  # soft in, soft out
        assert again.shape == (6, CLASSES)
        torch.testing.assert_close(again.sum(1), torch.ones(6))


def test_cutmix_label_weight_is_the_pasted_area():
    torch.manual_seed(3)
    mix = REGISTRY["cutmix"].lower(transforms._namespace(2), {"alpha": 1.0}, None)
    x = torch.stack([torch.zeros(1, 8, 8), torch.ones(1, 8, 8)])
    for _ in range(10):
        xm, ym = mix(x, torch.tensor([0, 1]))
        pasted = float(xm[0].mean())  # sample 0 (all zeros) receives sample 1's ones
        torch.testing.assert_close(ym[0], torch.tensor([1 - pasted, pasted]))


# ----------------------------------------------------------------------------- 2. schema and docs


def test_registry_is_complete_and_documented():
    assert len(REGISTRY) >= 15
    for name, op in REGISTRY.items():
        assert op.name == name and op.doc.strip(), name
        assert op.kinds and set(op.kinds) <= {"image", "series", "vector"}, name
        assert op.example is not None, name
        assert not op.batch or op.random, name  # batch ops run at training only
        assert (op.eval_form is not None) == op.random, name  # random ops have an evaluation form
        if op.short:
            assert op.short in op.params, name
        for key, (schema, default, doc) in op.params.items():
            assert isinstance(schema, dict) and schema, (name, key)
            assert doc.strip(), (name, key)
            if default is not None:
                jsonschema.validate(default, schema)


@pytest.mark.parametrize("name", NAMES)
def test_example_is_valid_and_bare_form_iff_nothing_required(name):
    op = REGISTRY[name]
    jsonschema.validate(op.example, op.value_schema())
    item = jsonschema.Draft202012Validator(augment.item_schema())
    assert item.is_valid({name: op.example})
    assert item.is_valid(name) == (not op.required)
    assert item.is_valid({name: None}) == (not op.required)
    if op.short:
        assert item.is_valid({name: op.resolve(op.example)[op.short]})
    assert not item.is_valid({name: {**op.resolve(op.example), "no_such_param": 1}})
    assert set(op.resolve(op.example)) == set(op.params)


def test_published_schema_holds_every_op(cli):
    code, out, _ = cli("schema")
    assert code == 0
    schema = json.loads(out)
    published = schema["$defs"]["augment_op"]
    expected = augment.item_schema()
    for_editors(expected)  # what the published schema adds for editors (messages, defaults in hover)
    assert published == json.loads(json.dumps(expected))
    assert published["else"]["propertyNames"]["enum"] == NAMES
    assert sorted(published["else"]["properties"]) == NAMES
    assert published["then"]["enum"] == [n for n in NAMES if not REGISTRY[n].required]
    assert '"$ref": "#/$defs/augment_op"' in out  # train.data.augment's items use it


# ----------------------------------------------------------------------------- 3. static errors


def spec(
    *ops: str,
    shape: str = "[3, 32, 32]",
    source: str = "synthetic",
    layers: tuple[str, ...] = ("flatten", "linear: 10"),
    train: str = "",
) -> str:
    head = f"netspec: 1\ninputs:\n  x: {{shape: {shape}}}\nlayers:\n"
    body = "".join(f"  - {layer}\n" for layer in layers)
    aug = "".join(f"      - {op}\n" for op in ops)
    return head + body + f"train:\n{train}  data:\n    source: {source}\n    augment:\n{aug}"


def errors(text: str, n: int | None = 1):
    res = compile_text(text, FILE)
    assert not res.ok
    if n is not None:
        assert len(res.errors) == n, [d.render() for d in res.errors]
    return res.errors


def where(d) -> tuple[int, int]:
    assert d.loc.file == FILE
    return d.loc.line, d.loc.col


def test_clean_chains_check_clean():
    for text in (
        spec(
            "random_crop: {size: 32, padding: 4}",
            "horizontal_flip",
            "normalize: {mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2]}",
            "mixup",
        ),
        spec(
            "random_resized_crop: 32",
            "color_jitter: {brightness: 0.4}",
            "rand_augment",
            "random_erasing",
            "cutmix",
            source="./photos",
        ),
        spec("jitter: 0.03", "scaling", "window_slice", "mixup", shape="[3, 100]"),
        spec("jitter", "mixup", shape="[16]"),
    ):
        res = compile_text(text, FILE)
        assert res.ok, [d.render() for d in res.diagnostics]


def test_output_must_fit_the_declared_input():
    text = spec("horizontal_flip", "resize: [28, 30]")
    (d,) = errors(text)
    assert d.message == "the augmented sample (3, 28, 30) float32 does not fit the input (3, 32, 32) float32"
    assert d.expected == "the input's shape (3, 32, 32) float32"
    assert d.received == "size 28 x 30 after resize"
    assert d.hint == "end the list with a resize or crop to the input's size, or change the input"
    assert d.path == "train.data.augment[1].resize"
    assert where(d) == at(text, "resize: ^[28")
    assert d.code == "augment" and d.is_error


def test_decoded_images_fit_once_cropped_to_the_input():
    """A folder's files have no size until read: a resize by the short side is not known to fit,
    a crop is known, and the decoded uint8 sample shows as uint8."""
    assert compile_text(spec("resize: 40", "center_crop: 32", source="./photos"), FILE).ok
    text = spec("resize: 40", "center_crop: 28", source="./photos")
    (d,) = errors(text)
    assert d.message == "the augmented sample (3, 28, 28) uint8 does not fit the input (3, 32, 32) float32"
    assert where(d) == at(text, "center_crop: ^28")


def test_normalize_needs_one_value_per_channel():
    text = spec("normalize: {mean: [0.5, 0.5], std: [0.2, 0.2, 0.2]}")
    (d,) = errors(text)
    assert d.message == "mean has 2 values for 3 channels"
    assert d.expected == "one mean per channel: 3 values"
    assert d.received == "mean [0.5, 0.5]"
    assert d.hint == "RGB's ImageNet values: mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225]"
    assert d.path == "train.data.augment[0].normalize.mean"
    assert where(d) == at(text, "mean: ^[0.5")
    text = spec("normalize: {mean: [0.5], std: [0.2, 0.3]}", shape="[1, 28, 28]")
    (d,) = errors(text)
    assert d.message == "std has 2 values for 1 channel"
    assert d.hint is None
    assert where(d) == at(text, "std: ^[0.2")


def test_center_crop_larger_than_the_resized_image():
    text = spec("resize: 16", "center_crop: 24", "resize: 32")
    (d,) = errors(text)  # once, though the evaluation chain meets it too
    assert d.message == "center_crop of 24 is larger than the image's height 16"
    assert d.expected == "a crop of at most 16 (the height reaching center_crop)"
    assert d.received == "size 24"
    assert d.hint == "resize first (e.g. `- resize: 24`), or crop smaller"
    assert d.path == "train.data.augment[1].center_crop"
    assert where(d) == at(text, "center_crop: ^24")


def test_random_crop_larger_than_the_padded_image():
    text = spec("random_crop: {size: 41, padding: 4}")
    (d,) = errors(text)
    assert d.message == "random_crop of 41 is larger than the image's height 32 + 2 x padding 4"
    assert d.expected == "a crop of at most 40 (the height reaching random_crop)"
    assert d.received == "size 41"
    assert d.path == "train.data.augment[0].random_crop.size"
    assert where(d) == at(text, "size: ^41")
    text = spec("random_crop: {size: [32, 48], padding: 4}")  # the width: 48 > 32 + 8
    (d,) = errors(text)
    assert d.message == "random_crop of 48 is larger than the image's width 32 + 2 x padding 4"
    assert d.received == "size [32, 48]"


def test_evaluation_form_of_random_crop_is_checked():
    """random_crop 40 with padding 4 fits 32 + 8 at training; at evaluation it is center_crop 40
    of a 32 image (torchvision would pad it with zeros): reported at the random_crop item."""
    text = spec("random_crop: {size: 40, padding: 4}", "resize: [32, 32]")
    (d,) = errors(text)
    assert "center_crop of 40 is larger than the image's height 32" in d.message
    assert "evaluation" in d.message
    assert d.path == "train.data.augment[0].random_crop.size"
    assert where(d) == at(text, "size: ^40")
    scalar = spec("random_crop: 40", "resize: [32, 32]")  # no padding: too large at training already,
    (d,) = errors(scalar)  # reported once (not again for its evaluation form), at the short form's value
    assert d.message == "random_crop of 40 is larger than the image's height 32"
    assert d.path == "train.data.augment[0].random_crop"
    assert where(d) == at(scalar, "random_crop: ^40")


def test_evaluation_items_are_derived_from_the_training_chain():
    train = augment.items(
        [
            {"random_resized_crop": 224},
            {"random_resized_crop": {"size": [224, 160]}},
            {"random_crop": {"size": 32, "padding": 4}},
            "horizontal_flip",
            {"rotate": 10},
            {"resize": 256},
            {"normalize": {"mean": [0.5], "std": [0.5]}},
            "mixup",
        ]
    )
    got = [(i, n, a) for i, n, a in augment.eval_items(train, 0.875)]
    assert got == [
        (0, "resize", {"size": 256}),
        (0, "center_crop", {"size": 224}),
        (1, "resize", {"size": 256}),
        (1, "center_crop", {"size": [224, 160]}),
        (2, "center_crop", {"size": 32}),
        (5, "resize", {"size": 256}),
        (6, "normalize", {"mean": [0.5], "std": [0.5]}),
    ]
    assert augment.eval_items(train[:1], 1.0) == [(0, "resize", {"size": 224}), (0, "center_crop", {"size": 224})]
    assert augment.eval_items(train[:1], 0.9)[0][2] == {"size": 248}  # int(224 / 0.9), timm's floor


@pytest.mark.parametrize("crop_pct", [1.0, 0.95, 0.875, 0.5, 0.1])
def test_evaluation_chain_gives_the_input_size_for_any_crop_pct(crop_pct):
    """The eval form of random_resized_crop never under-sizes the centre crop (size / crop_pct >=
    size), so an eval-size mismatch is unreachable: the check passes and torch agrees."""
    data = {"augment": [{"random_resized_crop": {"size": [32, 24]}}], "crop_pct": crop_pct}
    text = spec("random_resized_crop: {size: [32, 24]}", shape="[3, 32, 24]", train="  seed: 0\n")
    text = text.replace("    augment:", f"    crop_pct: {crop_pct}\n    augment:")
    assert compile_text(text, FILE).ok
    for decoded, x in ((True, torch.randint(0, 256, (3, 50, 70), dtype=torch.uint8)), (False, torch.rand(3, 32, 24))):
        p = transforms.pipeline(data, (3, 32, 24), "float32", decoded=decoded, train=False, classes=CLASSES)
        y = p.sample(x)
        assert y.shape == (3, 32, 24) and y.dtype == torch.float32 and not p.random


def test_spatial_ops_on_a_time_series():
    text = spec("horizontal_flip", "resize: 50", "jitter", shape="[3, 100]")
    flip, resize = errors(text, 2)
    assert flip.message == "horizontal_flip applies to image inputs"
    assert flip.expected == "an image input"
    assert flip.received == "a series input (3, 100) float32"
    assert flip.hint and "jitter" in flip.hint and "window_slice" in flip.hint
    assert flip.path == "train.data.augment[0]"
    assert where(flip) == at(text, "horizontal_flip")
    assert resize.message == "resize applies to image inputs"
    assert where(resize) == at(text, "resize: ^50")
    (d,) = errors(spec("window_slice", shape="[3, 32, 32]"))
    assert d.message == "window_slice applies to series inputs"
    assert d.received == "an image input (3, 32, 32) float32"


def test_window_slice_too_short():
    text = spec("window_slice: {ratio: 0.25}", shape="[3, 5]")
    (d,) = errors(text)
    assert d.message == "window_slice keeps 1 of 5 steps"
    assert d.expected == "a window of at least 2 steps"
    assert d.received == "ratio 0.25"
    assert d.path == "train.data.augment[0].window_slice.ratio"
    assert where(d) == at(text, "ratio: ^0.25")
    assert compile_text(spec("window_slice: {ratio: 0.3}", shape="[3, 5]"), FILE).ok  # round(1.5) = 2


@pytest.mark.parametrize(
    ("op", "train", "loss", "task"),
    [
        ("mixup", "  task: regression\n", "mse", "regression"),
        ("cutmix: 0.5", "  loss: bce_with_logits\n", "bce_with_logits", "classification"),
    ],
)
def test_batch_ops_need_cross_entropy(op, train, loss, task):
    text = spec(op, layers=("flatten", "linear: 1"), train=train)
    (d,) = errors(text)
    name = op.split(":")[0]
    assert d.message == f"{name} makes soft targets, which {loss} cannot take"
    assert d.expected == "loss cross_entropy (it takes class probabilities) on a classification task"
    assert d.received == f"loss {loss}, task {task}"
    assert d.hint == f"use cross_entropy, or drop {name}"
    assert where(d) == at(text, f"- ^{name}" if name == op else f"{name}: ^{op.split(': ')[1]}")


def test_colour_op_after_normalize():
    text = spec("normalize: {mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2]}", "color_jitter: {brightness: 0.4}")
    (d,) = errors(text)
    assert d.message == "color_jitter after normalize: it reads values as 0..255 or 0..1, these are standardized"
    assert d.expected == "colour ops before normalize"
    assert d.received == "a standardized sample"
    assert d.hint == "move normalize to the end of the list"
    assert d.path == "train.data.augment[1].color_jitter"
    assert where(d) == at(text, "color_jitter: ^{")


def test_per_sample_op_after_mixup():
    text = spec("mixup", "horizontal_flip")
    (d,) = errors(text)
    assert d.message == "horizontal_flip after mixup"
    assert d.expected == "per-sample ops first, mixup/cutmix last"
    assert d.received == "horizontal_flip after the batch op mixup"
    assert d.hint == "move mixup to the end"
    assert where(d) == at(text, "- ^horizontal_flip")


def test_saturation_on_one_channel_and_colour_on_two():
    text = spec("color_jitter: {brightness: 0.2, saturation: 0.3}", shape="[1, 28, 28]")
    (d,) = errors(text)
    assert d.message == "saturation and hue need colour: this input has 1 channel"
    assert d.expected == "brightness and contrast only, for grayscale"
    assert d.received == "saturation 0.3, hue 0"
    assert d.path == "train.data.augment[0].color_jitter.saturation"
    assert where(d) == at(text, "saturation: ^0.3")
    assert compile_text(spec("color_jitter: {brightness: 0.2}", shape="[1, 28, 28]"), FILE).ok
    (d,) = errors(spec("rand_augment", shape="[2, 28, 28]"))
    assert d.message == "rand_augment needs 1 or 3 channels"
    assert d.received == "2 channels"


def test_rand_augment_magnitude_below_bins():
    text = spec("rand_augment: {magnitude: 31}")
    (d,) = errors(text)
    assert d.message == "magnitude must be below bins"
    assert d.expected == "a magnitude of 0..30"
    assert d.received == "magnitude 31"
    assert d.path == "train.data.augment[0].rand_augment.magnitude"
    assert where(d) == at(text, "magnitude: ^31")


def test_unknown_op_did_you_mean():
    text = spec("horizontal_flp", "resise: 256")
    bare, mapped = errors(text, 2)
    assert bare.message == "unknown augmentation op 'horizontal_flp'"
    assert bare.expected == "an augmentation op (see `netspec ops --augment`)"
    assert bare.received == "'horizontal_flp'"
    assert bare.hint == "did you mean 'horizontal_flip'?"
    assert where(bare) == at(text, "horizontal_flp")
    assert mapped.message == "unknown augmentation op 'resise'"
    assert mapped.hint == "did you mean 'resize'?"
    assert mapped.path == "train.data.augment[1].resise"
    assert where(mapped) == at(text, "resise")
    (d,) = errors(spec("wibble"))
    assert d.hint == "run `netspec ops --augment` for the list"


def test_unknown_param_did_you_mean():
    text = spec("color_jitter: {brightnes: 0.4}")
    (d,) = errors(text)
    assert d.message == "unknown key 'brightnes'"
    assert d.path == "train.data.augment[0].color_jitter.brightnes"
    assert d.received == "'brightnes'"
    assert d.hint == "did you mean 'brightness'?"
    assert "brightness" in d.expected and "saturation" in d.expected
    assert where(d) == at(text, "brightnes")


def test_unknown_param_of_an_op_with_a_size_short_form_is_one_error():
    text = spec("random_crop: {size: 32, paddin: 4}")
    (d,) = errors(text)
    assert d.message == "unknown key 'paddin'" and d.hint == "did you mean 'padding'?"


def test_missing_required_param():
    text = spec("horizontal_flip", "resize")
    (d,) = errors(text)
    assert d.message == "augmentation op 'resize' needs parameters"
    assert d.expected == "a mapping with size"
    assert d.hint == "write `- resize: {size: ...}`"
    assert where(d) == at(text, "- ^resize")
    text = spec("normalize: {mean: [0.5, 0.5, 0.5]}")
    (d,) = errors(text)
    assert d.message == "missing required key 'std'"
    assert d.path == "train.data.augment[0].normalize"


def test_int64_inputs_take_no_augmentation():
    """Token ids are not values to blend or perturb: jitter draws int64 noise (torch refuses),
    mixup turns the ids into floats (the embedding refuses)."""
    layers = ("embedding: {num_embeddings: 50, embedding_dim: 8}", "flatten", "linear: 4")
    text = spec("jitter", "mixup", shape="[16], dtype: int64", layers=layers)
    jitter, mixup = errors(text, 2)
    assert "int64" in jitter.message and where(jitter) == at(text, "- ^jitter")
    assert "int64" in mixup.message and where(mixup) == at(text, "- ^mixup")
    with pytest.raises(RuntimeError):
        transforms.Jitter(0.03)(torch.randint(0, 50, (16,)))


def test_independent_errors_are_all_reported():
    text = spec(
        "resize: 16",
        "center_crop: 24",
        "normalize: {mean: [0.5, 0.5], std: [0.2, 0.2]}",
        "rand_augment: {magnitude: 40, bins: 31}",
        "color_jitter: {brightness: 0.1, hue: 0.1}",
        "mixup",
        "vertical_flip",
        "window_slice",
        train="  task: regression\n",
        layers=("flatten", "linear: 1"),
    )
    got = {d.path: d for d in errors(text, None)}
    assert sorted(got) == [
        "train.data.augment[1].center_crop",
        "train.data.augment[2].normalize.mean",
        "train.data.augment[3].rand_augment.magnitude",
        "train.data.augment[5]",
        "train.data.augment[6]",
        "train.data.augment[7]",
    ]
    assert where(got["train.data.augment[1].center_crop"]) == at(text, "center_crop: ^24")
    assert where(got["train.data.augment[3].rand_augment.magnitude"]) == at(text, "magnitude: ^40")
    assert got["train.data.augment[5]"].message == "mixup makes soft targets, which mse cannot take"
    assert got["train.data.augment[6]"].message == "vertical_flip after mixup"
    assert got["train.data.augment[7]"].message == "window_slice after mixup"


def test_augmentation_needs_one_input():
    text = (
        "netspec: 1\ninputs:\n  a: {shape: [4]}\n  b: {shape: [4]}\nlayers:\n"
        "  - concat: {from: [a, b]}\n  - linear: 2\n"
        "train:\n  data:\n    source: synthetic\n    augment:\n      - jitter\n"
    )
    res = compile_text(text, FILE)
    if any(d.code != "augment" for d in res.errors):
        pytest.skip("this spec form takes no second input: " + res.errors[0].render())
    (d,) = res.errors
    assert d.message == "augmentation needs a model with one input"
    assert d.received == "2 inputs"
    assert where(d) == at(text, "augment:")


# ----------------------------------------------------------------------------- 4. property: check => shape

_IMAGE_OPS = [n for n in NAMES if "image" in REGISTRY[n].kinds and not REGISTRY[n].batch]


@st.composite
def image_chains(draw):
    c = draw(st.sampled_from([1, 3]))
    h, w = draw(st.integers(8, 40)), draw(st.integers(8, 40))
    sizes = st.one_of(st.sampled_from([h, w, min(h, w), max(h, w)]), st.integers(4, 48))
    size = st.one_of(sizes, st.lists(sizes, min_size=2, max_size=2))
    values = st.lists(st.floats(0.1, 0.9), min_size=1, max_size=3)

    def item(name):
        if name in ("resize", "center_crop", "random_resized_crop"):
            return {name: draw(size)}
        if name == "random_crop":
            return {name: {"size": draw(size), "padding": draw(st.integers(0, 6))}}
        if name == "normalize":
            mean = draw(values)
            return {
                name: {"mean": mean, "std": draw(st.lists(st.floats(0.1, 1), min_size=len(mean), max_size=len(mean)))}
            }
        if name == "color_jitter":
            keys = draw(
                st.lists(st.sampled_from(["brightness", "contrast", "saturation", "hue"]), max_size=3, unique=True)
            )
            return {name: {k: draw(st.floats(0.05, 0.5)) for k in keys}}
        if name == "rand_augment":
            return {
                name: {
                    "num_ops": draw(st.integers(1, 3)),
                    "magnitude": draw(st.integers(0, 12)),
                    "bins": draw(st.integers(2, 31)),
                }
            }
        bare = not REGISTRY[name].required and draw(st.booleans())
        return name if bare else {name: REGISTRY[name].example}

    chain = [item(n) for n in draw(st.lists(st.sampled_from(_IMAGE_OPS), max_size=5))]
    if draw(st.booleans()):  # most real chains end at the input's size
        chain.append({draw(st.sampled_from(["center_crop", "resize"])): [h, w]})
    if draw(st.booleans()):
        chain.append(draw(st.sampled_from(["mixup", "cutmix"])))
    return (c, h, w), chain, draw(st.sampled_from([1.0, 0.875, 0.5]))


def run_pipeline(data, shape, decoded, train):
    """The sample and batch transforms on a tensor of the declared shape (uint8 when decoded)."""
    p = transforms.pipeline(data, shape, "float32", decoded=decoded, train=train, classes=CLASSES)
    x = torch.randint(0, 256, shape, dtype=torch.uint8) if decoded else torch.rand(shape)
    y = p.sample(x) if p.sample else x
    if p.batch is not None:
        y, soft = p.batch(torch.stack([y, y.flip(-1)]), torch.tensor([0, 1]))
        assert soft.shape == (2, CLASSES)
        y = y[0]
    return y


@given(image_chains())
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_checked_chain_gives_the_declared_shape(case):
    """check clean => the train and eval pipelines give exactly (C, H, W) float32, from a float
    array or from decoded uint8 files of that size. check not clean (batch ops are last here, the
    loss is cross_entropy) => building a pipeline raises or a shape comes out wrong."""
    shape, chain, crop_pct = case
    data = {"augment": chain, "crop_pct": crop_pct}
    cfg = {"data": data, "loss": {"name": "cross_entropy"}, "task": "classification"}
    diags = augment.check(cfg, shape, "float32", lambda path, key=False: None, decoded=False)
    outcomes = []
    for train in (True, False):
        for decoded in (False, True):
            torch.manual_seed(0)
            try:
                y = run_pipeline(data, shape, decoded, train)
            except ValueError:
                outcomes.append(None)
                continue
            outcomes.append((tuple(y.shape), y.dtype))
    event("checks clean" if not diags else "an error")
    if not diags:
        assert outcomes == [(shape, torch.float32)] * 4, chain
    else:
        assert any(o != (shape, torch.float32) for o in outcomes), (chain, [d.message for d in diags])


# ----------------------------------------------------------------------------- 5. determinism


def test_seeded_pipeline_is_deterministic():
    data = {
        "augment": [
            {"random_resized_crop": 24},
            "horizontal_flip",
            {"color_jitter": {"brightness": 0.4, "hue": 0.1}},
            "rand_augment",
            "random_erasing",
            "mixup",
        ],
        "crop_pct": 0.875,
    }
    p = transforms.pipeline(data, (3, 24, 24), "float32", decoded=True, train=True, classes=CLASSES)
    assert p.random
    torch.manual_seed(123)
    x = torch.randint(0, 256, (3, 40, 50), dtype=torch.uint8)

    def draw(k):
        torch.manual_seed(k)
        return p.batch(torch.stack([p.sample(x), p.sample(x)]), torch.tensor([1, 2]))

    for k in (0, 1, 2**40):
        a, b = draw(k), draw(k)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(draw(0)[0], draw(1)[0])
    ev = transforms.pipeline(data, (3, 24, 24), "float32", decoded=True, train=False, classes=CLASSES)
    assert not ev.random and ev.batch is None
    torch.manual_seed(0)
    first = ev.sample(x)
    torch.manual_seed(1)
    assert torch.equal(first, ev.sample(x))


def test_sample_seed_is_stable_and_neighbours_differ():
    assert sample_seed(0, 0, 0) == sample_seed(0, 0, 0)
    seeds = {sample_seed(s, e, i) for s in range(4) for e in (-1, 0, 1, 2) for i in range(-3, 200)}
    assert len(seeds) == 4 * 4 * 203  # no collisions among neighbours (seed, epoch, index)
    assert all(0 <= z < 2**63 for z in seeds)
    assert sample_seed(1, 2, 3) != sample_seed(3, 2, 1) != sample_seed(2, 1, 3)
    # Pinned: a resumed run rebuilds the same batches only while these hold (pure integer math,
    # no hash randomization, so the same in every process).
    assert sample_seed(0, 0, 0) == 2558736989570252433
    assert sample_seed(7, 3, 12345) == 7862727939937345198
    # neighbouring indices give unrelated streams, not shifted ones
    torch.manual_seed(sample_seed(0, 0, 0))
    a = torch.rand(8)
    torch.manual_seed(sample_seed(0, 0, 1))
    assert not torch.equal(a, torch.rand(8))


class _Samples:
    labels = [0, 1, 2, 3]

    def load(self, i):
        return torch.arange(64.0).view(1, 8, 8) / 64 + i


def test_keyed_samples_are_seeded_per_epoch_and_index():
    data = {"augment": [{"rotate": 30}, "random_erasing"], "crop_pct": 0.875}
    p = transforms.pipeline(data, (1, 8, 8), "float32", decoded=False, train=True, classes=4)
    ds = Keyed(_Samples(), [0, 1, 2, 3], p.sample, seed=5, random=p.random)
    torch.manual_seed(99)
    before = torch.get_rng_state()
    a = ds[(0, 2)][0]
    assert torch.equal(torch.get_rng_state(), before)  # dropout's stream untouched
    assert torch.equal(a, ds[(0, 2)][0])
    assert not torch.equal(a, ds[(1, 2)][0])  # another epoch, another draw
    assert ds[(0, 2)][1] == 2


# ----------------------------------------------------------------------------- 6. torch-free front end

PROBE = """
import sys
from netspec.cli import main
code = main({args!r})
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision"))
assert not loaded, loaded[:5]
sys.exit(code)
"""


@pytest.mark.parametrize("valid", [True, False])
def test_check_with_augment_never_imports_torch(tmp_path, valid):
    """tests/test_no_torch.py lists shipped specs, none with augment: a written one here, clean and
    with errors (the error path formats every diagnostic)."""
    ops = ["random_resized_crop: 32", "horizontal_flip", "color_jitter: {brightness: 0.4}", "mixup"]
    if not valid:
        ops += ["window_slice", "normalize: {mean: [0.5], std: [0.5]}"]
    path = tmp_path / "aug.yaml"
    path.write_text(spec(*ops, source="./photos"))
    (tmp_path / "photos" / "cat").mkdir(parents=True)  # check looks at the folder's files (none here)
    args = ["check", str(path), "--format", "json"]
    res = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == (0 if valid else 1), res.stderr + res.stdout
    if not valid:
        assert "window_slice after mixup" in res.stdout


def test_ops_augment_lists_every_op_and_explains_one(cli):
    from netspec.data.augment import REGISTRY

    code, out, _ = cli("ops", "--augment")
    assert code == 0 and all(f"  {name} " in out for name in REGISTRY)
    code, out, _ = cli("ops", "--augment", "random_resized_crop")
    assert code == 0 and "training only" in out and "scale" in out and "(required)" in out
    code, out, _ = cli("ops", "--augment", "-f", "json")
    assert code == 0 and {r["name"] for r in json.loads(out)} == set(REGISTRY)
    code, _, err = cli("ops", "--augment", "horizntal_flip")
    assert code == 1 and "did you mean 'horizontal_flip'" in err
