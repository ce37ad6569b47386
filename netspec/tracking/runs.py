"""`netspec runs`: the runs found under a folder, one row each, read from their files alone.

A run directory is one that `netspec train` (or a generated train.py) wrote: it holds spec.yaml,
data.json, metrics.jsonl, results.json or checkpoints/. Nothing here imports torch; a file that
cannot be read makes its run `corrupt`, never the command fail.

Status, from the files: results.json -> finished; status.json (written by `netspec train`) says
running and its process is alive on this host -> running; says failed -> failed; a checkpoint
without results -> interrupted (continue it with --resume); neither -> failed (it stopped before
its first checkpoint).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ..errors import did_you_mean
from .metrics import read_epochs

if TYPE_CHECKING:
    from typing import TypeGuard

MARKERS = ("spec.yaml", "data.json", "metrics.jsonl", "results.json", "checkpoints")
COLUMNS = ("run", "name", "hash", "status", "epochs", "best", "test", "time", "updated")
MAX_DEPTH = 4  # levels of folders searched below DIR: runs/<group>/<name> and a little more


class RunsError(Exception):
    """A user mistake (no such folder, unknown column): exit code 1."""


# ----------------------------------------------------------------------------- finding and reading


def is_run(folder: Path) -> bool:
    return any((folder / m).exists() for m in MARKERS)


def find_runs(root: Path, depth: int = MAX_DEPTH) -> list[Path]:
    """The run directories at or below `root`; the search does not descend into a run, nor into
    hidden folders."""
    if is_run(root):
        return [root]
    if depth == 0:
        return []
    found = []
    try:
        children = sorted(e.path for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    except OSError:  # unreadable folder: nothing to list there
        return []
    for child in children:
        found += find_runs(Path(child), depth - 1)
    return found


def _json(path: Path, problems: list[str]):
    """A JSON file's value; None when missing. Unreadable: None, and a note in `problems`."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        problems.append(f"{path.name}: {'not valid JSON' if isinstance(exc, ValueError) else exc}")
        return None


def _records(path: Path, problems: list[str]) -> list[dict]:
    """metrics.jsonl's epoch records ([] when missing); damage becomes a note in `problems`."""
    if not path.exists():
        return []
    try:
        found = read_epochs(path)
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"metrics.jsonl: {exc}")
        return []
    if found.damaged:
        problems.append(f"metrics.jsonl: {found.damaged} unreadable line{'s' * (found.damaged > 1)}")
    return found.epochs


def _resolved(run_dir: Path, problems: list[str]) -> dict:
    """The `train:` section and name of spec.resolved.yaml ({} when missing or unreadable)."""
    path = run_dir / "spec.resolved.yaml"
    if not path.exists():
        return {}
    try:
        data = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        problems.append("spec.resolved.yaml: not valid YAML")
        return {}
    return data if isinstance(data, dict) else {}


def _alive(status: dict) -> bool | None:
    """Whether the process that status.json names still runs; None when it ran on another host."""
    pid = status.get("pid")
    if not isinstance(pid, int) or status.get("host") != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists, under another user
    return True


def _number(v: object) -> TypeGuard[float]:  # an int too (a float in the type system)
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def higher_is_better(metric: str | None) -> bool:
    """The loop's direction (EarlyStop's auto mode): accuracy and r2 up, the loss and the errors down."""
    return bool(metric) and ("accuracy" in metric or metric.endswith("r2"))


def _best_of(records: list[dict], train: dict) -> tuple[str | None, float | None, int | None]:
    """(monitor, best value, its epoch) from the records, chosen as the loop chooses them."""
    es = train.get("early_stopping") if isinstance(train.get("early_stopping"), dict) else None
    monitor = es.get("monitor") if es else ("val_loss" if any("val_loss" in r for r in records) else "loss")
    mode = es.get("mode") if es and es.get("mode") in ("min", "max") else None
    mode = mode or ("max" if higher_is_better(monitor) else "min")
    scored = [(r[monitor], r["epoch"]) for r in records if _number(r.get(monitor))]
    if not scored:
        return monitor, None, None
    value, epoch = (max if mode == "max" else min)(scored, key=lambda s: s[0])
    return monitor, value, epoch


def _headline(result: dict | None) -> tuple[str | None, float | None]:
    """The test split's accuracy, else its r2, mae, rmse or mse, else its loss."""
    if not isinstance(result, dict):
        return None, None
    for key in ("accuracy", "r2", "mae", "rmse", "mse", "loss"):
        if _number(result.get(key)):
            return key, result[key]
    return None, None


def run_info(run_dir: Path) -> dict:
    """Everything the table shows about one run, as plain JSON values."""
    problems: list[str] = []
    data = _json(run_dir / "data.json", problems)
    summary = _json(run_dir / "summary.json", problems)
    results = _json(run_dir / "results.json", problems)
    status = _json(run_dir / "status.json", problems)
    records = _records(run_dir / "metrics.jsonl", problems)
    resolved = _resolved(run_dir, problems)
    for name, value in (("data.json", data), ("summary.json", summary), ("results.json", results)):
        if value is not None and not isinstance(value, dict):
            problems.append(f"{name}: not a JSON object")
    data, summary = (v if isinstance(v, dict) else {} for v in (data, summary))
    status = status if isinstance(status, dict) else {}
    train = resolved.get("train")
    train = train if isinstance(train, dict) else {}

    name = summary.get("name") or resolved.get("name")
    planned = train.get("epochs") or (records[-1].get("epochs") if records else None)
    resumable = any((run_dir / "checkpoints" / f).is_file() for f in ("last.pt", "prev.pt"))
    task = train.get("task") or "classification"  # the schema's default
    info = {
        "run": str(run_dir),
        "name": name if isinstance(name, str) else None,
        "task": task if isinstance(task, str) else None,
        # a regressor's loss in standardized units (train.data.standardize_target) or in its targets'
        "standardized_target": isinstance(train.get("data"), dict) and train["data"].get("standardize_target") is True,
        "spec_hash": data.get("spec_hash") if isinstance(data.get("spec_hash"), str) else None,
        "status": None,
        "resumable": resumable,
        "stopped_early": False,
        "epochs_done": max((r["epoch"] for r in records), default=0),
        "epochs_planned": planned if isinstance(planned, int) else None,
        "monitor": None,
        "best": None,
        "best_epoch": None,
        "test_metric": None,
        "test": None,
        "wall_s": None,
        "updated": None,
        "error": status.get("error") if isinstance(status.get("error"), str) else None,
        "problems": problems,
    }
    info["monitor"], info["best"], info["best_epoch"] = _best_of(records, train)
    if isinstance(results, dict):
        if _number(results.get("epochs_run")):
            info["epochs_done"] = int(results["epochs_run"])
        info["stopped_early"] = results.get("stopped_early") is True
        if isinstance(results.get("monitor"), str):
            info["monitor"], info["best"], info["best_epoch"] = (
                results["monitor"],
                results.get("best") if _number(results.get("best")) else None,
                results.get("best_epoch") if isinstance(results.get("best_epoch"), int) else None,
            )
        info["test_metric"], info["test"] = _headline(results.get("test"))
    wall = status.get("wall_s")
    times = [r["time"] for r in records if _number(r.get("time"))]
    info["wall_s"] = float(wall) if _number(wall) else (sum(times) if times else None)
    stamps = []
    for f in ("metrics.jsonl", "results.json", "status.json", "checkpoints/last.pt", "spec.yaml"):
        try:
            stamps.append((run_dir / f).stat().st_mtime)
        except OSError:
            continue
    info["updated"] = max(stamps) if stamps else None
    info["status"] = _status(info, results, status)
    return info


def _status(info: dict, results, status: dict) -> str:
    if info["problems"]:
        return "corrupt"
    if isinstance(results, dict):
        return "finished"
    said = status.get("status")
    if said == "running":
        alive = _alive(status)
        if alive is None:
            return "running?"  # on another machine: its process cannot be asked
        if alive:
            return "running"
        info["error"] = info["error"] or "killed (its process is gone)"
    if said == "failed":
        return "failed"
    return "interrupted" if info["resumable"] else "failed"


def list_runs(root: Path) -> list[dict]:
    if not root.exists():
        raise RunsError(f"{root} does not exist; runs are written to runs/<name> by `netspec train`, or pass a folder")
    if not root.is_dir():
        raise RunsError(f"{root} is not a folder; pass the folder that holds run directories (default: runs)")
    return [run_info(d) for d in find_runs(root)]


# ----------------------------------------------------------------------------- sorting and display


def _sort_key(column: str):
    keys = {
        "run": lambda r: r["run"],
        "name": lambda r: r["name"],
        "hash": lambda r: r["spec_hash"],
        "status": lambda r: r["status"],
        "epochs": lambda r: r["epochs_done"],
        "best": lambda r: r["best"],
        "test": lambda r: r["test"],
        "time": lambda r: r["wall_s"],
        "updated": lambda r: r["updated"],
    }
    return keys[column]


# Columns whose values are comparable only between runs of one task and one metric.
SCORED = {"best": "monitor", "test": "test_metric"}


def sort_runs(runs: list[dict], column: str, reverse: bool = False) -> list[dict]:
    """Sorted by a column; runs without a value go last either way.

    best and test hold values of different metrics (a classifier's val_accuracy, a regressor's
    val_loss in its targets' units, or in standardized units with train.data.standardize_target):
    they are ranked only within a task, metric and loss units, best first (the
    metric's direction: accuracy and r2 up, losses and errors down; -r: worst first). The groups
    follow each other by task, then metric name; a value is never ranked against another metric's."""
    if column not in COLUMNS:
        hint = did_you_mean(column, COLUMNS) or ""
        raise RunsError(f"unknown column {column!r} for --sort; expected one of {', '.join(COLUMNS)}. {hint}".strip())
    key = _sort_key(column)
    if column in SCORED:
        metric = SCORED[column]

        value = key

        def scored(r):
            sign = -1 if higher_is_better(r[metric]) else 1
            units = bool(r.get("standardized_target")) and (r[metric] or "").endswith("loss")
            return (r.get("task") or "", r[metric] or "", units, sign * value(r) * (-1 if reverse else 1))

        known = sorted((r for r in runs if r[column] is not None), key=scored)
        return known + [r for r in runs if r[column] is None]
    known = sorted((r for r in runs if key(r) is not None), key=key, reverse=reverse)
    return known + [r for r in runs if key(r) is None]


def _duration(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 60:
        return f"{s:.1f}s"
    m, sec = divmod(round(s), 60)
    return f"{m}m {sec:02d}s" if m < 60 else f"{m // 60}h {m % 60:02d}m"


def cells(r: dict) -> dict[str, str]:
    """One run's display strings, by column."""
    planned = r["epochs_planned"]
    epochs = f"{r['epochs_done']}/{planned if planned is not None else '?'}"
    best = "-"
    if r["best"] is not None:
        best = f"{r['monitor']} {r['best']:.4f}" + (f" @{r['best_epoch']}" if r["best_epoch"] else "")
    status = r["status"] + (" (early stop)" if r["stopped_early"] else "")
    return {
        "run": r["run"],
        "name": r["name"] or "-",
        "hash": (r["spec_hash"] or "-")[:8],
        "status": status,
        "epochs": epochs,
        "best": best,
        "test": "-" if r["test"] is None else f"{r['test_metric']} {r['test']:.4f}",
        "time": _duration(r["wall_s"]),
        "updated": "-" if r["updated"] is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(r["updated"])),
    }


RIGHT = {"epochs", "time"}


def notes(runs: list[dict]) -> list[str]:
    """The lines under the table: what is wrong with corrupt and failed runs."""
    out = []
    for r in runs:
        if r["problems"]:
            out.append(f"{r['run']}: corrupt: {'; '.join(r['problems'])}")
        elif r["error"] and r["status"] in ("failed", "interrupted"):
            out.append(f"{r['run']}: {r['error']}")
    if any(r["status"] == "interrupted" for r in runs):
        out.append("interrupted runs continue with `netspec train SPEC -o RUN_DIR --resume`")
    return out


def text(runs: list[dict]) -> str:
    """A plain fixed-width table (for files and pipes)."""
    table = [{c: c for c in COLUMNS}] + [cells(r) for r in runs]
    widths = {c: max(len(row[c]) for row in table) for c in COLUMNS}
    lines = []
    for j, row in enumerate(table):
        line = "  ".join(row[c].rjust(widths[c]) if c in RIGHT else row[c].ljust(widths[c]) for c in COLUMNS)
        lines.append(line.rstrip())
        if j == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines + notes(runs)) + "\n"


def markdown(runs: list[dict]) -> str:
    out = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---:" if c in RIGHT else "---" for c in COLUMNS) + "|",
    ]
    for r in runs:
        row = cells(r)
        out.append("| " + " | ".join(row[c].replace("|", "\\|") for c in COLUMNS) + " |")
    extra = notes(runs)
    return "\n".join(out + ([""] + [f"- {n}" for n in extra] if extra else [])) + "\n"


def rich_print(runs: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for c in COLUMNS:
        table.add_column(c, justify="right" if c in RIGHT else "left")
    styles = {"corrupt": "red", "failed": "red", "running": "cyan", "interrupted": "yellow"}
    for r in runs:
        row = cells(r)
        table.add_row(*(row[c] for c in COLUMNS), style=styles.get(r["status"]))
    console = Console(highlight=False, soft_wrap=True)
    console.print(table)
    for line in notes(runs):
        console.print(line)
