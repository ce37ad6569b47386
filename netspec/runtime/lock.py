"""One writer per run or study directory: an exclusive flock on DIR/.lock for the life of the run.

The kernel releases a flock when its process dies, however it dies (SIGKILL included), so a lock
file whose flock can be taken is stale by definition: no pid-liveness guess, which a pid reused by
another process or a run on another host would fool. The file holds who took it (pid, host, start,
command) only to say so to a second writer. Its inode must stay the one every process locks, so it
is written in place, never replaced by an atomic rename; a holder unlinks it on release, and a taker
checks after flock() that the path still names the inode it locked (the one an earlier holder
unlinked is worthless), else tries again.

Standard library only: no torch, nothing of netspec.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shlex
import socket
import stat
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

LOCK = ".lock"
_held: dict[str, int] = {}  # directories this process holds (real path -> depth): nested holds are one
_fds: dict[str, int] = {}  # the same directories -> their lock files' descriptors


def _forget_in_child() -> None:
    """A forked child (a DataLoader worker) shares its parent's open lock file and so its flock: a
    parent killed by SIGKILL left the run locked until its workers noticed and exited, seconds
    later (a --resume at once was refused). The child closes its copy, which leaves the parent's
    lock as it is (only LOCK_UN or the last close of the file releases a flock), and holds nothing."""
    for fd in _fds.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _fds.clear()
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


class LockError(Exception):
    """Another live process holds the directory, or its lock file cannot be used: exit code 1."""


def command_line() -> str:
    """What a second writer is told the holder runs, e.g. `netspec train spec.yaml -o runs/x`."""
    return shlex.join(["netspec", *sys.argv[1:]])[:300]


def describe(info: dict) -> str:
    """`pid 1234 on host X since 2026-12-04 20:31:05 (netspec train ...)`, from a lock file's content."""
    since = info.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else "?"
    command = f" ({info['command']})" if info.get("command") else ""
    return f"pid {info.get('pid', '?')} on host {info.get('host', '?')} since {when}{command}"


def _read(fd: int) -> dict | None:
    """The holder's record; None when the file is empty (a holder between open and write) or not ours."""
    try:
        data = os.pread(fd, 4096, 0)
        info = json.loads(data.decode("utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _open(path: Path) -> int:
    # O_NOFOLLOW: a .lock that is a symlink would lock (and write into) some file elsewhere.
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LockError(f"{path} is a symbolic link; remove it (netspec makes this lock file itself)") from None
        if isinstance(exc, FileNotFoundError):
            raise
        raise LockError(f"cannot open the lock file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO opened O_RDWR, a device
        os.close(fd)
        raise LockError(f"{path} is not a regular file; remove it (netspec makes this lock file itself)")
    return fd


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def acquire(folder: Path, command: str | None = None, note: Callable[[str], None] | None = None) -> int | None:
    """Lock `folder` (made if missing) and record this process in it; returns the lock file's fd,
    or None where the filesystem has no flock (then nothing stops a second writer: noted)."""
    note = note or (lambda text: print(text, file=sys.stderr, flush=True))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    for _ in range(50):  # each retry follows a holder that released (unlinked) the file meanwhile
        try:
            fd = _open(path)
        except FileNotFoundError:  # the folder went away under us (a holder removed its empty folder)
            folder.mkdir(parents=True, exist_ok=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = None
            for _ in range(20):  # a holder that just took it writes its record within microseconds
                holder = _read(fd)
                if holder is not None:
                    break
                time.sleep(0.01)
            os.close(fd)
            who = describe(holder) if holder else "another process (its record is unreadable)"
            raise LockError(
                f"{folder} is in use: held by {who}. Wait for that run to end (or stop it), or choose another -o"
            ) from None
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                note(
                    f"warning: {folder}'s filesystem cannot lock files ({exc.strerror}): nothing keeps a second run out"
                )
                return None
            raise LockError(f"cannot lock {path}: {exc.strerror}") from None
        if not _same_file(fd, path):  # locked an inode its holder had unlinked on release
            os.close(fd)
            continue
        previous = _read(fd)
        if previous is not None:  # its process is gone: the kernel released its flock
            who = f"pid {previous.get('pid', '?')} on host {previous.get('host', '?')}"
            note(f"took over the lock of {who}, which is no longer running")
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time(),
            "command": command if command is not None else command_line(),
        }
        data = (json.dumps(record) + "\n").encode("utf-8")
        try:  # in place (see the module docstring): truncate, write, fsync
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            raise LockError(f"cannot write the lock file {path}: {exc.strerror}") from None
        return fd
    raise LockError(f"cannot lock {path}: it keeps being replaced")


def release(folder: Path, fd: int | None) -> None:
    """Unlink the lock file while still holding it (see the module docstring), then unlock."""
    if fd is None:
        return
    try:
        if _same_file(fd, folder / LOCK):
            with contextlib.suppress(OSError):
                os.unlink(folder / LOCK)
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


@contextlib.contextmanager
def hold(folder: Path, command: str | None = None, note: Callable[[str], None] | None = None) -> Iterator[None]:
    """The exclusive lock on `folder` for the `with` block. Nested holds of one folder in one process
        (`netspec tune` around study.run) are one; the folders this call made (`-o a/b/run` with no
    `a/`) and left empty are removed."""
    folder = Path(folder)
    created = [d for d in (folder, *folder.parents) if not d.exists()]  # deepest first
    folder.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(folder)
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    fd = acquire(folder, command, note)
    _held[key] = 1
    if fd is not None:
        _fds[key] = fd
    try:
        yield
    finally:
        _held.pop(key, None)  # gone in a forked child (_forget_in_child)
        _fds.pop(key, None)
        release(folder, fd)
        for made in created:  # only while empty: a run refused before writing anything leaves no folder
            try:
                made.rmdir()
            except OSError:
                break
