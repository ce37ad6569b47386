"""Measuring on a shared, noisy machine: whole processes timed with their peak memory, contenders
run interleaved (A B A B ..., the order rotating each round), summarized as median [min-max].

Peak memory is the child's ru_maxrss from os.wait4. Linux keeps the larger of a process's own peak
and that of the memory image it replaced at exec, and a child starts as a copy of its parent: the
driver therefore stays small (no torch in it) so the number is the child's own.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import ROOT


@dataclass(frozen=True)
class Stats:
    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def to_json(self) -> dict:
        return {"median": self.median, "min": self.min, "max": self.max, "values": list(self.values)}


@dataclass(frozen=True)
class Proc:
    wall_s: float
    max_rss_bytes: int
    returncode: int
    stdout: str
    stderr: str

    def check(self, what: str) -> Proc:
        if self.returncode != 0:
            tail = "\n".join(self.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"{what} exited with {self.returncode}:\n{tail}")
        return self


class Failed(RuntimeError):
    """A contender could not be measured; the figure reports it instead of a number."""


def bin_path(name: str) -> str:
    """A console script of this interpreter's environment (e.g. .venv/bin/netspec)."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


def netspec_cmd(*args: str) -> list[str]:
    script = Path(bin_path("netspec"))
    return [str(script), *args] if script.is_absolute() else [sys.executable, "-m", "netspec", *args]


def python_cmd(*args: str) -> list[str]:
    return [sys.executable, *args]


def run_process(cmd: Sequence[str], env: dict | None = None, timeout: float = 600) -> Proc:
    """Run cmd in the repository root (so `python -m bench.workers...` finds this package); wall
    time from spawn to exit, and the child's peak RSS. Killed after `timeout` seconds."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), cwd=ROOT, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # blocks without polling: no load of our own
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        out.seek(0)
        err.seek(0)
        return Proc(wall, usage.ru_maxrss * 1024, proc.returncode, out.read(), err.read())


def interleave(
    contenders: dict[str, Callable[[], float]], runs: int, warmup: int = 0, log: Callable[[str], None] = print
) -> dict[str, Stats]:
    """Call each contender `runs` times, interleaved; round r starts with contender r mod n, so
    none is always first. `warmup` rounds run first and are dropped (disk cache, lazy imports)."""
    names = list(contenders)
    values: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + runs):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            v = contenders[name]()
            if r >= warmup:
                values[name].append(v)
        tag = "warm-up" if r < warmup else f"run {r - warmup + 1}/{runs}"
        log(f"    {tag}: " + ", ".join(f"{n} {values[n][-1]:.4g}" if r >= warmup else n for n in names))
    return {n: Stats(tuple(v)) for n, v in values.items()}


IMPORT_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def import_profile(*netspec_args: str, top: int = 6) -> tuple[set[str], list[tuple[str, float]]]:
    """`python -X importtime -m netspec ARGS`: every module it imports, and its costliest imports
    made by the program itself (name, cumulative seconds)."""
    p = run_process([sys.executable, "-X", "importtime", "-m", "netspec", *netspec_args])
    p.check("python -X importtime -m netspec " + " ".join(netspec_args))
    mods, first = set(), []
    for m in IMPORT_LINE.finditer(p.stderr):
        mods.add(m[4])
        if len(m[3]) == 1:  # one space of indent: not imported by another module
            first.append((m[4], int(m[2]) / 1e6))
    return mods, sorted(first, key=lambda t: -t[1])[:top]


def imports_torch(mods: set[str]) -> bool:
    return any(m == "torch" or m.startswith("torch.") for m in mods)


def describe_imports(mods: set[str], top: list[tuple[str, float]]) -> list[str]:
    return [
        f"{len(mods)} modules imported; torch {'' if imports_torch(mods) else 'not '}among them",
        "costliest imports (cumulative): " + ", ".join(f"{n} {s * 1000:.0f} ms" for n, s in top),
    ]
