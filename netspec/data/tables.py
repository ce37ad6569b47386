"""Tables as training data: a .csv or .parquet file read through pyarrow, its columns chosen by name.

  train:
    data:
      source: wine.csv             # or wine.parquet
      label_column: cls            # default: label
      feature_columns: [a, b, c]   # default: every column but the label and drop_columns
      drop_columns: [id]
      encode: {colour: one_hot}    # or `encode: one_hot` for every text column; or index
      missing: median              # error (default) | mean | median | constant (with fill) | drop
      standardize: per_feature     # each feature's mean and std, from the training split

Reading: a .csv streams through pyarrow.csv.open_csv one block (1 MiB) at a time, a .parquet one
row group at a time and only the columns used; the bytes held are checked against --max-memory as
they grow. No cell goes through Python's float(): pyarrow converts whole columns. A column whose
cells are not all numbers is text, and a text feature column needs a declared encoding.

Encodings and fill values are learned on the training split alone (`fit`), then applied to every
split, and by `evaluate` and `predict` from the state the run stores in data.json's "table"
(`transform`, which finds each column by its name, so a file's column order does not matter):
  one_hot  a 0/1 column per category of the training split (sorted); a value the training split
           lacks (a rare one in val/test rows, or a new one at predict time) is an all-zero row.
  index    one column of codes 0..K-1 for the training split's K categories, K for any other value.
           A spec that feeds codes to an embedding needs num_embeddings K + 1 and an int64 input of
           the table's feature count (every feature index-encoded); mixed with numbers, codes are
           fed as floats like every other column.
  missing  mean / median of a number column's training rows, for a text column its most frequent
           training category; constant: `fill` (a number, or a category for a text column); drop:
           rows with any missing feature or label are left out as the file is read (predict, which
           must answer every row, refuses a missing cell the run has no fill value for).
A missing cell is an empty one or one of pyarrow's null spellings (NA, NaN, nan, null, N/A, ...).

Errors name the file and the row as a spreadsheet shows it (a .csv's header is line 1; a
.parquet's rows count from 1), the column, and for a misspelt name the closest column the file has.
numpy at import; pyarrow on first use (a spec is checked without it).
"""

from __future__ import annotations

import contextlib
import csv
import re
from pathlib import Path
from typing import cast  # typing is loaded already: numpy imports it

import numpy as np

from ..errors import did_you_mean
from ..runtime.datasets import DataError, RawData, check_bytes, class_labels
from ..summary import human_bytes

TABLE_SUFFIXES = (".csv", ".parquet")
MISSING = ("error", "mean", "median", "constant", "drop")
ENCODINGS = ("one_hot", "index")
SCALE_RATIO = 1000.0  # raw features whose stds differ more than this: a note suggests per_feature
_BLOCK = 1 << 20  # bytes of CSV pyarrow parses at a time
_BATCH = 1 << 16  # rows of a Parquet row group read at a time
_NUMBER = r"^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)$"
_FIX = "set train.data.missing to mean, median, constant (with fill) or drop"


def _arrow():
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:
        raise DataError("reading a .csv or .parquet table needs pyarrow: pip install 'netspec[data]'") from None
    return pa, pc


def is_table(source: str) -> bool:
    return str(source).lower().endswith(TABLE_SUFFIXES)


def options(data_cfg: dict | None) -> dict:
    """The table keys of train.data, with their defaults (a config from before they existed too)."""
    d = data_cfg or {}
    return {
        "label_column": d.get("label_column") or "label",
        "feature_columns": d.get("feature_columns"),
        "drop_columns": list(d.get("drop_columns") or []),
        "encode": d.get("encode"),
        "missing": d.get("missing") or "error",
        "fill": d.get("fill"),
    }


class _Lines:
    """Line numbers of a table's rows, worked out on first use (error messages only)."""

    def __init__(self, table: Table):
        self.table = table

    def __bool__(self) -> bool:
        return True

    def __len__(self) -> int:
        return self.table.rows

    def __getitem__(self, i: int) -> int:
        return self.table.line(i)


def _lines(table: Table) -> list[int]:
    """class_labels' `rows`: it only tests their truth and indexes them, which _Lines does lazily."""
    return cast("list[int]", _Lines(table))


class Table:
    """A file's columns (pyarrow ChunkedArrays) by name, and the file row each row came from."""

    def __init__(self, path: Path, names: list[str], columns: dict, rows: int, kind: str):
        self.path, self.names, self.columns, self.rows, self.kind = path, names, columns, rows, kind
        self.kept: np.ndarray | None = None  # file rows (0-based) of the rows left after `drop`
        self._lines: list[int] | None = None
        self._numbers: dict[str, np.ndarray | None] = {}

    def line(self, i: int) -> int:
        """Row i's line as a spreadsheet shows it (.csv: the header is line 1), or its row from 1."""
        r = int(self.kept[i]) if self.kept is not None else int(i)
        if self.kind != "csv":
            return r + 1
        if self._lines is None:
            self._lines = _csv_lines(self.path)
        return self._lines[r] if r < len(self._lines) else r + 2

    def where(self, i: int) -> str:
        return f"{self.path}:{self.line(i)}" if self.kind == "csv" else f"{self.path}: row {self.line(i)}"

    def keep(self, mask: np.ndarray) -> None:
        pa, _ = _arrow()
        rows = np.flatnonzero(mask)
        self.columns = {n: c.take(pa.array(rows)) for n, c in self.columns.items()}
        self.kept = rows if self.kept is None else self.kept[rows]
        self.rows = len(rows)
        self._numbers = {}

    def require(self, name: str, what: str) -> None:
        if name not in self.columns:
            hint = did_you_mean(name, self.names) or ""
            raise DataError(f"{self.path} has no column {name!r} ({what}); its columns: {self.names}. {hint}".strip())

    def numbers(self, name: str) -> np.ndarray | None:
        """A column as float64 (NaN where a cell is missing), or None when it holds text."""
        if name not in self._numbers:
            pa, pc = _arrow()
            col = self.columns[name]
            t = col.type
            if pa.types.is_dictionary(t):
                col, t = col.cast(t.value_type), t.value_type
            out = None
            if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_null(t):
                out = col.cast(pa.float64())
            elif pa.types.is_string(t) or pa.types.is_large_string(t):
                try:  # a column typed text after a conversion error, whose cells may still all be numbers
                    out = pc.cast(col, pa.float64())
                except pa.ArrowInvalid:
                    out = None
            else:
                raise DataError(f"{self.path}: column {name!r} holds {t}; a table's columns hold numbers or text")
            self._numbers[name] = None if out is None else out.to_numpy().astype(np.float64, copy=False)
        return self._numbers[name]

    def strings(self, name: str):
        """A column as pyarrow strings (numbers as text), nulls kept."""
        pa, _ = _arrow()
        col = self.columns[name]
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
            raise DataError(f"{self.path}: column {name!r} is not UTF-8 text")
        return col if pa.types.is_string(col.type) else col.cast(pa.string())

    def first_text(self, name: str) -> tuple[int, str]:
        """The first cell of a text column that is no number: (row, value)."""
        _, pc = _arrow()
        col = self.strings(name)
        ok = pc.match_substring_regex(col, _NUMBER, ignore_case=True).fill_null(True).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(~ok)
        i = int(bad[0]) if len(bad) else 0
        value = col[i].as_py()
        return i, "" if value is None else value

    def not_a_number(self, name: str, why: str = "") -> DataError:
        i, value = self.first_text(name)
        return DataError(f"{self.where(i)}: column {name!r}: {value[:40]!r} is not a number{why}")


def _csv_lines(path: Path) -> list[int]:
    """The line of each non-empty row after the header, by the csv module (errors only)."""
    out: list[int] = []
    # Only to name a line in an error message: a file the csv module cannot walk to the end keeps
    # the lines found so far, and Table.line() falls back to row + 2 beyond them.
    with contextlib.suppress(OSError, csv.Error), open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
        for r in reader:
            if r:
                out.append(reader.line_num)
    return out[1:]


def _bad_row(path: Path) -> str | None:
    """`file:line: N values, the header has M` for the first ragged row the csv module finds."""
    width = None
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
            reader = csv.reader(f)
            for r in reader:
                if r and width is None:
                    width = len(r)
                elif r and len(r) != width:
                    return f"{path}:{reader.line_num}: {len(r)} values, the header has {width}"
    except (OSError, csv.Error):
        return None
    return None


def _unique(path: Path, names: list[str]) -> None:
    seen = set()
    for n in names:
        if n in seen:
            raise DataError(f"{path}: column {n!r} appears twice in the header; columns are chosen by name")
        seen.add(n)


class _Retype(Exception):
    """A column pyarrow typed as numbers from the first block meets text in a later one: its name,
    so that _read_csv reads the file again with that column as text."""


def _read_csv(path: Path, limit: int | None, types: dict) -> Table:
    pa, _ = _arrow()
    import pyarrow.csv as pcsv

    read = pcsv.ReadOptions(block_size=_BLOCK)
    convert = pcsv.ConvertOptions(strings_can_be_null=True, column_types=types)
    names: list[str] = []
    try:
        with pcsv.open_csv(path, read_options=read, convert_options=convert) as reader:
            names = list(reader.schema.names)
            _unique(path, names)
            batches, held = [], 0
            for batch in reader:
                batches.append(batch)
                held += batch.nbytes
                check_bytes(f"{path}: {human_bytes(held)} of columns read so far", held, limit)
            table = pa.Table.from_batches(batches, schema=reader.schema)
    except pa.ArrowInvalid as exc:
        msg = str(exc)
        m = re.search(r"In CSV column #(\d+): CSV conversion error", msg)
        if m and int(m.group(1)) < len(names) and names[int(m.group(1))] not in types:
            raise _Retype(names[int(m.group(1))]) from None  # read it again as text
        if "Empty CSV file" in msg:
            raise DataError(f"{path} has no data rows (a header row and at least one sample are needed)") from None
        if "Expected" in msg and "columns" in msg:
            raise DataError(_bad_row(path) or f"cannot read {path} as CSV: {msg}") from None
        raise DataError(f"cannot read {path} as CSV: {msg[:300]}") from None
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path} as CSV: {str(exc)[:300]}") from None
    cols = {n: table.column(i) for i, n in enumerate(names)}
    return Table(path, names, cols, table.num_rows, "csv")


def _read_parquet(path: Path, limit: int | None, wanted) -> Table:
    pa, _ = _arrow()
    import pyarrow.parquet as pq

    try:
        f = pq.ParquetFile(path)
        names = list(f.schema_arrow.names)
        _unique(path, names)
        keep = None if wanted is None else wanted(names)
        cols = [n for n in names if keep is None or n in keep]
        size = sum(f.metadata.row_group(i).total_byte_size for i in range(f.metadata.num_row_groups))
        size = int(size * len(cols) / max(len(names), 1))
        check_bytes(f"{path}: {human_bytes(size)} of columns (uncompressed)", size, limit)
        batches = list(f.iter_batches(batch_size=_BATCH, columns=cols))
        table = (
            pa.Table.from_batches(batches, schema=pa.schema([f.schema_arrow.field(n) for n in cols]))
            if batches
            else None
        )
    except DataError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"cannot read {path} as Parquet: {str(exc)[:300]}") from None
    if table is None:
        raise DataError(f"{path} has no rows")
    return Table(path, names, {n: table.column(n) for n in cols}, table.num_rows, "parquet")


def read_table(path: Path, limit: int | None = None, wanted=None) -> Table:
    """A .csv or .parquet file's columns; `wanted(names)`: the columns a .parquet needs read."""
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    if path.suffix.lower() == ".parquet":
        return _read_parquet(path, limit, wanted)
    types: dict = {}
    while True:
        try:
            table = _read_csv(path, limit, types)
            break
        except _Retype as exc:
            pa, _ = _arrow()
            types[exc.args[0]] = pa.string()
    if table.rows == 0:
        raise DataError(f"{path} has no data rows (a header row and at least one sample are needed)")
    return table


# ----------------------------------------------------------------------------- training data


def _features(table: Table, opt: dict) -> list[str]:
    label = opt["label_column"]
    for name in opt["drop_columns"]:
        table.require(name, "drop_columns")
    if opt["feature_columns"]:
        for name in opt["feature_columns"]:
            table.require(name, "feature_columns")
        if label in opt["feature_columns"]:
            raise DataError(f"{table.path}: the label column {label!r} cannot also be a feature column")
        return list(opt["feature_columns"])
    feats = [n for n in table.names if n != label and n not in opt["drop_columns"]]
    if not feats:
        raise DataError(f"{table.path} has no feature columns besides the label {label!r}")
    return feats


def _kinds(table: Table, feats: list[str], encode) -> dict[str, str]:
    """number, one_hot or index for each feature column; text without an encoding is an error."""
    per = encode if isinstance(encode, dict) else {}
    for name in per:
        table.require(name, "encode")
        if name not in feats:
            raise DataError(f"{table.path}: encode names {name!r}, which is not a feature column")
    kinds = {}
    for name in feats:
        text = table.numbers(name) is None
        kind = per.get(name) or (encode if isinstance(encode, str) and text else None)
        if kind is None and text:
            raise table.not_a_number(
                name, f"; a text column needs an encoding: train.data.encode: {{{name}: one_hot}} (or index)"
            )
        kinds[name] = kind or "number"
    return kinds


def _missing(table: Table, feats: list[str], kinds: dict) -> np.ndarray:
    """(rows, features) True where a feature cell is missing."""
    _, pc = _arrow()
    out = np.zeros((table.rows, len(feats)), dtype=bool)
    for j, name in enumerate(feats):
        if kinds[name] == "number":
            nums = table.numbers(name)
            assert nums is not None  # _kinds makes a column "number" only when numbers() reads it
            out[:, j] = np.isnan(nums)
        else:
            out[:, j] = pc.is_null(table.strings(name)).to_numpy(zero_copy_only=False)
    return out


def _text_labels(table: Table, label: str, what: str) -> tuple[np.ndarray, list[str]]:
    """A text label column's class indices (names in sorted order), by pyarrow's dictionary
    encoding: one pass over the column, not numpy's sort of 5 million strings (~10x slower). A
    missing label goes to class_labels, whose message names its lines."""
    _, pc = _arrow()
    col = table.strings(label)
    enc = pc.dictionary_encode(col.fill_null("")).combine_chunks()
    names = [str(v) for v in enc.dictionary.to_pylist()]
    if any(n.strip() == "" or n.strip().lower() == "nan" for n in names):
        text = col.fill_null("").to_numpy(zero_copy_only=False).astype(str)
        codes, classes = class_labels(text, what, _lines(table))
        assert classes is not None  # text labels always come back with their names
        return codes, classes
    order = sorted(range(len(names)), key=names.__getitem__)
    lut = np.empty(len(names), dtype=np.int64)
    lut[order] = np.arange(len(names))
    return lut[enc.indices.to_numpy(zero_copy_only=False)], [names[i] for i in order]


def _labels(table: Table, label: str, task: str) -> tuple[np.ndarray, list[str] | None]:
    what = f"{table.path}: {label}"
    nums = table.numbers(label)
    if task == "classification":
        if nums is not None:
            return class_labels(nums, what, _lines(table))
        return _text_labels(table, label, what)
    if nums is None:
        raise table.not_a_number(label, " (a regression target)")
    if np.isnan(nums).any():
        i = int(np.flatnonzero(np.isnan(nums))[0])
        raise DataError(f"{table.where(i)}: column {label!r} is empty (a missing regression target)")
    return nums.astype(np.float32), None


def load_table(path: Path, task: str, data_cfg: dict | None = None, limit: int | None = None) -> RawData:
    """RawData whose x is the row numbers and whose `table` encodes them once prepare() has split
    them (categories and fill values from the training split)."""
    opt = options(data_cfg)
    if opt["missing"] not in MISSING:
        raise DataError(f"missing: {opt['missing']!r} is not one of {', '.join(MISSING)}")

    def wanted(names):
        keep = opt["feature_columns"] or [n for n in names if n not in opt["drop_columns"]]
        return {*keep, opt["label_column"]}

    table = read_table(path, limit, wanted)
    label = opt["label_column"]
    if label not in table.columns:
        hint = did_you_mean(label, table.names) or ""
        raise DataError(f"{path} has no label column {label!r}; columns: {table.names}. {hint}".strip())
    feats = _features(table, opt)
    kinds = _kinds(table, feats, opt["encode"])
    missing = _missing(table, feats, kinds)
    notes = []
    if opt["missing"] == "drop":
        lab = table.numbers(label)
        lab_missing = np.isnan(lab) if lab is not None else table.strings(label).is_null().to_numpy(False)
        gone = missing.any(axis=1) | lab_missing
        if gone.all():
            raise DataError(f"{path}: every row has a missing value; missing: drop leaves none")
        if gone.any():
            table.keep(~gone)
            missing = missing[~gone]
            notes.append(f"{path.name}: {int(gone.sum())} rows with a missing value dropped (missing: drop)")
    elif opt["missing"] == "error" and missing.any():
        i = int(np.flatnonzero(missing.any(axis=1))[0])
        j = int(np.flatnonzero(missing[i])[0])
        raise DataError(f"{table.where(i)}: column {feats[j]!r} is empty (a missing value); {_FIX}")
    if opt["missing"] == "constant" and opt["fill"] is None:
        raise DataError("missing: constant needs a value: train.data.fill")
    y, classes = _labels(table, label, task)
    source = TableSource(table, feats, kinds, opt)
    width = source.width()
    notes.insert(0, f"{path}: {table.rows} rows, {len(feats)} feature columns ({width} features once encoded)")
    return RawData(np.arange(table.rows, dtype=np.int64), y, classes=classes, notes=notes, table=source)


class TableSource:
    """What prepare() encodes after the split: `fit` on the training rows, `transform` any rows."""

    def __init__(self, table: Table, feats: list[str], kinds: dict[str, str], opt: dict):
        self.table, self.feats, self.kinds, self.opt = table, feats, kinds, opt

    def width(self) -> int:
        """Features once encoded, with the whole file's categories (the training split's may lack some)."""
        _, pc = _arrow()
        n = 0
        for name in self.feats:
            if self.kinds[name] == "one_hot":
                n += len(pc.unique(self.table.strings(name).drop_null()))
            else:
                n += 1
        return n

    def fit(self, rows: np.ndarray) -> dict:
        """Categories and fill values of the training rows: the state a run stores (JSON)."""
        pa, pc = _arrow()
        policy, fill = self.opt["missing"], self.opt["fill"]
        columns, features = [], []
        for name in self.feats:
            kind = self.kinds[name]
            if kind == "number":
                nums = self.table.numbers(name)
                assert nums is not None  # _kinds makes a column "number" only when numbers() reads it
                v = nums[rows]
                v = v[~np.isnan(v)]
                value = None
                if policy in ("mean", "median"):
                    value = float(np.mean(v) if policy == "mean" else np.median(v)) if v.size else 0.0
                elif policy == "constant":
                    if isinstance(fill, str):
                        raise DataError(f"fill {fill!r} is not a number, and column {name!r} holds numbers")
                    value = float(fill)
                columns.append({"name": name, "kind": "number", "fill": value})
                features.append(name)
                continue
            col = self.table.strings(name).take(pa.array(rows))
            seen: dict[str, int] = {}
            if len(col):
                counts = pc.value_counts(col.drop_null())
                seen = {str(c["values"]): int(c["counts"]) for c in counts.to_pylist()}
            nums = self.table.numbers(name)
            if nums is not None:  # a number column declared categorical: categories in numeric order
                order = {s: float(s) if re.fullmatch(_NUMBER, s, re.I) else float("inf") for s in seen}
                cats = sorted(seen, key=lambda s: (order[s], s))
            else:
                cats = sorted(seen)
            value = None
            if policy in ("mean", "median") and seen:
                value = max(cats, key=lambda c: seen[c])  # the most frequent (first in order on a tie)
            elif policy == "constant":
                value = str(fill)
            columns.append({"name": name, "kind": kind, "categories": cats, "fill": value})
            features += [f"{name}={c}" for c in cats] if kind == "one_hot" else [name]
        return {
            "label_column": self.opt["label_column"],
            "missing": policy,
            "columns": columns,
            "features": features,
        }


def transform(table: Table, state: dict, rows: np.ndarray | None = None) -> np.ndarray:
    """The encoded (rows, features) float64 matrix of `table` by the run's `state`, each column
    found by name; a missing cell without a fill value is an error naming its row and column."""
    pa, pc = _arrow()
    n = table.rows if rows is None else len(rows)
    take = None if rows is None else pa.array(np.asarray(rows, dtype=np.int64))
    # One matrix filled column by column (joining per-column pieces held every value twice).
    widths = [len(c["categories"]) if c["kind"] == "one_hot" else 1 for c in state["columns"]]
    out = np.zeros((n, sum(widths)))
    at = 0
    for c, width in zip(state["columns"], widths, strict=True):
        name = c["name"]
        table.require(name, "a feature column of the run")
        if c["kind"] == "number":
            v = table.numbers(name)
            if v is None:
                raise table.not_a_number(name, " (the run read this column as numbers)")
            v = v if rows is None else v[rows]
            miss = np.isnan(v)
            if miss.any():
                if c["fill"] is None:
                    i = int(np.flatnonzero(miss)[0])
                    raise DataError(
                        f"{table.where(i if rows is None else int(rows[i]))}: column {name!r} is empty "
                        f"(a missing value); {_FIX}"
                    )
                v = np.where(miss, c["fill"], v)
            out[:, at] = v
            at += width
            continue
        s = table.strings(name)
        s = s if take is None else s.take(take)
        miss = pc.is_null(s).to_numpy(zero_copy_only=False) if n else np.zeros(0, bool)
        if miss.any():
            if c["fill"] is None:
                i = int(np.flatnonzero(miss)[0])
                raise DataError(
                    f"{table.where(i if rows is None else int(rows[i]))}: column {name!r} is empty "
                    f"(a missing value); {_FIX}"
                )
            s = s.fill_null(c["fill"])
        cats = c["categories"]
        codes = (
            pc.index_in(s, value_set=pa.array(cats, pa.string())).fill_null(-1).to_numpy(zero_copy_only=False)
            if n
            else np.zeros(0, np.int64)
        ).astype(np.int64)
        if c["kind"] == "index":
            out[:, at] = np.where(codes < 0, len(cats), codes)
        else:
            known = np.flatnonzero(codes >= 0)
            out[known, at + codes[known]] = 1.0
        at += width
    return out


def encode_splits(source: TableSource, splits: dict, state: dict | None, standardize: str, notes: list) -> dict:
    """prepare()'s step for a table: the row numbers of each split -> encoded features, fitted on
    the training split unless the run's `state` is given. Returns the state."""
    fitted = state is None
    if fitted:
        state = source.fit(splits["train"])
    for s, rows in splits.items():
        splits[s] = transform(source.table, state, rows)
    cols = state["columns"]
    enc = [f"{c['name']} ({c['kind']}, {len(c['categories'])} categories)" for c in cols if c["kind"] != "number"]
    if enc:
        notes.append("encoded: " + ", ".join(enc))
    if fitted and source.opt["missing"] in ("mean", "median", "constant"):
        policy = source.opt["missing"]
        notes.append(
            f"missing values: filled with {'fill' if policy == 'constant' else 'the training split' + chr(39) + 's ' + policy}"
        )
    if fitted and standardize == "none":
        _scale_note(splits["train"], cols, notes)
    return state


def _scale_note(x: np.ndarray, cols: list[dict], notes: list) -> None:
    """A warning, once per run, when the raw number columns' scales differ by orders of magnitude."""
    numeric = [j for j, c in enumerate(cols) if c["kind"] == "number"]
    if len(x) < 2 or len(numeric) < 2:
        return
    offsets, k = [], 0
    for c in cols:
        offsets.append(k)
        k += len(c["categories"]) if c["kind"] == "one_hot" else 1
    std = x[:, [offsets[j] for j in numeric]].std(axis=0)
    std = std[np.isfinite(std) & (std > 0)]
    if len(std) >= 2 and std.max() / std.min() > SCALE_RATIO:
        notes.append(
            f"warning: the feature columns' scales differ by a factor of {std.max() / std.min():.3g} "
            f"(std {std.min():.3g} to {std.max():.3g}); set train.data.standardize: per_feature"
        )


# ----------------------------------------------------------------------------- predict and init


def read_features(path: Path, limit: int | None, state: dict | None) -> np.ndarray:
    """The features of a table for `predict`: by the run's column names and encodings (`state`;
    the label column, if present, is ignored), or every column as numbers in file order (a run
    trained on other data)."""
    table = read_table(path, limit)
    if state is not None:
        return transform(table, state)
    out = np.empty((table.rows, len(table.names)), dtype=np.float64)
    for j, name in enumerate(table.names):
        v = table.numbers(name)
        if v is None:
            raise table.not_a_number(name)
        out[:, j] = v
    return out


def describe(path: Path, label_column: str, task: str, limit: int | None = None) -> dict:
    """What `netspec init` writes for a table: the feature count once encoded (text columns
    one-hot, with the whole file's categories), the labels, the text columns and whether any
    feature cell is missing. A column of numbers with a few text cells is more likely a typo than
    categories: it is refused as train would refuse it, naming the first such cell."""
    _, pc = _arrow()
    table = read_table(path, limit)
    for name in table.names:
        if name == label_column or table.numbers(name) is not None:
            continue
        col = table.strings(name).drop_null()
        numeric = pc.sum(pc.match_substring_regex(col, _NUMBER, ignore_case=True).cast("int64")).as_py() or 0
        if numeric * 2 >= len(col):
            raise table.not_a_number(name, f"; a text column needs an encoding: train.data.encode: {{{name}: one_hot}}")
    opt = options({"label_column": label_column, "encode": "one_hot", "missing": "median"})
    raw = load_table(path, task, opt, limit)
    src = raw.table
    assert isinstance(src, TableSource)  # load_table always sets it
    text = [n for n in src.feats if src.kinds[n] != "number"]
    missing = bool(_missing(src.table, src.feats, src.kinds).any())
    return {"features": src.width(), "y": raw.y, "text": text, "missing": missing, "rows": src.table.rows}
