"""`netspec init`: a commented starter spec from a template (netspec/templates/*.yaml) fitted to a
data source's sample shape and class count.

Templates are YAML text with {{placeholders}}; what fills them comes from the data source's
metadata, read without loading the data where the source allows (a UCR .ts header, an .npz
array header). The result is compiled before it is written, so `init` never leaves a spec that
`netspec check` refuses. No torch here.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .errors import did_you_mean
from .record import record, replace

TEMPLATE_DIR = Path(__file__).parent / "templates"
# What each template reads: images (C, H, W), channel-first series (C, L), or (T, F) sequences.
TEMPLATES = {
    "cnn": "image",
    "resnet": "image",
    "fcn": "series",
    "lstm": "sequence",
    "gru": "sequence",
    "mlp": "table",  # flattens any sample: a table's features, or an image or series as a vector
}
SYNTHETIC = {"image": (3, 32, 32), "series": (6, 50)}  # sample shapes when the data has none
SYNTHETIC_CLASSES = 10


class InitError(ValueError):
    """A request `init` cannot fulfil: the message says what was expected and what to do."""


@record
class DataInfo:
    source: str  # as the spec's train.data.source writes it
    sample: tuple[int, ...] | None  # one sample's shape as the source gives it; None: synthetic
    classes: int
    about: str  # words for the spec's description
    series: bool = False  # (C, L) series (UCR); else as stored
    resize: tuple[int, int] | None = None  # an image folder of mixed sizes: resized to this
    table: str | None = None  # a .csv/.parquet table: its train.data keys (label, encodings, missing)


def template_names() -> list[str]:
    return sorted(TEMPLATES)


def _ts_header(path: Path) -> dict[str, str]:
    """The @key value lines of a .ts file, up to @data (the series are not read)."""
    header = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.lower().startswith("@data"):
                break
            if line.startswith("@"):
                key, _, value = line[1:].partition(" ")
                header[key.lower()] = value.strip()
    return header


def _ucr(name: str) -> DataInfo:
    from .runtime.datasets import DataError, find_ucr  # numpy, no torch

    try:
        path, _ = find_ucr(name)
    except DataError as exc:
        raise InitError(str(exc)) from None
    try:
        h = _ts_header(path)
    except UnicodeDecodeError as exc:
        raise InitError(f"{path}: not UTF-8 text ({exc})") from None
    labels = h.get("classlabel", "").split()[1:]
    if not labels:
        raise InitError(f"{path} declares no class labels (@classLabel): init makes classifiers")
    try:
        channels = int(h.get("dimensions", "1"))
        equal = h.get("equallength", "true").lower() == "true" and "serieslength" in h
        length = int(h["serieslength"]) if equal else None
    except ValueError as exc:
        raise InitError(f"{path}: a malformed @dimensions or @seriesLength header ({exc})") from None
    about = f"UCR/UEA {name} ({channels} channel{'s' * (channels > 1)}, {len(labels)} classes)"
    return DataInfo(f"ucr:{name}", (channels, length or 0), len(labels), about, series=True)


def _file(source: str, base: Path, limit: int | None = None, label_column: str | None = None) -> DataInfo:
    """Sample shape and class count of an .npz (x's header only; y is read, within `limit`) or a
    .csv, checked as `netspec train` checks them: what train refuses, init refuses."""
    import numpy as np

    from .runtime.datasets import NPZ_NAMES, DataError, check_headers, class_labels, read_arrays, read_headers

    path = Path(source) if Path(source).is_absolute() else base / source
    if not path.is_file():
        raise InitError(f"data file {path} does not exist: init reads its shape and classes from it")
    try:
        if source.endswith(".npz"):
            headers = read_headers(path)
            if "x" not in headers or "y" not in headers:
                raise InitError(f"{path}: an .npz source needs arrays x and y (found {', '.join(sorted(headers))})")
            # x is not read, but what train would refuse (over --max-memory, a lying size) init refuses
            check_headers(path, [h for h in headers.values() if h.name in NPZ_NAMES], limit)
            x = headers["x"]
            if x.dtype.kind not in "biuf" or not x.shape:
                raise InitError(f"{path}: {x.describe()}; expected numbers, one row per sample")
            sample = tuple(x.shape[1:])
            y, _ = class_labels(read_arrays(path, limit, ("y",))["y"], f"{path}: y")
        else:
            return _table(source, path, label_column or "label", limit)
    except DataError as exc:
        raise InitError(str(exc)) from None
    return DataInfo(source, sample, len(np.unique(y)), f"{path.name} ({len(y)} samples)")


def _table(source: str, path: Path, label: str, limit: int | None) -> DataInfo:
    """A table's feature count once encoded (its text columns one-hot, written as encode:), its
    classes, and the train.data keys that fit it (missing: median where cells are missing)."""
    import numpy as np

    from .data.tables import describe

    t = describe(path, label, "classification", limit)

    def name(s: str) -> str:
        return s if re.fullmatch(r"[A-Za-z_][\w.-]*", s) else json.dumps(s)

    keys = [f"label_column: {name(label)}"] if label != "label" else []
    if t["text"]:
        keys.append("encode: {" + ", ".join(f"{name(c)}: one_hot" for c in t["text"]) + "}")
    if t["missing"]:
        keys.append("missing: median")
    keys.append("standardize: per_feature")
    classes = len(np.unique(t["y"]))
    about = f"the table {path.name} ({t['rows']} rows, {t['features']} features, {classes} classes)"
    return DataInfo(source, (t["features"],), classes, about, table=", ".join(keys))


def _folder(source: str, base: Path) -> DataInfo:
    """An image folder's sample shape (channels from the files' modes, 3 unless all are gray) and
    classes, from a scan of the headers; `resize` is set when the files differ in size."""
    from .data.sources import open_image_folder
    from .runtime.datasets import DataError

    path = Path(source) if Path(source).is_absolute() else base / source
    try:
        src = open_image_folder(path, 3)
    except DataError as exc:
        raise InitError(str(exc)) from None
    gray = set(src.modes) <= {"1", "L", "P"} and "P" not in src.modes
    sizes = sorted(src.image_sizes)
    h, w = min(h for h, _ in sizes), min(w for _, w in sizes)
    about = f"the images of {path.name} ({len(src.train):,} files, {len(src.classes)} classes)"
    info = DataInfo(source if "/" in source else "./" + source, (1 if gray else 3, h, w), len(src.classes), about)
    return info if len(sizes) == 1 else replace(info, resize=(h, w))


def data_info(
    data: str, base: Path, classes: int | None, limit: int | None = None, label_column: str | None = None
) -> DataInfo:
    """What the spec needs to know about a data source (train.data.source syntax)."""
    if classes is not None and data != "synthetic":
        raise InitError(f"--classes applies to synthetic data; {data} has its own classes")
    if label_column is not None and not data.lower().endswith((".csv", ".parquet")):
        raise InitError(f"--label-column applies to a .csv or .parquet table; {data} has its own labels")
    if data == "digits":
        return DataInfo("digits", (1, 8, 8), 10, "scikit-learn's 8x8 handwritten digits (10 classes)")
    if data == "synthetic":
        n = classes or SYNTHETIC_CLASSES
        return DataInfo("synthetic", None, n, f"random synthetic data ({n} classes, a smoke test)")
    if data.startswith("ucr:") and re.fullmatch(r"[A-Za-z0-9_]+", data[4:]):
        return _ucr(data[4:])
    if data.lower().endswith((".npz", ".csv", ".parquet")):
        return _file(data, base, limit, label_column)
    if (Path(data) if Path(data).is_absolute() else base / data).is_dir():
        return _folder(data, base)
    raise InitError(
        f"unknown data source {data!r}: use digits, ucr:<Name>, synthetic, a .npz file, a .csv or .parquet table, "
        "or a folder of images"
    )


IMAGE_CHANNELS = (1, 3, 4)  # gray, RGB, RGBA


def channels_last(sample: tuple[int, ...]) -> bool:
    """An image sample stored (height, width, channels): a channel count last and not first."""
    return len(sample) == 3 and sample[2] in IMAGE_CHANNELS and sample[0] not in IMAGE_CHANNELS


def input_shape(kind: str, info: DataInfo) -> tuple[int, ...]:
    """The spec's per-sample input shape for a template kind; the training data is fitted to it
    as `layout: auto` allows (a (C, L) series or channels-last image transposed, axes of size 1
    added or removed), never reshaped into other axes. Images are written channels-first."""
    s = info.sample
    if s is None:
        s = SYNTHETIC["image" if kind == "image" else "series"]
        return s if kind != "sequence" else s[::-1]
    if info.series and s[1] == 0:
        raise InitError(f"{info.source} has series of unequal length: write the input as [T, ...] by hand")
    if kind == "table":  # the mlp template flattens whatever sample it is given
        return s
    if kind == "image":
        if info.series:
            raise InitError(
                f"{info.source} holds series; the cnn and resnet templates read images. Use fcn, lstm or gru"
            )
        if len(s) == 3:
            return (s[2], s[0], s[1]) if channels_last(s) else s
        if len(s) == 2:
            return (1, *s)
        raise InitError(
            f"the {'/'.join(k for k, v in TEMPLATES.items() if v == 'image')} templates read images "
            f"(channels, height, width), and {info.source} has samples of shape {list(s)}",
        )
    if len(s) == 3 and (s[0] == 1 or s[2] == 1):  # a one-channel image, read row by row
        series, flip = (s[1:] if s[0] == 1 else s[:2]), False
    elif len(s) == 2:  # as stored, except a UCR (C, L) series, read as L steps of C features
        series, flip = s, info.series
    elif len(s) == 1:  # flat features: a univariate series
        series, flip = (1, s[0]), True
    else:
        raise InitError(f"the {kind} templates read series, and {info.source} has samples of shape {list(s)}")
    return series[::-1] if kind == "sequence" and flip else series


def _flow(v) -> str:
    return "[" + ", ".join(map(str, v)) + "]"


def schema_ref(spec: Path) -> str:
    """The schema modeline's target: schemas/netspec.schema.json in the spec's folder or one above
    it, relative to the spec; else the published URL."""
    from .spec.schema import SCHEMA_ID

    folder = spec.resolve().parent
    for d in (folder, *folder.parents):
        candidate = d / "schemas" / "netspec.schema.json"
        if candidate.is_file():
            return os.path.relpath(candidate, folder)
    return SCHEMA_ID


def render(
    template: str,
    data: str,
    spec: Path,
    classes: int | None = None,
    limit: int | None = None,
    label_column: str | None = None,
) -> str:
    """The starter spec's text, checked by the compiler; `limit` (--max-memory) bounds what is read;
    `label_column`: a table's label column (default label)."""
    if template not in TEMPLATES:
        raise InitError(
            f"unknown template {template!r}. {did_you_mean(template, TEMPLATES) or ''} "
            f"Templates: {', '.join(template_names())}"
        )
    kind = TEMPLATES[template]
    info = data_info(data, spec.resolve().parent, classes, limit, label_column)
    shape = input_shape(kind, info)
    source = info.source if re.fullmatch(r"[\w./-]+", info.source) else json.dumps(info.source)  # ucr:X quoted
    options = {"synthetic": "samples: 512"}.get(info.source, "standardize: global")
    if info.source == "digits":
        options = "test_fraction: 0.2, " + options
    if info.source.startswith(("./", "/")):  # an image folder: decoded to 0..1, nothing to standardize
        options = f"augment: [{{resize: [{shape[1]}, {shape[2]}]}}]" if info.resize else "val_fraction: 0.1"
    if info.table is not None:  # a table: its label, encodings, missing values, per-feature scaling
        options = info.table
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", spec.stem) or "model"
    values = {
        "schema": schema_ref(spec),
        "file": str(spec),
        "name": name,
        "about": info.about
        + (
            ", stored channels-last (training transposes it)"
            if kind == "image" and channels_last(info.sample or ())
            else ""
        ),
        "input": kind,
        "shape": _flow(shape),
        "classes": str(info.classes),
        "data": f"{{source: {source}, {options}}}",
    }
    text = (TEMPLATE_DIR / f"{template}.yaml").read_text(encoding="utf-8")
    text = re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], text)
    _check(text, spec)
    return text


def _check(text: str, spec: Path) -> None:
    """A template that does not fit its data (an image too small for its pooling) is refused
    here, with the compiler's diagnostics, rather than written."""
    from .compiler import compile_text

    res = compile_text(text, str(spec))
    if not res.ok:
        lines = text.splitlines()
        details = "\n".join(d.render(lines) for d in res.diagnostics)
        raise InitError(f"the template does not fit this data:\n{details}")


def write(spec: Path, text: str, force: bool) -> None:
    from .runtime.atomic import atomic_write_text

    if spec.exists() and not force:
        raise InitError(f"{spec} exists; pass --force to overwrite it, or choose another path")
    if spec.is_dir():
        raise InitError(f"{spec} is a directory; give the spec's file name, e.g. {spec / 'model.yaml'}")
    atomic_write_text(spec, text)
