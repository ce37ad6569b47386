"""Commands that report on finished runs from their files: runs (no torch) and plot."""

from __future__ import annotations

import sys

from .core import TABLE_FORMAT, UserError, arg, command, path_arg, print_json


@command(
    arg("folder", nargs="?", default="runs", help="where to look for run directories (default: runs)"),
    arg("--sort", metavar="COLUMN", default="run", help="run, name, hash, status, epochs, best, test, time, updated"),
    arg("-r", "--reverse", action="store_true", help="reverse the order (runs without a value stay last)"),
    TABLE_FORMAT,
)
def runs(folder: str = "runs", sort: str = "run", reverse: bool = False, fmt: str = "table") -> None:
    """The past runs under a folder: spec name and hash, status (finished, interrupted, failed,
    running, corrupt), epochs done of planned, best monitored metric, test metric, wall time."""
    from ..tracking import runs as tr

    try:
        found = tr.sort_runs(tr.list_runs(path_arg(folder)), sort, reverse)
    except tr.RunsError as exc:
        raise UserError(str(exc)) from None
    if fmt == "json":
        print_json(found)
    elif not found:
        print(f"no runs under {folder}/ (a run directory holds spec.yaml, metrics.jsonl or checkpoints/)")
    elif fmt == "markdown":
        print(tr.markdown(found), end="")
    elif fmt == "text" or not sys.stdout.isatty():
        print(tr.text(found), end="")
    else:
        tr.rich_print(found, f"{len(found)} run{'s' * (len(found) != 1)} under {folder}/")


@command(
    arg("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories of `netspec train` (several: overlaid)"),
    arg("-o", "--out", required=True, help="the picture: .png, .svg or .pdf"),
    arg("--lr", action="store_true", help="add a subplot of the learning rate"),
)
def plot(run_dirs: list[str], out: str, lr: bool = False) -> None:
    """Plot the training curves of one or more runs. A subplot per quantity (loss, each metric), runs
    by colour, train solid and validation dashed; needs matplotlib."""
    from ..viz.plot import PlotError, load_runs, save

    try:
        runs = load_runs(run_dirs)
        axes = save(runs, out, lr=lr)
    except PlotError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"{len(runs)} run{'s' * (len(runs) != 1)}, {axes} plots -> {out}")
