"""Scaling out: the same command starts or continues a run (--auto-resume) under torchrun's
restarts; a hung rank is named after train.distributed.timeout, its worker killed and restarted,
and the run ends where an uninterrupted one does; a dead peer is named; SIGTERM to torchrun stops
every rank after one step with one checkpoint; a worker gets SIGTERM when its agent dies; a run moves 1 -> 2 -> 1 processes keeping its global batch and its
sample order; SIGTERM stops a single process with a checkpoint and exit 143.

Real torchrun processes (gloo on the CPU; NCCL with two GPUs or more, train.device being auto)
and real signals, sent by the runs themselves at a chosen step through NETSPEC_FAULT (runtime/loop.py),
so that a run of a second cannot be missed. One intra-op thread per process (the same arithmetic
in every process). torchrun's start-up is most of the time here: the tests share their runs.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from netspec.runtime import loop, session

from .test_train import run_cli, weights, write

TORCHRUN = Path(sys.executable).with_name("torchrun")
pytestmark = [
    pytest.mark.skipif(not TORCHRUN.exists(), reason=f"torchrun is not installed beside {sys.executable}"),
    pytest.mark.skipif(
        not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
        reason="this torch build has no torch.distributed with the gloo backend (needed on the CPU)",
    ),
]

# No batchnorm (its statistics are per process) and no dropout (each rank draws its own masks), so
# that runs on 1 and 2 processes with the same global batch compute the same thing up to rounding.
# 300 training samples in global batches of 8: 38 steps an epoch, the last one of 4.
SPEC = """netspec: 1
name: scale_mlp
inputs:
  x: {shape: [6]}
layers:
  - linear: 16
  - tanh
  - linear: 3
train:
  data: {source: synthetic, samples: 400, val_fraction: 0, test_fraction: 0.25}
  batch_size: 8
  epochs: 2
  optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
  checkpoint_every_steps: 5
  distributed: {timeout: 4}
  seed: 7
"""
STEPS = 38


def env(**extra: str) -> dict:
    out = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "NETSPEC_FAULT")}
    return {**out, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}


# train.device auto: two GPUs or more run the torchrun tests with NCCL; with one, two processes
# cannot share it under NCCL, so they run on the CPU (the device is not part of the spec's hash).
NCCL = torch.cuda.is_available() and torch.cuda.device_count() >= 2
ONE_GPU = ("--set", "train.device=cpu") if torch.cuda.is_available() and not NCCL else ()


def torchrun(spec: Path, run: Path, *args: str, restarts: int = 0, **extra: str) -> subprocess.Popen:
    """The documented form: a standalone (single-node) rendezvous; the agent polls its workers
    every 0.2 s rather than 5 (a faster test, nothing else)."""
    args = (*args, *ONE_GPU)
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", f"--max-restarts={restarts}"]
    cmd += ["--monitor-interval=0.2", "-m", "netspec", "train", str(spec), "-o", str(run), "--auto-resume", *args]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env(**extra), cwd=spec.parent
    )


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)  # to EOF: every process that held the pipe has exited
    return proc.returncode, out


def order(prefix: Path) -> dict[int, set[int]]:
    """Global step -> the samples of its global batch, from every rank's NETSPEC_SAMPLE_TRACE file."""
    steps: dict[int, set[int]] = {}
    for f in prefix.parent.glob(prefix.name + ".*"):
        for line in f.read_text().splitlines():
            step, *idx = map(int, line.split())
            steps.setdefault(step, set()).update(idx)
    return steps


def assert_close_run(a: Path, b: Path, tol: float = 1e-5) -> float:
    """Weights within `tol`; returns the largest difference (printed: pytest -s shows it)."""
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], atol=tol, rtol=tol)
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One process, uninterrupted, with its sample order traced."""
    d = tmp_path_factory.mktemp("scale_ref")
    spec = write(d, SPEC)
    os.environ["NETSPEC_SAMPLE_TRACE"] = str(d / "trace")
    try:
        code, out, err = run_cli("train", spec, "-o", d / "run", "-q")
    finally:
        del os.environ["NETSPEC_SAMPLE_TRACE"]
    assert code == 0, out + err
    steps = order(d / "trace")
    assert sorted(steps) == list(range(2 * STEPS)) and len(steps[STEPS - 1]) == 4
    return spec, d / "run", steps


@pytest.mark.skipif(NCCL, reason="NCCL's watchdog aborts a timed-out process itself, with its own message")
def test_a_hung_rank_is_named_and_the_restarted_run_ends_as_an_uninterrupted_one(reference, tmp_path):
    """torchrun --max-restarts=1 with rank 1 stopped (SIGSTOP) after step 23: rank 0 waits
    train.distributed.timeout (4 s), names rank 1 and exits 1 (not an internal error); the stopped
    rank is killed here (torchrun would wait 30 s for it), the agent runs the same command again,
    the new workers resume from the checkpoint of step 20, and the weights end as the uninterrupted
    run's (2 processes x 4 here, 1 x 8 there: equal up to the all-reduce's rounding)."""
    spec, ref, _ = reference
    run = tmp_path / "run"
    proc = torchrun(spec, run, "--set", "train.batch_size=4", restarts=1, NETSPEC_FAULT="SIGSTOP:1:23")
    assert proc.stdout is not None
    out, pid = "", None
    deadline = time.monotonic() + 120
    try:
        for line in proc.stdout:
            out += line
            hung = re.search(
                r"rank 1 \(pid (\d+) on [^)]*\) did not answer within train\.distributed\.timeout \(4 s\)", line
            )
            if hung:
                pid = int(hung.group(1))
                os.kill(pid, signal.SIGKILL)
                break
            if time.monotonic() > deadline:
                break
        code, rest = finish(proc, timeout=180)
    finally:
        proc.kill()
    out += rest
    assert pid is not None, out
    assert code == 0, out
    assert "internal error" not in out and "bug in netspec" not in out
    assert "resumed at epoch 1, step 20 of 38" in out
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    print(f"restarted 2-process run against the uninterrupted run: max |dw| {assert_close_run(ref, run):.3g}")


def test_a_peer_that_exited_is_named_by_its_pid():
    """What rank 0 says when a collective fails because a peer died: the peer's pid, gathered at
    the start, is gone (a real process, killed)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child.kill()
    child.wait()
    loop.PEERS[:] = [(socket.gethostname(), os.getpid()), (socket.gethostname(), child.pid)]
    try:
        said = session.peer_failure(RuntimeError("[pair.cc:534] Connection closed by peer [127.0.0.1]:1"), 0, 2, 300)
        assert said == (
            f"rank 1 (pid {child.pid}) exited while training; the run can be resumed with the same command "
            "(--auto-resume) from its last checkpoint"
        )
        assert session.peer_failure(ValueError("a bug"), 0, 2, 300) is None  # not a collective's failure
        assert session.peer_failure(RuntimeError("Connection closed by peer"), 0, 1, 300) is None  # one process
    finally:
        loop.PEERS[:] = []


def test_sigterm_to_torchrun_stops_every_rank_at_one_step_and_the_run_moves_between_1_and_2(reference, tmp_path):
    """1 process for 10 steps; then 2 processes (the global batch stays 8: 4 each) until torchrun's
    agent gets SIGTERM after step 30 (a scheduler's preemption; rank 0 sends it): the agent passes it
    on, both workers agree on a step, write one checkpoint of it and exit; then 1 process again to
    the end. The weights end within float tolerance of the uninterrupted run, and every step
    trained the same global batch."""
    spec, ref, ref_order = reference
    run, trace = tmp_path / "run", tmp_path / "trace"
    os.environ["NETSPEC_SAMPLE_TRACE"] = str(trace)
    try:
        code, out, err = run_cli("train", spec, "-o", run, "--auto-resume", "--max-steps", 10)
        assert code == 0, out + err
        assert "continue with: netspec train" in out and "--auto-resume" in out

        start = time.monotonic()
        code, out = finish(torchrun(spec, run, NETSPEC_FAULT="SIGTERM:0:30:parent", NETSPEC_SAMPLE_TRACE=str(trace)))
        took = time.monotonic() - start
        assert code != 0 and "Received 15 death signal" in out, out  # torchrun's own report of the signal
        assert "resumed on 2 processes (the checkpoint's run had 1): the global batch stays 8, 4 per process" in out
        # The agent passes the signal on a few steps after step 30 (how many depends on the machine's load).
        stop = re.search(
            r"preempted \(SIGTERM\): stopped after step (\d+) of 38 in epoch (\d+) \(checkpoint written; all 2", out
        )
        assert stop, out
        ckpt, _ = loop.load_checkpoint(run / "checkpoints" / "last.pt")
        state = ckpt["state"]
        assert (state["epoch"] + 1, state["step_in_epoch"]) == (int(stop.group(2)), int(stop.group(1)))
        assert state["global_step"] > 30 and ckpt["world"] == 2
        assert json.loads((run / "status.json").read_text())["status"] == "interrupted"

        code, out, err = run_cli("train", spec, "-o", run, "--auto-resume", "-q")
        assert code == 0, out + err
    finally:
        del os.environ["NETSPEC_SAMPLE_TRACE"]
    diff = assert_close_run(ref, run)
    assert order(trace) == ref_order
    code, out, err = run_cli("train", spec, "-o", run, "--auto-resume")
    assert code == 0 and out == f"{run}: the run is finished (2 epochs); nothing to do\n", out + err
    print(f"1 -> 2 -> 1 processes against the uninterrupted run: max |dw| {diff:.3g}; torchrun part {took:.1f} s")


def test_a_worker_gets_sigterm_when_its_agent_dies(tmp_path):
    """die_with_parent() under torchrun (TORCHELASTIC_RUN_ID set): a parent process standing in for
    the agent starts a worker that asks for it, the parent is SIGKILLed, and the worker gets SIGTERM
    (which the loop turns into a checkpoint and exit 143) instead of running on unseen."""
    got = tmp_path / "got"
    worker = (
        "import os, signal, time\n"
        "from netspec.runtime.loop import die_with_parent\n"
        f"signal.signal(signal.SIGTERM, lambda *a: (open({str(got)!r}, 'w').write('SIGTERM'), os._exit(0)))\n"
        "die_with_parent()\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    agent = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {worker!r}]).wait()"
    parent = subprocess.Popen(
        [sys.executable, "-c", agent], stdout=subprocess.PIPE, text=True, env=env(TORCHELASTIC_RUN_ID="test")
    )
    assert parent.stdout is not None
    try:
        assert parent.stdout.readline().strip() == "ready"  # the worker writes to the pipe it inherited
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 20
        while not got.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got.exists() and got.read_text() == "SIGTERM"
    finally:
        parent.kill()


def test_sigterm_stops_one_process_with_a_checkpoint_and_exit_143(reference, tmp_path, monkeypatch):
    """A single process sends itself SIGTERM after step 12: exit 143 with a checkpoint of step 12,
    and the same command continues to the uninterrupted run's weights, bit for bit."""
    spec, ref, _ = reference
    run = tmp_path / "run"
    previous = signal.getsignal(signal.SIGTERM)
    monkeypatch.setenv("NETSPEC_FAULT", "SIGTERM:0:12")
    code, out, err = run_cli("train", spec, "-o", run, "--auto-resume")
    assert code == 143, out + err
    assert signal.getsignal(signal.SIGTERM) is previous  # restored on the way out
    assert f"preempted (SIGTERM): stopped after step 12 of {STEPS} in epoch 1 (checkpoint written); continue" in out
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["state"]["global_step"] == 12
    monkeypatch.delenv("NETSPEC_FAULT")
    code, out, err = run_cli("train", spec, "-o", run, "--auto-resume", "-q")
    assert code == 0, out + err
    a, b = weights(ref), weights(run)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_auto_resume_starts_over_a_run_killed_before_its_first_checkpoint(reference, tmp_path):
    spec, _, _ = reference
    run = tmp_path / "run"
    run.mkdir()
    (run / "spec.yaml").write_text(SPEC)
    (run / "status.json").write_text(json.dumps({"status": "running", "pid": 1}))  # a SIGKILLed start
    code, out, err = run_cli("train", spec, "-o", run, "--auto-resume", "--max-steps", 2)
    assert code == 0, out + err
    assert "starting over: its run (running) wrote no checkpoint, so there is nothing to resume" in err
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    code, out, err = run_cli("train", spec, "-o", other, "--auto-resume")
    assert code == 1 and "holds no netspec run" in err and (other / "notes.txt").exists()
    code, out, err = run_cli("train", spec, "-o", run, "--auto-resume", "--resume")
    assert code == 1 and "--auto-resume decides by itself" in err


def test_an_elastic_resume_needs_a_world_size_that_divides_the_global_batch():
    cfg = {"batch_size": 4}
    assert loop.per_process_batch(8, 2, cfg) == 4 and loop.per_process_batch(8, 1, cfg) == 8
    with pytest.raises(loop.TrainError) as e:
        loop.per_process_batch(8, 3, cfg)
    assert "the run's global batch is 8 samples" in str(e.value) and "8 / 3 = 2.667" in str(e.value)
    assert "(1, 2, 4, 8)" in str(e.value)


def test_the_global_batches_do_not_depend_on_the_world_size():
    """Rank r of W takes every W-th sample of the epoch's permutation: global batch b is the same
    set of samples for any W, and only the last one's shares differ in size (or are empty)."""
    n, g = 37, 8
    for world in (1, 2, 4, 8):
        shares = [loop.epoch_order(n, 3, 11, r, world) for r in range(world)]
        bs = g // world
        for b in range(-(-n // g)):
            got = sorted(int(i) for s in shares for i in s[b * bs : (b + 1) * bs])
            want = sorted(int(i) for i in loop.epoch_order(n, 3, 11, 0, 1)[b * g : (b + 1) * g])
            assert got == want, (world, b)
    assert loop.share_weight(4, 2, 8) == 1.0 and loop.share_weight(3, 2, 5) == 1.2 and loop.share_weight(0, 8, 5) == 0
