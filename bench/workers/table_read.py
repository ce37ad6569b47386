"""Read a table into a float32 feature matrix and int64 labels, as training needs it:

    python -m bench.workers.table_read netspec|pandas|pyarrow FILE

netspec: its own data path (data/load.load_source, which reads .csv and .parquet through
pyarrow, then the encoding that prepare() applies, fitted on every row here). pandas: read_csv / read_parquet, then the label column's codes and the features as one
float32 array. pyarrow: pyarrow.csv / pyarrow.parquet, then the same arrays. Prints the shape read.
"""

import json
import sys
from pathlib import Path

import numpy as np


def by_pandas(path: Path):
    import pandas as pd

    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    y = pd.Categorical(df.pop("label")).codes.astype(np.int64)
    return df.to_numpy(dtype=np.float32), y


def by_pyarrow(path: Path):
    import pyarrow.compute as pc

    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    else:
        import pyarrow.csv as pcsv

        table = pcsv.read_csv(path)
    y = pc.dictionary_encode(table.column("label")).combine_chunks().indices.to_numpy().astype(np.int64)
    names = [n for n in table.column_names if n != "label"]
    x = np.empty((table.num_rows, len(names)), dtype=np.float32)
    for j, n in enumerate(names):
        x[:, j] = table.column(n).to_numpy()
    return x, y


def by_netspec(path: Path):
    from netspec.data.load import load_source
    from netspec.data.tables import transform

    raw = load_source(str(path), task="classification", base=path.parent, label_column="label")
    src, rows = raw.table, np.arange(len(raw.y))  # a table's x holds row numbers; prepare() encodes them
    return transform(src.table, src.fit(rows), rows).astype(np.float32), raw.y


if __name__ == "__main__":
    who, path = sys.argv[1], Path(sys.argv[2])
    x, y = {"netspec": by_netspec, "pandas": by_pandas, "pyarrow": by_pyarrow}[who](path)
    print(json.dumps({"rows": len(y), "features": int(np.shape(x)[1]), "classes": len(np.unique(y))}))
