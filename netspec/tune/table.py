"""The study as a table: one plain dict per trial, ordered best first, and its Pareto front. Pure
functions over Optuna's trials; confirm and report read them.
"""

from __future__ import annotations

import math

from .space import Search


def rows(trials, search: Search) -> list[dict]:
    """One plain dict per Optuna trial, in trial order."""
    out = []
    for t in sorted(trials, key=lambda t: t.number):
        a = t.user_attrs
        values = a.get("values")
        if values is None:  # broke before its values were recorded: decode Optuna's
            values = {p.key: p.decode(t.params[p.key]) for p in search.params if p.key in t.params}
        curve = a.get("curve") or []
        out.append(
            {
                "number": t.number,
                "state": t.state.name,
                "outcome": a.get("outcome", "interrupted" if t.state.name == "FAIL" else None),
                "reason": a.get("reason"),
                "objectives": list(t.values) if t.state.name == "COMPLETE" else None,
                "last": curve[-1] if curve else None,
                "params": a.get("params"),
                "macs": a.get("macs"),
                "epochs": a.get("epochs", 0),
                "seconds": a.get("seconds"),
                "values": values,
                "val": a.get("val"),
                "test": a.get("test"),
                "curve": curve,
                "baseline": bool(a.get("baseline")),
                "retry_of": a.get("retry_of"),
                "worker": _worker(a.get("worker")),
            }
        )
    return out


def _worker(attr) -> str | None:
    """'host:pid' of the process that ran the trial (a shared study's workers run on many machines)."""
    return f"{attr.get('host')}:{attr.get('pid')}" if isinstance(attr, dict) else None


def order(rows: list[dict], search: Search, value=lambda r: r["objectives"][0]) -> list[dict]:
    """Best first: the metric, then the smaller model (params, or MACs when they are an objective),
    then the earlier trial."""
    sign = -1 if search.directions[0] == "maximize" else 1
    size = "macs" if "macs" in search.objectives else "params"
    return sorted(rows, key=lambda r: (sign * value(r), r[size] if r[size] is not None else math.inf, r["number"]))


def _costs(row: dict, search: Search) -> tuple[float, ...]:
    """The objectives as costs to minimize."""
    return tuple(-v if d == "maximize" else v for v, d in zip(row["objectives"], search.directions, strict=True))


def dominates(a: tuple, b: tuple) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def pareto(table: list[dict], search: Search) -> list[int]:
    """Trial numbers of the non-dominated trained trials."""
    done = [r for r in table if r["objectives"] is not None]
    costs = {r["number"]: _costs(r, search) for r in done}
    return [n for n, c in costs.items() if not any(dominates(o, c) for m, o in costs.items() if m != n)]
