"""`netspec tune`: a structure search with Optuna (imports torch and Optuna when it runs)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .core import OPT_OUTPUT, OPT_RESOURCES, RUN_PANEL, Exit, Sets, UserError, command, complete_spec, console, path_arg


@command(RUN_PANEL, "netspec tune specs/digits_cnn_tune.yaml -o runs/tune-digits --jobs 2")
def tune(
    spec: Annotated[
        Path,
        typer.Argument(
            metavar="SPEC", help="the spec file (YAML) with train: and search: sections", autocompletion=complete_spec
        ),
    ],
    out_text: Annotated[
        str | None,
        typer.Option(
            "-o",
            "--out",
            metavar="DIR",
            help="this worker's folder: the study (study.db, unless --storage), trials.json, best.yaml, plots "
            "(default runs/tune-<name>); rerun to resume the study",
            rich_help_panel=OPT_OUTPUT,
        ),
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option("--trials", min=1, help="trials in all, earlier runs counted (default: search.trials)"),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", metavar="S", help="start no trial after S seconds (default: search.timeout)"),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            min=1,
            help="processes working on the study at once, sharing the cores",
            rich_help_panel=OPT_RESOURCES,
        ),
    ] = 1,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            help="CPU threads of each process, when the spec leaves train.threads at auto (default: cores / jobs "
            "with --jobs; else torch's own, or cores / N while N workers of the study run trials on this machine)",
            rich_help_panel=OPT_RESOURCES,
        ),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            metavar="URL",
            envvar="NETSPEC_TUNE_STORAGE",
            show_envvar=True,
            help="the study's storage, shared by workers on many machines: postgresql+psycopg2://USER@HOST/DB, "
            "mysql+pymysql://..., journal:///SHARED/study.log, sqlite:///FILE.db (default: study.db in -o)",
            rich_help_panel=OPT_RESOURCES,
        ),
    ] = None,
    study_name: Annotated[
        str | None,
        typer.Option(
            "--study-name",
            metavar="NAME",
            help="the study's name in --storage (default: the spec's name and a hash of the spec and its space)",
            rich_help_panel=OPT_RESOURCES,
        ),
    ] = None,
    grace: Annotated[
        int,
        typer.Option(
            "--grace",
            metavar="S",
            min=2,
            help="a worker silent this long (no heartbeat) is dead: its trial is failed and queued again",
            rich_help_panel=OPT_RESOURCES,
        ),
    ] = 60,
    report_only: Annotated[
        bool,
        typer.Option(
            "--report-only",
            help="run nothing: write trials.json, best.yaml and the plots into -o from the study as it stands",
            rich_help_panel=OPT_OUTPUT,
        ),
    ] = False,
    set_: Sets = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="no line per trial", rich_help_panel=OPT_OUTPUT)] = False,
) -> None:
    """Search the values the spec's search: section names, with Optuna. Each candidate is compiled and
    shape-checked, and held to the constraints, before it trains; unpromising ones are pruned epoch by
    epoch. With search.confirm, the best few are then trained again on seeds the study never used, beside the
    spec as written, and best.yaml is chosen by those runs. Writes study.db (rerun to resume),
    trials.json/csv, best.yaml (a normal spec) and plots. With --storage, workers on many machines share
    one study: run the same command on each, every one with its own -o."""
    if timeout is not None and not timeout > 0:
        raise UserError(f"--timeout expects a positive number of seconds, got {timeout}")
    try:
        from ..tune import storage as stores
        from ..tune.study import StudyError, load_plan, name_of, open_study, run
    except ImportError as exc:
        raise UserError(f"netspec tune needs Optuna: pip install 'netspec[tune]' ({exc})") from None
    from ..record import replace
    from ..tune.confirm import seeds_text
    from ..tune.report import confirm_table, confirmed_line, rich_table, write

    if out_text is not None and stores.looks_like_url(out_text):
        raise UserError(
            "-o names this worker's local folder, not the study's storage"
            "\n  expected: a folder for trials.json, best.yaml and the plots (e.g. -o runs/tune-a)"
            f"\n  received: -o {stores.mask(out_text)}"
            f"\n  hint: pass the URL as --storage {stores.mask(out_text)} and keep -o a folder"
        )
    try:
        where = None if storage is None else stores.parse(storage)
    except StudyError as exc:
        raise UserError(str(exc)) from None
    if where is None and study_name is not None:
        raise UserError(
            "--study-name names a study in --storage"
            "\n  expected: --storage URL beside it"
            f"\n  received: --study-name {study_name} alone"
            "\n  hint: -o's own study.db holds one study, named for you; leave out --study-name"
        )
    plan = load_plan(spec, set_ or [])
    out = path_arg(out_text) if out_text else path_arg("runs") / f"tune-{plan.name}"
    if where is not None:
        where = replace(where, name=study_name, grace=grace)
    else:
        where = replace(stores.local(out), grace=grace)
    shown = None if where.local else where.shown
    s = plan.search
    if not report_only:
        print(
            f"tuning {plan.name}: {len(s.params)} values, {trials or s.trials} trials, "
            f"{' and '.join(f'{d} {o}' for o, d in zip(s.objectives, s.directions, strict=True))} -> {out}/"
            + ("" if shown is None else f"\nstudy {name_of(plan, where)!r} in {shown}")
        )
    from ..runtime import lock

    notes: list[str] = []
    interrupted = False
    try:  # the study's lock (study.run takes it, nested) also covers writing its reports
        # The lock file records the command line, for a second writer to be told who holds the
        # folder: with the URL's password masked.
        with lock.hold(out, command=stores.mask(lock.command_line(), stores.password_of(where))):
            if report_only:
                study = open_study(plan, where, create=False)
            else:
                study, notes, interrupted = run(
                    plan, out, trials=trials, timeout=timeout, jobs=jobs, quiet=quiet, where=where, threads=threads
                )
            result = write(plan, study, out, shown)
    except (StudyError, lock.LockError) as exc:
        raise UserError(str(exc)) from None
    for line in notes:
        print(line)
    screen = console()
    if not screen.is_terminal:  # a log file: room for every column
        screen.width = 160
    confirmed = result["confirm"]
    screen.print(rich_table(result["table"], s, result["best"], result["front"], f"{plan.name}: trials", confirmed))
    if confirmed is not None and confirmed["rows"]:
        seeds = seeds_text(confirmed["seeds"])
        title = f"{plan.name}: the finalists on {seeds}, new to the study (test accuracy: not used)"
        screen.print(confirm_table(confirmed, s, title))
    best, base = result["best"], result["baseline"]
    if best is not None:
        own = f" (the spec's own values: {base['objectives'][0]:.4f}, {base['params']:,} params)" if base else ""
        print(f"best: trial {best['number']}: {s.metric} {best['objectives'][0]:.4f}, {best['params']:,} params{own}")
        fresh = confirmed_line(confirmed, best["number"], s.metric)
        if fresh is not None:
            print(f"  {fresh}")
        elif confirmed is not None:
            print("  the confirm stage is not finished: run the same command again to finish it")
        if s.multi:
            print(f"Pareto front ({s.metric} / {s.objectives[1]}): trials {', '.join(map(str, result['front']))}")
    print("wrote " + ", ".join(str(f) for f in result["files"]))
    if interrupted:
        print("interrupted: run the same command again to resume the study", file=sys.stderr)
        raise Exit(130)
    if best is None:
        raise UserError("no trial trained to the end, so there is no best spec; the table says why")
    print(f"train it: netspec train {out}/best.yaml")
