"""`netspec init`: a commented starter spec from a template (netspec/templates/*.yaml) fitted to a
data source's sample shape and class count.

Templates are YAML text with {{placeholders}}; what fills them comes from the data source's
metadata, read without loading the data where the source allows (a UCR .ts header, an .npz
array header). The result is compiled before it is written, so `init` never leaves a spec that
`netspec check` refuses. No torch here.
"""

from __future__ import annotations

import json
import math
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
TIME = "T"  # the input's time axis when series differ in length
TEST_FRACTION = 0.2  # train.data.test_fraction's default: held out where a source has no test split


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
    lengths: tuple[int, int, int] | None = None  # series: shortest, longest, mean length (from the data)
    n_train: int | None = None  # training samples, where known: the train: settings follow it

    @property
    def variable(self) -> bool:
        """Series of unequal length: the input's time axis is the symbol T."""
        return self.lengths is not None and self.lengths[0] != self.lengths[1]


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
    """Channels, lengths and classes of a bundled UCR/UEA set, from its series (train and test),
    never from header tags: a header may omit @equalLength or @seriesLength; one that contradicts
    the data's channels (@dimensions, @univariate) is refused."""
    from .runtime.datasets import DataError, find_ucr, load_ts  # numpy, no torch

    try:
        train, test = find_ucr(name)
        h = _ts_header(train)
        raw = load_ts(name, train, test)
    except DataError as exc:
        raise InitError(str(exc)) from None
    except UnicodeDecodeError as exc:
        raise InitError(f"{train}: not UTF-8 text ({exc})") from None
    if not raw.classes or len(raw.classes) < 2:
        raise InitError(f"{train} declares fewer than two classes (@classLabel): init makes classifiers")
    assert raw.x_test is not None and raw.y_test is not None  # load_ts reads the test file too
    series = list(raw.x) + list(raw.x_test)
    channels = int(series[0].shape[0])
    lengths = [int(s.shape[-1]) for s in series]
    said = {"dimensions": _int(h.get("dimensions", "")), "univariate": {"true": 1}.get(h.get("univariate", "").lower())}
    for tag, count in said.items():
        if count is not None and count != channels:
            raise InitError(
                f"{train}: the header says @{tag} {h[tag]}, but the series have {channels} "
                f"dimension{'s' * (channels > 1)}: fix the header or the data"
            )
    lo, hi = min(lengths), max(lengths)
    span = f"length {lo}" if lo == hi else f"lengths {lo}-{hi}"
    about = (
        f"UCR/UEA {name} ({channels} channel{'s' * (channels > 1)}, {span}, {len(raw.classes)} classes; "
        f"{len(raw.y)} train / {len(raw.y_test)} test series)"
    )
    return DataInfo(
        f"ucr:{name}",
        (channels, hi),
        len(raw.classes),
        about,
        series=True,
        lengths=(lo, hi, round(sum(lengths) / len(lengths))),
        n_train=len(raw.y),
    )


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


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
    n = len(y) if "x_test" in headers else len(y) - round(len(y) * TEST_FRACTION)
    return DataInfo(source, sample, len(np.unique(y)), f"{path.name} ({len(y)} samples)", n_train=n)


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
    n = t["rows"] - round(t["rows"] * TEST_FRACTION)
    return DataInfo(source, (t["features"],), classes, about, table=", ".join(keys), n_train=n)


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
    assert src.classes is not None  # a folder's classes are its train/ subfolders (none: a DataError)
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
        about = "scikit-learn's 8x8 handwritten digits (10 classes)"
        return DataInfo("digits", (1, 8, 8), 10, about, n_train=1797 - round(1797 * TEST_FRACTION))
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


def input_shape(kind: str, info: DataInfo) -> tuple[int | str, ...]:
    """The spec's per-sample input shape for a template kind; the training data is fitted to it
    as `layout: auto` allows (a (C, L) series or channels-last image transposed, axes of size 1
    added or removed), never reshaped into other axes. Images are written channels-first."""
    s = info.sample
    if s is None:
        s = SYNTHETIC["image" if kind == "image" else "series"]
        return s if kind != "sequence" else s[::-1]
    if info.variable and kind == "series":  # (channels, T): 'same' convs and global pooling mask the padding
        return (s[0], TIME)
    if info.variable and kind == "sequence":  # (T, features): recurrent layers pack the padded batch
        return (TIME, s[0])
    if info.variable and kind == "table":
        assert info.lengths is not None  # variable: the lengths are known
        raise InitError(
            f"{info.source} has series of unequal length ({info.lengths[0]} to {info.lengths[1]} steps); "
            f"the mlp template flattens a sample, which needs one length. Use fcn (input [{s[0]}, T]) or lstm/gru (input [T, {s[0]}])"
        )
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


# What a small training set needs (tests/test_init.py holds these rules): every sample trained on,
# enough optimizer steps under a schedule whose final weights are stable, and a bounded CPU cost.
HOLD_OUT_FROM = 1000  # training samples from which a tenth held out for validation costs little
STEPS = 3000  # optimizer steps to aim for: ArrowHead (36 samples) gained 2 points from 2,000 to 3,000
MAC_BUDGET = 4e12  # multiply-accumulates per run (forward x3 for the backward pass): minutes on 2 CPU cores
EPOCHS = (20, 500)  # the fewest and most epochs written


@record
class Settings:
    """train: values for a data set's size, each with the reason written beside it in the spec."""

    batch_size: int
    epochs: int
    val_fraction: float
    warmup_epochs: int
    why: dict  # key -> the comment written after it


def train_settings(n_train: int, macs: int | None = None) -> Settings:
    """batch size, epochs, validation split and warmup for `n_train` training samples of a model
    costing `macs` multiply-accumulates per sample (None: unknown, no compute bound).

    Batches of about a tenth of the set, a power of two in 4..16 (Wang et al. 2017 use n/10 up to 16),
    so a small set still takes several steps per epoch; epochs for about STEPS optimizer steps,
    fewer where MAC_BUDGET runs out first, within EPOCHS; no validation split under HOLD_OUT_FROM
    samples (the official test split is evaluated once, on the final weights), and a warmup of a
    twentieth of the epochs before the cosine decay to 0, which makes those final weights stable."""
    if n_train < 1:
        raise ValueError(f"n_train must be positive, not {n_train}")
    val = 0.1 if n_train >= HOLD_OUT_FROM else 0.0
    fit = n_train - round(n_train * val)
    batch = min(16, max(4, 2 ** round(math.log2(max(fit / 10, 1)))), fit)
    steps = math.ceil(fit / batch)
    epochs = math.ceil(STEPS / steps)
    why = {
        "batch_size": f"a tenth of the {fit:,} training samples (a power of 2, 4 to 16): {steps} steps an epoch",
        "epochs": f"about {STEPS:,} optimizer steps, {steps} an epoch",
        "val_fraction": (
            "a tenth held out for validation"
            if val
            else f"{n_train:,} training samples, too few to hold some out: the test split is scored once, "
            "on the final weights"
        ),
    }
    if macs:
        cap = int(MAC_BUDGET // (3 * macs * fit))
        if cap < epochs:
            epochs = cap
            why["epochs"] = (
                f"fewer than {STEPS:,} steps: a budget of {MAC_BUDGET:.0e} multiply-accumulates "
                f"({macs / 1e6:,.0f}M a sample, x3 to train)"
            )
    lo, hi = EPOCHS
    if epochs < lo or epochs > hi:
        why["epochs"] += f"; at {'least' if epochs < lo else 'most'} {lo if epochs < lo else hi}"
        epochs = min(hi, max(lo, epochs))
    warmup = max(1, round(epochs / 20))
    why["schedule"] = "warmup, then cosine to 0: the final weights, the ones tested, are settled"
    return Settings(batch, epochs, val, warmup, why)


def _n_train(info: DataInfo) -> int:
    """Training samples the train: settings are sized for (a synthetic set: its 512)."""
    return info.n_train or 512


def _flow(v) -> str:
    return "[" + ", ".join(map(str, v)) + "]"


SCHEMA_FILE = "netspec.schema.json"


def schema_ref(spec: Path) -> str:
    """The schema modeline's target, always a file that exists (yaml-language-server reads relative
    paths and file URIs): schemas/netspec.schema.json in the spec's folder or one above it, relative
    to the spec; else the one in the checkout netspec runs from (an editable install), as a file
    URI; else the installed version's schema, written once to the user's cache folder (a wheel
    ships no copy: the schema is generated from the layer registry, as `netspec schema` prints it)."""
    folder = spec.resolve().parent
    for d in (folder, *folder.parents):
        candidate = d / "schemas" / SCHEMA_FILE
        if candidate.is_file():
            return os.path.relpath(candidate, folder)
    checkout = Path(__file__).resolve().parents[1] / "schemas" / SCHEMA_FILE
    if checkout.is_file():
        return checkout.as_uri()
    return cached_schema().as_uri()


def cached_schema() -> Path:
    """The installed netspec's JSON Schema as a file: $XDG_CACHE_HOME/netspec (~/.cache/netspec),
    named by version and rewritten when the registry's schema changed."""
    from . import __version__
    from .runtime.atomic import atomic_write_text
    from .spec.schema import schema_text

    text = schema_text()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "netspec"
    path = cache / f"netspec-{__version__}.schema.json"
    try:
        if not (path.is_file() and path.read_text(encoding="utf-8") == text):
            cache.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, text)
    except OSError as exc:
        raise InitError(
            f"cannot write the schema file {path} ({exc.strerror or exc}); set XDG_CACHE_HOME to a writable folder"
        ) from None
    return path


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
    values.update(_shape_values(kind, info, shape))
    text = (TEMPLATE_DIR / f"{template}.yaml").read_text(encoding="utf-8")
    if "{{epochs}}" in text:  # a template sized to the data: first the model's cost per sample
        n = _n_train(info)
        probe = _fill(text, values | _settings_values(train_settings(n)))
        st = train_settings(n, _macs(probe, spec, info))
        values.update(_settings_values(st))
        if st.val_fraction == 0 and "val_fraction" not in options:
            values["data"] = f"{{source: {source}, val_fraction: 0, {options}}}   # {st.why['val_fraction']}"
    text = _fill(text, values)
    _check(text, spec)
    return text


def _fill(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], text)


def _line(key: str, value, why: str) -> str:
    """A train: line with its reason, comments aligned as the templates align them."""
    return f"  {key}: {value}".ljust(33) + f" # {why}"


def _settings_values(st: Settings) -> dict[str, str]:
    return {
        "batch_size": _line("batch_size", st.batch_size, st.why["batch_size"]),
        "epochs": _line("epochs", st.epochs, st.why["epochs"]),
        "schedule": _line("schedule", f"{{name: cosine, warmup_epochs: {st.warmup_epochs}}}", st.why["schedule"]),
    }


def _shape_values(kind: str, info: DataInfo, shape: tuple) -> dict[str, str]:
    """The input line's comment, in the input's own axis order, and a nominal T for `check`."""
    if info.variable:
        assert info.lengths is not None  # variable: the lengths are known
        lo, hi, mean = info.lengths
        if kind == "series":
            note = (
                f"one sample (channels, T): T is {lo} to {hi} steps; batches are zero-padded, and the "
                "'same' convolutions and the global pooling mask the padding"
            )
        else:
            note = (
                f"one sample (T, features): T is {lo} to {hi} steps; padded batches are packed, so the "
                "recurrent layer reads each series to its own end"
            )
        dims = f"dims: {{{TIME}: {mean}}}".ljust(35) + " # a nominal T (the mean length) for check's MAC count\n"
        return {"shape_note": note, "dims": dims}
    if kind == "series":
        note = f"one sample (channels, length); [{shape[0]}, {TIME}] would read any length"
    elif kind == "sequence":
        note = f"one sample (time steps, features); [{TIME}, {shape[-1]}] would read any length"
    else:
        note = "one sample"
    return {"shape_note": note, "dims": ""}


def _macs(text: str, spec: Path, info: DataInfo) -> int | None:
    """Multiply-accumulates per sample of the spec `text` (at the mean length for unequal series)."""
    from .compiler import compile_text

    res = compile_text(text, str(spec), {TIME: info.lengths[2]} if info.variable and info.lengths else None)
    return res.typed.total_macs if res.ok and res.typed is not None else None


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
