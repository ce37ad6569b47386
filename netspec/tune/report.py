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
from pathlib import Path
from typing import Any

from ..runtime.atomic import atomic_write_bytes, atomic_write_text
from . import confirm
from .space import Search, short_label
from .specfile import spec_text
from .table import order, pareto, rows


def best(table: list[dict], search: Search, front: list[int], confirmed: dict | None = None) -> dict | None:
    """The confirm stage's choice when it has made one; else the best study score."""
    if confirmed is not None and confirmed["chosen"] is not None:
        return next(r for r in table if r["number"] == confirmed["chosen"])
    pool = [r for r in table if r["objectives"] is not None and (not search.multi or r["number"] in front)]
    return order(pool, search)[0] if pool else None


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


def note(row: dict, best_row: dict | None, front: list[int], retries: dict[int, int], fresh: dict[int, float]) -> str:
    parts = []
    if best_row is not None and row["number"] == best_row["number"]:
        parts.append("best")
    elif row["number"] in front:
        parts.append("front")
    if row["number"] in fresh:
        parts.append(f"new seeds: {fresh[row['number']]:.4f}")
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


def _fresh(confirmed: dict | None) -> dict[int, float]:
    """Trial number -> its mean on the confirm seeds, for the trials that have one."""
    rows = confirmed["rows"] if confirmed else []
    return {r["trial"]: r["mean"] for r in rows if r["trial"] is not None and r["mean"] is not None}


def rich_table(table: list[dict], search: Search, best_row, front: list[int], title: str, confirmed=None):
    from rich.table import Table

    retries = {r["retry_of"]: r["number"] for r in table if r["retry_of"] is not None}
    fresh = _fresh(confirmed)
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
            note(r, best_row, front, retries, fresh),
            style=style,
        )
    return out


def _signed(x: float) -> str:
    return f"{x:+.4f}"


def confirm_table(confirmed: dict, search: Search, title: str):
    """The confirm stage: a row per pick, its study score beside its score on the new seeds."""
    from rich.table import Table

    out = Table(title=title, title_justify="left")
    for col, right in (
        ("trial", True),
        ("params", True),
        ("study", True),
        ("new seeds", True),
        ("val accuracy", True),
        ("test accuracy", True),
        ("vs the spec [95% CI]", True),
        ("note", False),
    ):
        out.add_column(col, justify="right" if right else "left")
    for r in confirmed["rows"]:
        vs = r["vs_spec"]
        if vs is None:
            diff = "-"
        else:
            ci = vs["ci95"]
            diff = _signed(vs["mean"]) + (f" [{_signed(ci[0])}, {_signed(ci[1])}]" if ci else "")
        notes = []
        if r["trial"] is not None and r["trial"] == confirmed["chosen"]:
            notes.append("best")
        if r["spec"]:
            notes.append("the spec's own values")
        if not r["finalist"]:
            notes.append("reference, not a finalist")
        if not r["complete"]:
            failed = [f"seed {s}: {x['reason']}" for s, x in r["runs"].items() if x["value"] is None]
            notes.append("; ".join(failed) or f"{len(r['runs'])} of {len(confirmed['seeds'])} runs")
        out.add_row(
            "spec" if r["trial"] is None else str(r["trial"]),
            f"{r['params']:,}" if r["params"] is not None else "-",
            f"{r['study']:.4f}" if r["study"] is not None else "-",
            f"{r['mean']:.4f}" if r["mean"] is not None else "-",
            *(f"{r[split]['accuracy']:.4f}" if "accuracy" in r[split] else "-" for split in ("val", "test")),
            diff,
            "; ".join(notes),
            style="bold green" if "best" in notes else None,
        )
    return out


def confirmed_line(confirmed: dict | None, number: int, metric: str) -> str | None:
    """'on seeds 2-4, new to the study: val_loss 0.3118, -0.0052 vs the spec as written on the same
    seeds' for trial `number`; None when it has no complete confirm runs."""
    if confirmed is None:
        return None
    mine = next((r for r in confirmed["rows"] if r["trial"] == number), None)
    if mine is None or mine["mean"] is None:
        return None
    vs = mine["vs_spec"]
    than = f", {vs['mean']:+.4f} vs the spec as written on the same seeds" if vs else ""
    return f"on {confirm.seeds_text(confirmed['seeds'])}, new to the study: {metric} {mine['mean']:.4f}{than}"


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


def _header(
    plan, row: dict, origin: str, search: Search, baseline: dict | None, confirmed: dict | None = None
) -> list[str]:
    metric = f"{search.metric} {row['objectives'][0]:.4f}"
    lines = [
        f"Written by `netspec tune` from {plan.spec}: trial {row['number']} of {origin}",
        f"({metric} on the validation split, {row['params']:,} params"
        + (
            f"; the spec's own values: {baseline['objectives'][0]:.4f}, {baseline['params']:,} params)"
            if baseline
            else ")"
        ),
    ]
    fresh = confirmed_line(confirmed, row["number"], search.metric)
    if fresh is not None:
        lines.append(fresh[0].upper() + fresh[1:])
    return [*lines, "Chosen values:", *(f"  {k}: {short_label(v, 60)}" for k, v in row["values"].items())]


def write(plan, study, study_dir: Path, storage: str | None = None) -> dict:
    """Write every output file into `study_dir`; returns the summary (best row, front, files
    written). `storage`: where a shared study lives (--storage, its password masked); None for the
    folder's own study.db."""
    search = plan.search
    origin = f"the study in {study_dir}/" if storage is None else f"the study {study.study_name!r} in {storage}"
    table = rows(study.get_trials(deepcopy=False), search)
    front = pareto(table, search) if search.multi else []
    confirmed = confirm.summary(study.user_attrs, table, search, plan.seed)
    best_row = best(table, search, front, confirmed)
    baseline = next((r for r in table if r["baseline"] and r["objectives"] is not None), None)
    files = []
    summary = {
        "spec": str(plan.spec),
        "study": study.study_name,
        "storage": storage or str(study_dir / "study.db"),
        "objectives": list(search.objectives),
        "directions": list(search.directions),
        "counted": sum(
            r["state"] in ("COMPLETE", "PRUNED") or (r["state"] == "FAIL" and bool(r["reason"])) for r in table
        ),
        "best": best_row["number"] if best_row else None,
        "front": front,
        "confirm": confirmed,
        "trials": table,
    }
    atomic_write_text(study_dir / "trials.json", json.dumps(summary, indent=1, default=str) + "\n")
    atomic_write_text(study_dir / "trials.csv", _csv(table, search))
    files += [study_dir / "trials.json", study_dir / "trials.csv"]
    if best_row is not None:
        header = _header(plan, best_row, origin, search, baseline, confirmed)
        text = spec_text(plan.doc, best_row["values"], header, study_dir / "best.yaml")
        atomic_write_text(study_dir / "best.yaml", text)
        files.append(study_dir / "best.yaml")
    if search.multi:
        for n in front:
            row = next(r for r in table if r["number"] == n)
            path = study_dir / "front" / f"trial_{n}.yaml"
            path.parent.mkdir(exist_ok=True)
            header = _header(plan, row, origin, search, baseline)
            atomic_write_text(path, spec_text(plan.doc, row["values"], header, path))
            files.append(path)
    files += plots(table, search, best_row, front, study_dir, confirmed)
    return {
        "table": table,
        "best": best_row,
        "front": front,
        "baseline": baseline,
        "confirm": confirmed,
        "files": files,
    }


def plots(table: list[dict], search: Search, best_row, front: list[int], study_dir: Path, confirmed=None) -> list[Path]:
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
    _confirmed_marks(ax, confirmed)
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


def _confirmed_marks(ax, confirmed: dict | None) -> None:
    """The finalists again, on seeds new to the study (how optimistic their study scores were), and
    the spec as written on the same seeds as a line to beat."""
    if confirmed is None:
        return
    rows = [r for r in confirmed["rows"] if r["mean"] is not None]
    if not rows:
        return
    seeds = confirm.seeds_text(confirmed["seeds"])
    finalists = [r for r in rows if r["finalist"]]
    if finalists:
        ax.scatter([r["trial"] for r in finalists], [r["mean"] for r in finalists], s=46, marker="D",
                   facecolors="none", edgecolors="C2", label=f"finalists on {seeds}")  # fmt: skip
    chosen = [r for r in finalists if r["trial"] == confirmed["chosen"]]
    if chosen:
        ax.scatter([chosen[0]["trial"]], [chosen[0]["mean"]], s=46, marker="D", c="C2", label="best.yaml")
    ref = next((r for r in rows if r["spec"] and not r["finalist"]), None)
    if ref is not None:
        ax.axhline(ref["mean"], ls=":", c="grey", label=f"the spec as written on {seeds}")


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())
    return path


def values_text(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={short_label(v)}" for k, v in values.items())
