"""Commands that build, train or run a model (they import torch when they run): build, train,
evaluate, predict, export, tune."""

from __future__ import annotations

import sys

from .core import (
    DIM,
    FORCE,
    MAX_MEMORY,
    RUN_DIR,
    SET,
    TEXT_OR_JSON,
    Exit,
    UserError,
    arg,
    command,
    console,
    memory_limit,
    parse_dims,
    path_arg,
    positive_int,
    print_json,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up (~4 ms)
if TYPE_CHECKING:
    from pathlib import Path


@command(
    arg("spec", type=path_arg, help="the spec file (YAML)"),
    arg("-o", "--out", type=path_arg, default="build", help="output directory (default: build)"),
    arg("--seed", type=int, help="seed for weight initialization (default: train.seed or 0)"),
    FORCE,
    SET,
    DIM,
    MAX_MEMORY,
)
def build(
    spec: Path,
    out: Path | None = None,
    seed: int | None = None,
    force: bool = False,
    set_: list[str] | None = None,
    dim: list[str] | None = None,
    max_memory: str | None = None,
) -> None:
    """Write model.py (standalone PyTorch), weights.pt, the resolved spec and the summary;
    with a train: section also train.py and data.npz."""
    from ..memory import MemoryLimitError, check
    from ..runtime.session import open_spec

    out = path_arg("build") if out is None else out
    limit = memory_limit(max_memory)
    session = open_spec(spec, set_, parse_dims(dim), require_train=False)
    try:  # from the static counts, before a single weight is allocated
        check(session.typed, limit)
    except MemoryLimitError as exc:
        raise UserError(str(exc)) from None
    if out.exists() and any(out.iterdir()) and not force:
        raise UserError(f"{out} exists and is not empty; pass --force to overwrite, or choose another --out")
    from ..lower.build import write_build
    from ..runtime.session import RunError

    try:
        files = write_build(session, out, seed=seed)
    except RunError as exc:
        raise UserError(str(exc)) from None
    t = session.typed
    print(f"built {t.graph.name}: {t.total_params:,} params -> {out}/")
    for f in files:
        print(f"  {f.name}")


@command(
    arg("spec", type=path_arg, help="the spec file (YAML) with a train: section"),
    arg("-o", "--out", type=path_arg, help="run directory (default runs/<name>)"),
    SET,
    arg("--resume", action="store_true", help="continue the run in --out from its last checkpoint"),
    arg("--init-from", type=path_arg, help="start from these weights (a checkpoint or weights.pt)"),
    arg("--force", action="store_true", help="overwrite an existing run directory"),
    arg("-q", "--quiet", action="store_true", help="no progress output"),
    arg("--max-steps", type=positive_int, help="stop after N steps with a checkpoint (time-sliced jobs)"),
    DIM,
    MAX_MEMORY,
    arg(
        "--log",
        action="append",
        choices=("tensorboard",),
        help="also log per-epoch scalars to RUN_DIR/tensorboard/, as train.log: [tensorboard] does (repeatable)",
    ),
)
def train(
    spec: Path,
    out: Path | None = None,
    set_: list[str] | None = None,
    resume: bool = False,
    init_from: Path | None = None,
    force: bool = False,
    quiet: bool = False,
    max_steps: int | None = None,
    dim: list[str] | None = None,
    max_memory: str | None = None,
    log: list[str] | None = None,
) -> None:
    """Train the spec's model as its train: section says; resumable; torchrun-ready."""
    from ..runtime.loop import Interrupted
    from ..runtime.session import RunError
    from ..runtime.session import train as run_train

    try:
        run_train(
            spec,
            out,
            sets=set_,
            resume=resume,
            init_from=init_from,
            force=force,
            quiet=quiet,
            dims=parse_dims(dim),
            max_steps=max_steps,
            max_memory=memory_limit(max_memory),
            log=log or (),
        )
    except RunError as exc:
        raise UserError(str(exc)) from None
    except Interrupted:  # Ctrl-C: the loop has written a checkpoint and said how to resume
        raise Exit(130) from None


@command(
    RUN_DIR,
    arg("--data", help="another source: ucr:<Name>, a .npz or .csv file"),
    arg("--split", choices=("test", "val", "train"), default="test", help="test, val or train (with the run's data)"),
    TEXT_OR_JSON,
    MAX_MEMORY,
)
def evaluate(
    run_dir: Path, data: str | None = None, split: str = "test", fmt: str = "text", max_memory: str | None = None
) -> None:
    """Evaluate a trained run's final weights on its test split or on other data."""
    from ..runtime.session import RunError
    from ..runtime.session import evaluate as run_eval

    try:
        result = run_eval(run_dir, data, split, memory_limit(max_memory))
    except RunError as exc:
        raise UserError(str(exc)) from None
    if fmt == "json":
        print_json(result)
        return
    scalars = ", ".join(f"{k} {v:.4f}" for k, v in result.items() if isinstance(v, float))
    print(f"{run_dir} on {result['split']} ({result['samples']} samples): {scalars}")
    if "per_class" in result:
        print(f"{'class':<16}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
        for name, m in result["per_class"].items():
            print(f"{name:<16}{m['precision']:>10.4f}{m['recall']:>10.4f}{m['f1']:>10.4f}{m['support']:>9}")
        print("confusion matrix (rows: true, columns: predicted):")
        for row in result["confusion_matrix"]:
            print("  " + " ".join(f"{v:>5}" for v in row))


@command(
    RUN_DIR,
    arg("-i", "--input", dest="input_", type=path_arg, required=True, help="inputs: .npy, .npz (array x) or .csv"),
    arg("-o", "--output", type=path_arg, required=True, help="predictions: .csv or .json"),
    MAX_MEMORY,
)
def predict(run_dir: Path, input_: Path, output: Path, max_memory: str | None = None) -> None:
    """Predict with a trained run: one row per input sample (label and class probabilities)."""
    from ..runtime.session import RunError
    from ..runtime.session import predict as run_predict

    try:
        n = run_predict(run_dir, input_, output, memory_limit(max_memory))
    except RunError as exc:
        raise UserError(str(exc)) from None
    print(f"{n} predictions -> {output}")


@command(
    arg("source", type=path_arg, help="a finished run directory (trained weights) or a spec (seeded initial weights)"),
    arg(
        "-f",
        "--format",
        dest="fmt",
        choices=("onnx", "torchscript", "exported-program", "safetensors", "python"),
        default="onnx",
        help="onnx (default), torchscript, exported-program (.pt2), safetensors, or python (model.py + weights.pt)",
    ),
    arg("-o", "--out", type=path_arg, help="output file (python: a folder); default RUN_DIR/export/ or ./<name>.<ext>"),
    arg("--no-optimize", action="store_true", help="skip the passes (batchnorm folding, dropping dropout/identity)"),
    arg("--no-check", action="store_true", help="skip reloading the export and comparing it with PyTorch"),
    arg(
        "--onnx-exporter",
        choices=("torchscript", "dynamo"),
        default="torchscript",
        help="torch's ONNX exporter: torchscript (default; native LSTM/GRU, dynamic time) or dynamo (torch.export)",
    ),
    arg("--lengths", action="store_true", help="onnx: add a `lengths` input for zero-padded variable-length batches"),
    arg("--seed", type=int, help="seed of a spec's initial weights (default: train.seed or 0)"),
    FORCE,
    SET,
    DIM,
    MAX_MEMORY,
)
def export(
    source: Path,
    fmt: str = "onnx",
    out: Path | None = None,
    no_optimize: bool = False,
    no_check: bool = False,
    onnx_exporter: str = "torchscript",
    lengths: bool = False,
    seed: int | None = None,
    force: bool = False,
    set_: list[str] | None = None,
    dim: list[str] | None = None,
    max_memory: str | None = None,
) -> None:
    """Export a trained run or a spec for inference: ONNX (dynamic batch and time axes), TorchScript,
    a torch.export program, safetensors or standalone Python; batchnorm is folded and dropout dropped
    first, and the written file is reloaded and compared with PyTorch."""
    from ..export.budget import precheck
    from ..memory import MemoryLimitError

    limit = memory_limit(max_memory)
    try:  # before torch is imported: a model too big to export is refused in well under a second
        precheck(source, fmt, limit, not no_optimize, set_, parse_dims(dim))
    except MemoryLimitError as exc:
        raise UserError(str(exc)) from None
    from ..export.pipeline import ExportError
    from ..export.pipeline import export as run_export

    try:
        res = run_export(
            source,
            fmt,
            out,
            optimize=not no_optimize,
            check=not no_check,
            force=force,
            exporter=onnx_exporter,
            sets=set_,
            dims=parse_dims(dim),
            seed=seed,
            lengths=lengths,
            max_memory=limit,
        )
    except ExportError as exc:
        raise UserError(str(exc)) from None
    before, after = res.params
    if res.plan is not None:
        print(f"passes: {res.plan.describe()} ({before:,} -> {after:,} params)")
    for note in res.written.notes:
        print(f"note: {note}")
    if res.written.max_diff is not None:
        print(f"checked: reloaded {fmt} matches PyTorch, max abs diff {res.written.max_diff:.2e}")
    print(f"exported {res.name} ({res.source}) as {fmt} -> {res.out}")
    if fmt == "python":
        for f in res.written.files:
            print(f"  {f.name}")


@command(
    arg("spec", type=path_arg, help="the spec file (YAML) with train: and search: sections"),
    arg("-o", "--out", type=path_arg, help="study directory (default runs/tune-<name>); rerun to resume the study"),
    arg("--trials", type=positive_int, help="trials in all, earlier runs counted (default: search.trials)"),
    arg("--timeout", type=float, metavar="S", help="start no trial after S seconds (default: search.timeout)"),
    arg("--jobs", type=positive_int, default=1, help="processes working on the study at once, sharing the cores"),
    SET,
    arg("-q", "--quiet", action="store_true", help="no line per trial"),
)
def tune(
    spec: Path,
    out: Path | None = None,
    trials: int | None = None,
    timeout: float | None = None,
    jobs: int = 1,
    set_: list[str] | None = None,
    quiet: bool = False,
) -> None:
    """Search the values the spec's search: section names, with Optuna. Each candidate is compiled and
    shape-checked, and held to the constraints, before it trains; unpromising ones are pruned epoch by
    epoch. With search.confirm, the best few are then trained again on seeds the study never used, beside the
    spec as written, and best.yaml is chosen by those runs. Writes study.db (rerun to resume),
    trials.json/csv, best.yaml (a normal spec) and plots."""
    if timeout is not None and not timeout > 0:
        raise UserError(f"--timeout expects a positive number of seconds, got {timeout}")
    try:
        from ..tune.study import StudyError, load_plan, run
    except ImportError as exc:
        raise UserError(f"netspec tune needs Optuna: pip install 'netspec[tune]' ({exc})") from None
    from ..tune.confirm import seeds_text
    from ..tune.report import confirm_table, confirmed_line, rich_table, write

    plan = load_plan(spec, set_ or [])
    out = out or path_arg("runs") / f"tune-{plan.name}"
    s = plan.search
    print(
        f"tuning {plan.name}: {len(s.params)} values, {trials or s.trials} trials, "
        f"{' and '.join(f'{d} {o}' for o, d in zip(s.objectives, s.directions, strict=True))} -> {out}/"
    )
    from ..runtime import lock

    try:  # the study's lock (study.run takes it, nested) also covers writing its reports
        with lock.hold(out):
            study, notes, interrupted = run(plan, out, trials=trials, timeout=timeout, jobs=jobs, quiet=quiet)
            result = write(plan, study, out)
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
