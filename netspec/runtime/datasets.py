"""Data sources for `netspec train`, as numpy arrays. Nothing is downloaded: every source is
either bundled with an installed package or a user's file.

  digits           scikit-learn's 8x8 digits (1,797 samples), as (N, 1, 8, 8) in [0, 1]
  ucr:<Name>       a UCR/UEA set bundled with sktime or aeon, read straight from its .ts files
                   (official train/test split; string labels mapped to integers in header order)
  path.npz         arrays x, y and optionally x_test, y_test; for variable-length data x is padded
                   along its last axis and `lengths` (and `lengths_test`) give the true lengths
  path.csv         a table: named feature columns plus a label column (header row required), or
  path.parquet     read through pyarrow (netspec/data/tables.py): encodings, missing values
  synthetic        random inputs of the spec's input shape, for smoke tests and benchmarks

Series of unequal length come back as a list of arrays; padding happens later, per batch.

A data file is untrusted input: every .npz/.npy is opened by read_arrays, which reads each
member's .npy header first and refuses object dtypes, non-.npy members, sizes that disagree with
the zip directory, and arrays over the run's --max-memory, before decompressing anything. A bad
value is a DataError naming the file (and line, for .csv and .ts), never an internal error.
"""

from __future__ import annotations

import importlib.util
import math
import re
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..record import factory, record, replace

if TYPE_CHECKING:  # data/tables.py imports this module
    from ..data.tables import TableSource
from ..summary import human_bytes


class DataError(Exception):
    """A problem with the user's data: reported as a diagnostic, exit code 1."""


NUMERIC = "biuf"  # dtype kinds a feature array may hold (bool, ints, floats)
_CHUNK = 1 << 24  # bytes read at a time from a member, so no read needs a second full-size buffer


def check_bytes(what: str, nbytes: int, limit: int | None) -> None:
    """Refuse an allocation over the run's memory limit before it is made, with the arithmetic."""
    if limit is not None and nbytes > limit:
        raise DataError(f"{what} = {human_bytes(nbytes)}, over the memory limit {human_bytes(limit)} (--max-memory)")


@record
class ArrayHeader:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    offset: int  # bytes of magic + header, where the data starts
    stored: int  # bytes the file (.npy) or the zip directory (.npz member) says it holds

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize  # Python ints: a lying shape cannot overflow

    def describe(self) -> str:
        return f"{self.name}: shape {tuple(self.shape)} {self.dtype}"


def _read_header(fp, name: str, where: str) -> ArrayHeader:
    """An .npy header from a stream, the data left unread: lies are caught before any allocation."""
    from numpy.lib import format as npformat

    try:
        version = npformat.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = npformat.read_array_header_2_0(fp)
        else:
            raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    except (ValueError, TypeError, SyntaxError, OverflowError, EOFError, tokenize.TokenError) as exc:
        raise DataError(f"{where}: {name} is not a valid .npy array ({exc})") from None
    if dtype.hasobject:  # a pickle inside: never unpickled (code execution)
        raise DataError(f"{where}: {name} holds Python objects ({dtype}); only numeric arrays are read")
    if any(d < 0 for d in shape):
        raise DataError(f"{where}: {name} declares a negative dimension {tuple(shape)}")
    return ArrayHeader(name, tuple(shape), dtype, bool(fortran), fp.tell(), 0)


def _read_data(fp, h: ArrayHeader, where: str) -> np.ndarray:
    """Exactly the declared bytes, read in chunks into the final array: a stream that inflates
    beyond them is never read further, one that ends early is refused."""
    out = np.empty(math.prod(h.shape), dtype=h.dtype)
    view = out.view(np.uint8)  # an empty array's view is empty too
    done = 0
    while done < h.nbytes:
        chunk = fp.read(min(_CHUNK, h.nbytes - done))
        if not chunk:
            raise DataError(f"{where}: {h.name} is truncated: {done:,} of {h.nbytes:,} data bytes")
        view[done : done + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
        done += len(chunk)
    return out.reshape(h.shape, order="F" if h.fortran else "C")


# What zipfile raises on a hostile .npz: a bad archive or CRC, a truncated member, an encrypted one
# (RuntimeError), a compression method it does not implement (NotImplementedError), a bad header.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError, ValueError)


def read_arrays(path: Path, limit: int | None, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an .npz or .npy file (those in `names`, or all), each header checked first:
    object dtypes, members that are not .npy, a zip directory that disagrees with the header, and
    a total over `limit` are refused before anything is decompressed."""
    headers = read_headers(path)
    wanted = [h for h in headers.values() if names is None or h.name in names]
    check_headers(path, wanted, limit)
    try:
        if path.suffix == ".npy":
            with open(path, "rb") as fp:
                fp.seek(wanted[0].offset)
                return {wanted[0].name: _read_data(fp, wanted[0], str(path))}
        out = {}
        with zipfile.ZipFile(path) as z:
            for h in wanted:
                with z.open(h.name + ".npy") as fp:
                    fp.read(h.offset)
                    out[h.name] = _read_data(fp, h, str(path))
        return out
    except _ZIP_ERRORS as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


def check_headers(path: Path, wanted: list[ArrayHeader], limit: int | None) -> None:
    """Refuse arrays whose declared bytes exceed `limit`, or disagree with the stored size."""
    total = sum(h.nbytes for h in wanted)
    if limit is not None and total > limit:
        big = max(wanted, key=lambda h: h.nbytes)
        raise DataError(
            f"{path}: {big.describe()} = {human_bytes(big.nbytes)}"
            + (f" ({human_bytes(total)} in all)" if total > big.nbytes else "")
            + f", over the memory limit {human_bytes(limit)} (--max-memory)"
        )
    for h in wanted:  # what is decompressed is bounded by the stored size; it must match the header
        if h.stored != h.offset + h.nbytes:
            raise DataError(
                f"{path}: {h.describe()} declares {h.offset + h.nbytes:,} bytes with its header, "
                f"but the {'file' if path.suffix == '.npy' else 'zip directory'} says {h.stored:,}"
            )


def read_headers(path: Path) -> dict[str, ArrayHeader]:
    """The array headers of an .npz (by name, without .npy) or an .npy file; no data is read."""
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    try:
        if path.suffix == ".npy":
            with open(path, "rb") as fp:
                h = _read_header(fp, "x", str(path))
            return {"x": replace(h, stored=path.stat().st_size)}
        headers = {}
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if info.is_dir():
                    continue
                if not info.filename.endswith(".npy"):
                    raise DataError(f"{path}: member {info.filename!r} is not an .npy array")
                name = info.filename[:-4]
                if name in headers:
                    raise DataError(f"{path}: array {name!r} appears twice")
                with z.open(info) as fp:
                    headers[name] = replace(_read_header(fp, name, str(path)), stored=info.file_size)
        return headers
    except _ZIP_ERRORS as exc:
        raise DataError(f"cannot read {path} as {path.suffix}: {exc}") from None


@record(frozen=False)
class RawData:
    x: np.ndarray | list  # (N, ...) or a list of (C, L_i) arrays for unequal lengths
    y: np.ndarray
    x_test: np.ndarray | list | None = None
    y_test: np.ndarray | None = None
    classes: list[str] | None = None  # original label of each class index
    layout: str = "as_is"  # "channels_time" for UCR series: (C, L) per sample
    notes: list[str] = factory(list)
    table: TableSource | None = None  # a .csv/.parquet table (data/tables.py): x holds its row numbers


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
    """Parse a .ts file: one series per line, dimensions separated by ':', the label last.
    Anything malformed is a DataError naming file:line and what was wrong."""
    series, labels, class_names = [], [], []
    in_data = False
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, raw in enumerate(f, 1):
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
                series.append(_ts_row(line, f"{path}:{lineno}", series[0].shape[0] if series else None))
                label = line.rsplit(":", 1)[1].strip()
                if class_names and label not in class_names:
                    raise DataError(f"{path}:{lineno}: label {label!r} is not declared in @classLabel {class_names}")
                labels.append(label)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc})") from None
    if not in_data:
        raise DataError(f"{path}: no @data line: not a .ts file")
    if not series:
        raise DataError(f"{path}: no series after @data")
    return series, labels, class_names


def _ts_row(line: str, where: str, dims: int | None) -> np.ndarray:
    if ":" not in line:
        raise DataError(f"{where}: no ':' before the label (expected values:...:label)")
    *parts, _ = line.split(":")
    rows = []
    for d, text in enumerate(parts):
        try:
            rows.append([float("nan") if v in ("?", "NaN") else float(v) for v in text.split(",")])
        except ValueError:
            bad = next(v for v in text.split(",") if v not in ("?", "NaN") and not _is_float(v))
            raise DataError(f"{where}: dimension {d + 1}: {bad[:40]!r} is not a number") from None
    if dims is not None and len(rows) != dims:
        raise DataError(f"{where}: {len(rows)} dimensions, the first series has {dims}")
    width = max(len(r) for r in rows)
    if any(len(r) != width for r in rows):  # dims of one sample padded to the same length
        rows = [r + [float("nan")] * (width - len(r)) for r in rows]
    return np.asarray(rows, dtype=np.float32)


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _stack_or_list(series: list[np.ndarray]):
    lengths = {s.shape[-1] for s in series}
    return np.stack(series) if len(lengths) == 1 else series


def find_ucr(name: str) -> tuple[Path, Path]:
    """The bundled _TRAIN.ts and _TEST.ts files of a UCR/UEA set, or a DataError that lists them."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):  # a name, never a path out of the data folders
        raise DataError(f"UCR/UEA set name {name!r} must be letters, digits and _")
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
    return load_ts(name, *find_ucr(name))


def load_ts(name: str, train: Path, test: Path) -> RawData:
    """A pair of .ts files (official train/test split) as RawData, labels in header order."""
    xs, ys, names = read_ts(train)
    xt, yt, _ = read_ts(test)
    classes = names or sorted(set(ys) | set(yt))
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({lab for lab in ys + yt if lab not in index})
    if unknown:
        raise DataError(f"{name}: labels {unknown[:5]} are not declared in the file's @classLabel header")
    if len({s.shape[0] for s in xs + xt}) > 1:
        raise DataError(f"{name}: the train and test series have different numbers of dimensions")
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
    d = sk_digits(return_X_y=False)
    if isinstance(d, tuple):  # not asked for: sklearn's Bunch comes back
        raise DataError("scikit-learn's load_digits returned arrays, not its data set object")
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]  # (N, 1, 8, 8), values in [0, 1]
    return RawData(
        x, d.target.astype(np.int64), classes=[str(c) for c in range(10)], notes=["digits: 1,797 8x8 images"]
    )


def class_labels(y: np.ndarray, what: str, rows: list[int] | None = None) -> tuple[np.ndarray, list[str] | None]:
    """Class indices and the class names, by one rule (every source's labels take it):
    integer labels that are exactly 0..K-1 are class indices and stay as they are (names None);
    any other set of integers (1..3, {2, 5, 9}, negatives) and any strings map to 0..K-1 in sorted
    order (integers as numbers), the original values kept as the class names, so predictions and
    per-class results give them back. A missing label (NaN, inf, empty, 'nan') is refused, as
    regression targets are: it is no class. `rows` are the file's line numbers of the labels
    (else 0-based indices)."""
    if y.ndim != 1:
        raise DataError(f"{what}: class labels must be one per sample, not of shape {y.shape}")
    if y.dtype.kind not in "biufUS":
        raise DataError(f"{what}: class labels must be integers or strings, not {y.dtype}")
    if y.dtype.kind == "S":  # byte strings: class names as text, whatever their bytes
        y = np.char.decode(y, "utf-8", errors="replace")
    if y.dtype.kind in "biu":
        return _integer_classes(y.astype(np.int64))
    if y.dtype.kind == "f":
        missing = ~np.isfinite(y)
    else:
        missing = np.char.lower(np.char.strip(y.astype(str))) == "nan"
        missing |= np.char.strip(y.astype(str)) == ""
    if missing.any():
        bad = np.flatnonzero(missing)
        at = [rows[i] for i in bad[:5]] if rows else [int(i) for i in bad[:5]]
        raise DataError(
            f"{what}: {len(bad)} missing class label(s) (NaN, inf or empty) at {'line' if rows else 'row'}{'s' * (len(bad) > 1)} "
            f"{', '.join(map(str, at))}{' ...' if len(bad) > 5 else ''}; drop or label those samples"
        )
    if y.dtype.kind == "f" and np.all(y == np.round(y)) and np.all(np.abs(y) < 2**62):
        return _integer_classes(y.astype(np.int64))
    names = sorted({str(v) for v in y})
    index = {c: i for i, c in enumerate(names)}
    return np.array([index[str(v)] for v in y], dtype=np.int64), names


def _integer_classes(y: np.ndarray) -> tuple[np.ndarray, list[str] | None]:
    """0..K-1 stays (the labels are the indices); any other integers -> 0..K-1 in sorted order, named."""
    values = np.unique(y)
    if not len(values) or (values[0] == 0 and values[-1] == len(values) - 1):
        return y, None
    return np.searchsorted(values, y).astype(np.int64), [str(int(v)) for v in values]


def output_names(classes: list[str] | None, outputs: int) -> list[str]:
    """A name per model output: the class names, then each output beyond them by its index
    (`output_<i>` where the index is already a class's name)."""
    names = list(classes or [])[:outputs]
    for i in range(len(names), outputs):
        names.append(str(i) if str(i) not in names else f"output_{i}")
    return names


def classes_note(classes: int, outputs: int, names: list[str] | None = None) -> str | None:
    """The warning for a model with more outputs than the data has classes (None if it has not):
    the extra outputs are never a target, so training cannot teach them anything."""
    if outputs <= classes or (outputs == 1 and classes <= 2):
        return None
    shown = f" ({', '.join(names[:8])}{' ...' if len(names) > 8 else ''})" if names else ""
    return (
        f"warning: the model has {outputs} outputs but the data has {classes} classes{shown}: "
        f"outputs {classes}..{outputs - 1} are never a target; make the last layer's size {classes}"
    )


def _numbers(a: np.ndarray, what: str) -> None:
    if a.dtype.kind not in NUMERIC:
        held = "strings" if a.dtype.kind in "US" else "values"
        raise DataError(f"{what} holds {held} ({a.dtype}); expected numbers (bool, int or float)")
    if a.ndim == 0:
        raise DataError(f"{what} is a single value; expected one row per sample")


NPZ_NAMES = ("x", "y", "x_test", "y_test", "lengths", "lengths_test")


def load_npz(path: Path, task: str, limit: int | None = None) -> RawData:
    headers = read_headers(path)
    missing = [k for k in ("x", "y") if k not in headers]
    if missing:
        raise DataError(
            f"{path} lacks array(s) {missing}; it has {sorted(headers)} (expected x, y, optional x_test, y_test)"
        )
    if ("x_test" in headers) != ("y_test" in headers):
        raise DataError(f"{path} has only one of x_test / y_test")
    arrays = read_arrays(path, limit, NPZ_NAMES)
    for k in ("x", "x_test", "lengths", "lengths_test"):
        if k in arrays:
            _numbers(arrays[k], f"{path}: {k}")
    y, yt = arrays["y"], arrays.get("y_test")
    classes = None
    if task == "classification":
        if yt is not None:
            if y.ndim != 1 or yt.ndim != 1:
                raise DataError(f"{path}: class labels must be one per sample: y {y.shape}, y_test {yt.shape}")
            family = [{"U": "text", "S": "bytes"}.get(v.dtype.kind, v.dtype.kind in NUMERIC) for v in (y, yt)]
            if family[0] != family[1] or family[0] is False:  # else no common dtype to join them in
                raise DataError(f"{path}: y ({y.dtype}) and y_test ({yt.dtype}) must both be numbers or both strings")
            both, classes = class_labels(np.concatenate([y, yt]), f"{path}: y, y_test")
            y, yt = both[: len(y)], both[len(y) :]
        else:
            y, classes = class_labels(y, f"{path}: y")
    else:
        for k, v in (("y", y), ("y_test", yt)):
            if v is not None:
                _numbers(v, f"{path}: {k} (regression targets)")
    x, xt = arrays["x"], arrays.get("x_test")
    # Variable-length data (token ids, series): x padded along its last axis, true lengths beside it.
    if "lengths" in arrays:
        x = _unpad(x, arrays["lengths"], "lengths")
    if xt is not None and "lengths_test" in arrays:
        xt = _unpad(xt, arrays["lengths_test"], "lengths_test")
    notes = []
    size = sum(a.nbytes for a in arrays.values())
    if size >= LARGE_NPZ:  # a .npz is read whole; past this a memory-mapped .npy keeps the RSS flat
        notes.append(
            f"{path.name} is read whole ({human_bytes(size)} in memory); save x and y as .npy files "
            "(source: x.npy, labels: y.npy) to read them a row at a time"
        )
    return RawData(x, y, xt, yt, classes, notes=notes)


LARGE_NPZ = 1 << 30


def _unpad(x: np.ndarray, lengths: np.ndarray, name: str) -> list[np.ndarray]:
    if x.ndim < 2:
        raise DataError(f"{name} needs x padded along a time axis (x of shape (N, ..., L)), not {x.shape}")
    if lengths.shape != (len(x),) or lengths.dtype.kind not in "iu":
        raise DataError(f"{name} must be one integer per sample ({len(x)}), not {lengths.dtype} {lengths.shape}")
    if len(lengths) and (lengths.min() < 1 or lengths.max() > x.shape[-1]):
        raise DataError(f"{name} must lie in 1..{x.shape[-1]} (the padded last axis of x)")
    return [x[i, ..., : int(n)] for i, n in enumerate(lengths)]
