"""Commands that report on finished runs from their files: runs (no torch) and plot."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .core import OPT_OUTPUT, REPORT_PANEL, TableFormat, UserError, command, complete_run_dir, path_arg, print_json

SORT_COLUMNS = ("run", "name", "hash", "status", "epochs", "best", "test", "time", "updated")


@command(REPORT_PANEL, "netspec runs", "netspec runs --sort best -r", "netspec runs runs/ -f json")
def runs(
    folder: Annotated[
        str, typer.Argument(metavar="FOLDER", help="where to look for run directories", autocompletion=complete_run_dir)
    ] = "runs",
    sort: Annotated[
        str,
        typer.Option(
            "--sort",
            metavar="COLUMN",
            help=", ".join(SORT_COLUMNS),
            autocompletion=lambda incomplete: [c for c in SORT_COLUMNS if c.startswith(incomplete)],
        ),
    ] = "run",
    reverse: Annotated[
        bool, typer.Option("-r", "--reverse", help="reverse the order (runs without a value stay last)")
    ] = False,
    fmt: TableFormat = "table",
) -> None:
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


@command(REPORT_PANEL, "netspec plot runs/lr_0.003 runs/lr_0.0003 -o digits_curves.png --lr")
def plot(
    run_dirs: Annotated[
        list[str],
        typer.Argument(
            metavar="RUN_DIR...",
            help="run directories of `netspec train` (several: overlaid)",
            autocompletion=complete_run_dir,
        ),
    ],
    out: Annotated[
        str, typer.Option("-o", "--out", help="the picture: .png, .svg or .pdf", rich_help_panel=OPT_OUTPUT)
    ],
    lr: Annotated[bool, typer.Option("--lr", help="add a subplot of the learning rate")] = False,
) -> None:
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
