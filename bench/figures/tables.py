"""Reading a large table (`python -m bench --only tables`): netspec's data path on a ~1 GB CSV and
the same table as Parquet, against pandas and pyarrow reading it into the same arrays (a float32
feature matrix and int64 labels), each a whole process: wall time and peak RSS, interleaved.

The files are generated once (20 float columns and a string label, seeded) into a cache folder
under the temporary directory and kept; `--quick` uses a tenth of the size.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ..timing import Stats, interleave, python_cmd, run_process
from . import Context, Row, failed_row

CACHE = Path(tempfile.gettempdir()) / "netspec-bench-tables"
FEATURES = 20
ROWS_FULL = 5_000_000  # ~1.0 GB of CSV
READERS = ("netspec", "pandas", "pyarrow")


def make_files(rows: int) -> tuple[Path, Path]:
    """CSV and Parquet of the same seeded table, written in chunks (never whole in memory)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    CACHE.mkdir(parents=True, exist_ok=True)
    csv, parquet = CACHE / f"table-{rows}.csv", CACHE / f"table-{rows}.parquet"
    if csv.exists() and parquet.exists():
        return csv, parquet
    rng = np.random.default_rng(0)
    names = [f"f{j}" for j in range(FEATURES)]
    schema = pa.schema([*(pa.field(n, pa.float64()) for n in names), pa.field("label", pa.string())])
    tmp_csv, tmp_pq = csv.with_suffix(".csv.tmp"), parquet.with_suffix(".parquet.tmp")
    with pcsv.CSVWriter(tmp_csv, schema) as cw, pq.ParquetWriter(tmp_pq, schema) as pw:
        for start in range(0, rows, 500_000):
            n = min(500_000, rows - start)
            cols = [pa.array(np.round(rng.normal(size=n), 6)) for _ in names]
            labels = pa.array(np.array(["cat", "dog", "owl"])[rng.integers(0, 3, n)])
            batch = pa.record_batch([*cols, labels], schema=schema)
            cw.write_batch(batch)
            pw.write_batch(batch)
    tmp_csv.rename(csv)
    tmp_pq.rename(parquet)
    return csv, parquet


def measure(ctx: Context, path: Path) -> list[Row]:
    rss: dict[str, list[float]] = {r: [] for r in READERS}
    shapes: dict[str, set] = {r: set() for r in READERS}

    def reader(who: str):
        def run() -> float:
            p = run_process(python_cmd("-m", "bench.workers.table_read", who, str(path)), timeout=1200)
            p.check(f"{who} reading {path.name}")
            rss[who].append(p.max_rss_bytes / 2**20)
            shapes[who].add(p.stdout.strip().splitlines()[-1])
            return p.wall_s

        return run

    kind = path.suffix.lstrip(".").upper()
    size = (
        f"{path.stat().st_size / 2**30:.2f} GiB"
        if path.stat().st_size > 2**29
        else f"{path.stat().st_size / 2**20:.0f} MiB"
    )
    ctx.log(f"  read {kind} ({size})")
    times = interleave({r: reader(r) for r in READERS}, ctx.runs(3), warmup=0, log=ctx.log)
    same = len({s for v in shapes.values() for s in v}) == 1
    facts = json.loads(next(iter(shapes["netspec"])))
    note = f"{facts['rows']:,} rows x {facts['features']} float features + a string label ({size}); same arrays read by all: {'yes' if same else 'NO'}"
    rows = []
    for base in ("pandas", "pyarrow"):
        for what, ours, theirs in (
            ("time", times["netspec"], times[base]),
            ("peak RSS", Stats(tuple(rss["netspec"])), Stats(tuple(rss[base]))),
        ):
            rows.append(
                Row(
                    "tables",
                    f"read a {kind} table ({size}), {what}, vs {base}",
                    "s" if what == "time" else "MiB",
                    ours,
                    theirs,
                    f"{base} reading it into the same float32 features and int64 labels, whole process",
                    ours.median / theirs.median,
                    "netspec / baseline (cost)",
                    "",
                    checks={"the same arrays": same},
                    notes=[note],
                )
            )
    return rows


def run(ctx: Context) -> list[Row]:
    try:
        csv, parquet = make_files(ROWS_FULL // (10 if ctx.quick else 1))
    except Exception as exc:
        return [failed_row("tables", "read a table", exc)]
    rows = []
    for path in (csv, parquet):
        try:
            rows += measure(ctx, path)
        except Exception as exc:
            rows.append(failed_row("tables", f"read {path.name}", exc))
    return rows
