"""One writer per run or study directory (runtime/lock.py), with real processes: two `netspec train
--force` started together, --force against a live run, a lock left by a SIGKILLed run, two `netspec
tune` on one study; and --force on a run directory whose entries are symlinks, which must delete
only what the run owns."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from netspec.runtime import lock
from netspec.runtime.loop import load_checkpoint

from .test_train import MLP, run_cli, write

NETSPEC = Path(sys.executable).with_name("netspec")
ENV = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
ENV.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")

# Trains until stopped (Ctrl-C or a kill), a checkpoint at the end of each short epoch.
ENDLESS = MLP.replace("epochs: 3", "epochs: 100000")


def _usual_ctrl_c():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a test run from `&` inherits SIGINT ignored


def start(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [str(NETSPEC), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
        preexec_fn=_usual_ctrl_c,
    )


def wait_for(cond, timeout=60.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def finish(proc: subprocess.Popen, timeout=60) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def stop(proc: subprocess.Popen) -> str:
    """Ctrl-C: the run checkpoints the step it is in and exits 130."""
    proc.send_signal(signal.SIGINT)
    out = finish(proc)
    assert proc.returncode == 130, out
    return out


def epochs(run: Path) -> list[int]:
    return [json.loads(ln)["epoch"] for ln in (run / "metrics.jsonl").read_text().splitlines()]


def has_checkpoint(run: Path) -> bool:
    return (run / "checkpoints" / "last.pt.sha256").exists()


@pytest.fixture
def kill_later():
    procs: list[subprocess.Popen] = []
    yield procs.append
    for p in procs:  # a failing test leaves no endless training behind
        if p.poll() is None:
            p.kill()
            p.communicate()


# ----------------------------------------------------------------------------- netspec train


def test_two_forced_trains_at_once_one_trains_the_other_is_refused(tmp_path, kill_later):
    """Before the lock, the second deleted the first's checkpoints and crashed, and the folder ended
    with both runs' epochs interleaved in metrics.jsonl."""
    spec = write(tmp_path, ENDLESS)
    run = tmp_path / "run"
    a, b = start("train", spec, "-o", run, "--force"), start("train", spec, "-o", run, "--force")
    kill_later(a), kill_later(b)
    wait_for(lambda: a.poll() is not None or b.poll() is not None, what="one train to be refused")
    loser, winner = (a, b) if a.poll() is not None else (b, a)
    out = finish(loser)
    assert loser.returncode == 1, out
    assert f"is in use: held by pid {winner.pid} on host {socket.gethostname()} since " in out
    assert "netspec train" in out and "Traceback" not in out
    wait_for(lambda: has_checkpoint(run) and len(epochs(run)) >= 2, what="the winner's epochs")
    stop(winner)
    got = epochs(run)
    assert got == list(range(1, len(got) + 1))  # one run's epochs: strictly increasing, no duplicates
    ckpt, err = load_checkpoint(run / "checkpoints" / "last.pt")
    assert err is None and ckpt["state"]["epoch"] >= got[-1]
    assert not (run / lock.LOCK).exists()  # released
    assert json.loads((run / "status.json").read_text())["pid"] == winner.pid


def test_force_while_a_run_is_live_is_refused_and_deletes_nothing(tmp_path, kill_later):
    spec = write(tmp_path, ENDLESS)
    run = tmp_path / "run"
    live = start("train", spec, "-o", run)
    kill_later(live)
    wait_for(lambda: has_checkpoint(run), what="the live run's first checkpoint")
    before, done = {p.name for p in run.iterdir()}, epochs(run)
    code, out, err = run_cli("train", spec, "-o", run, "--force")
    assert code == 1 and f"held by pid {live.pid}" in err, out + err
    assert before <= {p.name for p in run.iterdir()}  # nothing deleted (the live run may add files)
    assert epochs(run)[: len(done)] == done and (run / "checkpoints" / "last.pt").exists()
    assert live.poll() is None  # and it goes on
    stop(live)
    got = epochs(run)
    assert got == list(range(1, len(got) + 1))


def test_a_killed_runs_lock_is_taken_over_and_resume_works(tmp_path, kill_later):
    spec = write(tmp_path, ENDLESS)
    run = tmp_path / "run"
    proc = start("train", spec, "-o", run)
    kill_later(proc)
    wait_for(lambda: has_checkpoint(run), what="a checkpoint")
    proc.kill()  # SIGKILL: no finally runs; the lock file stays, the kernel drops its flock
    finish(proc)
    assert json.loads((run / lock.LOCK).read_text())["pid"] == proc.pid
    code, out, err = run_cli("train", spec, "-o", run, "--resume", "--max-steps", "3")
    assert code == 0, out + err
    host = socket.gethostname()
    assert f"took over the lock of pid {proc.pid} on host {host}, which is no longer running" in err
    assert "resumed at epoch" in out + err
    assert not (run / lock.LOCK).exists()
    got = epochs(run)
    assert got == list(range(1, len(got) + 1))


# ----------------------------------------------------------------------------- --force and symlinks


@pytest.fixture
def finished_run(tmp_path):
    spec = write(tmp_path, MLP.replace("epochs: 3", "epochs: 1"))
    run = tmp_path / "run"
    code, out, err = run_cli("train", spec, "-o", run, "-q")
    assert code == 0, out + err
    return spec, run


def test_force_unlinks_symlinked_entries_and_leaves_their_targets(finished_run, tmp_path):
    """A symlinked checkpoints/ made --force an internal error (rmtree of a symlink), and a link to a
    folder must never have its target emptied."""
    spec, run = finished_run
    outside = tmp_path / "outside"
    (outside / "ckpts").mkdir(parents=True)
    (outside / "ckpts" / "keep.pt").write_text("not the run's")
    (outside / "weights.pt").write_text("not the run's either")
    (outside / "tb").mkdir()
    import shutil

    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").symlink_to(outside / "ckpts", target_is_directory=True)
    (run / "weights.pt").unlink()
    (run / "weights.pt").symlink_to(outside / "weights.pt")
    (run / "tensorboard").symlink_to(outside / "tb", target_is_directory=True)
    (run / "metrics.csv").unlink()
    (run / "metrics.csv").symlink_to(outside / "gone")  # dangling
    code, out, err = run_cli("train", spec, "-o", run, "--force", "-q")
    assert code == 0, out + err
    assert (outside / "ckpts" / "keep.pt").read_text() == "not the run's"
    assert (outside / "weights.pt").read_text() == "not the run's either"
    assert (outside / "tb").is_dir()
    assert sorted(p.name for p in outside.iterdir()) == ["ckpts", "tb", "weights.pt"]
    for name in ("checkpoints", "weights.pt", "metrics.csv"):
        assert not (run / name).is_symlink() and (run / name).exists()
    assert has_checkpoint(run)


def test_force_inside_a_real_checkpoints_folder_does_not_follow_its_links(finished_run, tmp_path):
    spec, run = finished_run
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data.npz").write_text("precious")
    (run / "checkpoints" / "link").symlink_to(outside, target_is_directory=True)
    code, out, err = run_cli("train", spec, "-o", run, "--force", "-q")
    assert code == 0, out + err
    assert (outside / "data.npz").read_text() == "precious"


@pytest.mark.skipif(os.geteuid() == 0, reason="root removes read-only folders' entries anyway")
def test_force_that_cannot_remove_an_entry_is_a_user_error(finished_run):
    spec, run = finished_run
    stuck = run / "checkpoints" / "stuck"
    stuck.mkdir()
    (stuck / "f").write_text("x")
    stuck.chmod(0o500)
    try:
        code, out, err = run_cli("train", spec, "-o", run, "--force", "-q")
    finally:
        stuck.chmod(0o700)
    assert code == 1 and "--force cannot remove" in err and "Traceback" not in err, out + err


# ----------------------------------------------------------------------------- netspec tune

TUNE = """\
netspec: 1
name: tiny
inputs:
  x: {shape: [6]}
layers:
  - linear: 8
  - relu
  - linear: 3
train:
  data: {source: synthetic, samples: 120, val_fraction: 0.25, test_fraction: 0.2}
  epochs: EPOCHS
  batch_size: 32
  optimizer: {name: adam, lr: 0.01}
  seed: 0
search:
  space: {train.optimizer.lr: {float: [0.001, 0.01], log: true}}
  trials: 2
  pruner: none
"""


def test_a_second_tune_on_one_study_is_refused(tmp_path, kill_later, cli):
    spec = write(tmp_path, TUNE.replace("EPOCHS", "100000"), "tune.yaml")
    out = tmp_path / "study"
    first = start("tune", spec, "-o", out, "-q")
    kill_later(first)
    wait_for(lambda: (out / lock.LOCK).exists() and (out / lock.LOCK).stat().st_size > 0, what="the study's lock")
    code, _, err = cli("tune", spec, "-o", out, "-q")
    assert code == 1 and f"held by pid {first.pid}" in err and "netspec tune" in err, err
    assert first.poll() is None
    first.kill()
    finish(first)
    # once it is gone, a tune of the same study takes its lock over (and resumes the study), then
    # releases it when stopped
    second = start("tune", spec, "-o", out, "-q")
    kill_later(second)
    head = [second.stdout.readline() for _ in range(2)]  # the "tuning ..." line, then the note
    assert any(f"took over the lock of pid {first.pid}" in line for line in head), head
    wait_for(lambda: f'"pid": {second.pid},' in (out / lock.LOCK).read_text(), what="the second tune's lock")
    second.send_signal(signal.SIGINT)
    finish(second)
    assert second.returncode == 130
    assert not (out / lock.LOCK).exists()


# ----------------------------------------------------------------------------- the lock module

HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from netspec.runtime import lock
    with lock.hold(Path(sys.argv[1]), command="netspec holder"):
        print("held", flush=True)
        sys.stdin.readline()
    """
)


def hold_elsewhere(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline() == "held\n"
    return proc


def test_lock_refuses_a_second_process_and_names_the_holder(tmp_path):
    other = hold_elsewhere(tmp_path / "d")
    try:
        with pytest.raises(lock.LockError) as info, lock.hold(tmp_path / "d"):
            pass
        msg = str(info.value)
        assert f"held by pid {other.pid} on host {socket.gethostname()} since 20" in msg
        assert msg.rstrip().count("(netspec holder)") == 1
    finally:
        other.communicate("\n")
    assert other.returncode == 0
    assert not (tmp_path / "d").exists()  # it made the folder, left it empty: removed
    with lock.hold(tmp_path / "d"):  # free again
        pass


def test_lock_of_a_killed_process_is_taken_over_with_a_note(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    other = hold_elsewhere(folder)
    other.kill()
    other.communicate()
    notes: list[str] = []
    with lock.hold(folder, command="me", note=notes.append):
        info = json.loads((folder / lock.LOCK).read_text())
        assert (info["pid"], info["command"]) == (os.getpid(), "me")
    assert notes == [
        f"took over the lock of pid {other.pid} on host {socket.gethostname()}, which is no longer running"
    ]
    assert folder.is_dir() and not (folder / lock.LOCK).exists()  # a folder it did not make stays


def test_nested_holds_in_one_process_are_one(tmp_path):
    with lock.hold(tmp_path), lock.hold(tmp_path):
        pass
    assert not (tmp_path / lock.LOCK).exists()


def test_folders_the_hold_made_are_removed_when_left_empty(tmp_path):
    with lock.hold(tmp_path / "a" / "b" / "run"):
        assert (tmp_path / "a" / "b" / "run" / lock.LOCK).exists()
    assert list(tmp_path.iterdir()) == []
    with lock.hold(tmp_path / "a" / "b" / "run"):
        (tmp_path / "a" / "kept.txt").write_text("a run's file")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "kept.txt"]


def test_a_lock_file_that_is_a_symlink_is_refused_and_its_target_untouched(tmp_path):
    target = tmp_path / "precious"
    target.write_text("keep")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / lock.LOCK).symlink_to(target)
    with pytest.raises(lock.LockError, match="is a symbolic link"), lock.hold(tmp_path / "d"):
        pass
    assert target.read_text() == "keep"


def test_a_lock_file_unlinked_by_its_releasing_holder_is_not_trusted(tmp_path):
    """The inode a taker opened may be unlinked by the holder's release before the taker's flock:
    locking it would exclude nobody. The taker checks the path still names it, else opens anew."""
    folder = tmp_path / "d"
    folder.mkdir()
    fd = lock.acquire(folder, "first")
    stale = os.open(folder / lock.LOCK, os.O_RDWR)  # a taker that opened the file before the release
    lock.release(folder, fd)
    try:
        assert not lock._same_file(stale, folder / lock.LOCK)
        fd2 = lock.acquire(folder, "second")
        assert json.loads((folder / lock.LOCK).read_text())["command"] == "second"
        lock.release(folder, fd2)
    finally:
        os.close(stale)
