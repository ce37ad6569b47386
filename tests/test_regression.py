"""Regression on real data (scikit-learn's diabetes set): mse / rmse / mae / r2 from running sums
equal numpy and scikit-learn on the run's own saved model, target standardization (train.data.
standardize_target) in and out of netspec train, train.py, evaluate and predict, predictions named
after the label column, early stopping on val_r2, and `netspec runs --sort best` with mixed tasks."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from netspec.cli import main

SPEC = """netspec: 1
name: {name}
inputs:
  x: {{shape: [10]}}
layers:
  - linear: 32
  - relu
  - linear: 1
train:
  task: regression
  data: {{source: {source}, standardize: global, standardize_target: {std}{data_extra}}}
  optimizer: {{name: adam, lr: {lr}}}
  batch_size: 32
  epochs: {epochs}
{extra}"""


def cli(*args) -> int:
    return main([str(a) for a in args])


def spec_file(folder: Path, name: str, *, std=True, epochs=40, lr=0.01, source=None, data_extra="", extra=""):
    """A spec whose data path is absolute: the run's copy reads the same file."""
    std, source = str(std).lower(), source or folder / "diabetes.npz"
    text = SPEC.format(name=name, source=source, std=std, epochs=epochs, lr=lr, data_extra=data_extra, extra=extra)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory):
    """The data as .npz and .csv, and three runs: targets standardized, raw, and early stopping on val_r2."""
    from sklearn.datasets import load_diabetes

    d = tmp_path_factory.mktemp("diabetes")
    x, y = load_diabetes(return_X_y=True)
    np.savez(d / "diabetes.npz", x=x.astype(np.float32), y=y.astype(np.float32))
    with open(d / "diabetes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"f{i}" for i in range(10)] + ["progression"])
        w.writerows([*map(float, row), float(t)] for row, t in zip(x, y, strict=True))
    runs = d / "runs"
    specs = {
        "std": spec_file(d, "std", epochs=12),
        "raw": spec_file(d, "raw", std=False, epochs=40, lr=0.05),  # raw targets (mean 152) need a larger step
        "early": spec_file(d, "early", epochs=60, extra="  early_stopping: {monitor: val_r2, patience: 3}\n"),
    }
    for name, spec in specs.items():
        assert cli("train", spec, "-o", runs / name, "--quiet") == 0, name
    return d, runs, specs


def results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def oracle(run: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(predictions in the targets' units, targets) of `split`, from weights.pt run by hand."""
    from netspec.runtime.session import load_data, load_run

    s, model, info = load_run(run)
    prep = load_data(s, Path(info["base"]), stats=info["standardize"])
    # In the run's batches (the spec's batch_size, 32): on some CPUs (AMD EPYC here) a float32
    # matmul's summation order, so its last bits, depends on the batch size, and the metrics are
    # compared to 1e-12.
    x = torch.as_tensor(prep.x[split])
    with torch.no_grad():
        out = torch.cat([model(x[i : i + 32]) for i in range(0, len(x), 32)]).double().numpy()
    stats = info["standardize_target"]
    if stats is not None:
        out = out * np.array(stats["std"]) + np.array(stats["mean"])
    return out.reshape(len(out), -1), prep.y[split].astype(np.float64).reshape(len(out), -1)


def numpy_metrics(pred: np.ndarray, y: np.ndarray) -> dict:
    err = pred - y
    sse = float((err**2).sum())
    sst = float(((y - y.mean(0)) ** 2).sum())
    return {
        "mae": float(np.abs(err).mean()),
        "mse": sse / err.size,
        "rmse": float(np.sqrt(sse / err.size)),
        "r2": 1 - sse / sst,
    }


@pytest.mark.parametrize("name", ["std", "raw"])
def test_metrics_equal_numpy_and_sklearn_on_the_saved_model(diabetes, name):
    from sklearn.metrics import mean_absolute_error, r2_score

    _, runs, _ = diabetes
    res = results(runs / name)
    for split in ("val", "test"):
        pred, y = oracle(runs / name, split)
        want = numpy_metrics(pred, y)
        got = res[split]
        assert set(got) == {"loss", "mae", "rmse", "r2"}  # the regression default
        for k in ("mae", "rmse", "r2"):
            assert got[k] == pytest.approx(want[k], rel=1e-12, abs=1e-12), (split, k)
        assert got["r2"] == pytest.approx(r2_score(y, pred), rel=1e-12)
        assert got["mae"] == pytest.approx(mean_absolute_error(y, pred), rel=1e-12)
    # Metrics in the targets' own units, either way (diabetes' targets run 25..346, std 77).
    assert 30 < res["test"]["mae"] < 80 and 40 < res["test"]["rmse"] < 90


def test_standardized_targets_fit_well_and_are_stored_with_the_run(diabetes):
    d, runs, _ = diabetes
    res, info = results(runs / "std"), json.loads((runs / "std" / "data.json").read_text())
    assert res["test"]["r2"] > 0.3, res["test"]
    stats = info["standardize_target"]
    y = np.load(d / "diabetes.npz")["y"]
    assert len(stats["mean"]) == len(stats["std"]) == 1 and 100 < stats["mean"][0] < 200 and stats["std"][0] > 50
    assert abs(stats["mean"][0] - y.mean()) < 15  # the training split's, close to the whole set's
    # the loss is the training objective, on standardized targets: about 1 - r2, not thousands
    assert res["test"]["loss"] < 2 and json.loads((runs / "raw" / "results.json").read_text())["test"]["loss"] > 1000
    assert json.loads((runs / "raw" / "data.json").read_text())["standardize_target"] is None
    # evaluate reads the stored statistics and reports the run's own numbers
    from netspec.runtime.session import evaluate

    again = evaluate(runs / "std")
    for k in ("loss", "mae", "rmse", "r2"):
        assert again[k] == pytest.approx(res["test"][k], rel=1e-12)


def test_train_py_standardizes_the_targets_as_netspec_train_does(diabetes, tmp_path):
    """train.py computes the statistics from data.npz's y_train: the same weights, the same results."""
    _, runs, specs = diabetes
    build = tmp_path / "build"
    assert cli("build", specs["std"], "-o", build) == 0
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.run(
        [sys.executable, str(build / "train.py"), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    a = torch.load(runs / "std" / "weights.pt", weights_only=True)
    b = torch.load(tmp_path / "run" / "weights.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert results(tmp_path / "run")["test"] == results(runs / "std")["test"]


def test_early_stopping_on_val_r2_keeps_the_highest(diabetes):
    _, runs, _ = diabetes
    res = results(runs / "early")
    records = [json.loads(ln) for ln in (runs / "early" / "metrics.jsonl").read_text().splitlines()]
    r2 = [r["val_r2"] for r in records]
    assert res["monitor"] == "val_r2" and res["best"] == max(r2)
    assert res["best_epoch"] == 1 + r2.index(max(r2))
    if res["stopped_early"]:  # restored: the final val r2 is the best epoch's
        assert res["val"]["r2"] == pytest.approx(res["best"], rel=1e-12)
        assert len(records) == res["best_epoch"] + 4


def test_predict_names_the_label_column_and_writes_numbers(diabetes, tmp_path):
    d, _, _ = diabetes
    spec = spec_file(tmp_path, "fromcsv", epochs=3, source=d / "diabetes.csv", data_extra=", label_column: progression")
    run = tmp_path / "run"
    assert cli("train", spec, "-o", run, "--quiet") == 0
    features = tmp_path / "features.npz"
    x = np.load(d / "diabetes.npz")["x"][:5]
    np.savez(features, x=x)
    assert cli("predict", run, "--input", features, "-o", tmp_path / "p.csv") == 0
    assert cli("predict", run, "--input", features, "-o", tmp_path / "p.json") == 0
    rows = list(csv.reader((tmp_path / "p.csv").open()))
    assert rows[0] == ["progression"] and len(rows) == 6
    items = json.loads((tmp_path / "p.json").read_text())
    assert [list(i) for i in items] == [["progression"]] * 5
    assert all(type(i["progression"]) is float for i in items)
    # the model's outputs, un-standardized with the run's statistics (to the 6 digits written)
    from netspec.runtime.session import load_run

    _, model, info = load_run(run)
    with torch.no_grad():
        xs = (x - info["standardize"]["mean"]) / info["standardize"]["std"]
        out = model(torch.as_tensor(xs, dtype=torch.float32)).double().numpy()[:, 0]
    want = out * info["standardize_target"]["std"][0] + info["standardize_target"]["mean"][0]
    assert [i["progression"] for i in items] == pytest.approx(want, rel=1e-5)
    assert [float(r[0]) for r in rows[1:]] == [i["progression"] for i in items]


def test_several_targets_and_classification_probabilities(tmp_path):
    base = """netspec: 1
name: {name}
inputs:
  x: {{shape: [6]}}
layers:
  - linear: 3
train:
  task: {task}
  data: {{source: synthetic, samples: 48}}
  epochs: 1
"""
    x = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    for name, task in (("reg3", "regression"), ("cls3", "classification")):
        spec = tmp_path / f"{name}.yaml"
        spec.write_text(base.format(name=name, task=task))
        assert cli("train", spec, "-o", tmp_path / name, "--quiet") == 0
        assert cli("predict", tmp_path / name, "--input", tmp_path / "x.npz", "-o", tmp_path / f"{name}.json") == 0
    reg = json.loads((tmp_path / "reg3.json").read_text())
    assert list(reg[0]) == ["y_0", "y_1", "y_2"] and all(type(v) is float for i in reg for v in i.values())
    cls = json.loads((tmp_path / "cls3.json").read_text())
    assert type(cls[0]["prediction"]) is str
    probs = [v for k, v in cls[0].items() if k.startswith("p_")]
    assert len(probs) == 3 and all(type(p) is float for p in probs) and sum(probs) == pytest.approx(1, abs=1e-5)


def test_runs_sort_best_ranks_within_a_task_and_metric(diabetes, tmp_path, capsys):
    """A regressor's val_loss is never ranked against a classifier's: each group best first."""
    _, runs, _ = diabetes
    cls = tmp_path / "cls.yaml"
    cls.write_text(
        "netspec: 1\nname: cls\ninputs:\n  x: {shape: [6]}\nlayers:\n  - linear: 3\n"
        "train:\n  data: {source: synthetic, samples: 48}\n  epochs: 1\n"
    )
    for i, epochs in enumerate((1, 3)):
        assert cli("train", cls, "-o", runs / f"cls{i}", "--quiet", "--set", f"train.epochs={epochs}") == 0
    capsys.readouterr()
    assert cli("runs", runs, "-f", "json", "--sort", "best") == 0
    rows = json.loads(capsys.readouterr().out)
    groups = [(r["task"], r["monitor"], r["standardized_target"]) for r in rows if r["best"] is not None]
    # each group is contiguous
    seen = []
    for g in groups:
        if not seen or seen[-1] != g:
            assert g not in seen, groups
            seen.append(g)
    assert ("classification", "val_loss", False) in seen and ("regression", "val_r2", True) in seen
    for g in seen:
        values = [r["best"] for r in rows if (r["task"], r["monitor"], r["standardized_target"]) == g]
        assert values == sorted(values, reverse=g[1].endswith("r2")), g  # best first
    # standardized and raw losses are not comparable either: separate groups
    assert ("regression", "val_loss", False) in seen and ("regression", "val_loss", True) in seen
