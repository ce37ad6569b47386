"""The figures of the benchmark, one module each. A figure's `run(ctx)` measures netspec and its
baseline interleaved and returns table rows; FIGURES keeps the report's order."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ..timing import Stats


@dataclass
class Row:
    figure: str  # the figure's name (--only NAME)
    label: str  # what the row measures
    unit: str  # of the netspec and baseline values
    netspec: Stats | None
    baseline: Stats | None = None
    baseline_name: str = ""
    ratio: float | None = None
    ratio_def: str = ""  # how the ratio is formed, e.g. "baseline / netspec (speed-up)"
    goal: str = ""  # e.g. ">= 20": a ratio goal; empty: reported only
    checks: dict[str, bool] = field(default_factory=dict)  # further conditions of passing
    notes: list[str] = field(default_factory=list)
    device: str = "cpu"
    error: str | None = None

    @property
    def passed(self) -> bool | None:
        if self.error:
            return False
        if not self.goal or self.ratio is None:
            return None if not self.checks else all(self.checks.values())
        op, value = self.goal.split()
        ok = self.ratio >= float(value) if op == ">=" else self.ratio <= float(value)
        return ok and all(self.checks.values())

    def to_json(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("netspec", "baseline")}
        out["netspec"] = self.netspec.to_json() if self.netspec else None
        out["baseline"] = self.baseline.to_json() if self.baseline else None
        out["passed"] = self.passed
        if out["ratio"] is not None and not math.isfinite(out["ratio"]):
            out["ratio"] = None
        return out


@dataclass
class Context:
    quick: bool
    threads: int  # intra-op threads of every torch process (0: torch's default)
    log: Callable[[str], None] = print
    cuda: str | None = None  # the CUDA device's name when one is available
    features: dict[str, bool] = field(default_factory=dict)  # optional netspec train options present
    cache: dict = field(default_factory=dict)  # measurements shared between figures

    def runs(self, full: int, quick: int = 2) -> int:
        return quick if self.quick else full

    @property
    def torch_env(self) -> dict[str, str]:
        """Environment of every process that runs torch: the same thread count for all contenders."""
        if not self.threads:
            return {}
        n = str(self.threads)
        return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n}


def speedup_row(
    figure: str, label: str, stats: dict[str, Stats], baseline: str, baseline_name: str, goal: str, **extra
) -> Row:
    """A whole-process time against its baseline's: the ratio is baseline / netspec (a speed-up)."""
    ours, base = stats["netspec"], stats[baseline]
    return Row(
        figure,
        label,
        "s",
        ours,
        base,
        baseline_name,
        base.median / ours.median,
        "baseline / netspec (speed-up)",
        goal,
        **extra,
    )


def failed_row(figure: str, label: str, exc: Exception, device: str = "cpu") -> Row:
    return Row(figure, label, "", None, error=f"{type(exc).__name__}: {exc}", device=device)


def figures() -> dict[str, Callable[[Context], list[Row]]]:
    from . import chains, check, data, step, summarize, tables, train

    return {
        "summarize": summarize.run,
        "check": check.run,
        "chains": chains.run,
        "step": step.run,
        "train": train.run_throughput,
        "memory": train.run_memory,
        "compile": train.run_compile,
        "data": data.run,
        "tables": tables.run,
    }
