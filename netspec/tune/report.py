"""What a study found: a row per trial, the best trial and the Pareto front; written as
trials.json, trials.csv, the best spec (best.yaml, and front/ in multi-objective mode) and plots
(history.png, pareto.png: matplotlib, when it is installed).

The best trial: the best value of the metric among the trials that trained; a tie (frequent with
accuracy on a small validation split) goes to the smaller model, then to the earlier trial. In
multi-objective mode it is chosen the same way among the Pareto front.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from ..runtime.atomic import atomic_write_bytes, atomic_write_text
from .space import Search, short_label
from .specfile import spec_text


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
            }
        )
    return out


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


def best(table: list[dict], search: Search, front: list[int]) -> dict | None:
    pool = [r for r in table if r["objectives"] is not None and (not search.multi or r["number"] in front)]
    if not pool:
        return None
    sign = -1 if search.directions[0] == "maximize" else 1
    size = "macs" if "macs" in search.objectives else "params"
    return min(
        pool, key=lambda r: (sign * r["objectives"][0], r[size] if r[size] is not None else math.inf, r["number"])
    )


# How a PRUNED trial's outcome reads in the table.
OUTCOMES = {
    "pruned": "pruned",
    "check": "rejected by the check",
    "constraint": "rejected by a constraint",
    "memory": "rejected by the memory estimate",
    "data": "rejected: data",
    "diverged": "diverged",
    "train": "training refused",
}


def note(row: dict, best_row: dict | None, front: list[int], retries: dict[int, int]) -> str:
    parts = []
    if best_row is not None and row["number"] == best_row["number"]:
        parts.append("best")
    elif row["number"] in front:
        parts.append("front")
    if row["baseline"]:
        parts.append("the spec's own values")
    if row["retry_of"] is not None:
        parts.append(f"retry of {row['retry_of']}")
    if row["state"] == "PRUNED":
        parts.append(f"{OUTCOMES.get(row['outcome'], row['outcome'])}: {row['reason']}")
    elif row["state"] == "FAIL":
        parts.append(row["reason"] or "interrupted")
        if row["number"] in retries:
            parts.append(f"retried as {retries[row['number']]}")
    return "; ".join(parts)


def _headers(search: Search) -> dict[str, str]:
    """A short column name per searched key: its last name, or the whole path where two share it."""
    last = {p.key: p.key.rsplit(".", 1)[-1] for p in search.params}
    names = list(last.values())
    return {k: v if names.count(v) == 1 else k for k, v in last.items()}


def rich_table(table: list[dict], search: Search, best_row, front: list[int], title: str):
    from rich.table import Table

    retries = {r["retry_of"]: r["number"] for r in table if r["retry_of"] is not None}
    out = Table(title=title, title_justify="left")
    out.add_column("#", justify="right")
    out.add_column("state")
    out.add_column(search.metric, justify="right")
    for col in ("params", "MACs", "epochs", "s"):
        out.add_column(col, justify="right")
    heads = _headers(search)
    for p in search.params:
        out.add_column(heads[p.key], justify="right")
    out.add_column("note")
    for r in table:
        if r["objectives"] is not None:
            metric = f"{r['objectives'][0]:.4f}"
        elif r["last"] is not None:
            metric = f"({r['last']:.4f})"  # the last epoch's value of a stopped trial
        else:
            metric = "-"
        style = "bold green" if best_row is not None and r["number"] == best_row["number"] else None
        out.add_row(
            str(r["number"]),
            r["state"].lower(),
            metric,
            f"{r['params']:,}" if r["params"] is not None else "-",
            f"{r['macs']:,}" if r["macs"] is not None else "-",
            str(r["epochs"]),
            f"{r['seconds']:.1f}" if r["seconds"] is not None else "-",
            *(short_label(r["values"][p.key]) if p.key in r["values"] else "-" for p in search.params),
            note(r, best_row, front, retries),
            style=style,
        )
    return out


# ----------------------------------------------------------------------------- files


def _csv(table: list[dict], search: Search) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    tests = sorted({k for r in table for k in (r["test"] or {})})
    w.writerow(
        ["number", "state", "outcome", *search.objectives, "params", "macs", "epochs", "seconds"]
        + [p.key for p in search.params]
        + [f"test_{k}" for k in tests]
        + ["reason"]
    )
    for r in table:
        objectives = r["objectives"] or [""] * len(search.objectives)
        chosen = [r["values"].get(p.key, "") for p in search.params]
        w.writerow(
            [r["number"], r["state"], r["outcome"], *objectives, r["params"], r["macs"], r["epochs"], r["seconds"]]
            + [v if not isinstance(v, list | dict) else json.dumps(v) for v in chosen]
            + [(r["test"] or {}).get(k, "") for k in tests]
            + [r["reason"] or ""]
        )
    return buf.getvalue()


def _header(plan, row: dict, study_dir: Path, search: Search, baseline: dict | None) -> list[str]:
    metric = f"{search.metric} {row['objectives'][0]:.4f}"
    lines = [
        f"Written by `netspec tune` from {plan.spec}: trial {row['number']} of the study in {study_dir}/",
        f"({metric} on the validation split, {row['params']:,} params"
        + (
            f"; the spec's own values: {baseline['objectives'][0]:.4f}, {baseline['params']:,} params)"
            if baseline
            else ")"
        ),
        "Chosen values:",
        *(f"  {k}: {short_label(v, 60)}" for k, v in row["values"].items()),
    ]
    return lines


def write(plan, study, study_dir: Path) -> dict:
    """Write every output file; returns the summary (best row, front, files written)."""
    search = plan.search
    table = rows(study.get_trials(deepcopy=False), search)
    front = pareto(table, search) if search.multi else []
    best_row = best(table, search, front)
    baseline = next((r for r in table if r["baseline"] and r["objectives"] is not None), None)
    files = []
    summary = {
        "spec": str(plan.spec),
        "objectives": list(search.objectives),
        "directions": list(search.directions),
        "counted": sum(
            r["state"] in ("COMPLETE", "PRUNED") or (r["state"] == "FAIL" and bool(r["reason"])) for r in table
        ),
        "best": best_row["number"] if best_row else None,
        "front": front,
        "trials": table,
    }
    atomic_write_text(study_dir / "trials.json", json.dumps(summary, indent=1, default=str) + "\n")
    atomic_write_text(study_dir / "trials.csv", _csv(table, search))
    files += [study_dir / "trials.json", study_dir / "trials.csv"]
    if best_row is not None:
        header = _header(plan, best_row, study_dir, search, baseline)
        text = spec_text(plan.doc, best_row["values"], header, study_dir / "best.yaml")
        atomic_write_text(study_dir / "best.yaml", text)
        files.append(study_dir / "best.yaml")
    if search.multi:
        for n in front:
            row = next(r for r in table if r["number"] == n)
            path = study_dir / "front" / f"trial_{n}.yaml"
            path.parent.mkdir(exist_ok=True)
            header = _header(plan, row, study_dir, search, baseline)
            atomic_write_text(path, spec_text(plan.doc, row["values"], header, path))
            files.append(path)
    files += plots(table, search, best_row, front, study_dir)
    return {"table": table, "best": best_row, "front": front, "baseline": baseline, "files": files}


def plots(table: list[dict], search: Search, best_row, front: list[int], study_dir: Path) -> list[Path]:
    """history.png (and pareto.png with several objectives); nothing without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return []
    written = []
    done = [r for r in table if r["objectives"] is not None]
    stopped = [r for r in table if r["objectives"] is None and r["last"] is not None]
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter([r["number"] for r in done], [r["objectives"][0] for r in done], s=18, label="trained")
    if stopped:
        ax.scatter([r["number"] for r in stopped], [r["last"] for r in stopped], s=18, marker="x", c="grey",
                   label="pruned (last epoch)")  # fmt: skip
    if done:
        pick = max if search.directions[0] == "maximize" else min
        xs, ys, run = [], [], None
        for r in done:
            run = r["objectives"][0] if run is None else pick(run, r["objectives"][0])
            xs.append(r["number"])
            ys.append(run)
        ax.step(xs, ys, where="post", c="C3", label="best so far")
    rejected = sum(r["state"] == "PRUNED" and r["epochs"] == 0 for r in table)
    ax.set(xlabel="trial", ylabel=search.metric, title=f"optimization history ({rejected} rejected before training)")
    ax.legend(loc="best", fontsize=8)
    written.append(_save(fig, study_dir / "history.png"))
    if search.multi and done:
        size = search.objectives[1]
        fig = Figure(figsize=(7, 4.2), layout="constrained")
        ax = fig.add_subplot()
        ax.scatter([r[size] for r in done], [r["objectives"][0] for r in done], s=18, c="grey", label="trials")
        on = sorted((r for r in done if r["number"] in front), key=lambda r: r[size])
        ax.plot([r[size] for r in on], [r["objectives"][0] for r in on], "o-", c="C3", label="Pareto front")
        if best_row is not None:
            ax.scatter([best_row[size]], [best_row["objectives"][0]], marker="*", s=160, c="C2", label="best", zorder=3)
        ax.set_xscale("log")
        ax.set(xlabel=size, ylabel=search.metric, title=f"{search.metric} against {size}")
        ax.legend(loc="best", fontsize=8)
        written.append(_save(fig, study_dir / "pareto.png"))
    return written


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())
    return path


def values_text(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={short_label(v)}" for k, v in values.items())
