"""Declared augmentation: `train.data.augment`, written like `layers:` and checked like them.

    augment:
      - random_resized_crop: {size: 224, scale: [0.08, 1.0]}
      - horizontal_flip            # bare name: every parameter has a default
      - color_jitter: {brightness: 0.4}
      - normalize: {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
      - mixup: {alpha: 0.2}

One registry entry per op holds everything about it: its parameters (schema, default, doc), the
kinds of sample it applies to, whether it is random (training batches only) or works on whole
batches (mixup, cutmix: soft targets), its static rule over a `Sample` (kind, channels, size,
dtype, value range), its form at evaluation (random_resized_crop -> resize + center crop, as timm
derives it with crop_pct; random ops -> nothing) and its lowering to torchvision transforms v2 or to
netspec's series transforms. The JSON Schema, `netspec ops --augment`, the docs and the static check
all read this table. This module imports neither torch nor torchvision: a lowering receives the
modules it builds from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import Diagnostic, did_you_mean, format_path
from ..record import record, replace

if TYPE_CHECKING:
    from collections.abc import Callable


# ----------------------------------------------------------------------------- what flows through


@record
class Sample:
    """One sample as the ops see it. `size`: (H, W) of an image or (L,) of a series, None where
    not known before the data is read (an image folder's files). `range`: uint8 (0..255, as
    decoded), unit (0..1), standardized (after normalize) or any (a float array source)."""

    kind: str  # image | series | vector
    channels: int | None
    size: tuple
    dtype: str = "float32"
    range: str = "any"
    time_axis: int | None = None  # of a series sample (0 for (T, F), 1 for (C, L))

    def show(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in (self.channels, *self.size))
        return f"({dims}) {self.dtype}"


class AugError(Exception):
    """A rule's objection: what was expected and received, a hint, and the parameter it is about."""

    def __init__(self, message: str, expected: str, received: str, hint: str | None = None, key: str | None = None):
        super().__init__(message)
        self.message, self.expected, self.received, self.hint, self.key = message, expected, received, hint, key


@record
class AugOp:
    name: str
    doc: str
    params: dict  # name -> (JSON schema, default, description); a default of None: required
    kinds: tuple  # sample kinds it applies to
    rule: Callable  # (Sample, args) -> Sample, or raises AugError
    lower: Callable  # (namespace with .v2 and .series, args, the Sample it receives) -> a transform
    short: str | None = None  # the parameter a scalar value sets: `- resize: 256`
    random: bool = False  # training batches only; its evaluation form replaces it
    batch: bool = False  # on whole batches after collation (mixup, cutmix): soft targets
    eval_form: Callable | None = None  # (args, crop_pct) -> [(name, args)] at evaluation; None: as in training
    example: object = None

    @property
    def required(self) -> list[str]:
        return [k for k, (_, d, _) in self.params.items() if d is None]

    def resolve(self, value) -> dict:
        """The op's arguments from what the spec wrote (None, a scalar for `short`, a mapping), with defaults."""
        given = {} if value is None else value if isinstance(value, dict) else {self.short: value}
        return {k: given.get(k, d) for k, (_, d, _) in self.params.items()}

    def value_schema(self) -> dict:
        """The op's value: its parameters' mapping, the short form's scalar, or nothing (all defaults)."""
        example = self.example if isinstance(self.example, dict) else {self.short: self.example}
        props = {}
        for k, (schema, default, doc) in self.params.items():
            ann = {"title": k, "description": doc + (" (required)" if default is None else "")}
            ann["examples"] = [example[k]] if k in example else [default]
            props[k] = {**ann, **schema, **({} if default is None else {"default": default})}
        obj = {"type": "object", "additionalProperties": False, "required": self.required, "properties": props}
        options = [obj]
        if self.short:
            options.append(self.params[self.short][0])
        if not self.required:
            options.append({"type": "null"})
        head = {"title": self.name, "description": self.doc, "examples": [self.example]}
        return {**head, **({"anyOf": options} if len(options) > 1 else obj)}


REGISTRY: dict[str, AugOp] = {}


def register(op: AugOp) -> AugOp:
    REGISTRY[op.name] = op
    return op


# ----------------------------------------------------------------------------- rule helpers

_SIZE = {
    "anyOf": [
        {"type": "integer", "minimum": 1, "maximum": 65536},
        {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 65536}, "minItems": 2, "maxItems": 2},
    ]
}
_P = {"type": "number", "minimum": 0, "maximum": 1}
_NONNEG = {"type": "number", "minimum": 0}
_PAIR = {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 2, "maxItems": 2}


def _hw(size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (size[0], size[1])


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _image(s: Sample, name: str) -> None:
    if s.kind != "image":
        raise AugError(
            f"{name} is an image op; this input is {_a(s.kind)} {s.show()}",
            "an image input (channels, height, width)",
            f"{_a(s.kind)} input {s.show()}",
            "time-series inputs take jitter, scaling and window_slice" if s.kind == "series" else None,
        )


def _colour(s: Sample, name: str) -> None:
    """Colour ops read pixel values as uint8 or 0..1; after normalize they are standardized."""
    if s.range == "standardized":
        raise AugError(
            f"{name} after normalize: it reads values as 0..255 or 0..1, these are standardized",
            "colour ops before normalize",
            "a standardized sample",
            "move normalize to the end of the list",
        )
    if s.channels not in (None, 1, 3):
        raise AugError(
            f"{name} needs 1 or 3 channels",
            "a grayscale or RGB image",
            f"{s.channels} channels",
        )


def _cropped(s: Sample, hw: tuple[int, int], name: str, padding: int = 0) -> Sample:
    """A crop of `hw` from the sample (padded by `padding` on each side first): never larger than
    the image, which torchvision would pad silently with zeros."""
    for got, want, axis in zip(s.size, hw, ("height", "width"), strict=True):
        if got is not None and want > got + 2 * padding:
            pad = f" + 2 x padding {padding}" if padding else ""
            raise AugError(
                f"{name} of {want} is larger than the image's {axis} {got}{pad}",
                f"a crop of at most {got + 2 * padding} (the {axis} reaching {name})",
                f"size {list(hw) if hw[0] != hw[1] else hw[0]}",
                f"resize first (e.g. `- resize: {max(hw)}`), or crop smaller",
                key="size",
            )
    return replace(s, size=hw)


def _to_float(s: Sample) -> Sample:
    return replace(s, dtype="float32", range="unit" if s.range == "uint8" else s.range)


# ----------------------------------------------------------------------------- image ops


def _resize_rule(s: Sample, a: dict) -> Sample:
    _image(s, "resize")
    size = a["size"]
    if isinstance(size, list):
        return replace(s, size=(size[0], size[1]))
    h, w = s.size
    if h is None or w is None:  # the shorter side becomes `size`: the other is known once the files are
        return replace(s, size=(None, None))
    short, long = min(h, w), max(h, w)
    other = int(size * long / short)  # torchvision's rounding (truncation)
    return replace(s, size=(size, other) if h <= w else (other, size))


register(
    AugOp(
        "resize",
        "resize so the shorter side is `size` (an int), or to exactly [height, width]",
        {"size": (_SIZE, None, "shorter side (int) or [height, width]")},
        ("image",),
        _resize_rule,
        lambda ns, a, s: ns.v2.Resize(a["size"], antialias=True),
        short="size",
        example=256,
    )
)
register(
    AugOp(
        "center_crop",
        "crop the centre `size` (int or [height, width]); never larger than the image",
        {"size": (_SIZE, None, "output size")},
        ("image",),
        lambda s, a: (_image(s, "center_crop"), _cropped(s, _hw(a["size"]), "center_crop"))[1],
        lambda ns, a, s: ns.v2.CenterCrop(a["size"]),
        short="size",
        example=224,
    )
)
register(
    AugOp(
        "random_crop",
        "crop a random `size` window after padding each side by `padding` (CIFAR's crop: size 32, padding 4)",
        {
            "size": (_SIZE, None, "output size"),
            "padding": ({"type": "integer", "minimum": 0, "maximum": 4096}, 0, "pixels added on each side first"),
            "fill": ({"type": "number"}, 0, "value of the padding"),
        },
        ("image",),
        lambda s, a: (_image(s, "random_crop"), _cropped(s, _hw(a["size"]), "random_crop", a["padding"]))[1],
        lambda ns, a, s: ns.v2.RandomCrop(a["size"], padding=a["padding"] or None, fill=a["fill"]),
        short="size",
        random=True,
        eval_form=lambda a, crop_pct: [("center_crop", {"size": a["size"]})],
        example={"size": 32, "padding": 4},
    )
)
register(
    AugOp(
        "random_resized_crop",
        "crop a random area (share `scale`, aspect `ratio`) and resize it to `size`; evaluation resizes to "
        "size / crop_pct and crops the centre",
        {
            "size": (_SIZE, None, "output size"),
            "scale": (_PAIR, [0.08, 1.0], "range of the cropped area's share of the image"),
            "ratio": (_PAIR, [0.75, 1.3333333333333333], "range of the crop's aspect ratio"),
        },
        ("image",),
        lambda s, a: (_image(s, "random_resized_crop"), replace(s, size=_hw(a["size"])))[1],
        lambda ns, a, s: ns.v2.RandomResizedCrop(a["size"], scale=a["scale"], ratio=a["ratio"], antialias=True),
        short="size",
        random=True,
        eval_form=lambda a, crop_pct: [
            ("resize", {"size": int(max(_hw(a["size"])) / crop_pct)}),
            ("center_crop", {"size": a["size"]}),
        ],
        example={"size": 224, "scale": [0.08, 1.0]},
    )
)
for _name, _cls, _what in (
    ("horizontal_flip", "RandomHorizontalFlip", "left-right"),
    ("vertical_flip", "RandomVerticalFlip", "top-bottom"),
):
    register(
        AugOp(
            _name,
            f"flip {_what} with probability p",
            {"p": (_P, 0.5, "probability of a flip")},
            ("image",),
            (lambda n: lambda s, a: (_image(s, n), s)[1])(_name),
            (lambda c: lambda ns, a, s: getattr(ns.v2, c)(p=a["p"]))(_cls),
            short="p",
            random=True,
            eval_form=lambda a, crop_pct: [],
            example=0.5,
        )
    )
register(
    AugOp(
        "rotate",
        "rotate by a random angle in [-degrees, degrees]",
        {"degrees": ({"type": "number", "minimum": 0, "maximum": 180}, None, "largest angle")},
        ("image",),
        lambda s, a: (_image(s, "rotate"), s)[1],
        lambda ns, a, s: ns.v2.RandomRotation(a["degrees"]),
        short="degrees",
        random=True,
        eval_form=lambda a, crop_pct: [],
        example=15,
    )
)
register(
    AugOp(
        "color_jitter",
        "random brightness, contrast, saturation (factors in [1-x, 1+x]) and hue (shift in [-x, x])",
        {
            "brightness": (_NONNEG, 0, "brightness jitter"),
            "contrast": (_NONNEG, 0, "contrast jitter"),
            "saturation": (_NONNEG, 0, "saturation jitter"),
            "hue": ({"type": "number", "minimum": 0, "maximum": 0.5}, 0, "hue jitter"),
        },
        ("image",),
        lambda s, a: (_image(s, "color_jitter"), _colour(s, "color_jitter"), _no_colour_on_gray(s, a), s)[-1],
        lambda ns, a, s: ns.v2.ColorJitter(a["brightness"], a["contrast"], a["saturation"], a["hue"]),
        random=True,
        eval_form=lambda a, crop_pct: [],
        example={"brightness": 0.4, "contrast": 0.4, "saturation": 0.4},
    )
)


def _no_colour_on_gray(s: Sample, a: dict) -> None:
    if s.channels == 1 and (a["saturation"] or a["hue"]):
        raise AugError(
            "saturation and hue need colour: this input has 1 channel",
            "brightness and contrast only, for grayscale",
            f"saturation {a['saturation']}, hue {a['hue']}",
            key="saturation" if a["saturation"] else "hue",
        )


register(
    AugOp(
        "rand_augment",
        "RandAugment: `num_ops` random operations of strength `magnitude` (of `bins`) per image",
        {
            "num_ops": ({"type": "integer", "minimum": 1, "maximum": 16}, 2, "operations per image"),
            "magnitude": ({"type": "integer", "minimum": 0, "maximum": 100}, 9, "strength"),
            "bins": ({"type": "integer", "minimum": 2, "maximum": 101}, 31, "strength levels"),
        },
        ("image",),
        lambda s, a: (_image(s, "rand_augment"), _colour(s, "rand_augment"), _magnitude(a), s)[-1],
        lambda ns, a, s: ns.v2.RandAugment(
            num_ops=a["num_ops"], magnitude=a["magnitude"], num_magnitude_bins=a["bins"]
        ),
        random=True,
        eval_form=lambda a, crop_pct: [],
        example={"num_ops": 2, "magnitude": 9},
    )
)


def _magnitude(a: dict) -> None:
    if a["magnitude"] >= a["bins"]:
        raise AugError(
            "magnitude must be below bins",
            f"a magnitude of 0..{a['bins'] - 1}",
            f"magnitude {a['magnitude']}",
            key="magnitude",
        )


def _normalize_rule(s: Sample, a: dict) -> Sample:
    for key in ("mean", "std"):
        n = len(a[key])
        if s.channels is not None and n != s.channels:
            raise AugError(
                f"{key} has {n} value{'s' * (n != 1)} for {s.channels} channel{'s' * (s.channels != 1)}",
                f"one {key} per channel: {s.channels} values",
                f"{key} {a[key]}",
                "RGB's ImageNet values: mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225]"
                if s.channels == 3
                else None,
                key=key,
            )
    if s.range == "standardized":
        raise AugError("normalize twice", "one normalize", "a second normalize")
    return replace(_to_float(s), range="standardized")


register(
    AugOp(
        "normalize",
        "subtract `mean` and divide by `std`, per channel (images are scaled to 0..1 first)",
        {
            "mean": ({"type": "array", "items": {"type": "number"}, "minItems": 1}, None, "one per channel"),
            "std": (
                {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 1},
                None,
                "one per channel",
            ),
        },
        ("image", "series"),
        _normalize_rule,
        lambda ns, a, s: ns.series.Normalize(a["mean"], a["std"], 0 if s.kind == "image" else 1 - s.time_axis),
        example={"mean": [0.5], "std": [0.25]},
    )
)
register(
    AugOp(
        "random_erasing",
        "erase a random rectangle (share `scale` of the image) with probability p",
        {
            "p": (_P, 0.5, "probability"),
            "scale": (_PAIR, [0.02, 0.33], "range of the erased area's share"),
        },
        ("image",),
        lambda s, a: (_image(s, "random_erasing"), _to_float(s))[1],
        lambda ns, a, s: ns.v2.RandomErasing(p=a["p"], scale=a["scale"]),
        short="p",
        random=True,
        eval_form=lambda a, crop_pct: [],
        example=0.25,
    )
)


# ----------------------------------------------------------------------------- batch ops (soft targets)


def _batch_rule(name: str, image_only: bool):
    def rule(s: Sample, a: dict) -> Sample:
        if image_only:
            _image(s, name)
        return s

    return rule


register(
    AugOp(
        "mixup",
        "MixUp: blend pairs of samples and their labels by a Beta(alpha, alpha) weight (soft targets)",
        {"alpha": ({"type": "number", "exclusiveMinimum": 0}, 0.2, "Beta distribution's parameter")},
        ("image", "series", "vector"),
        _batch_rule("mixup", False),
        lambda ns, a, s: ns.series.MixUp(a["alpha"]),
        short="alpha",
        random=True,
        batch=True,
        eval_form=lambda a, crop_pct: [],
        example={"alpha": 0.2},
    )
)
register(
    AugOp(
        "cutmix",
        "CutMix: paste a box of another sample, labels mixed by the box's area (soft targets)",
        {"alpha": ({"type": "number", "exclusiveMinimum": 0}, 1.0, "Beta distribution's parameter")},
        ("image",),
        _batch_rule("cutmix", True),
        lambda ns, a, s: ns.series.CutMix(a["alpha"]),
        short="alpha",
        random=True,
        batch=True,
        eval_form=lambda a, crop_pct: [],
        example={"alpha": 1.0},
    )
)


# ----------------------------------------------------------------------------- series ops


def _series(s: Sample, name: str) -> None:
    if s.kind == "image":
        raise AugError(
            f"{name} is a time-series op; this input is an image {s.show()}",
            "a series input: (channels, length) or (time, features)",
            f"an image input {s.show()}",
        )


def _window_rule(s: Sample, a: dict) -> Sample:
    _series(s, "window_slice")
    if s.kind != "series" or s.time_axis is None:
        raise AugError(
            "window_slice needs a time axis",
            "a series input (channels, length) or (T, features)",
            f"{_a(s.kind)} input {s.show()}",
        )
    length = s.size[0]
    if length is not None and round(length * a["ratio"]) < 2:
        raise AugError(
            f"window_slice keeps {round(length * a['ratio'])} of {length} steps",
            "a window of at least 2 steps",
            f"ratio {a['ratio']}",
            key="ratio",
        )
    return _to_float(s)


register(
    AugOp(
        "jitter",
        "add Gaussian noise of standard deviation `sigma` to every value",
        {"sigma": ({"type": "number", "exclusiveMinimum": 0}, 0.03, "noise's standard deviation")},
        ("series", "vector"),
        lambda s, a: (_series(s, "jitter"), _to_float(s))[1],
        lambda ns, a, s: ns.series.Jitter(a["sigma"]),
        short="sigma",
        random=True,
        eval_form=lambda a, crop_pct: [],
        example=0.03,
    )
)
register(
    AugOp(
        "scaling",
        "multiply each channel by a random factor from N(1, sigma)",
        {"sigma": ({"type": "number", "exclusiveMinimum": 0}, 0.1, "the factors' standard deviation")},
        ("series", "vector"),
        lambda s, a: (_series(s, "scaling"), _to_float(s))[1],
        lambda ns, a, s: ns.series.Scaling(a["sigma"], 1 - s.time_axis if s.kind == "series" else 0),
        short="sigma",
        random=True,
        eval_form=lambda a, crop_pct: [],
        example=0.1,
    )
)
register(
    AugOp(
        "window_slice",
        "crop a random window of `ratio` of the series and stretch it back to the full length (Le Guennec et al.)",
        {"ratio": ({"type": "number", "exclusiveMinimum": 0, "maximum": 1}, 0.9, "the window's share of the length")},
        ("series",),
        _window_rule,
        lambda ns, a, s: ns.series.WindowSlice(a["ratio"], s.time_axis),
        short="ratio",
        random=True,
        eval_form=lambda a, crop_pct: [],
        example=0.9,
    )
)


# ----------------------------------------------------------------------------- the chain


def items(raw: list) -> list[tuple[int, str, dict]]:
    """(index in the list, op name, resolved args) of each schema-valid item."""
    out = []
    for i, item in enumerate(raw or ()):
        name, value = (item, None) if isinstance(item, str) else next(iter(item.items()))
        out.append((i, name, REGISTRY[name].resolve(value)))
    return out


def eval_items(train_items: list[tuple[int, str, dict]], crop_pct: float) -> list[tuple[int, str, dict]]:
    """The deterministic chain applied at evaluation, derived from the training chain."""
    out = []
    for i, name, args in train_items:
        op = REGISTRY[name]
        forms = op.eval_form(args, crop_pct) if op.eval_form else [(name, args)]
        out += [(i, n, REGISTRY[n].resolve(a)) for n, a in forms]
    return out


def input_sample(shape: tuple, dtype: str, *, decoded: bool) -> Sample:
    """The sample that enters the chain for an input of `shape` (without the batch): an image is
    (C, H, W), a series (C, L) or (T, F), anything else a vector. `decoded`: an image folder's files
    (uint8, size unknown until read) rather than an array of the declared shape."""
    dims = tuple(d if isinstance(d, int) else None for d in shape)
    if len(dims) == 3:
        size = (None, None) if decoded else dims[1:]
        return Sample("image", dims[0], size, "uint8" if decoded else dtype, "uint8" if decoded else "any")
    if len(dims) == 2:
        # The time axis: the symbolic one, else the last ((C, L), as conv1d takes it).
        axis = next((i for i, d in enumerate(shape) if not isinstance(d, int)), 1)
        return Sample("series", dims[1 - axis], (dims[axis],), dtype, "any", time_axis=axis)
    return Sample("vector", None, dims, dtype, "any")


def run_chain(sample: Sample, chain: list[tuple[int, str, dict]]) -> tuple[Sample, list[tuple[int, str, AugError]]]:
    """Pass the sample through every op; the objections, each with its item (the chain goes on
    with the sample unchanged after one, so independent mistakes are all reported)."""
    problems = []
    seen_batch = None
    for i, name, args in chain:
        op = REGISTRY[name]
        if seen_batch is not None and not op.batch:
            problems.append(
                (
                    i,
                    name,
                    AugError(
                        f"{name} after {seen_batch}",
                        "per-sample ops first, mixup/cutmix last",
                        f"{name} after the batch op {seen_batch}",
                        f"move {seen_batch} to the end",
                    ),
                )
            )
            continue
        if op.batch:
            seen_batch = name
        if sample.kind not in op.kinds:
            kinds = " or ".join(op.kinds)
            problems.append(
                (
                    i,
                    name,
                    AugError(
                        f"{name} applies to {kinds} inputs",
                        f"{_a(kinds)} input",
                        f"{_a(sample.kind)} input {sample.show()}",
                        f"{sample.kind} inputs take "
                        + ", ".join(n for n, o in REGISTRY.items() if sample.kind in o.kinds),
                    ),
                )
            )
            continue
        if sample.dtype not in ("float32", "uint8"):
            problems.append(
                (
                    i,
                    name,
                    AugError(
                        f"{name} on {sample.dtype} input: augmentation changes values, and these are ids",
                        "a float32 input, or images",
                        f"{_a(sample.kind)} input {sample.show()}",
                        "augment the data before it becomes ids, or drop the augment list",
                    ),
                )
            )
            continue
        try:
            sample = op.rule(sample, args)
        except AugError as exc:
            problems.append((i, name, exc))
    return sample, problems


def final_sample(sample: Sample) -> Sample:
    """What the model receives: images leave uint8 as the last step (scaled to 0..1)."""
    return _to_float(sample) if sample.dtype == "uint8" else sample


def mismatch(out: Sample, want: Sample) -> str | None:
    """Why the chain's output does not fit the declared input, or None."""
    if out.channels is not None and want.channels is not None and out.channels != want.channels:
        return f"{out.channels} channels"
    for got, need in zip(out.size, want.size, strict=False):
        if got is not None and need is not None and got != need:
            return "size " + " x ".join("?" if d is None else str(d) for d in out.size)
    return None


def check(
    cfg: dict, shape: tuple, dtype: str, loc, *, decoded: bool, base: tuple = ("train", "data", "augment")
) -> list[Diagnostic]:
    """Static check of train.data.augment against the declared input: each op's rule, the output of
    the training and of the derived evaluation chain against the input, and the loss that mixup and
    cutmix need. `loc(path, key=False)` gives locations; `decoded`: the source is an image folder."""
    data = cfg["data"]
    train_chain = items(data["augment"])
    if not train_chain:
        return []
    diags: list[Diagnostic] = []

    def say(i: int, name: str, exc: AugError) -> None:
        value = data["augment"][i]
        path = (*base, i)
        written = value if isinstance(value, str) else next(iter(value))
        message = exc.message
        if name != written:  # an evaluation form's objection, reported at the op it replaces
            message += f" (at evaluation, where {written} becomes {name})"
        if isinstance(value, dict):  # at the op's key, or at the parameter it is about when written out
            given = value[written]
            path += (written,) + ((exc.key,) if exc.key and isinstance(given, dict) and exc.key in given else ())
        diags.append(
            Diagnostic(
                message,
                format_path(path),
                loc(path),
                expected=exc.expected,
                received=exc.received,
                hint=exc.hint,
                code="augment",
            )
        )

    want = input_sample(shape, dtype, decoded=False)
    start = input_sample(shape, dtype, decoded=decoded)
    reported = set()  # items with an objection: the evaluation chain adds none of its own to them
    for chain in (train_chain, eval_items(train_chain, data["crop_pct"])):
        out, problems = run_chain(start, chain)
        for i, name, exc in problems:
            if i not in reported:
                reported.add(i)
                say(i, name, exc)
        bad = mismatch(out, want) if not problems and not diags else None  # evaluation: once training fits
        if bad and chain is train_chain:
            i, name, _ = chain[-1]
            say(
                i,
                name,
                AugError(
                    f"the augmented sample {out.show()} does not fit the input {want.show()}",
                    f"the input's shape {want.show()}",
                    f"{bad} after {name}",
                    "end the list with a resize or crop to the input's size, or change the input",
                ),
            )
        elif bad:
            i, name, _ = next((c for c in train_chain if c[0] == chain[-1][0]), chain[-1])
            say(
                i,
                name,
                AugError(
                    f"at evaluation the sample is {out.show()}, not the input's {want.show()}",
                    f"the input's shape {want.show()}",
                    f"{bad} after the evaluation form of {name}",
                    "evaluation replaces random crops by resize + center crop (crop_pct); set train.data.crop_pct or add a center_crop",
                ),
            )
    for i, name, _ in train_chain:
        if REGISTRY[name].batch and cfg["loss"]["name"] != "cross_entropy":
            say(
                i,
                name,
                AugError(
                    f"{name} makes soft targets, which {cfg['loss']['name']} cannot take",
                    "loss cross_entropy (it takes class probabilities) on a classification task",
                    f"loss {cfg['loss']['name']}, task {cfg['task']}",
                    "use cross_entropy, or drop " + name,
                ),
            )
    return diags


def unknown(name: str) -> str | None:
    return did_you_mean(name, REGISTRY)


def item_schema() -> dict:
    """JSON Schema of one `augment:` item, shaped like a layer item: a bare name (ops whose
    parameters all have defaults) or a one-key mapping from the op's name to its parameters."""
    names = sorted(REGISTRY)
    return {
        "description": "an augmentation op: `- horizontal_flip`, `- resize: 256`, or `- color_jitter: {brightness: 0.4}`",
        "type": ["string", "object"],
        "if": {"type": "string"},
        "then": {"enum": [n for n in names if not REGISTRY[n].required]},
        "else": {
            "minProperties": 1,
            "maxProperties": 1,
            "propertyNames": {"enum": names},
            "properties": {n: REGISTRY[n].value_schema() for n in names},
        },
    }
