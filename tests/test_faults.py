"""Faults during training lose nothing: Ctrl-C, SIGKILL at random moments, a diverging loss, and
paths in a spec, which must never make netspec write outside the run directory.

The reference and the interrupted runs are real `netspec train` processes with one intra-op thread
(OMP_NUM_THREADS=1: the same arithmetic in every process, and no spinning threads on a busy
two-core machine). In-process runs are compared only with in-process runs. Nothing asserts a timing.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from netspec.runtime import loop
from netspec.spec.train_schema import SECTIONS, TRAIN

from .test_train import MLP, assert_same_run, metrics, run_cli, train_ok, write

NETSPEC = Path(sys.executable).with_name("netspec")
ENV = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
ENV.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")

# 647 training samples in batches of 4: 162 steps per epoch (the last one short), a checkpoint
# every 7 steps, dropout (so the RNG state matters) and a cosine schedule (so the step count does).
FAULTS = """netspec: 1
name: faults_mlp
inputs:
  x: {shape: [8]}
layers:
  - linear: 16
  - relu
  - dropout: 0.3
  - linear: 3
train:
  data: {source: synthetic, samples: 800, val_fraction: 0.1, test_fraction: 0.1}
  batch_size: 4
  epochs: 4
  optimizer: {name: adam, lr: 0.01}
  schedule: {name: cosine, warmup_epochs: 1}
  checkpoint_every_steps: 7
  seed: 3
"""
EPOCHS, STEPS = 4, 162


def netspec_train(*args, timeout=240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(NETSPEC), "train", *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run of FAULTS, as its own `netspec train` process."""
    d = tmp_path_factory.mktemp("faults_ref")
    spec = write(d, FAULTS)
    proc = netspec_train(spec, "-o", d / "run", "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return spec, d / "run"


def epoch_lines(run: Path) -> list[dict]:
    return metrics(run) if (run / "metrics.jsonl").exists() else []


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp")) if folder.is_dir() else []


# ----------------------------------------------------------------------------- 1. Ctrl-C


@pytest.fixture(autouse=True)
def usual_ctrl_c():
    """Started from a shell's `&` or nohup, this process inherits SIGINT ignored, and the loop rightly
    leaves it so; the tests here need the usual Ctrl-C, so they set Python's default handler."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _usual_ctrl_c_in_child():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Python then installs its KeyboardInterrupt handler


def test_ctrl_c_stops_after_the_step_with_a_checkpoint_and_resumes_exactly(reference, tmp_path):
    """A real SIGINT to a `netspec train` process, sent shortly after epoch 1's metrics line: exit 130
    with a checkpoint of exactly the step it stopped after; --resume then ends bit-identical."""
    spec, ref = reference
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [str(NETSPEC), "train", str(spec), "-o", str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
        preexec_fn=_usual_ctrl_c_in_child,
    )
    watchdog = threading.Timer(240, proc.kill)
    watchdog.start()
    try:
        out = ""
        for line in proc.stdout:
            out += line
            if line.startswith(f"epoch   1/{EPOCHS}"):
                time.sleep(0.15)  # most likely into epoch 2 (any moment is right; the asserts say so)
                proc.send_signal(signal.SIGINT)
                break
        out += proc.stdout.read()
        code = proc.wait()
    finally:
        watchdog.cancel()
    assert code == 130, out
    assert "Traceback" not in out
    stop = re.search(r"interrupted: stopped (after step (\d+) of \d+ in epoch (\d+)|at the end of epoch (\d+))", out)
    assert stop, out
    assert f"continue with: netspec train {spec} -o {run} --resume\n" in out  # the whole command
    assert not (run / "weights.pt").exists()
    ckpt, err = loop.load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt is not None, err
    state = ckpt["state"]
    if stop.group(2):  # mid-epoch: the checkpoint is of that very step, not an older one
        assert (state["epoch"] + 1, state["step_in_epoch"]) == (int(stop.group(3)), int(stop.group(2)))
    else:
        assert (state["epoch"], state["step_in_epoch"]) == (int(stop.group(4)), 0)
    assert STEPS <= state["global_step"] < EPOCHS * STEPS
    assert len(epoch_lines(run)) == state["epoch"]
    proc = netspec_train(spec, "-o", run, "--resume")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "resumed at epoch" in proc.stdout
    assert_same_run(ref, run)


def _sigint_on_step(monkeypatch, at: int, times: int) -> None:
    """Send SIGINT to this process from inside the loop, after its `at`-th step (1-based, over the
    whole run): deterministic, unlike a signal from outside. With times=2 a second SIGINT follows
    once the first has been seen."""
    calls = []

    def step(self, i):
        calls.append(i)
        if len(calls) != at:
            return
        os.kill(os.getpid(), signal.SIGINT)
        handler = signal.getsignal(signal.SIGINT).__self__  # the loop's StopOnSigint
        deadline = time.monotonic() + 30
        while not handler.requested and time.monotonic() < deadline:
            time.sleep(0.001)  # Python runs the handler between bytecodes, i.e. here
        assert handler.requested
        if times == 2:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)  # the second SIGINT raises KeyboardInterrupt out of this sleep
            raise AssertionError("the second SIGINT did not stop the run at once")

    monkeypatch.setattr(loop.PlainReporter, "step", step)


@pytest.fixture(scope="module")
def mlp_straight(tmp_path_factory):
    """test_train's MLP (8 steps per epoch, 3 epochs), trained in-process without interruption."""
    d = tmp_path_factory.mktemp("mlp_ref")
    spec = write(d, MLP)
    train_ok(spec, d / "run", "-q")
    return spec, d / "run"


@pytest.mark.parametrize(
    ("at", "where", "stop_state"),
    [
        pytest.param(5, "after step 5 of 8 in epoch 1", (0, 5), id="mid-epoch"),
        pytest.param(8, "at the end of epoch 1", (1, 0), id="last-step-of-an-epoch"),
    ],
)
def test_first_sigint_stops_at_the_end_of_that_step(mlp_straight, tmp_path, monkeypatch, at, where, stop_state):
    spec, ref = mlp_straight
    run = tmp_path / "run"
    before = signal.getsignal(signal.SIGINT)
    _sigint_on_step(monkeypatch, at, times=1)
    code, out, err = run_cli("train", spec, "-o", run)
    assert code == 130, out + err
    assert (
        f"interrupted: stopped {where} (checkpoint written); continue with: netspec train {spec} -o {run} --resume"
        in out
    )
    assert "Traceback" not in out + err
    assert signal.getsignal(signal.SIGINT) is before  # restored on the way out
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["state"]
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == (*stop_state, at)
    assert len(epoch_lines(run)) == stop_state[0]
    monkeypatch.undo()
    train_ok(spec, run, "--resume", "-q")
    assert_same_run(ref, run)


def test_second_sigint_stops_at_once(mlp_straight, tmp_path, monkeypatch):
    spec, _ = mlp_straight
    run = tmp_path / "run"
    before = signal.getsignal(signal.SIGINT)
    _sigint_on_step(monkeypatch, 5, times=2)
    code, out, err = run_cli("train", spec, "-o", run)
    assert code == 130, out + err  # a KeyboardInterrupt (click's Abort), not the AssertionError after the sleep
    assert "stopped" not in out and "Traceback" not in out + err
    assert not (run / "checkpoints" / "last.pt").exists()  # stopped before the step's end: no checkpoint
    assert signal.getsignal(signal.SIGINT) is before


def test_sigint_handler_is_installed_only_while_running_and_restored():
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(RuntimeError), loop.StopOnSigint() as stop:
        assert signal.getsignal(signal.SIGINT) == stop._handler
        raise RuntimeError("an error inside the loop")
    assert signal.getsignal(signal.SIGINT) is before
    with loop.StopOnSigint(enabled=False):  # not asked for: Ctrl-C keeps its default behaviour
        assert signal.getsignal(signal.SIGINT) is before
    term = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # e.g. started with nohup: stays ignored
    try:
        with loop.StopOnSignals() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN and signal.SIGINT not in stop.previous
            assert signal.getsignal(signal.SIGTERM) == stop._handler  # SIGTERM is still caught
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is term
    finally:
        signal.signal(signal.SIGINT, before)
    seen = []

    def in_thread():  # signal handlers can only be set in the main thread: do nothing elsewhere
        with loop.StopOnSigint() as stop:
            seen.append((stop.enabled, signal.getsignal(signal.SIGINT)))

    t = threading.Thread(target=in_thread)
    t.start()
    t.join()
    assert seen == [(False, before)]


# ----------------------------------------------------------------------------- 2. SIGKILL


HARNESS = r'''
"""Runs `netspec train` in forked children and SIGKILLs them as the plan says; prints a JSON log."""

import json, os, re, select, signal, sys, time, traceback
from pathlib import Path

import torch
import torch._inductor  # noqa: F401  what use_deterministic_algorithms imports: seconds, once, here

from netspec.cli import main
import netspec.lower.codegen, netspec.lower.module, netspec.lower.trainsrc, netspec.summary  # noqa: F401

spec, run, plan = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
ckpt = run / "checkpoints"
real_fsync = os.fsync


def slow_fsync(fd):  # widen the window in which a checkpoint's temp file exists, on any filesystem
    time.sleep(0.002)
    real_fsync(fd)


def start(args):
    r, w = os.pipe()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.dup2(w, 1)
        os.dup2(w, 2)
        os.fsync = slow_fsync
        try:
            code = main(args)
        except BaseException:
            traceback.print_exc()
            code = 99
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    os.close(w)
    return pid, r


def read_until(r, pattern, buf=b"", timeout=120.0):
    """Read the child's output until `pattern` matches (or EOF with pattern None); (output, eof)."""
    end = time.monotonic() + timeout
    while pattern is None or not re.search(pattern, buf):
        ready, _, _ = select.select([r], [], [], max(0.0, end - time.monotonic()))
        if not ready:
            raise SystemExit(f"timed out waiting for {pattern!r}; output so far: {buf[-2000:]!r}")
        chunk = os.read(r, 65536)
        if not chunk:
            return buf, True
        buf += chunk
    return buf, False


def temps():
    return sorted(p.name for p in ckpt.glob(".*.tmp")) if ckpt.is_dir() else []


def done_epochs():
    for name in ("last.pt", "prev.pt"):
        try:
            return torch.load(ckpt / name, weights_only=True)["state"]["epoch"]
        except Exception:
            continue
    return 0


log = []
queue = list(plan) + [{"wait": "end"}]
retargets = 0
while queue:
    step = queue.pop(0)
    if (ckpt / "last.pt").exists() or (ckpt / "prev.pt").exists():
        args = ["--resume"]
    elif run.exists() and any(run.iterdir()):
        args = ["--force"]  # killed before its first checkpoint: start again
    else:
        args = []
    epochs_before, temps_before = done_epochs(), set(temps())
    pid, r = start(["train", spec, "-o", str(run), *args])
    rec = {**step, "args": args}
    out, eof = b"", False
    if step["wait"] == "start":  # in start-up: compiling, preparing the data, writing the run files
        time.sleep(step["delay"])
    elif step["wait"] != "end":
        out, eof = read_until(r, rb"params; samples:")  # printed just before fit() starts
        if step["wait"] == "temp":  # the moment a checkpoint's temp file appears
            end = time.monotonic() + 60
            while not temps() and time.monotonic() < end:
                time.sleep(0.0002)
        else:
            if step["wait"] > epochs_before:  # kill in the epoch after this one's metrics line
                out, eof = read_until(r, rb"epoch +%d/" % step["wait"], out)
            time.sleep(step["delay"])
    if step["wait"] != "end" and not eof:
        os.kill(pid, signal.SIGKILL)
    out, _ = read_until(r, None, out, timeout=300)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    rec["killed"] = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    rec["exit"] = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
    rec["temps_left"] = sorted(set(temps()) - temps_before)  # this kill's, not an earlier one's
    rec["last_missing"] = (ckpt / "prev.pt").exists() and not (ckpt / "last.pt").exists()
    text = out.decode(errors="replace")
    rec["resumed"] = next((ln for ln in text.splitlines() if ln.startswith("resumed at")), None)
    rec["warning"] = next((ln for ln in text.splitlines() if ln.startswith("warning:")), None)
    if not rec["killed"]:
        rec["output"] = text[-3000:]
    log.append(rec)
    if step["wait"] == "temp" and rec["killed"] and not rec["temps_left"] and retargets < 5:
        retargets += 1  # the write finished first: try again (a kill all the same)
        queue.insert(0, step)
    if not rec["killed"]:
        break
print(json.dumps(log))
'''


def test_sigkill_at_random_moments_loses_nothing(reference, tmp_path):
    """SIGKILL `netspec train` 15 times and resume after each kill (--force when no checkpoint exists
    yet): the final weights are bit-identical to the uninterrupted run's, and metrics.jsonl has one
    line per epoch, equal but for timings.

    Each attempt is a child forked from one harness process that has imported torch and netspec
    once (a fresh `netspec train` costs seconds of imports); the child runs netspec's own CLI
    `main(["train", ...])`, and the kill is a real SIGKILL. The kill points come from a seeded RNG:
    one in start-up, then 12 random delays (0-150 ms) after fit() starts or after the metrics line
    of epoch 1, 2 or 3 (three each, so the kills spread over the whole run), and two as soon as a
    checkpoint's temp file appears. The children's fsync sleeps 2 ms first, so that window is wide on any filesystem.

    Asserted: the run ends bit-identical after >= 10 kills, spread over >= 3 epochs, and at least
    one kill left a checkpoint's temp file behind, i.e. landed inside a checkpoint write (a targeted
    attempt whose write won the race is retried, up to 5 times; seeing the 2 ms window needs the
    harness to be scheduled within it, very likely but not certain on a saturated machine). Not
    guaranteed: where each random kill lands (timing differs run to run), so particular windows, such
    as the one between moving last.pt to prev.pt and writing the new last.pt, are hit only by chance
    (the log shows which were); those windows are pinned down deterministically by
    test_a_kill_between_a_checkpoint_and_its_digest_leaves_it_usable and test_train's kill test.
    """
    spec, ref = reference
    run = tmp_path / "run"
    rng = random.Random(1234)
    plan = [{"wait": "start", "delay": round(rng.uniform(0.0, 0.05), 4)}]
    plan += [{"wait": k * EPOCHS // 12, "delay": round(rng.uniform(0.0, 0.15), 4)} for k in range(12)]
    plan.insert(4, {"wait": "temp"})
    plan.insert(11, {"wait": "temp"})
    harness = tmp_path / "harness.py"
    harness.write_text(HARNESS)
    proc = subprocess.run(
        [sys.executable, str(harness), str(spec), str(run), json.dumps(plan)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = json.loads(proc.stdout.strip().splitlines()[-1])
    shown = "\n".join(json.dumps(rec) for rec in log)
    final = log[-1]
    assert not final["killed"] and final["exit"] == 0, shown
    kills = [rec for rec in log if rec["killed"]]
    assert len(kills) >= 10, shown
    assert any(rec["temps_left"] for rec in kills), shown  # at least one kill inside a checkpoint write
    resumed_epochs = {
        int(m.group(1)) for rec in log if (m := re.match(r"resumed at epoch (\d+)", rec["resumed"] or ""))
    }
    assert len(resumed_epochs) >= 3, shown  # the kills were spread over the run
    assert_same_run(ref, run)
    assert len(metrics(run)) == EPOCHS
    assert temp_files(run / "checkpoints") == [] and temp_files(run) == [], shown  # cleaned on resume


class Killed(KeyboardInterrupt):
    """Stands in for SIGKILL at an exact point of a checkpoint write (test_train has the same)."""


@pytest.mark.parametrize(
    "window",
    [
        pytest.param("last-to-prev", id="after-last.pt-became-prev.pt-before-its-digest-followed"),
        pytest.param("best-digest", id="after-a-new-best.pt-before-its-digest"),
    ],
)
def test_a_kill_between_a_checkpoint_and_its_digest_leaves_it_usable(mlp_straight, tmp_path, monkeypatch, window):
    """The exact windows that random kills hit only by chance: neither may leave a good checkpoint
    beside the digest of another file (it would be refused as corrupt)."""
    _, ref = mlp_straight  # checkpoint_every_steps changes no arithmetic: the same final weights
    spec = write(tmp_path, MLP.replace("  seed: 3\n", "  seed: 3\n  checkpoint_every_steps: 3\n"))
    run = tmp_path / "run"
    seen = []
    if window == "last-to-prev":
        real_replace = os.replace

        def replace(src, dst):
            real_replace(src, dst)
            if Path(dst).name == "prev.pt":
                seen.append(src)
                if len(seen) == 3:  # prev.pt and its digest exist by now
                    raise Killed

        monkeypatch.setattr(os, "replace", replace)
    else:
        real_write = loop.atomic_write_text

        def write_text(path, text):
            if str(path).endswith("best.pt.sha256"):
                seen.append(path)
                if len(seen) == 2:  # the second best.pt is written, its digest not yet
                    raise Killed
            real_write(path, text)

        monkeypatch.setattr(loop, "atomic_write_text", write_text)
    code, out, err = run_cli("train", spec, "-o", run, "-q")
    assert code == 130, out + err
    monkeypatch.undo()
    ckpts = run / "checkpoints"
    if window == "last-to-prev":
        assert not (ckpts / "last.pt").exists()
        out = train_ok(spec, run, "--resume")
        assert "resuming from the previous good one (prev.pt)" in out
    else:
        best, problem = loop.load_checkpoint(ckpts / "best.pt")
        assert best is not None, problem
        train_ok(spec, run, "--resume", "-q")
    assert_same_run(ref, run)


# ----------------------------------------------------------------------------- 3. a diverging loss

DIVERGE = """netspec: 1
name: diverge
inputs:
  x: {shape: [8]}
layers:
  - linear: 16
  - relu
  - linear: 1
train:
  task: regression
  data: {source: synthetic, samples: 64, val_fraction: 0, test_fraction: 0.25}
  batch_size: 4
  epochs: 3
  optimizer: {name: sgd, lr: 2, momentum: 0.9}
  checkpoint_every_steps: 2
  seed: 0
"""


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    """lr 2 without grad_clip: the loss overflows within epoch 1 (12 steps). The mid-epoch
    checkpoint due when it has become nan is refused, so last.pt is the last good one."""
    spec = write(tmp_path, DIVERGE)
    run = tmp_path / "run"
    code, out, err = run_cli("train", spec, "-o", run)
    assert code == 1, out + err
    assert "Traceback" not in out + err
    assert re.search(r"the training loss became (nan|inf|-inf)", err), err
    assert "the last good checkpoint is" in err and "Lower the learning rate or add grad_clip" in err
    assert epoch_lines(run) == []
    for name in ("last.pt", "prev.pt"):
        ckpt, problem = loop.load_checkpoint(run / "checkpoints" / name)
        assert ckpt is not None, problem
        for key, t in ckpt["model"].items():
            assert torch.isfinite(t).all(), f"{name}: {key} is not finite"
        assert all(math.isfinite(v) for v in ckpt["partial"] or [])
    # and it was refused, not missed: this run diverges before the end of epoch 1
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["state"]["global_step"] < 12


def test_nan_loss_before_any_checkpoint_says_so(tmp_path):
    spec = write(tmp_path, DIVERGE.replace("  checkpoint_every_steps: 2\n", ""))
    code, out, err = run_cli("train", spec, "-o", tmp_path / "run")
    assert code == 1, out + err
    assert "the training loss became" in err and "in epoch 1" in err
    assert "no checkpoint was written before it" in err
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def test_finite_weights_checks_parameters_and_buffers():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    assert loop.finite_weights(model)
    model[1].running_var[0] = float("inf")
    assert not loop.finite_weights(model)
    model[1].running_var[0] = 1.0
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    assert not loop.finite_weights(model)


# ----------------------------------------------------------------------------- 4. output paths


def listing(root: Path) -> dict[str, int]:
    """Every file and folder under root, with its size and modification time (folders: 0)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else 0
        for p in root.rglob("*")
    }


def test_no_train_key_names_a_path_to_write():
    """The only free-form strings of train: are data.source (read) and data.label_column (a column
    name). A new key that could name an output path must come with a test here."""
    strings = {
        f"{section}.{key}" if section else key
        for section, table in [("", TRAIN), *SECTIONS.items()]
        for key, (schema, _, _) in table.items()
        if schema.get("type") == "string" and "enum" not in schema
    }
    assert strings == {"data.source", "data.label_column"}


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("../../etc/passwd.npz", id="relative-up"),
        pytest.param("/etc/passwd.npz", id="absolute-missing"),
        pytest.param("OUTSIDE/bad.npz", id="absolute-invalid"),
        pytest.param("../outside/bad.csv", id="relative-invalid-csv"),
    ],
)
def test_a_data_path_in_the_spec_is_only_read(tmp_path, source):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "bad.npz").write_bytes(b"not a zip file")
    (outside / "bad.csv").write_text("a,b\n1,2\n")  # no label column
    specdir = tmp_path / "specs"
    specdir.mkdir()
    spec = write(specdir, MLP.replace("source: synthetic", f"source: {source.replace('OUTSIDE', str(outside))}"))
    before = listing(tmp_path)
    code, out, err = run_cli("train", spec, "-o", tmp_path / "work" / "run")
    assert code == 1, out + err
    # a missing file is the spec's error (told before training), a bad one the data's
    assert ("data (" in err or "error[data]: train.data.source: data file" in err) and "Traceback" not in out + err
    assert listing(tmp_path) == before  # nothing written anywhere, the files read are untouched


def test_data_outside_the_spec_folder_is_read_and_only_the_run_dir_is_written(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "d.npz", x=rng.normal(size=(40, 8)).astype("float32"), y=rng.integers(0, 3, 40))
    specdir = tmp_path / "specs"
    specdir.mkdir()
    text = MLP.replace("source: synthetic, samples: 64", "source: ../data/d.npz").replace("epochs: 3", "epochs: 1")
    spec = write(specdir, text)
    before = listing(tmp_path)
    train_ok(spec, tmp_path / "run", "-q")
    after = listing(tmp_path)
    changed = {k for k in after if after[k] != before.get(k)} | (before.keys() - after.keys())
    assert changed and all(k == "run" or k.startswith("run/") for k in changed), sorted(changed)


@pytest.mark.parametrize("name", [".", ".."])
def test_a_model_name_cannot_pick_a_folder_outside_runs(tmp_path, monkeypatch, name):
    """Without -o the run goes to runs/<name>; a name of '.' or '..' would be runs/ itself or the
    folder above it, where --force deletes a run's files. The schema refuses both names."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "weights.pt").write_bytes(b"the user's own file")
    spec = write(tmp_path, MLP.replace("name: tiny_mlp", f'name: "{name}"'))
    monkeypatch.chdir(work)
    before = listing(tmp_path)
    code, out, err = run_cli("train", spec, "--force")
    assert code == 1, out + err
    assert "error[schema]: name: invalid name" in err
    assert listing(tmp_path) == before
