"""Tables (.csv, .parquet) through pyarrow: scikit-learn's wine written with a text label column
`cls`, a categorical column derived from a feature's tertile and one missing cell; columns by
name, encodings, missing-value policies, per-feature standardization, predict by header name, and
`netspec init -t mlp` reaching the accuracy wine allows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
sk = pytest.importorskip("sklearn.datasets")

from netspec.data.load import load_source  # noqa: E402
from netspec.data.tables import load_table, options, read_table  # noqa: E402
from netspec.runtime.datasets import DataError  # noqa: E402
from netspec.runtime.prepare import prepare  # noqa: E402

from .test_train import run_cli  # noqa: E402

MISSING_ROW, MISSING_COL = 10, 3  # one empty cell: row 10 (line 12), alcalinity_of_ash


def wine_arrays():
    d = sk.load_wine()
    names = [n.replace("/", "_") for n in d.feature_names]
    cut = np.quantile(d.data[:, 0], [1 / 3, 2 / 3])
    level = np.where(d.data[:, 0] < cut[0], "low", np.where(d.data[:, 0] < cut[1], "mid", "high"))
    return d.data, d.target, names, level


def write_wine(folder: Path, missing: bool = True, order=None) -> Path:
    x, y, names, level = wine_arrays()
    header = [*names, "alc_level", "cls"]
    rows = []
    for i in range(len(x)):
        row = [repr(float(v)) for v in x[i]] + [str(level[i]), f"class_{y[i]}"]
        if missing and i == MISSING_ROW:
            row[MISSING_COL] = ""
        rows.append(row)
    if order is not None:
        header, rows = [header[j] for j in order], [[r[j] for j in order] for r in rows]
    path = folder / "wine.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def wine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wine")
    write_wine(folder)
    x, y, names, level = wine_arrays()
    cols = {n: x[:, j] for j, n in enumerate(names)}
    cols["alc_level"], cols["cls"] = level, np.array([f"class_{v}" for v in y])
    table = pa.table(cols)
    table = table.set_column(
        MISSING_COL,
        names[MISSING_COL],
        pa.array([None if i == MISSING_ROW else v for i, v in enumerate(x[:, MISSING_COL])], pa.float64()),
    )
    pq.write_table(table, folder / "wine.parquet", row_group_size=50)
    return folder


CFG = {"label_column": "cls", "encode": {"alc_level": "one_hot"}, "missing": "median"}


def cfg(**data):
    base = {"stratify": True, "test_fraction": 0.2, "val_fraction": 0.1, "layout": "auto", "standardize": "none"}
    return {"task": "classification", "seed": 0, "data": {**base, **CFG, **data}}


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_the_numbers_read_are_the_sklearn_arrays(wine, suffix):
    x, y, names, _ = wine_arrays()
    table = read_table(wine / f"wine.{suffix}")
    assert table.names[: len(names)] == names
    for j, n in enumerate(names):
        got = table.numbers(n)
        want = x[:, j].copy()
        if j == MISSING_COL:
            assert np.isnan(got[MISSING_ROW])
            want[MISSING_ROW] = np.nan
        np.testing.assert_array_equal(got, want)  # exact: pyarrow parses repr() floats exactly
    raw = load_table(wine / f"wine.{suffix}", "classification", CFG)
    assert raw.classes == ["class_0", "class_1", "class_2"] and list(raw.y) == list(y)


def test_columns_by_name_and_a_misspelt_one(wine):
    c = {**CFG, "encode": None, "feature_columns": ["proline", "alcohol"]}
    raw = load_table(wine / "wine.csv", "classification", c)
    prep = prepare(raw, cfg(**c), (2,), "float32", (3,), 0)
    x, _, names, _ = wine_arrays()
    assert prep.table["features"] == ["proline", "alcohol"]
    all_x = np.concatenate([prep.x[s] for s in ("train", "val", "test")])
    assert sorted(map(tuple, all_x)) == sorted(map(tuple, x[:, [12, 0]].astype(np.float32)))
    with pytest.raises(
        DataError, match=r"no column 'prolin' \(feature_columns\); its columns: .*did you mean 'proline'"
    ):
        load_table(wine / "wine.csv", "classification", {**CFG, "encode": None, "feature_columns": ["prolin"]})
    with pytest.raises(DataError, match=r"no label column 'class'.*did you mean 'cls'"):
        load_table(wine / "wine.csv", "classification", {"label_column": "class"})
    raw = load_table(
        wine / "wine.csv", "classification", {**CFG, "encode": None, "drop_columns": ["alc_level", "proline"]}
    )
    assert raw.table.feats == names[:12]


def test_a_text_column_without_an_encoding_names_it_and_the_option(wine):
    with pytest.raises(DataError) as err:
        load_table(wine / "wine.csv", "classification", {"label_column": "cls", "missing": "median"})
    msg = str(err.value)
    assert msg.startswith(f"{wine / 'wine.csv'}:2: column 'alc_level': 'high' is not a number"), msg
    assert "train.data.encode: {alc_level: one_hot}" in msg


def test_one_hot_and_index_encodings(wine):
    _, _, _, level = wine_arrays()
    for kind in ("one_hot", "index"):
        c = {**CFG, "encode": {"alc_level": kind}, "feature_columns": ["alc_level"]}
        raw = load_table(wine / "wine.csv", "classification", c)
        prep = prepare(raw, cfg(**c), (3 if kind == "one_hot" else 1,), "float32", (3,), 0, stats=None)
        col = prep.table["columns"][0]
        assert col["categories"] == ["high", "low", "mid"]
        rows = np.concatenate([raw.table.table.kept if raw.table.table.kept is not None else np.arange(len(level))])
        x = prep.x["train"]
        if kind == "one_hot":
            assert prep.table["features"] == ["alc_level=high", "alc_level=low", "alc_level=mid"]
            assert set(x.sum(axis=1)) == {1.0}
        else:
            assert set(np.unique(x)) <= {0.0, 1.0, 2.0}
        assert len(rows) == 178
    # a category the training split lacks: an all-zero one-hot row, index K
    from netspec.data.tables import transform

    t = read_table(write_csv(wine / "new.csv", "alc_level,cls\nhuge,class_0\nlow,class_1\n"))
    state = {"columns": [{"name": "alc_level", "kind": "one_hot", "categories": ["high", "low", "mid"], "fill": None}]}
    np.testing.assert_array_equal(transform(t, state), [[0, 0, 0], [0, 1, 0]])
    state["columns"][0]["kind"] = "index"
    np.testing.assert_array_equal(transform(t, state), [[3], [1]])


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_missing_value_policies(wine):
    x, _, names, _ = wine_arrays()
    col = names[MISSING_COL]
    with pytest.raises(DataError) as err:
        load_table(wine / "wine.csv", "classification", {**CFG, "missing": "error"})
    assert str(err.value).startswith(f"{wine / 'wine.csv'}:{MISSING_ROW + 2}: column {col!r} is empty"), str(err.value)
    with pytest.raises(DataError, match=rf"wine.parquet: row {MISSING_ROW + 1}: column {col!r} is empty"):
        load_table(wine / "wine.parquet", "classification", {**CFG, "missing": "error"})
    raw = load_table(wine / "wine.csv", "classification", {**CFG, "missing": "drop"})
    assert raw.table.table.rows == 177 and len(raw.y) == 177
    for policy, fill in (("mean", None), ("median", None), ("constant", -7.0)):
        c = {**CFG, "missing": policy, "fill": fill}
        raw = load_table(wine / "wine.csv", "classification", c)
        prep = prepare(raw, cfg(**c), (16,), "float32", (3,), 0)
        state = next(s for s in prep.table["columns"] if s["name"] == col)
        train_rows = _train_rows(raw, c)
        vals = np.delete(x[train_rows, MISSING_COL], np.flatnonzero(train_rows == MISSING_ROW))
        want = {"mean": np.mean(vals), "median": np.median(vals), "constant": -7.0}[policy]
        assert state["fill"] == pytest.approx(want)


def _train_rows(raw, c):
    """The file rows of the training split, by prepare's own split of the row numbers."""
    from netspec.runtime.datasets import RawData

    probe = RawData(raw.x.astype(np.float32)[:, None], raw.y, classes=raw.classes)
    prep = prepare(probe, cfg(**{**c, "standardize": "none"}), (1,), "float32", (3,), 0)
    return prep.x["train"][:, 0].astype(np.int64)


def test_per_feature_statistics_come_from_the_training_split(wine):
    x, _, _, _ = wine_arrays()
    c = {**CFG, "encode": None, "drop_columns": ["alc_level"], "missing": "drop", "standardize": "per_feature"}
    raw = load_table(wine / "wine.csv", "classification", c)
    prep = prepare(raw, cfg(**c), (13,), "float32", (3,), 0)
    rows = raw.table.table.kept[_train_rows(raw, c)]
    tr = x[rows]
    np.testing.assert_allclose(prep.stats["mean"], tr.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(prep.stats["std"], tr.std(axis=0), rtol=1e-12)
    np.testing.assert_allclose(prep.x["train"], ((tr - tr.mean(0)) / tr.std(0)).astype(np.float32), atol=1e-6)


def test_raw_scales_that_differ_by_orders_of_magnitude_warn_once(wine):
    c = {**CFG, "encode": None, "feature_columns": ["proline", "hue"], "missing": "median"}
    raw = load_table(wine / "wine.csv", "classification", c)
    prep = prepare(raw, cfg(**c), (2,), "float32", (3,), 0)
    warns = [n for n in prep.notes if n.startswith("warning:")]
    assert len(warns) == 1 and "per_feature" in warns[0]
    prep = prepare(raw, cfg(**c, standardize="per_feature"), (2,), "float32", (3,), 0)
    assert not [n for n in prep.notes if n.startswith("warning: the feature")]


@pytest.fixture(scope="module")
def wine_run(wine):
    """`netspec init -t mlp --label-column cls` on wine.csv, trained as written."""
    spec = wine / "wine.yaml"
    code, out, err = run_cli("init", spec, "-t", "mlp", "-d", str(wine / "wine.csv"), "--label-column", "cls")
    assert code == 0, err
    code, out, err = run_cli("train", spec, "-o", wine / "run", "-q")
    assert code == 0, out + err
    return wine / "run"


def test_init_mlp_on_wine_reaches_95_percent(wine_run, wine):
    text = (wine / "wine.yaml").read_text()
    assert "label_column: cls" in text and "standardize: per_feature" in text and "alc_level: one_hot" in text
    results = json.loads((wine_run / "results.json").read_text())
    assert results["test"]["accuracy"] >= 0.95, results
    info = json.loads((wine_run / "data.json").read_text())
    assert info["table"]["features"][-3:] == ["alc_level=high", "alc_level=low", "alc_level=mid"]
    assert len(info["standardize"]["mean"]) == 16


def test_predict_matches_columns_by_name(wine_run, wine, tmp_path):
    outs = {}
    order = list(range(15))
    shuffled = [14, 13, *reversed(range(13))]  # label first, columns reversed
    for name, ordering in (("same", order), ("shuffled", shuffled), ("nolabel", order[:14])):
        folder = tmp_path / name
        folder.mkdir()
        path = write_wine(folder, order=ordering)
        out = folder / "pred.csv"
        code, o, err = run_cli("predict", wine_run, "--input", path, "--output", out)
        assert code == 0, o + err
        outs[name] = out.read_text()
    assert outs["same"] == outs["shuffled"] == outs["nolabel"]
    (tmp_path / "cut").mkdir()
    path = write_wine(tmp_path / "cut", order=[j for j in order if j != 5])
    code, o, err = run_cli("predict", wine_run, "--input", path, "--output", tmp_path / "p.csv")
    assert code == 1 and "no column 'total_phenols'" in err, err


def test_evaluate_applies_the_stored_encoding_and_statistics(wine_run, wine, tmp_path):
    from netspec.runtime.session import evaluate

    on_run = evaluate(wine_run)
    results = json.loads((wine_run / "results.json").read_text())
    assert on_run["accuracy"] == pytest.approx(results["test"]["accuracy"])
    folder = tmp_path / "shuffled"
    folder.mkdir()
    path = write_wine(folder, order=[14, *reversed(range(14))])
    whole = evaluate(wine_run, str(path))
    assert whole["samples"] == 178 and whole["accuracy"] >= 0.95


def test_resolve_refuses_table_keys_that_would_be_ignored():
    from netspec.compiler import compile_text

    head = "netspec: 1\nname: m\ninputs:\n  x: {shape: [4]}\nlayers:\n  - linear: 3\ntrain:\n  data: "
    for data, words in (
        ("{source: d.npz, feature_columns: [a]}", "feature_columns has no effect with source d.npz"),
        ("{source: d.csv, fill: 0}", "fill has no effect without missing: constant"),
        ("{source: d.csv, missing: constant}", "missing: constant needs a value"),
        ("{source: d.csv, feature_columns: [a], drop_columns: [b]}", "drop_columns has no effect"),
        ("{source: d.csv, encode: {label: one_hot}}", "encode names 'label'"),
        ("{source: ./photos, standardize: per_feature}", "per_feature applies to data held in memory"),
    ):
        res = compile_text(head + data + "\n", "m.yaml")
        assert not res.ok and any(words in d.message for d in res.diagnostics), (data, res.diagnostics)
    assert compile_text(head + "{source: d.parquet, missing: constant, fill: 0, encode: one_hot}\n", "m.yaml").ok


def test_check_reads_no_table_and_imports_no_pyarrow(wine):
    import subprocess
    import sys

    code = (
        "import sys; from netspec.cli import run; sys.argv = ['netspec', 'check', sys.argv[1]];\n"
        "try:\n run()\nexcept SystemExit: pass\n"
        "assert 'pyarrow' not in sys.modules and 'numpy' not in sys.modules, 'imported'"
    )
    spec = wine / "check.yaml"
    spec.write_text(
        "netspec: 1\nname: m\ninputs:\n  x: {shape: [16]}\nlayers:\n  - linear: 3\n"
        "train:\n  data: {source: wine.parquet, label_column: cls, encode: one_hot, standardize: per_feature}\n"
    )
    res = subprocess.run([sys.executable, "-c", code, str(spec)], capture_output=True, text=True)
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr


def test_load_source_reads_parquet_with_the_data_config(wine):
    raw = load_source("wine.parquet", task="classification", base=wine, data={**options(CFG)})
    assert raw.table is not None and raw.table.table.rows == 178
