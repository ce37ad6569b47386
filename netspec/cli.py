"""The command line: a thin typer layer that parses flags, calls the library and renders with rich.

Exit codes: 0 ok, 1 the spec (or another user input) is wrong, 2 an internal error, 130 interrupted
(Ctrl-C; `train` first stops with a checkpoint). Tracebacks only with --debug. check, summarize,
ops and schema never import torch.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from . import __version__
from .errors import Diagnostic, SpecError

app = typer.Typer(
    name="netspec",
    help="A declarative deep-learning compiler: YAML spec -> statically checked IR -> PyTorch.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_state = {"debug": False}


class UserError(Exception):
    """A mistake in what the user gave us (not a spec diagnostic): exit code 1."""


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        print(f"netspec {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks of internal errors")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    _state["debug"] = debug


def _parse_dims(values: list[str] | None) -> dict[str, int]:
    dims = {}
    for item in values or []:
        name, sep, num = item.partition("=")
        if not sep or not name.isidentifier() or not num.strip().isdigit() or int(num) < 1:
            raise UserError(f"--dim expects NAME=SIZE with a positive integer size, e.g. --dim T=128; got {item!r}")
        dims[name] = int(num)
    return dims


DimOpt = Annotated[
    list[str] | None, typer.Option("--dim", help="nominal size of a symbolic dim, e.g. --dim T=128 (repeatable)")
]


class CheckFormat(str, Enum):
    text = "text"
    json = "json"


class SummaryFormat(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    text = "text"


def _print_diagnostics(diags: list[Diagnostic], lines: list[str], stderr: bool = True) -> None:
    out = sys.stderr if stderr else sys.stdout
    for d in diags:
        print(d.render(lines), file=out)
    n_err = sum(d.is_error for d in diags)
    n_warn = len(diags) - n_err
    if n_err:
        print(
            f"{n_err} error{'s' * (n_err != 1)}" + (f", {n_warn} warning{'s' * (n_warn != 1)}" if n_warn else ""),
            file=out,
        )


SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a spec value by key path, e.g. --set train.optimizer.lr=0.01 (repeatable)"),
]


def _compile(spec: Path, dims: dict, *, stderr: bool = True, sets: list[str] | None = None):
    from .compiler import compile_file

    res = compile_file(spec, dims, sets)
    if not res.ok:
        _print_diagnostics(res.diagnostics, res.source_lines(), stderr)
        raise typer.Exit(1)
    if res.warnings:
        _print_diagnostics(res.warnings, res.source_lines(), True)
    return res


@app.command()
def check(
    spec: Annotated[Path, typer.Argument(help="the spec file (YAML)")],
    fmt: Annotated[CheckFormat, typer.Option("--format", "-f", help="text or json")] = CheckFormat.text,
    dim: DimOpt = None,
    set_: SetOpt = None,
) -> None:
    """Validate a spec and check every shape statically; report all problems at once."""
    from .compiler import compile_file

    res = compile_file(spec, _parse_dims(dim), set_)
    if fmt == CheckFormat.json:
        out = {"ok": res.ok, "file": str(spec), "diagnostics": [d.to_json() for d in res.diagnostics]}
        if res.ok:
            t = res.typed
            out.update(output_shape=list(t.output.shape), total_params=t.total_params, macs=t.total_macs)
        print(json.dumps(out, indent=2))
        raise typer.Exit(0 if res.ok else 1)
    if res.diagnostics:
        _print_diagnostics(res.diagnostics, res.source_lines(), stderr=False)
    if not res.ok:
        raise typer.Exit(1)
    t = res.typed
    macs = "" if t.total_macs is None else f", {t.total_macs:,} MACs"
    print(f"{spec}: OK  {t.graph.name}: {t.input.show()} -> {t.output.show()}, {t.total_params:,} params{macs}")


@app.command()
def summarize(
    spec: Annotated[Path, typer.Argument(help="the spec file (YAML)")],
    fmt: Annotated[
        SummaryFormat, typer.Option("--format", "-f", help="table, json, markdown or text")
    ] = SummaryFormat.table,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="batch size for activation memory")] = 1,
    dim: DimOpt = None,
    depth: Annotated[
        int | None,
        typer.Option("--depth", "-d", min=1, help="levels of blocks to show (1: top level only); default: all"),
    ] = None,
    set_: SetOpt = None,
) -> None:
    """Per-layer output shapes, parameters and MACs, with totals and memory; static, no forward pass.
    Blocks show as rows with their totals, their layers indented below."""
    from .summary import fmt_int, fmt_shape, markdown, rows, summary_data, text, totals_lines

    res = _compile(spec, _parse_dims(dim), sets=set_)
    data = summary_data(res.typed, batch_size)
    if fmt == SummaryFormat.json:
        print(json.dumps(data, indent=2))
        return
    if fmt == SummaryFormat.markdown:
        print(markdown(data, depth), end="")
        return
    if fmt == SummaryFormat.text or not sys.stdout.isatty():
        print(text(data, depth), end="")
        return
    from rich.table import Table

    table = Table(title=f"{data['name']}  input {fmt_shape(data['input_shape'])}", title_justify="left")
    for col, justify in (
        ("Layer", "left"),
        ("Type", "left"),
        ("Output shape", "left"),
        ("Params", "right"),
        ("MACs", "right"),
    ):
        table.add_column(col, justify=justify)
    for row in rows(data, depth):
        style = "bold" if row["kind"].startswith("block ") else None
        shape = fmt_shape(row["output_shape"] or [])
        table.add_row(row["label"], row["kind"], shape, fmt_int(row["params"]), fmt_int(row["macs"]), style=style)
    console = _console()
    console.print(table)
    for k, v in totals_lines(data):
        console.print(f"{k}: {v}")


MaxMemOpt = Annotated[
    str | None,
    typer.Option("--max-memory", help="refuse specs whose static estimate exceeds this, e.g. 8GB (default: RAM)"),
]


def _memory_limit(value: str | None) -> int:
    from .memory import default_limit, parse_size

    if value is None:
        return default_limit()
    try:
        return parse_size(value)
    except ValueError as exc:
        raise UserError(f"--max-memory: {exc}") from None


@app.command()
def build(
    spec: Annotated[Path, typer.Argument(help="the spec file (YAML)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output directory")] = Path("build"),
    seed: Annotated[int | None, typer.Option(help="seed for weight initialization (default: train.seed or 0)")] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite files in an existing output directory")] = False,
    set_: SetOpt = None,
    dim: DimOpt = None,
    max_memory: MaxMemOpt = None,
) -> None:
    """Write model.py (standalone PyTorch), weights.pt, the resolved spec and the summary;
    with a train: section also train.py and data.npz."""
    from .memory import MemoryLimitError, check
    from .runtime.session import open_spec

    limit = _memory_limit(max_memory)
    session = open_spec(spec, set_, _parse_dims(dim), require_train=False)
    try:  # from the static counts, before a single weight is allocated
        check(session.typed, limit)
    except MemoryLimitError as exc:
        raise UserError(str(exc)) from None
    if out.exists() and any(out.iterdir()) and not force:
        raise UserError(f"{out} exists and is not empty; pass --force to overwrite, or choose another --out")
    from .lower.build import write_build
    from .runtime.session import RunError

    try:
        files = write_build(session, out, seed=seed)
    except RunError as exc:
        raise UserError(str(exc)) from None
    t = session.typed
    print(f"built {t.graph.name}: {t.total_params:,} params -> {out}/")
    for f in files:
        print(f"  {f.name}")


@app.command()
def train(
    spec: Annotated[Path, typer.Argument(help="the spec file (YAML) with a train: section")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="run directory (default runs/<name>)")] = None,
    set_: SetOpt = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="continue the run in --out from its last checkpoint")
    ] = False,
    init_from: Annotated[
        Path | None, typer.Option("--init-from", help="start from these weights (a checkpoint or weights.pt)")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing run directory")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress output")] = False,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", min=1, help="stop after N steps with a checkpoint (time-sliced jobs)")
    ] = None,
    dim: DimOpt = None,
    max_memory: MaxMemOpt = None,
) -> None:
    """Train the spec's model as its train: section says; resumable; torchrun-ready."""
    from .runtime.loop import Interrupted
    from .runtime.session import RunError
    from .runtime.session import train as run_train

    try:
        run_train(
            spec,
            out,
            sets=set_,
            resume=resume,
            init_from=init_from,
            force=force,
            quiet=quiet,
            dims=_parse_dims(dim),
            max_steps=max_steps,
            max_memory=_memory_limit(max_memory),
        )
    except RunError as exc:
        raise UserError(str(exc)) from None
    except Interrupted:  # Ctrl-C: the loop has written a checkpoint and said how to resume
        raise typer.Exit(130) from None


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="a finished run directory")],
    data: Annotated[str | None, typer.Option("--data", help="another source: ucr:<Name>, a .npz or .csv file")] = None,
    split: Annotated[str, typer.Option("--split", help="test, val or train (with the run's own data)")] = "test",
    fmt: Annotated[CheckFormat, typer.Option("--format", "-f", help="text or json")] = CheckFormat.text,
) -> None:
    """Evaluate a trained run's final weights on its test split or on other data."""
    from .runtime.session import RunError
    from .runtime.session import evaluate as run_eval

    if split not in ("test", "val", "train"):
        raise UserError(f"--split must be test, val or train, not {split!r}")
    try:
        result = run_eval(run_dir, data, split)
    except RunError as exc:
        raise UserError(str(exc)) from None
    if fmt == CheckFormat.json:
        print(json.dumps(result, indent=2))
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


@app.command()
def predict(
    run_dir: Annotated[Path, typer.Argument(help="a finished run directory")],
    input_: Annotated[Path, typer.Option("--input", "-i", help="inputs: .npy, .npz (array x) or .csv")],
    output: Annotated[Path, typer.Option("--output", "-o", help="predictions: .csv or .json")],
) -> None:
    """Predict with a trained run: one row per input sample (label and class probabilities)."""
    from .runtime.session import RunError
    from .runtime.session import predict as run_predict

    try:
        n = run_predict(run_dir, input_, output)
    except RunError as exc:
        raise UserError(str(exc)) from None
    print(f"{n} predictions -> {output}")


@app.command()
def ops(
    name: Annotated[str | None, typer.Argument(help="show one layer type in detail")] = None,
    fmt: Annotated[CheckFormat, typer.Option("--format", "-f", help="text or json")] = CheckFormat.text,
) -> None:
    """List the layer types with their parameters and defaults."""
    from .docs import op_table, ops_json
    from .errors import did_you_mean
    from .ops import all_ops

    table = all_ops()
    if name is not None and name not in table:
        raise UserError(
            f"unknown layer type {name!r}. {did_you_mean(name, table) or 'Run `netspec ops` for the list.'}"
        )
    selected = [table[name]] if name else list(table.values())
    if fmt == CheckFormat.json:
        print(json.dumps(ops_json(selected), indent=2))
        return
    print(op_table(selected, detail=name is not None), end="")


@app.command()
def schema() -> None:
    """Print the JSON Schema of a spec (generated from the layer registry)."""
    from .spec.schema import schema_text

    print(schema_text(), end="")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and map failures to exit codes (1 user error, 2 internal)."""
    try:
        rv = app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        return 130
    except SpecError as exc:
        _print_diagnostics(exc.diagnostics, [])
        return 1
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # Click's usage errors (bad flag, missing argument) know how to show themselves.
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            return 1
        if _state["debug"] or "--debug" in (argv if argv is not None else sys.argv):
            raise
        print(f"netspec: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("This is a bug in netspec. Run again with --debug for the traceback.", file=sys.stderr)
        return 2
    return rv if isinstance(rv, int) else 0


def run() -> None:
    sys.exit(main())
