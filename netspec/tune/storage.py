"""Where a study lives: the local SQLite file DIR/study.db (the default), a database server that
workers on many machines share (PostgreSQL or MySQL, through SQLAlchemy), or Optuna's journal, a
log file on storage every worker mounts (NFS, a cluster file system).

`--storage URL` names it; -o stays the folder of this worker's reports (trials.json, best.yaml).
What the user gave is checked before anything connects, and every problem (an unknown scheme, a
missing driver, a server that does not answer, a refused password) is a StudyError with what was
expected, what was received and a hint; a password is never shown (`mask`).

Besides Optuna's storage, every kind gives a mutex that all the workers of the study share
(`Mutex`): PostgreSQL's advisory lock, MySQL's GET_LOCK, an flock beside a SQLite file, an O_EXCL
lock file beside a journal. A worker holds it from checking the budget until its next trial exists,
so the study never holds more trials than asked, a queued trial (the baseline, a retry) is claimed
once, and two workers starting at once do not both queue the baseline.

A worker killed mid-trial stops beating: after the grace period any other worker (or the next run
of any) marks its trial FAIL and queues it again. RDBStorage beats in the database (with the
server's clock); the journal has no heartbeat of its own in Optuna, so `HeartbeatJournal` adds one
as a trial system attribute stamped with the worker's clock (keep the machines' clocks in sync).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..record import record
from .plan import StudyError

# The default: one study per directory, named as before, so a study.db made by an earlier netspec
# resumes.
LOCAL_STUDY = "netspec"
GRACE_S = 60  # a RUNNING trial whose worker stopped beating this long is failed (then retried)

_RDB = {"postgresql": "PostgreSQL", "postgres": "PostgreSQL", "mysql": "MySQL", "mariadb": "MySQL"}
_DRIVERS = {  # module SQLAlchemy imports -> what provides it
    "psycopg2": "pip install 'netspec[tune-postgres]'  (psycopg2-binary)",
    "psycopg": "pip install 'netspec[tune-postgres]' (psycopg2), or pip install 'psycopg[binary]' (psycopg 3)",
    "pg8000": "pip install pg8000",
    "asyncpg": "an async driver cannot serve Optuna: use postgresql+psycopg2://",
    "MySQLdb": "pip install mysqlclient, or use mysql+pymysql:// with pip install pymysql",
    "pymysql": "pip install pymysql",
    "mysql": "pip install mysql-connector-python",
}
_SCHEMES = "postgresql://, postgresql+psycopg2://, mysql+pymysql://, sqlite:///FILE or journal:///FILE.log"
# Schemes someone may pass as -o: `-o postgresql://...` became the folder "postgresql:/..."
_URL = re.compile(r"^(sqlite|postgres(ql)?|mysql|mariadb|journal|redis|oracle|mssql|file|https?)(\+\w+)?:", re.I)


@record
class Where:
    """A study's storage, as the user named it."""

    kind: str  # "sqlite", "postgresql", "mysql" or "journal"
    url: str  # the SQLAlchemy URL (password included) or the journal file's path
    shown: str  # what messages and files say: the password masked
    local: bool = False  # the default DIR/study.db
    name: str | None = None  # --study-name (else study_name derives one)
    grace: int = GRACE_S  # --grace: seconds without a heartbeat after which a worker is dead

    @property
    def file(self) -> Path | None:
        """The SQLite or journal file (None for a server)."""
        if self.kind == "journal":
            return Path(self.url)
        if self.kind == "sqlite":
            from sqlalchemy.engine import make_url

            return Path(make_url(self.url).database or "")
        return None


def looks_like_url(text: str) -> bool:
    """A storage URL, even after pathlib folded its '//' ('postgresql:/u@h/db')."""
    return bool(_URL.match(text))


def mask(text: str, password: str | None = None) -> str:
    """`text` with any password in it replaced by ***: a URL's user:password@, a password=...
    query, and the given password wherever it appears (a driver's message may quote the URL)."""
    if password:
        text = text.replace(password, "***")
    text = re.sub(r"(:/{1,2}[^/:@\s]*:)[^@\s]*@", r"\1***@", text)  # also as -o folded it: 'x:/u:pw@h'

    return re.sub(r"(?i)(\bpassword=)[^&\s]*", r"\1***", text)


def _fail(what: str, expected: str, received: str, hint: str) -> StudyError:
    return StudyError(f"{what}\n  expected: {expected}\n  received: {received}\n  hint: {hint}")


def local(study_dir: Path) -> Where:
    """DIR/study.db: see sqlite_url."""
    url = sqlite_url(study_dir / "study.db")
    return Where("sqlite", url, str(study_dir / "study.db"), local=True)


def sqlite_url(path: Path) -> str:
    """The SQLite URL of a file, whatever its path holds. Formatted as `sqlite:///{path}`, a '?' in
    it started the URL's query, a '#' its fragment and '%2F' was decoded to '/', so the file landed
    elsewhere; URL.create escapes the path, and Optuna's str.format of the URL (its
    {SCHEMA_VERSION} template) then meets no braces: they are escaped too. The round trip is
    checked, so that an SQLAlchemy that escaped less is refused rather than writing elsewhere."""
    from sqlalchemy.engine import URL, make_url

    file = str(path.resolve())
    url = URL.create("sqlite", database=file).render_as_string(hide_password=False)
    if "{" in url or "}" in url or make_url(url).database != file:
        raise StudyError(f"{path.parent}: this SQLAlchemy cannot name the path in an SQLite URL; choose another -o")
    return url


def parse(text: str) -> Where:
    """What --storage names: a database URL, journal:///FILE, or a FILE.log (a journal)."""
    if text.startswith("journal:"):
        rest = text.removeprefix("journal:")
        if rest.startswith("//"):
            rest = rest[2:]
            if not rest.startswith("/"):
                raise _fail(
                    "--storage: a journal URL names a file, not a host",
                    "journal:///ABSOLUTE/PATH.log (three slashes) or journal:RELATIVE/PATH.log",
                    mask(text),
                    f"journal:///{rest}" if rest else "journal:///shared/study.log",
                )
        return _journal(text, rest)
    if not looks_like_url(text) and "://" not in text:
        if text.endswith(".log"):
            return _journal(text, text)
        raise _fail(
            "--storage: not a storage URL",
            f"a URL: {_SCHEMES}; or a path ending in .log (a journal file)",
            repr(mask(text)),
            "-o is the folder for this worker's reports; --storage names the study's database or journal",
        )
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise _fail("--storage: cannot read the URL", _SCHEMES, mask(text), mask(str(exc), None)) from None
    backend = url.get_backend_name()
    shown = url.render_as_string(hide_password=True)
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise _fail(
                "--storage: an SQLite study needs a file",
                "sqlite:///ABSOLUTE/PATH.db or sqlite:///RELATIVE/PATH.db",
                shown,
                "workers on other machines cannot reach a SQLite file: use PostgreSQL or a journal",
            )
        db = Path(url.database)
        if not db.parent.is_dir():
            raise _fail("--storage: the SQLite file's folder does not exist", "an existing folder", str(db.parent),
                        f"mkdir -p {db.parent}")  # fmt: skip
        return Where("sqlite", sqlite_url(db), shown)
    if backend not in _RDB:
        raise _fail(
            f"--storage: {backend!r} is not a database Optuna keeps studies in",
            _SCHEMES,
            shown,
            "PostgreSQL: postgresql+psycopg2://USER@HOST:5432/DB; a file on shared storage: journal:///PATH.log",
        )
    if not url.host and not url.query.get("host"):
        raise _fail(
            f"--storage: the {_RDB[backend]} URL names no server",
            f"{backend}://USER:PASSWORD@HOST:PORT/DATABASE",
            shown,
            "add the host (and port); a password is better kept out of the command: PGPASSWORD or ~/.pgpass",
        )
    if not url.database:
        raise _fail(
            f"--storage: the {_RDB[backend]} URL names no database",
            f"{backend}://USER@HOST:PORT/DATABASE",
            shown,
            "create one: createdb optuna (or CREATE DATABASE optuna;) and end the URL with /optuna",
        )
    kind = "postgresql" if _RDB[backend] == "PostgreSQL" else "mysql"
    if backend == "postgres":  # the old name, which SQLAlchemy 1.4 dropped
        url = url.set(drivername="postgresql" + url.drivername.removeprefix("postgres"))
    if kind == "postgresql" and "+" not in url.drivername:
        # SQLAlchemy 2 reads postgresql:// as psycopg (3); netspec[tune-postgres] installs psycopg2.
        # Take the one that is installed rather than fail for want of the other.
        import importlib.util

        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            url = url.set(drivername="postgresql+psycopg2")
    return Where(kind, url.render_as_string(hide_password=False), shown)


def _journal(text: str, path: str) -> Where:
    file = Path(path).expanduser()
    if not path or path.endswith("/") or file.is_dir():
        raise _fail(
            "--storage: a journal is a file", "journal:///PATH/study.log", mask(text), "name a file in the folder"
        )
    if not file.parent.is_dir():
        raise _fail(
            "--storage: the journal's folder does not exist",
            "a folder every worker mounts (NFS, a cluster file system)",
            str(file.parent),
            f"mkdir -p {file.parent}, on the shared storage",
        )
    return Where("journal", str(file.resolve()), str(file))


def study_name(given: str | None, where: Where, plan_name: str, key: str) -> str:
    """--study-name, else: "netspec" in a local study.db (one study per folder, as before), else the
    spec's name and a hash of the spec and its space, so the same command on every machine joins
    the same study and a changed spec or space starts another."""
    if given:
        return given
    return LOCAL_STUDY if where.local else f"{plan_name}-{key[:12]}"


# ----------------------------------------------------------------------------- opening


_OPEN: dict[tuple[str, int], Any] = {}  # a server's or journal's storage, once per process


def open_storage(where: Where, grace: int = GRACE_S) -> Any:
    """Optuna's storage for `where`, with a heartbeat of grace / 6 seconds; a StudyError says why
    it cannot be opened. A server's or a journal's is made once per process: each RDBStorage has a
    pool of connections (many workers times a few pools would fill the server's max_connections),
    each JournalStorage replays the whole log when made."""
    if where.kind == "sqlite":
        return _open(where, grace)
    key = (where.url, grace)
    if key not in _OPEN:
        _OPEN[key] = _open(where, grace)
    return _OPEN[key]


def _open(where: Where, grace: int) -> Any:
    import optuna

    heartbeat = max(1, grace // 6)
    if where.kind == "journal":
        return _journal_storage(where, heartbeat, grace)
    if where.kind != "sqlite":
        _probe(where)
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    connect: dict[str, Any] = {"timeout": 60} if where.kind == "sqlite" else {}  # processes wait for the lock
    if where.kind != "sqlite" and _driver(where) in ("psycopg2", "psycopg", "pymysql", "MySQLdb"):
        connect["connect_timeout"] = 10
    tries = 5
    for attempt in range(tries):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the heartbeat
                return optuna.storages.RDBStorage(
                    where.url,
                    engine_kwargs={"connect_args": connect},
                    heartbeat_interval=heartbeat,
                    grace_period=grace,
                )
        except (IntegrityError, OperationalError, ProgrammingError) as exc:
            # Two processes that open a new study database at once both create its tables: the
            # second trips on the first's rows. Once they exist, opening it again just reads them.
            if attempt == tries - 1:
                raise _fail(
                    f"cannot open the study storage {where.shown}",
                    "a database Optuna can create its tables in",
                    mask(_first_line(exc), _password(where)),
                    "check that the user may create tables in this database",
                ) from None
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def password_of(where: Where) -> str | None:
    """The password in a server's URL (to mask wherever text may quote it)."""
    return _password(where)


def _password(where: Where) -> str | None:
    if where.kind in ("journal", "sqlite"):
        return None
    from sqlalchemy.engine import make_url

    return make_url(where.url).password  # pyright: ignore[reportReturnType]


def _driver(where: Where) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(where.url)
    name = url.get_driver_name()
    return {"psycopg2": "psycopg2", "mysqldb": "MySQLdb", "mysqlconnector": "mysql"}.get(name, name)


def _probe(where: Where) -> None:
    """Connect once, so that a missing driver, a server that does not answer or a refused login is
    one clear message, not a traceback from inside Optuna (nor five retries of it)."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import DBAPIError, NoSuchModuleError
    from sqlalchemy.pool import NullPool

    what = "PostgreSQL" if where.kind == "postgresql" else "MySQL"
    driver = _driver(where)
    timeout = {"connect_timeout": 10} if driver in ("psycopg2", "psycopg", "pymysql", "MySQLdb") else {}
    try:
        engine = create_engine(where.url, poolclass=NullPool, connect_args=timeout)
    except (ImportError, NoSuchModuleError) as exc:
        raise _fail(
            f"--storage: the Python driver for {what} is not installed",
            f"the module {driver!r}, which SQLAlchemy loads for {where.shown.split('://', 1)[0]}://",
            mask(f"{type(exc).__name__}: {exc}", _password(where)),
            _DRIVERS.get(driver, f"install the SQLAlchemy driver {driver!r}"),
        ) from None
    try:
        engine.connect().close()  # a probe: reach the server once, within the connect timeout
    except DBAPIError as exc:
        reason = mask(_first_line(exc), _password(where))
        low = reason.lower()
        if "password" in low or "authentication" in low or "access denied" in low:
            hint = "check the user and password (PGPASSWORD or ~/.pgpass keep it out of the command line)"
        elif "does not exist" in low or "unknown database" in low:
            hint = "create the database on the server first (createdb, or CREATE DATABASE)"
        else:
            hint = "is the server running, and does it listen on that host and port for this machine?"
        raise _fail(f"cannot reach the study's {what} server", f"a {what} server answering at {where.shown}",
                    reason, hint) from None  # fmt: skip
    finally:
        engine.dispose()


def _journal_storage(where: Where, heartbeat: int, grace: int) -> Any:
    import optuna

    try:
        from optuna.storages.journal import JournalFileBackend  # Optuna >= 4.0
    except ImportError:  # pragma: no cover - Optuna 3.x
        from optuna.storages import JournalFileStorage as JournalFileBackend  # pyright: ignore

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            backend = JournalFileBackend(where.url)
        except OSError as exc:
            raise _fail(f"cannot open the journal {where.shown}", "a file this worker may write",
                        f"{type(exc).__name__}: {exc}", "check the path and its permissions") from None  # fmt: skip
        return heartbeat_journal()(backend, heartbeat, grace)


_HEARTBEAT_JOURNAL: list[type] = []


def heartbeat_journal() -> type:
    """JournalStorage with Optuna's heartbeat protocol (made on first use: Optuna is imported late).
    Each beat stores the time in the trial's system attributes; a RUNNING trial whose last beat (or
    start) is more than `grace` seconds old is stale, and optuna.storages.fail_stale_trials fails it,
    as it does with RDBStorage's heartbeat."""
    if _HEARTBEAT_JOURNAL:
        return _HEARTBEAT_JOURNAL[0]
    import optuna
    from optuna.storages._heartbeat import BaseHeartbeat
    from optuna.trial import TrialState

    class HeartbeatJournal(optuna.storages.JournalStorage, BaseHeartbeat):
        BEAT = "netspec:heartbeat"

        def __init__(self, backend: Any, interval: int, grace: int) -> None:
            super().__init__(backend)
            self._interval = interval
            self._grace = grace

        def record_heartbeat(self, trial_id: int) -> None:
            # The trial may have been failed meanwhile (a stalled process found stale): no beat then.
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError, KeyError):
                self.set_trial_system_attr(trial_id, self.BEAT, time.time())

        def _get_stale_trial_ids(self, study_id: int) -> list[int]:
            now = time.time()
            stale = []
            for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
                beat = t.system_attrs.get(self.BEAT)
                if beat is None and t.datetime_start is not None:
                    beat = t.datetime_start.timestamp()
                if beat is not None and now - beat > self._grace:
                    stale.append(t._trial_id)
            return stale

        def get_heartbeat_interval(self) -> int | None:
            return self._interval

        def get_heartbeat_stale_trial_callback(self) -> Callable | None:
            return None

        def get_failed_trial_callback(self) -> Callable | None:  # Optuna < 4.9 asks this one
            return None

    _HEARTBEAT_JOURNAL.append(HeartbeatJournal)
    return HeartbeatJournal


# ----------------------------------------------------------------------------- the study's mutex


class Mutex:
    """A lock every worker of the study takes, whatever machine it runs on (see the module
    docstring). acquire() blocks; release() may be called when not held."""

    def __init__(self, where: Where, store: Any, name: str):
        self.where = where
        self.store = store
        self.name = name
        self._held: Any = None

    def acquire(self) -> None:
        if self._held is not None:
            return
        kind = self.where.kind
        if kind == "sqlite":
            import fcntl

            file = self.where.file
            assert file is not None
            fd = os.open(file.parent / f".{file.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._held = fd
        elif kind == "journal":
            try:
                from optuna.storages.journal import JournalFileOpenLock
            except ImportError:  # pragma: no cover - Optuna 3.x
                from optuna.storages import JournalFileOpenLock  # pyright: ignore

            lock = JournalFileOpenLock(f"{self.where.url}.netspec", grace_period=30)
            lock.acquire()
            self._held = lock
        else:
            from sqlalchemy import text

            engine = _engine(self.store)
            conn = engine.connect()
            key = int.from_bytes(hashlib.sha256(self.name.encode()).digest()[:8], "big", signed=True)
            if kind == "postgresql":  # a session lock: the server drops it when the connection dies
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            else:
                conn.execute(text("SELECT GET_LOCK(:k, -1)"), {"k": f"netspec-{key & 0xFFFFFFFFFFFF:x}"})
            conn.commit()
            self._held = (conn, key)

    def release(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        kind = self.where.kind
        if kind == "sqlite":
            os.close(held)  # closing the descriptor drops the flock
        elif kind == "journal":
            held.release()
        else:
            from sqlalchemy import text
            from sqlalchemy.exc import SQLAlchemyError

            conn, key = held
            # A connection that died took its lock with it: nothing to release then.
            with contextlib.suppress(SQLAlchemyError):
                if kind == "postgresql":
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                else:
                    conn.execute(text("SELECT RELEASE_LOCK(:k)"), {"k": f"netspec-{key & 0xFFFFFFFFFFFF:x}"})
                conn.commit()
            with contextlib.suppress(SQLAlchemyError):
                conn.close()

    def __enter__(self) -> Mutex:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _engine(store: Any) -> Any:
    """The SQLAlchemy engine of an RDBStorage (Optuna may wrap it in a cache)."""
    inner = getattr(store, "_backend", store)
    return inner.engine


# ----------------------------------------------------------------------------- who runs a trial


def _machine() -> str:
    """This machine and pid namespace: a pid means the same process only within them (two
    containers may share a host name, not a pid namespace)."""
    parts = [socket.gethostname()]
    for path in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        with contextlib.suppress(OSError):
            parts.append(os.readlink(path) if path.endswith("pid") else Path(path).read_text().strip())
    return "|".join(parts)


def worker_attr() -> dict[str, Any]:
    """The `worker` user attribute of a trial: where it runs."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "machine": _machine()}


def died_here(worker: Any) -> bool:
    """Whether a RUNNING trial's worker ran on this machine and its process is gone: then the
    trial is failed at once, not after the heartbeat's grace period (a rerun of a killed worker)."""
    if not isinstance(worker, dict) or worker.get("machine") != _machine():
        return False
    pid = worker.get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    # Alive, or a zombie of a parent that has not reaped it (a --jobs worker of this process).
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/status").read_text().split("State:", 1)[1].split()[0] == "Z"
    return False
