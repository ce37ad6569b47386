"""One `train.data.source` read into a RawData: scikit-learn's digits, a bundled UCR/UEA set, an
.npz file, or a .csv/.parquet table. Above runtime/datasets.py (the array formats) and
data/tables.py (the tables, which report through datasets' DataError), so neither imports the other's
caller.
"""

from __future__ import annotations

from pathlib import Path

from ..runtime.datasets import DataError, RawData, load_digits, load_npz, load_ucr
from .tables import load_table


def load_source(
    source: str,
    *,
    task: str,
    base: Path,
    label_column: str = "label",
    limit: int | None = None,
    data: dict | None = None,
) -> RawData:
    """`limit`: the run's --max-memory; a file's arrays over it are refused before they are read.
    `data`: the train.data config, whose table keys a .csv/.parquet source reads."""
    if source == "digits":
        return load_digits()
    if source.startswith("ucr:"):
        return load_ucr(source[4:])
    path = Path(source)
    if not path.is_absolute():
        path = base / path
    if source.endswith(".npz"):
        return load_npz(path, task, limit)
    if source.lower().endswith((".csv", ".parquet")):
        return load_table(path, task, data or {"label_column": label_column}, limit)
    raise DataError(f"unknown data source {source!r}: use digits, ucr:<Name>, synthetic, or a .npz/.csv/.parquet file")
