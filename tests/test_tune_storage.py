"""`netspec tune --storage`: one study shared by workers that are separate `netspec tune` processes,
each with its own -o, on a real PostgreSQL 15 server this module starts (initdb + pg_ctl, as the
postgres system user when run as root) and on Optuna's journal file; a worker killed mid-trial
(SIGKILL) and the study finished by the others; every mistake in the storage one diagnostic, with
the password masked. Tiny trials: the whole module runs in well under a minute on 2 cores."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("optuna")

from netspec.tune import storage as stores
from netspec.tune import study

from .test_tune import TINY

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PASSWORD = "Pw-s3cret_42"  # what must never be printed nor written

SPACE = """\
  space:
    vars.width: {int: [2, 64]}
    train.optimizer.lr: {float: [0.001, 0.1], log: true}
  sampler: random
  pruner: none
  trials: %d
"""


def spec_file(tmp_path: Path, trials: int) -> Path:
    """The tiny spec with a few slower steps per trial, so that a worker can be caught mid-trial."""
    text = TINY.replace("samples: 120", "samples: 240").replace("batch_size: 32", "batch_size: 16")
    text = text.replace("epochs: 3", "epochs: 1")
    path = tmp_path / "tiny.yaml"
    path.write_text(text + SPACE % trials)
    return path


# ----------------------------------------------------------------------------- the server


def _as_postgres() -> list[str]:
    """PostgreSQL refuses to run as root: run its programs as the postgres system user then."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg():
    """A PostgreSQL 15 server for this module: password login over TCP on 127.0.0.1, a database
    `optuna`; stopped and removed in teardown. Yields its URL without a database."""
    if not (PG_BIN / "initdb").is_file() or not (PG_BIN / "pg_ctl").is_file():
        pytest.skip(f"PostgreSQL 15 is not installed ({PG_BIN}/initdb and pg_ctl absent)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: PostgreSQL refuses to run as root")
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed: pip install 'netspec[tune-postgres]'")
    import psycopg2

    root = Path(tempfile.mkdtemp(prefix="netspec-pg-"))  # not under pytest's 0700 root-owned folders
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(pwfile, "postgres")
    port = _free_port()
    start = time.perf_counter()
    data = root / "data"
    subprocess.run([*_as_postgres(), str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--no-sync",
                    "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8"],
                   check=True, capture_output=True)  # fmt: skip
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
    subprocess.run([*_as_postgres(), str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w",
                    "-o", options, "start"], check=True, capture_output=True)  # fmt: skip
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", password=PASSWORD, dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE optuna")
        conn.close()
        print(f"PostgreSQL up in {time.perf_counter() - start:.2f} s on port {port}")
        yield f"postgresql+psycopg2://postgres:{PASSWORD}@127.0.0.1:{port}"
    finally:
        subprocess.run([*_as_postgres(), str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


# ----------------------------------------------------------------------------- workers


def worker(spec: Path, out: Path, store: str, *extra: str, prefix: tuple[str, ...] = ()) -> subprocess.Popen:
    """A `netspec tune` process of its own, as a worker on another machine would be."""
    args = ["tune", str(spec), "-o", str(out), "--storage", store, "-q", *extra]
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "netspec", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def shared(spec: Path, store: str):
    plan = study.load_plan(spec)
    return plan, study.open_study(plan, stores.parse(store), create=False)


def elsewhere() -> tuple[str, ...]:
    """A prefix that runs a worker in a pid namespace of its own: to the others it is on another
    machine (its pid means nothing to them), so only the heartbeat can tell them it died."""
    prefix = ("unshare", "--pid", "--fork", "--kill-child")
    if shutil.which("unshare") is None or subprocess.run([*prefix, "true"], capture_output=True).returncode:
        pytest.skip("unshare --pid (util-linux, root) is needed to run a worker as if on another machine")
    return prefix


def wait_running(spec: Path, store: str, pid: int | None, deadline: float = 90):
    """The trial that the worker with this pid is running (None: a worker on another machine), once
    it runs one."""
    plan = study.load_plan(spec)
    where = stores.parse(store)
    here = stores.worker_attr()["machine"]
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            st = study.open_study(plan, where, create=False)
        except study.StudyError:  # not made yet
            time.sleep(0.1)
            continue
        for t in st.get_trials(deepcopy=False):
            w = t.user_attrs.get("worker") or {}
            if t.state.name == "RUNNING" and w and (w.get("pid") == pid if pid else w["machine"] != here):
                return t
        time.sleep(0.02)
    raise AssertionError(f"worker {pid} ran no trial in {deadline} s")


def check_study(st, target: int) -> dict[int, int]:
    """The invariants of a shared study: numbers 0..n-1, the budget exactly, every trial that broke
    off retried once with the values it had, no other repeated values. Returns trials per worker pid."""
    trials = st.get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert study.counted(trials) == target
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    failed = [t for t in trials if t.state.name == "FAIL"]
    retries = {t.user_attrs["retry_of"]: t for t in trials if t.user_attrs.get("retry_of") is not None}
    assert sorted(retries) == sorted(t.number for t in failed)
    for t in failed:  # killed between two suggestions, a trial holds only the first: the retry draws the rest
        assert t.params.items() <= retries[t.number].params.items() and retries[t.number].state.name == "COMPLETE"
    done = [json.dumps(t.params, sort_keys=True) for t in trials if t.state.name == "COMPLETE"]
    assert len(done) == len(set(done)) == target  # each candidate once (random lr: a repeat is no chance)
    per: dict[int, int] = {}
    for t in trials:
        if t.state.name == "COMPLETE":
            pid = t.user_attrs["worker"]["pid"]
            per[pid] = per.get(pid, 0) + 1
    return per


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a pid's liveness is read on Linux")
def test_two_workers_share_a_postgres_study_and_a_killed_one_is_retried_on_rerun(tmp_path, pg, cli):
    """Two `netspec tune` processes with their own -o, one study in PostgreSQL; one killed mid-trial
    and run again at once: its dead trial is failed and retried by whichever worker on this machine
    looks first (its pid is gone here; the heartbeat's grace is 10 minutes in this test), and the
    study ends with exactly its budget."""
    spec = spec_file(tmp_path, 6)
    url = f"{pg}/optuna"
    slow = ("--grace", "600")
    a = worker(spec, tmp_path / "a", url, *slow, "--threads", "1")
    b = worker(spec, tmp_path / "b", url, *slow)  # no --threads: it splits the cores with the others here
    try:
        victim = wait_running(spec, url, a.pid)
        held = (tmp_path / "a" / ".lock").read_text()  # who holds the folder: the command, masked
        assert "--storage postgresql+psycopg2://postgres:***@127.0.0.1" in held and PASSWORD not in held
        a.send_signal(signal.SIGKILL)
        a.wait()
        again = worker(spec, tmp_path / "a", url, *slow, "--threads", "1")  # a scheduler restarting the same command
        code_b, out_b, err_b = finish(b)
        code_a, out_a, err_a = finish(again)
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
    assert code_a == 0 and code_b == 0, err_a + err_b
    plan, st = shared(spec, url)
    assert st.study_name == f"tiny-{plan.key[:12]}"  # derived from the spec: every worker joined it
    per = check_study(st, 6)
    assert st.trials[victim.number].state.name == "FAIL"
    ran = {t.user_attrs["worker"]["pid"] for t in st.trials if "worker" in t.user_attrs}
    assert {a.pid, b.pid} <= ran, (ran, per)  # both worked on the one study
    # B, without --threads, took torch's default alone and half the cores beside another worker here
    # (which of its trials overlapped another's is timing: test_local_threads holds the rule).
    from netspec.runtime.loop import available_cores

    mine = {t.user_attrs["threads"] for t in st.trials if t.user_attrs.get("worker", {}).get("pid") == b.pid}
    assert mine and mine <= {None, max(1, available_cores() // 2)}, mine
    print(f"trials per worker: {sorted(per.values())}")
    for out, text in ((tmp_path / "a", out_a), (tmp_path / "b", out_b)):  # each wrote the whole study's report
        summary = json.loads((out / "trials.json").read_text())
        assert summary["study"] == st.study_name and len(summary["trials"]) == len(st.trials)
        assert (out / "best.yaml").is_file() and not (out / "study.db").exists()
        assert "postgres:***@127.0.0.1" in text
    written = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())
    assert PASSWORD not in written + out_a + out_b + err_a + err_b


def test_two_workers_share_a_journal_file_and_a_dead_ones_trial_is_retried(tmp_path, cli):
    """Optuna's journal (a file on shared storage) has no heartbeat of its own: netspec's marks the
    trial of a worker on another machine (another pid namespace) killed mid-trial FAIL after
    --grace, and the other worker retries it and finishes the study alone. Any folder then writes
    the report from the journal."""
    spec = spec_file(tmp_path, 6)
    log = f"journal://{tmp_path / 'shared' / 'study.log'}"
    (tmp_path / "shared").mkdir()
    a = worker(spec, tmp_path / "a", log, "--grace", "3", "--threads", "1", prefix=elsewhere())
    b = worker(spec, tmp_path / "b", log, "--grace", "3", "--threads", "1")
    try:
        victim = wait_running(spec, log, None)
        a.send_signal(signal.SIGKILL)
        a.wait()
        code, _, err = finish(b)
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
    assert code == 0, err
    _, st = shared(spec, log)
    per = check_study(st, 6)
    assert st.trials[victim.number].state.name == "FAIL"
    assert per.get(b.pid, 0) >= 1
    dead = st.trials[victim.number]  # failed for its silence: more than the grace after its last beat
    assert dead.datetime_complete.timestamp() - dead.system_attrs["netspec:heartbeat"] > 3
    code, text, err = cli("tune", spec, "--storage", log, "--report-only", "-o", tmp_path / "report")
    assert code == 0, err
    summary = json.loads((tmp_path / "report" / "trials.json").read_text())
    assert summary["best"] is not None and (tmp_path / "report" / "best.yaml").is_file()
    assert f"study {st.study_name!r}" in (tmp_path / "report" / "best.yaml").read_text()
    assert "tuning" not in text  # nothing ran


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_local_threads_split_the_cores_among_this_machines_running_workers(tmp_path):
    """Invocations without --threads on one machine: a trial takes torch's default while no other
    worker of the study runs one here, and cores / N when N do; a worker elsewhere does not count."""
    from optuna.trial import TrialState

    plan = study.load_plan(spec_file(tmp_path, 3))
    st = study.open_study(plan, tmp_path / "s")
    me = stores.worker_attr()
    assert study.local_threads(st, me, 8) is None
    elsewhere = st.ask()
    elsewhere.set_user_attr("worker", {**me, "pid": 1, "machine": "another-host|boot|pid:[1]"})
    assert study.local_threads(st, me, 8) is None
    here = st.ask()
    here.set_user_attr("worker", {**me, "pid": me["pid"] + 1})  # another process on this machine
    assert study.local_threads(st, me, 8) == 4
    assert study.local_threads(st, me, 1) == 1  # at least one
    st.tell(here, state=TrialState.FAIL)
    assert study.local_threads(st, me, 8) is None  # it ended: the cores are this worker's again


# ----------------------------------------------------------------------------- mistakes


def one_error(cli, *args) -> str:
    code, out, err = cli(*args)
    assert code == 1, (out, err)
    assert "Traceback" not in err and err.startswith("error: ") and err.count("error: ") == 1, err
    assert PASSWORD not in out + err
    return err


def test_a_url_given_as_the_output_folder_is_refused(tmp_path, cli):
    spec = spec_file(tmp_path, 1)
    err = one_error(cli, "tune", spec, "-o", f"postgresql://tune:{PASSWORD}@db.example/optuna")
    assert "-o names this worker's local folder" in err
    assert "--storage postgresql://tune:***@db.example/optuna" in err
    assert not list(tmp_path.glob("postgresql*"))  # no folder made of it


@pytest.mark.parametrize(
    ("store", "says"),
    [
        ("runs/shared", "not a storage URL"),
        ("journal://shared/study.log", "a journal URL names a file, not a host"),
        ("journal:///no/such/folder/study.log", "the journal's folder does not exist"),
        ("mongodb://h/db", "is not a database Optuna keeps studies in"),
        (f"postgresql://tune:{PASSWORD}@/optuna", "names no server"),
        ("postgresql://tune@db.example", "names no database"),
        (f"postgresql+nosuchdriver://u:{PASSWORD}@127.0.0.1/db", "driver for PostgreSQL is not installed"),
        ("sqlite://", "an SQLite study needs a file"),
    ],
)
def test_a_bad_storage_is_one_diagnostic(tmp_path, cli, store, says):
    err = one_error(cli, "tune", spec_file(tmp_path, 1), "-o", tmp_path / "o", "--storage", store)
    assert says in err and "expected:" in err and "received:" in err and "hint:" in err


def test_an_unreachable_server_and_a_wrong_password_are_said_with_the_password_masked(tmp_path, cli, pg):
    spec = spec_file(tmp_path, 1)
    port = _free_port()  # nothing listens there
    err = one_error(cli, "tune", spec, "-o", tmp_path / "o", "--storage",
                    f"postgresql+psycopg2://postgres:{PASSWORD}@127.0.0.1:{port}/optuna")  # fmt: skip
    assert "cannot reach the study's PostgreSQL server" in err and f"postgres:***@127.0.0.1:{port}" in err
    # postgresql:// without a driver: SQLAlchemy's default (psycopg 3) is not installed, psycopg2 is taken
    wrong = pg.replace(PASSWORD, "not-" + PASSWORD[::-1]).replace("postgresql+psycopg2:", "postgresql:") + "/optuna"
    err = one_error(cli, "tune", spec, "-o", tmp_path / "o", "--storage", wrong)
    assert "password" in err and "hint: check the user and password" in err and PASSWORD[::-1] not in err
    err = one_error(cli, "tune", spec, "-o", tmp_path / "o", "--storage", f"{pg}/nosuchdb")
    assert "createdb" in err
    err = one_error(cli, "tune", spec, "-o", tmp_path / "o", "--storage", f"{pg}/optuna", "--report-only",
                    "--study-name", "never-made")  # fmt: skip
    assert "no study named 'never-made'" in err


def test_study_name_needs_a_storage(tmp_path, cli):
    err = one_error(cli, "tune", spec_file(tmp_path, 1), "-o", tmp_path / "o", "--study-name", "x")
    assert "--study-name names a study in --storage" in err


def test_mask_hides_passwords_wherever_they_are():
    assert stores.mask(f"postgresql://u:{PASSWORD}@h/db") == "postgresql://u:***@h/db"
    assert stores.mask(f"mysql://h/db?password={PASSWORD}&x=1") == "mysql://h/db?password=***&x=1"
    assert stores.mask(f"failed for {PASSWORD}", PASSWORD) == "failed for ***"
