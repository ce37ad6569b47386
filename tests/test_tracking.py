"""Logs and tracking: TensorBoard scalars (one per epoch, resume without duplicates, a clear error
without the package, train.py without it), `netspec runs` over real tiny runs, and `netspec diff`
of specs and runs checked against the compiler's own counts."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from netspec.cli import main
from netspec.compiler import compile_file, compile_text
from netspec.runtime import loop

from .conftest import ROOT

# 64 synthetic samples -> train 36, val 12, test 16; batch 12: 3 steps per epoch.
SPEC = """netspec: 1
name: track_mlp
inputs:
  x: {shape: [8]}
layers:
  - linear: {out_features: WIDTH, name: hidden}
  - relu
  - linear: {out_features: 3, name: head}
train:
  data: {source: synthetic, samples: 64, val_fraction: 0.25, test_fraction: 0.25}
  batch_size: 12
  epochs: 3
  optimizer: {name: adam, lr: 0.01}
  seed: 1
EXTRA"""
STEPS = 3


def spec_text(width: int = 16, extra: str = "") -> str:
    return SPEC.replace("WIDTH", str(width)).replace("EXTRA", extra)


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def run_cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def train_ok(spec: Path, run: Path, *args) -> None:
    code, out, err = run_cli("train", spec, "-o", run, "-q", *args)
    assert code == 0, out + err


def records(run: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]


def scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of the run's event files as TensorBoard shows it (purged events hidden)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def expected_scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """What the event files must hold, from metrics.jsonl and results.json (float32, as stored)."""
    want: dict[str, list] = {}
    names = {"time": "epoch_time_s"}
    for r in records(run):
        for key, value in r.items():
            if key in ("epoch", "epochs"):
                continue
            split, name = ("val", key[4:]) if key.startswith("val_") else ("train", key)
            want.setdefault(f"{split}/{names.get(name, name)}", []).append((r["epoch"], float(np.float32(value))))
    results = json.loads((run / "results.json").read_text())
    for key, value in results["test"].items():
        if isinstance(value, float):
            want[f"test/{key}"] = [(results["epochs_run"], float(np.float32(value)))]
    return want


# ----------------------------------------------------------------------------- TensorBoard

needs_tensorboard = pytest.mark.skipif(
    importlib.util.find_spec("tensorboard") is None, reason="the tensorboard package is not installed"
)


@needs_tensorboard
def test_tensorboard_one_scalar_per_epoch_matches_metrics(tmp_path):
    spec = write(tmp_path, "spec.yaml", spec_text())
    run = tmp_path / "run"
    train_ok(spec, run, "--log", "tensorboard")
    got = scalars(run)
    assert {"train/loss", "train/accuracy", "val/loss", "val/accuracy", "train/lr", "train/samples_per_s"} <= set(got)
    assert got == expected_scalars(run)
    assert [s for s, _ in got["train/loss"]] == [1, 2, 3]
    # --log changes neither the run's spec nor its train.py: that run logs nothing by itself
    assert "log: []" in (run / "spec.resolved.yaml").read_text()


@needs_tensorboard
def test_tensorboard_resume_after_lost_checkpoint_shows_each_epoch_once(tmp_path):
    """Epoch 2's events are written, then its checkpoint is lost (as a kill between the two would):
    the resumed run writes epoch 2 again, and TensorBoard must show it once (purge_step)."""
    spec = write(tmp_path, "spec.yaml", spec_text(extra="  log: [tensorboard]\n"))
    run = tmp_path / "run"
    train_ok(spec, run, "--max-steps", STEPS)  # epoch 1, checkpoint at its end
    saved = tmp_path / "saved"
    shutil.copytree(run / "checkpoints", saved)
    train_ok(spec, run, "--resume", "--max-steps", STEPS)  # epoch 2 logged
    assert [s for s, _ in scalars(run)["train/loss"]] == [1, 2]
    shutil.rmtree(run / "checkpoints")
    shutil.copytree(saved, run / "checkpoints")  # back to the end of epoch 1
    train_ok(spec, run, "--resume")
    assert len(list((run / "tensorboard").iterdir())) == 3  # one event file per process
    got = scalars(run)
    assert [s for s, _ in got["train/loss"]] == [1, 2, 3]
    assert got == expected_scalars(run)


@needs_tensorboard
def test_force_clears_old_event_files(tmp_path):
    spec = write(tmp_path, "spec.yaml", spec_text(extra="  log: [tensorboard]\n"))
    run = tmp_path / "run"
    train_ok(spec, run, "--max-steps", 1)
    train_ok(spec, run, "--force", "--max-steps", STEPS)
    assert len(list((run / "tensorboard").iterdir())) == 1
    assert [s for s, _ in scalars(run)["train/loss"]] == [1]


@pytest.mark.parametrize("how", ["flag", "spec"])
def test_missing_tensorboard_is_a_clear_error_before_training(tmp_path, monkeypatch, how):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import now fails
    spec = write(tmp_path, "spec.yaml", spec_text(extra="  log: [tensorboard]\n" if how == "spec" else ""))
    code, out, err = run_cli(
        "train", spec, "-o", tmp_path / "run", *(["--log", "tensorboard"] if how == "flag" else [])
    )
    assert code == 1, out + err
    assert "pip install tensorboard" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing was written, nothing trained
    with pytest.raises(loop.TrainError, match="pip install tensorboard"):  # train.py's path too
        loop.tensorboard_writer({"log": ["tensorboard"]})


def test_log_values_are_checked():
    res = compile_text(spec_text(extra="  log: [tensorbord]\n"))
    assert not res.ok and "tensorboard" in res.errors[0].render()
    code, _, err = run_cli("train", "x.yaml", "--log", "wandb")
    assert code == 1 and "is not one of" in err and "tensorboard" in err and "--log" in err


BLOCKED = """
import runpy, sys
sys.modules["tensorboard"] = None
sys.modules["torch.utils.tensorboard"] = None
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_generated_train_py_runs_without_tensorboard(tmp_path):
    spec = write(tmp_path, "spec.yaml", spec_text())
    code, out, err = run_cli("build", spec, "-o", tmp_path / "build")
    assert code == 0, out + err
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    train_py, run = tmp_path / "build" / "train.py", tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED, str(train_py), "--out", str(run)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(records(run)) == 3 and (run / "results.json").exists()
    assert not (run / "tensorboard").exists()


# ----------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """runs/ with a finished run, one stopped by --max-steps, one trained with another lr, a
    corrupt folder, one that claims to run in this (live) process and one whose process is gone."""
    root = tmp_path_factory.mktemp("tracking")
    spec = write(root, "spec.yaml", spec_text())
    runs = root / "runs"
    train_ok(spec, runs / "done")
    train_ok(spec, runs / "group" / "stopped", "--max-steps", STEPS + 1)  # epoch 1 and a step of 2
    train_ok(spec, runs / "lr2", "--set", "train.optimizer.lr=0.02")
    corrupt = runs / "corrupt"
    shutil.copytree(runs / "group" / "stopped", corrupt)
    (corrupt / "data.json").write_text("{not json")
    for name, pid in (("live", os.getpid()), ("killed", _dead_pid())):
        shutil.copytree(runs / "group" / "stopped", runs / name)
        status = {"status": "running", "pid": pid, "host": socket.gethostname(), "wall_s": 1.0}
        (runs / name / "status.json").write_text(json.dumps(status))
    (runs / "not_a_run").mkdir()
    return spec, runs


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def runs_json(folder: Path, *args) -> list[dict]:
    code, out, err = run_cli("runs", folder, "-f", "json", *args)
    assert code == 0, err
    return json.loads(out)


def test_runs_table_reads_status_epochs_and_metrics(runs_dir):
    _, runs = runs_dir
    by = {Path(r["run"]).name: r for r in runs_json(runs)}
    assert set(by) == {"done", "stopped", "lr2", "corrupt", "live", "killed"}
    assert {k: r["status"] for k, r in by.items()} == {
        "done": "finished",
        "lr2": "finished",
        "stopped": "interrupted",
        "corrupt": "corrupt",
        "live": "running",
        "killed": "interrupted",
    }
    done = by["done"]
    results = json.loads((runs / "done" / "results.json").read_text())
    data = json.loads((runs / "done" / "data.json").read_text())
    assert (done["epochs_done"], done["epochs_planned"]) == (3, 3)
    assert (done["monitor"], done["best"], done["best_epoch"]) == (
        results["monitor"],
        results["best"],
        results["best_epoch"],
    )
    assert (done["test_metric"], done["test"]) == ("accuracy", results["test"]["accuracy"])
    assert done["spec_hash"] == data["spec_hash"] and done["name"] == "track_mlp"
    stopped = by["stopped"]
    assert (stopped["epochs_done"], stopped["epochs_planned"], stopped["resumable"]) == (1, 3, True)
    # unfinished: the best monitored value so far, from metrics.jsonl
    assert stopped["best"] == records(runs / "group" / "stopped")[0]["val_loss"]
    assert "data.json" in by["corrupt"]["problems"][0]
    assert "killed" in by["killed"]["error"]


def test_runs_sorting_and_formats(runs_dir):
    _, runs = runs_dir
    ordered = runs_json(runs, "--sort", "epochs")
    epochs = [r["epochs_done"] for r in ordered]
    assert epochs == sorted(epochs) and epochs[-1] == 3
    best = [r["best"] for r in runs_json(runs, "--sort", "best", "-r") if r["best"] is not None]
    assert best == sorted(best, reverse=True) and len(best) >= 3
    code, _, err = run_cli("runs", runs, "--sort", "bset")
    assert code == 1 and "did you mean 'best'" in err
    code, out, _ = run_cli("runs", runs)  # not a terminal: plain text
    header = out.splitlines()[0].split()
    assert header == ["run", "name", "hash", "status", "epochs", "best", "test", "time", "updated"]
    short = json.loads((runs / "done" / "data.json").read_text())["spec_hash"][:8]
    assert short in out and "corrupt: data.json" in out
    code, out, _ = run_cli("runs", runs, "-f", "markdown")
    assert code == 0 and out.startswith("| run | name |") and out.count("| finished |") == 2


def test_runs_of_a_missing_or_empty_folder(tmp_path):
    code, _, err = run_cli("runs", tmp_path / "nope")
    assert code == 1 and "does not exist" in err
    code, out, _ = run_cli("runs", tmp_path)
    assert code == 0 and "no runs under" in out


# ----------------------------------------------------------------------------- diff


def diff_json(a, b, *args) -> dict:
    code, out, err = run_cli("diff", a, b, "-f", "json", *args)
    assert code == 0, err
    return json.loads(out)


def test_diff_of_two_widths_matches_the_compiled_counts(tmp_path):
    a = write(tmp_path, "a.yaml", spec_text(16))
    b = write(tmp_path, "b.yaml", spec_text(40))
    ta, tb = compile_file(a).typed, compile_file(b).typed
    d = diff_json(a, b)
    assert not d["identical"]
    assert d["params"] == {"a": ta.total_params, "b": tb.total_params, "delta": tb.total_params - ta.total_params}
    assert d["macs"]["delta"] == tb.total_macs - ta.total_macs
    assert {(c["path"], c["a"], c["b"]) for c in d["changes"]} == {
        ("layers[hidden].out_features", 16, 40),
        ("layers[head].in_features", 16, 40),
    }
    per_layer = {la["name"]: la for la in d["layers"]}
    for la_a, la_b in zip(ta.layers, tb.layers, strict=True):
        name = la_a.node.name
        if (la_a.params, la_a.out_type) == (la_b.params, la_b.out_type):
            assert name not in per_layer
            continue
        assert per_layer[name]["params"]["delta"] == la_b.params - la_a.params
        assert per_layer[name]["output_shape"] == {"a": list(la_a.out_type.shape), "b": list(la_b.out_type.shape)}
    code, out, _ = run_cli("diff", a, b)
    assert code == 0 and "~ layers[hidden].out_features: 16 -> 40" in out
    assert f"params: {ta.total_params:,} -> {tb.total_params:,} (+{tb.total_params - ta.total_params:,})" in out
    assert run_cli("diff", a, b, "--exit-code")[0] == 3


def test_diff_of_an_added_layer(tmp_path):
    a = write(tmp_path, "a.yaml", spec_text())
    b = write(tmp_path, "b.yaml", spec_text().replace("  - relu\n", "  - relu\n  - dropout: {p: 0.1, name: drop}\n"))
    d = diff_json(a, b)
    added = [c for c in d["changes"] if c["change"] == "added"]
    assert [c["path"] for c in added] == ["layers[drop]"] and added[0]["b"]["op"] == "dropout"
    assert [(la["name"], la["change"]) for la in d["layers"]] == [("drop", "added")]
    assert d["params"]["delta"] == 0


def test_diff_of_identical_specs(tmp_path):
    a = write(tmp_path, "a.yaml", spec_text())
    b = write(
        tmp_path, "b.yaml", "# the same network, written differently\n" + spec_text().replace("lr: 0.01", "lr: 1e-2")
    )
    d = diff_json(a, b)
    assert d["identical"] and d["changes"] == [] and d["layers"] == [] and d["params"]["delta"] == 0
    code, out, _ = run_cli("diff", a, b, "--exit-code")
    assert code == 0 and "no differences" in out


def test_diff_of_two_runs_and_of_a_spec_and_its_run(runs_dir):
    spec, runs = runs_dir
    d = diff_json(runs / "done", runs / "lr2")
    assert [(c["path"], c["a"], c["b"]) for c in d["changes"]] == [("train.optimizer.lr", 0.01, 0.02)]
    assert d["params"]["delta"] == 0 and d["layers"] == []
    assert d["runs"]["a"]["status"] == d["runs"]["b"]["status"] == "finished"
    assert d["runs"]["b"]["test"] == json.loads((runs / "lr2" / "results.json").read_text())["test"]["accuracy"]
    assert diff_json(spec, runs / "done")["identical"]


def test_diff_errors(tmp_path):
    a = write(tmp_path, "a.yaml", spec_text())
    code, _, err = run_cli("diff", a, tmp_path / "missing.yaml")
    assert code == 1 and "does not exist" in err
    code, _, err = run_cli("diff", a, tmp_path)
    assert code == 1 and "not a run directory" in err
    bad = write(tmp_path, "bad.yaml", spec_text().replace("linear: {out_features: 3", "linear: {out_feature: 3"))
    code, _, err = run_cli("diff", a, bad)
    assert code == 1 and "out_feature" in err and "bad.yaml" in err


PROBE = """
import sys
from netspec.cli import main
for args in {calls!r}:
    assert main(args) == 0, args
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
assert not loaded, loaded[:5]
"""


def test_runs_and_diff_never_import_torch(runs_dir):
    spec, runs = runs_dir
    calls = [
        ["runs", str(runs)],
        ["runs", str(runs), "-f", "json", "--sort", "best"],
        ["diff", str(spec), str(ROOT / "specs" / "lenet5.yaml")],
        ["diff", str(runs / "done"), str(runs / "lr2"), "-f", "json"],
    ]
    res = subprocess.run([sys.executable, "-c", PROBE.format(calls=calls)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_metrics_reader_skips_a_torn_last_line_and_counts_damage(tmp_path):
    """One reader for runs and plot: a kill's torn last line is no damage, a bad line before it is,
    and an epoch written again keeps its last record."""
    from netspec.tracking.metrics import read_epochs

    path = tmp_path / "metrics.jsonl"
    path.write_text(
        '{"epoch": 1, "loss": 2.0}\n{"epoch": 2, "loss": 1.5}\n{"epoch": 2, "loss": 1.25}\n{"epoch": 3, "lo'
    )
    found = read_epochs(path)
    assert [r["loss"] for r in found.epochs] == [2.0, 1.25] and found.damaged == 0
    path.write_text('{"epoch": 1, "loss": 2.0}\nnot json\n[1]\n{"epoch": 2, "loss": 1.5}\n')
    found = read_epochs(path)
    assert [r["epoch"] for r in found.epochs] == [1, 2] and found.damaged == 2
    from netspec.tracking.runs import run_info

    (tmp_path / "spec.yaml").write_text("netspec: 1\n")
    assert "metrics.jsonl: 2 unreadable lines" in run_info(tmp_path)["problems"]
