"""`netspec train --resume` without repeating --set, refusals that name what changed, the command
printed to continue; a run that failed before its first checkpoint never blocks the same command
again; `train.device: gpu`.

Tiny runs (test_train's MLP: 8 steps per epoch, 3 epochs) in-process, and one pair of real
`python -m netspec train` processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from netspec.compiler import compile_text, spec_hash
from netspec.runtime import session
from netspec.spec.diff import ABSENT, changes, show_change
from netspec.spec.loader import load_text

from .test_train import MLP, assert_same_run, run_cli, train_ok, write

LR = "train.optimizer.lr=0.02"


@pytest.fixture(scope="module")
def straight_lr(tmp_path_factory):
    """The MLP trained without a stop, with --set LR."""
    d = tmp_path_factory.mktemp("straight_lr")
    spec = write(d, MLP)
    train_ok(spec, d / "run", "-q", "--set", LR)
    return d / "run"


def refused(*args) -> str:
    code, out, err = run_cli("train", *args)
    assert code == 1, out + err
    assert "Traceback" not in out + err
    return err


def command(spec: Path, run: Path, *extra: str) -> str:
    return " ".join(["continue with: netspec train", str(spec), "-o", str(run), "--resume", *extra]) + "\n"


# ----------------------------------------------------------------------------- 1. --resume and --set


def test_resume_applies_the_runs_own_set_values(straight_lr, tmp_path):
    """Started with --set, stopped twice, resumed without it: bit-identical to the straight run,
    and the stop message gives the whole command, with no --set to repeat."""
    spec, run = write(tmp_path, MLP), tmp_path / "run"
    out = train_ok(spec, run, "--set", LR, "--max-steps", 3)
    assert command(spec, run) in out
    assert json.loads((run / "data.json").read_text())["overrides"] == [LR]
    out = train_ok(spec, run, "--resume", "--max-steps", 6)
    assert "resumed at epoch 1, step 3 of 8" in out and command(spec, run) in out
    out = train_ok(spec, run, "--resume", "--set", LR)  # the same value again: the same spec
    assert "done:" in out
    assert_same_run(straight_lr, run)


def test_resume_with_another_set_value_is_refused_naming_it(tmp_path):
    spec, run = write(tmp_path, MLP), tmp_path / "run"
    train_ok(spec, run, "--set", LR, "--max-steps", 2, "-q")
    files = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    err = refused(spec, "-o", run, "--resume", "--set", "train.optimizer.lr=0.03")
    assert "cannot resume" in err and "spec changed" in err
    assert "train.optimizer.lr: 0.02 -> 0.03 (--set)" in err
    assert f"its own --set {LR}" in err and "--init-from" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == files  # the run is untouched
    train_ok(spec, run, "--resume", "-q")


def test_resume_may_move_to_another_device_and_says_so_in_the_command(tmp_path):
    """train.device is not part of what a run computes: a resume may set it, and the command to
    continue then repeats that --set (the run keeps only the values it was started with)."""
    spec, run = write(tmp_path, MLP), tmp_path / "run"
    train_ok(spec, run, "--set", LR, "--max-steps", 2, "-q")
    out = train_ok(spec, run, "--resume", "--set", "train.device=cpu", "--max-steps", 2)
    assert command(spec, run, "--set", "train.device=cpu") in out


def test_resume_of_an_edited_spec_file_names_the_change(tmp_path):
    spec, run = write(tmp_path, MLP), tmp_path / "run"
    train_ok(spec, run, "--max-steps", 2, "-q")
    write(tmp_path, MLP.replace("linear: 3", "linear: 4"))
    err = refused(spec, "-o", run, "--resume")
    assert "layers[3].linear: 3 -> 4 (the spec file)" in err
    assert f"restore {spec} (the run's copy is {run / 'spec.yaml'})" in err
    write(tmp_path, MLP)
    train_ok(spec, run, "--resume", "-q")


def test_resume_of_the_default_run_dir_finds_its_set_values(tmp_path, monkeypatch):
    """Without -o the run is runs/<name>: its name comes from the spec before the run's --set."""
    monkeypatch.chdir(tmp_path)
    spec = write(tmp_path, MLP)
    code, out, err = run_cli("train", spec, "--set", LR, "--max-steps", 2)
    assert code == 0, out + err
    assert command(spec, Path("runs/tiny_mlp")) in out
    code, out, err = run_cli("train", spec, "--resume", "-q")
    assert code == 0, out + err


def test_a_stored_set_that_no_longer_applies_says_where_it_came_from(tmp_path):
    spec, run = write(tmp_path, MLP), tmp_path / "run"
    train_ok(spec, run, "--set", "layers[3].linear=5", "--max-steps", 2, "-q")
    write(tmp_path, MLP.replace("  - dropout: 0.3\n  - linear: 3\n", ""))
    err = refused(spec, "-o", run, "--resume")
    assert "layers[3]" in err and "--resume applied the run's own --set 'layers[3].linear=5'" in err


def test_a_python_m_netspec_resume_needs_no_set(tmp_path):
    """The same, as real processes: `python -m netspec train ... --set`, stopped, then `--resume`."""
    spec, run = write(tmp_path, MLP), tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}

    def netspec(*args):
        cmd = [sys.executable, "-m", "netspec", "train", str(spec), "-o", str(run), *map(str, args)]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)

    proc = netspec("--set", LR, "--max-steps", 2)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert command(spec, run) in proc.stdout
    proc = netspec("--resume", "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (run / "weights.pt").exists()


# ----------------------------------------------------------------------------- 2. failed starts


def test_a_missing_gpu_leaves_nothing_and_the_rerun_needs_no_force(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spec, run = write(tmp_path, MLP.replace("  seed: 3\n", "  seed: 3\n  device: cuda\n")), tmp_path / "run"
    err = refused(spec, "-o", run)
    assert "no CUDA device is available" in err
    assert not run.exists()  # refused before the run directory (or its lock) was made
    train_ok(spec, run, "--set", "train.device=cpu", "-q")
    assert (run / "weights.pt").exists()


def test_a_run_that_failed_before_its_first_checkpoint_is_replaced(tmp_path):
    """--init-from a file that is no checkpoint fails inside the loop, after the run's files are
    written: status.json says failed, and the same command without it starts over."""
    spec, run = write(tmp_path, MLP), tmp_path / "run"
    junk = write(tmp_path, "not a checkpoint", "junk.pt")
    err = refused(spec, "-o", run, "--init-from", junk)
    assert "--init-from" in err
    assert json.loads((run / "status.json").read_text())["status"] == "failed"
    assert not (run / "checkpoints").exists()
    err = refused(spec, "-o", run, "--resume")
    assert "nothing to resume" in err and "failed before its first checkpoint" in err
    code, out, err = run_cli("train", spec, "-o", run, "-q")
    assert code == 0, out + err
    assert f"{run}: replacing its run, which failed before its first checkpoint (nothing to resume)\n" == err
    assert json.loads((run / "status.json").read_text())["status"] == "finished"


def test_a_run_with_a_checkpoint_still_needs_resume_or_force(tmp_path):
    """Failed, but after a checkpoint: there is something to resume, so nothing is replaced."""
    spec, run = write(tmp_path, MLP), tmp_path / "run"
    train_ok(spec, run, "--max-steps", 2, "-q")
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "status": "failed"}))
    assert "already holds a run" in refused(spec, "-o", run)
    assert (run / "checkpoints" / "last.pt").exists()


# ----------------------------------------------------------------------------- 3. device: gpu


def test_device_gpu_is_cuda():
    res = compile_text(MLP.replace("  seed: 3\n", "  seed: 3\n  device: gpu\n"))
    assert res.ok, [d.message for d in res.diagnostics]
    assert res.train["device"] == "cuda"


def test_device_typo_still_gets_a_hint(tmp_path):
    spec = write(tmp_path, MLP)
    code, out, err = run_cli("check", spec, "--set", "train.device=cuad")
    assert code == 1 and "did you mean 'cuda'" in out + err


# ----------------------------------------------------------------------------- units


def test_changes_name_each_key_path():
    old = {"train": {"optimizer": {"name": "adam", "lr": 0.01}, "epochs": 3}, "layers": [{"linear": 3}]}
    new = {"train": {"optimizer": {"name": "adam", "lr": 0.02}, "seed": 1}, "layers": [{"linear": 3.0}]}
    got = [show_change(*c) for c in changes(old, new)]
    assert got == [
        "train.optimizer.lr: 0.01 -> 0.02",
        "train.epochs: 3 -> (not set)",
        "train.seed: (not set) -> 1",
        "layers[0].linear: 3 -> 3.0",  # another type is another value, as for the spec hash
    ]
    assert changes(old, old) == [] and changes([1], [1, 2]) == [((), [1], [1, 2])]
    assert changes(ABSENT, 1) == [((), ABSENT, 1)]


def test_unhashed_keys_are_those_spec_hash_leaves_out():
    base = load_text(MLP).data
    for path in session.UNHASHED:
        data = json.loads(json.dumps(base))
        node = data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = "anything"
        assert spec_hash(data) == spec_hash(base), path
    assert session.spec_changes(base, {**base, "description": "x"}, []) == []
    changed = json.loads(json.dumps(base))
    changed["train"]["epochs"] = 4
    assert spec_hash(changed) != spec_hash(base)
    assert session.spec_changes(base, changed, ["train.epochs=4"]) == ["train.epochs: 3 -> 4 (--set)"]


def test_run_overrides_of_a_run_without_them(tmp_path):
    assert session.run_overrides(tmp_path) == []
    (tmp_path / "data.json").write_text("{not json")
    assert session.run_overrides(tmp_path) == []
    (tmp_path / "data.json").write_text('{"overrides": ["a=1", 2]}')
    assert session.run_overrides(tmp_path) == ["a=1"]
