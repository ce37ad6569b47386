"""Data sources for `netspec train`, as numpy arrays. Nothing is downloaded: every source is
either bundled with an installed package or a user's file.

  digits           scikit-learn's 8x8 digits (1,797 samples), as (N, 1, 8, 8) in [0, 1]
  ucr:<Name>       a UCR/UEA set bundled with sktime or aeon, read straight from its .ts files
                   (official train/test split; string labels mapped to integers in header order)
  path.npz         arrays x, y and optionally x_test, y_test; for variable-length data x is padded
                   along its last axis and `lengths` (and `lengths_test`) give the true lengths
  path.csv         feature columns plus a label column (header row required)
  synthetic        random inputs of the spec's input shape, for smoke tests and benchmarks

Series of unequal length come back as a list of arrays; padding happens later, per batch.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np

from ..record import factory, record


class DataError(Exception):
    """A problem with the user's data: reported as a diagnostic, exit code 1."""


@record(frozen=False)
class RawData:
    x: np.ndarray | list  # (N, ...) or a list of (C, L_i) arrays for unequal lengths
    y: np.ndarray
    x_test: np.ndarray | list | None = None
    y_test: np.ndarray | None = None
    classes: list[str] | None = None  # original label of each class index
    layout: str = "as_is"  # "channels_time" for UCR series: (C, L) per sample
    notes: list[str] = factory(list)


def _package_data_dirs() -> list[Path]:
    dirs = []
    for pkg, sub in (("sktime", "datasets/data"), ("aeon", "datasets/data")):
        spec = importlib.util.find_spec(pkg)
        if spec and spec.submodule_search_locations:
            for loc in spec.submodule_search_locations:
                d = Path(loc) / sub
                if d.is_dir():
                    dirs.append(d)
    return dirs


def available_ucr() -> list[str]:
    names = set()
    for d in _package_data_dirs():
        names |= {p.parent.name for p in d.glob("*/*_TRAIN.ts")}
    return sorted(names)


def read_ts(path: Path) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Parse a .ts file: one series per line, dimensions separated by ':', the label last."""
    series, labels, class_names = [], [], []
    in_data = False
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                low = line.lower()
                if low.startswith("@classlabel"):
                    parts = line.split()
                    class_names = parts[2:] if len(parts) > 2 and parts[1].lower() == "true" else []
                elif low.startswith("@data"):
                    in_data = True
                continue
            *dims, label = line.split(":")
            rows = [[float("nan") if v in ("?", "NaN") else float(v) for v in d.split(",")] for d in dims]
            width = max(len(r) for r in rows)
            if any(len(r) != width for r in rows):  # dims of one sample padded to the same length
                rows = [r + [float("nan")] * (width - len(r)) for r in rows]
            series.append(np.asarray(rows, dtype=np.float32))
            labels.append(label.strip())
    return series, labels, class_names


def _stack_or_list(series: list[np.ndarray]):
    lengths = {s.shape[-1] for s in series}
    return np.stack(series) if len(lengths) == 1 else series


def find_ucr(name: str) -> tuple[Path, Path]:
    """The bundled _TRAIN.ts and _TEST.ts files of a UCR/UEA set, or a DataError that lists them."""
    for d in _package_data_dirs():
        train, test = d / name / f"{name}_TRAIN.ts", d / name / f"{name}_TEST.ts"
        if train.exists() and test.exists():
            return train, test
    have = available_ucr()
    from ..errors import did_you_mean

    hint = did_you_mean(name, have) or ""
    where = ", ".join(have) if have else "none (install sktime or aeon: pip install sktime)"
    raise DataError(f"UCR/UEA set {name!r} is not bundled here. {hint} Bundled sets: {where}")


def load_ucr(name: str) -> RawData:
    train, test = find_ucr(name)
    xs, ys, names = read_ts(train)
    xt, yt, _ = read_ts(test)
    classes = names or sorted(set(ys) | set(yt))
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({lab for lab in ys + yt if lab not in index})
    if unknown:
        raise DataError(f"{name}: labels {unknown[:5]} are not declared in the file's @classLabel header")
    return RawData(
        _stack_or_list(xs),
        np.array([index[v] for v in ys], dtype=np.int64),
        _stack_or_list(xt),
        np.array([index[v] for v in yt], dtype=np.int64),
        classes,
        layout="channels_time",
        notes=[f"{name}: {len(xs)} train / {len(xt)} test series from {train.parent}"],
    )


def load_digits() -> RawData:
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError as exc:
        raise DataError("the digits source needs scikit-learn: pip install 'netspec[data]'") from exc
    d = sk_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]  # (N, 1, 8, 8), values in [0, 1]
    return RawData(
        x, d.target.astype(np.int64), classes=[str(c) for c in range(10)], notes=["digits: 1,797 8x8 images"]
    )


def _labels(y: np.ndarray, classes: list[str] | None) -> tuple[np.ndarray, list[str] | None]:
    """Integer labels stay; anything else (strings) maps to indices in sorted order."""
    if y.dtype.kind in "iu":
        return y.astype(np.int64), classes
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        return y.astype(np.int64), classes
    names = sorted({str(v) for v in y})
    index = {c: i for i, c in enumerate(names)}
    return np.array([index[str(v)] for v in y], dtype=np.int64), names


def load_npz(path: Path, task: str) -> RawData:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise DataError(f"data file {path} does not exist") from None
    except (ValueError, OSError) as exc:
        raise DataError(f"cannot read {path} as .npz: {exc}") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise DataError(
            f"{path} lacks array(s) {missing}; it has {sorted(arrays)} (expected x, y, optional x_test, y_test)"
        )
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{path} has only one of x_test / y_test")
    y, yt = arrays["y"], arrays.get("y_test")
    classes = None
    if task == "classification":
        if yt is not None:
            both, classes = _labels(np.concatenate([y, yt]), None)
            y, yt = both[: len(y)], both[len(y) :]
        else:
            y, classes = _labels(y, None)
    x, xt = arrays["x"], arrays.get("x_test")
    # Variable-length data (token ids, series): x padded along its last axis, true lengths beside it.
    if "lengths" in arrays:
        x = _unpad(x, arrays["lengths"], "lengths")
    if xt is not None and "lengths_test" in arrays:
        xt = _unpad(xt, arrays["lengths_test"], "lengths_test")
    return RawData(x, y, xt, yt, classes)


def _unpad(x: np.ndarray, lengths: np.ndarray, name: str) -> list[np.ndarray]:
    if lengths.shape != (len(x),) or lengths.dtype.kind not in "iu":
        raise DataError(f"{name} must be one integer per sample ({len(x)}), not {lengths.dtype} {lengths.shape}")
    if len(lengths) and (lengths.min() < 1 or lengths.max() > x.shape[-1]):
        raise DataError(f"{name} must lie in 1..{x.shape[-1]} (the padded last axis of x)")
    return [x[i, ..., : int(n)] for i, n in enumerate(lengths)]


def load_csv(path: Path, label_column: str, task: str) -> RawData:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise DataError(f"data file {path} does not exist") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {path} as CSV: {exc}") from None
    if len(rows) < 2:
        raise DataError(f"{path} has no data rows (a header row and at least one sample are needed)")
    header, body = rows[0], [r for r in rows[1:] if r]
    if label_column not in header:
        from ..errors import did_you_mean

        raise DataError(
            f"{path} has no label column {label_column!r}; columns: {header}. {did_you_mean(label_column, header) or ''}"
        )
    li = header.index(label_column)
    try:
        x = np.array([[float(v) for j, v in enumerate(r) if j != li] for r in body], dtype=np.float32)
    except ValueError as exc:
        raise DataError(f"{path}: a feature value is not a number ({exc})") from None
    if any(len(r) != len(header) for r in body):
        bad = next(i for i, r in enumerate(body) if len(r) != len(header))
        raise DataError(f"{path}: row {bad + 2} has {len(body[bad])} values, the header has {len(header)}")
    labels = np.array([r[li] for r in body])
    if task == "classification":
        try:
            y, classes = _labels(labels.astype(np.float64), None)
        except ValueError:
            y, classes = _labels(labels, None)
    else:
        y, classes = labels.astype(np.float32), None
    return RawData(x, y, classes=classes, notes=[f"{path}: {len(body)} rows, {x.shape[1]} features"])


def load_source(source: str, *, task: str, base: Path, label_column: str = "label") -> RawData:
    if source == "digits":
        return load_digits()
    if source.startswith("ucr:"):
        return load_ucr(source[4:])
    path = Path(source)
    if not path.is_absolute():
        path = base / path
    if source.endswith(".npz"):
        return load_npz(path, task)
    if source.endswith(".csv"):
        return load_csv(path, label_column, task)
    raise DataError(f"unknown data source {source!r}: use digits, ucr:<Name>, synthetic, or a .npz/.csv file")
