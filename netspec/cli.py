"""The command line: a thin argparse layer that parses flags, calls the library and renders with rich.

Exit codes: 0 ok, 1 the spec (or another user input) is wrong, 2 an internal error, 130 interrupted
(Ctrl-C; `train` first stops with a checkpoint). Tracebacks only with --debug. check, summarize, graph,
ops, schema, init, runs and diff never import torch.

argparse, not typer/click: a whole `netspec check` process takes about 0.15 s here, and typer alone
(with pydantic, which it imports to coerce every parameter) cost about 0.2 s before a command ran
(docs/benchmarks.md). Commands are plain functions; `@command(...)` declares their arguments.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from typing import TYPE_CHECKING

from . import __version__
from .errors import Diagnostic, SpecError

if TYPE_CHECKING:
    from pathlib import Path

_state = {"debug": False}


class UserError(Exception):
    """A mistake in what the user gave us (not a spec diagnostic): exit code 1."""


class Exit(Exception):
    """Leave with this exit code (after the command has said why)."""

    def __init__(self, code: int = 0):
        super().__init__(code)
        self.code = code


def _print_json(value) -> None:
    import json  # ~3 ms of start-up that the text formats do not need

    print(json.dumps(value, indent=2))


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


# ----------------------------------------------------------------------------- declaring commands

COMMANDS: dict = {}  # name -> (function, argument declarations)


def arg(*flags: str, **kwargs):
    """One argument of a command, as argparse's add_argument takes it."""
    return flags, kwargs


def command(*args):
    """Register a command; its name is the function's, its help the docstring."""

    def register(fn):
        COMMANDS[fn.__name__.rstrip("_")] = (fn, args)
        return fn

    return register


def _path(text: str) -> Path:
    from pathlib import Path  # not at the top: pathlib costs ~7 ms of start-up, check and summarize need none

    return Path(text)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _parse_dims(values: list[str] | None) -> dict[str, int]:
    dims = {}
    for item in values or []:
        name, sep, num = item.partition("=")
        if not sep or not name.isidentifier() or not num.strip().isdigit() or int(num) < 1:
            raise UserError(f"--dim expects NAME=SIZE with a positive integer size, e.g. --dim T=128; got {item!r}")
        dims[name] = int(num)
    return dims


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


def _compile(spec: str, dims: dict, *, stderr: bool = True, sets: list[str] | None = None):
    from .compiler import compile_file

    res = compile_file(spec, dims, sets)
    if not res.ok:
        _print_diagnostics(res.diagnostics, res.source_lines(), stderr)
        raise Exit(1)
    if res.warnings:
        _print_diagnostics(res.warnings, res.source_lines(), True)
    return res


def _memory_limit(value: str | None) -> int:
    from .memory import default_limit, parse_size

    if value is None:
        return default_limit()
    try:
        return parse_size(value)
    except ValueError as exc:
        raise UserError(f"--max-memory: {exc}") from None


# Arguments several commands share.
SPEC = arg("spec", help="the spec file (YAML)")  # a str: check and summarize never need pathlib
RUN_DIR = arg("run_dir", type=_path, help="a finished run directory")
DIM = arg(
    "--dim", action="append", metavar="NAME=SIZE", help="nominal size of a symbolic dim, e.g. --dim T=128 (repeatable)"
)
SET = arg(
    "--set",
    dest="set_",
    action="append",
    metavar="KEY=VALUE",
    help="override a spec value by key path, e.g. --set train.optimizer.lr=0.01 (repeatable)",
)
TEXT_OR_JSON = arg("-f", "--format", dest="fmt", choices=("text", "json"), default="text", help="text or json")
FORCE = arg("--force", action="store_true", help="overwrite files in an existing output directory")
MAX_MEMORY = arg(
    "--max-memory", metavar="SIZE", help="refuse specs whose static estimate exceeds this, e.g. 8GB (default: RAM)"
)


@command(SPEC, TEXT_OR_JSON, DIM, SET)
def check(spec: str, fmt: str = "text", dim: list[str] | None = None, set_: list[str] | None = None) -> None:
    """Validate a spec and check every shape statically; report all problems at once."""
    from .compiler import compile_file

    res = compile_file(spec, _parse_dims(dim), set_)
    if fmt == "json":
        out = {"ok": res.ok, "file": str(spec), "diagnostics": [d.to_json() for d in res.diagnostics]}
        if res.ok:
            t = res.typed
            out.update(output_shape=list(t.output.shape), total_params=t.total_params, macs=t.total_macs)
        _print_json(out)
        raise Exit(0 if res.ok else 1)
    if res.diagnostics:
        _print_diagnostics(res.diagnostics, res.source_lines(), stderr=False)
    if not res.ok:
        raise Exit(1)
    t = res.typed
    macs = "" if t.total_macs is None else f", {t.total_macs:,} MACs"
    print(f"{spec}: OK  {t.graph.name}: {t.input.show()} -> {t.output.show()}, {t.total_params:,} params{macs}")


@command(
    SPEC,
    arg(
        "-f",
        "--format",
        dest="fmt",
        choices=("table", "json", "markdown", "text"),
        default="table",
        help="table (text when not a terminal), json, markdown or text",
    ),
    arg("-b", "--batch-size", type=_positive_int, default=1, help="batch size for activation memory"),
    DIM,
    arg("-d", "--depth", type=_positive_int, help="levels of blocks to show (1: top level only); default: all"),
    SET,
)
def summarize(
    spec: str,
    fmt: str = "table",
    batch_size: int = 1,
    dim: list[str] | None = None,
    depth: int | None = None,
    set_: list[str] | None = None,
) -> None:
    """Per-layer output shapes, parameters and MACs, with totals and memory; static, no forward pass.
    Blocks show as rows with their totals, their layers indented below."""
    from .summary import markdown, summary_data, text

    res = _compile(spec, _parse_dims(dim), sets=set_)
    data = summary_data(res.typed, batch_size)
    if fmt == "json":
        _print_json(data)
    elif fmt == "markdown":
        print(markdown(data, depth), end="")
    elif fmt == "text" or not sys.stdout.isatty():
        print(text(data, depth), end="")
    else:
        _rich_summary(data, depth)


def _rich_summary(data: dict, depth: int | None) -> None:
    from rich.table import Table

    from .summary import fmt_int, fmt_shape, rows, totals_lines

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


@command(
    arg("spec", type=_path, help="the spec file (YAML)"),
    arg("-o", "--out", type=_path, default="build", help="output directory (default: build)"),
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
    from .memory import MemoryLimitError, check
    from .runtime.session import open_spec

    out = _path("build") if out is None else out
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


@command(
    arg("spec", type=_path, help="the spec file (YAML) with a train: section"),
    arg("-o", "--out", type=_path, help="run directory (default runs/<name>)"),
    SET,
    arg("--resume", action="store_true", help="continue the run in --out from its last checkpoint"),
    arg("--init-from", type=_path, help="start from these weights (a checkpoint or weights.pt)"),
    arg("--force", action="store_true", help="overwrite an existing run directory"),
    arg("-q", "--quiet", action="store_true", help="no progress output"),
    arg("--max-steps", type=_positive_int, help="stop after N steps with a checkpoint (time-sliced jobs)"),
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
)
def evaluate(run_dir: Path, data: str | None = None, split: str = "test", fmt: str = "text") -> None:
    """Evaluate a trained run's final weights on its test split or on other data."""
    from .runtime.session import RunError
    from .runtime.session import evaluate as run_eval

    try:
        result = run_eval(run_dir, data, split)
    except RunError as exc:
        raise UserError(str(exc)) from None
    if fmt == "json":
        _print_json(result)
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
    arg("-i", "--input", dest="input_", type=_path, required=True, help="inputs: .npy, .npz (array x) or .csv"),
    arg("-o", "--output", type=_path, required=True, help="predictions: .csv or .json"),
)
def predict(run_dir: Path, input_: Path, output: Path) -> None:
    """Predict with a trained run: one row per input sample (label and class probabilities)."""
    from .runtime.session import RunError
    from .runtime.session import predict as run_predict

    try:
        n = run_predict(run_dir, input_, output)
    except RunError as exc:
        raise UserError(str(exc)) from None
    print(f"{n} predictions -> {output}")


@command(arg("name", nargs="?", help="show one layer type in detail"), TEXT_OR_JSON)
def ops(name: str | None = None, fmt: str = "text") -> None:
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
    if fmt == "json":
        _print_json(ops_json(selected))
        return
    print(op_table(selected, detail=name is not None), end="")


@command()
def schema() -> None:
    """Print the JSON Schema of a spec (generated from the layer registry)."""
    from .spec.schema import schema_text

    print(schema_text(), end="")


GRAPH_FORMATS = {".svg": "svg", ".png": "png", ".dot": "dot", ".gv": "dot", ".mmd": "mmd", ".mermaid": "mmd"}


def _graph_format(out: str | None, fmt: str | None) -> str:
    """From -o's extension, or --format; both given, they must agree (PNG bytes in a .svg mislead)."""
    if out is None:
        if fmt == "png":
            raise UserError("PNG is binary: give a file with -o net.png")
        return fmt or "dot"
    ext = os.path.splitext(out)[1].lower()
    by_ext = GRAPH_FORMATS.get(ext)
    if fmt and by_ext and fmt != by_ext:
        raise UserError(f"--format {fmt} but -o {out} says {by_ext}; drop one or make them agree")
    if not fmt and not by_ext:
        raise UserError(
            f"cannot tell the format of {out!r} from its extension {ext or '(none)'!r}; "
            f"expected one of {', '.join(GRAPH_FORMATS)}, or pass --format svg|png|dot|mmd"
        )
    return fmt or by_ext


@command(
    SPEC,
    arg("-o", "--out", help="the picture: .svg or .png (need Graphviz), .dot or .mmd (default: DOT on stdout)"),
    arg("-f", "--format", dest="fmt", choices=("svg", "png", "dot", "mmd"), help="format (default: from -o)"),
    arg("-d", "--depth", type=_positive_int, help="levels of blocks to draw (1: a block is one node); default: all"),
    arg("--direction", choices=("TB", "LR"), default="TB", help="top to bottom (default) or left to right"),
    DIM,
    SET,
)
def graph(
    spec: str,
    out: str | None = None,
    fmt: str | None = None,
    depth: int | None = None,
    direction: str = "TB",
    dim: list[str] | None = None,
    set_: list[str] | None = None,
) -> None:
    """Draw the network as SVG, PNG, DOT or Mermaid. A node per layer (type, key parameters, parameter
    count), the shape on every edge, blocks as clusters; SVG and PNG run Graphviz's dot, text needs nothing."""
    from .viz.graph import diagram, title_lines, to_dot, to_mermaid

    fmt = _graph_format(out, fmt)
    res = _compile(spec, _parse_dims(dim), sets=set_)
    d = diagram(res.typed, depth)
    title = title_lines(res.typed)
    text = to_mermaid(d, title, direction) if fmt == "mmd" else to_dot(d, title, direction)
    data = text.encode()
    if fmt in ("svg", "png"):
        from .viz.render import RenderError, render

        stem = os.path.splitext(os.path.basename(out))[0] if out else res.typed.graph.name
        try:
            data = render(text, fmt, stem)
        except RenderError as exc:
            raise UserError(str(exc)) from None
    if out is None:
        sys.stdout.write(data.decode())
        return
    from .runtime.atomic import atomic_write_bytes

    try:
        atomic_write_bytes(out, data)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"{res.typed.graph.name}: {len(d.nodes)} nodes, {len(d.edges)} edges, {len(d.clusters)} clusters -> {out}")


@command(
    arg("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories of `netspec train` (several: overlaid)"),
    arg("-o", "--out", required=True, help="the picture: .png, .svg or .pdf"),
    arg("--lr", action="store_true", help="add a subplot of the learning rate"),
)
def plot(run_dirs: list[str], out: str, lr: bool = False) -> None:
    """Plot the training curves of one or more runs. A subplot per quantity (loss, each metric), runs
    by colour, train solid and validation dashed; needs matplotlib."""
    from .viz.plot import PlotError, load_runs, save

    try:
        runs = load_runs(run_dirs)
        axes = save(runs, out, lr=lr)
    except PlotError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"{len(runs)} run{'s' * (len(runs) != 1)}, {axes} plots -> {out}")


@command(
    arg("folder", nargs="?", default="runs", help="where to look for run directories (default: runs)"),
    arg("--sort", metavar="COLUMN", default="run", help="run, name, hash, status, epochs, best, test, time, updated"),
    arg("-r", "--reverse", action="store_true", help="reverse the order (runs without a value stay last)"),
    arg(
        "-f",
        "--format",
        dest="fmt",
        choices=("table", "json", "markdown", "text"),
        default="table",
        help="table (text when not a terminal), json, markdown or text",
    ),
)
def runs(folder: str = "runs", sort: str = "run", reverse: bool = False, fmt: str = "table") -> None:
    """The past runs under a folder: spec name and hash, status (finished, interrupted, failed,
    running, corrupt), epochs done of planned, best monitored metric, test metric, wall time."""
    from .tracking import runs as tr

    try:
        found = tr.sort_runs(tr.list_runs(_path(folder)), sort, reverse)
    except tr.RunsError as exc:
        raise UserError(str(exc)) from None
    if fmt == "json":
        _print_json(found)
    elif not found:
        print(f"no runs under {folder}/ (a run directory holds spec.yaml, metrics.jsonl or checkpoints/)")
    elif fmt == "markdown":
        print(tr.markdown(found), end="")
    elif fmt == "text" or not sys.stdout.isatty():
        print(tr.text(found), end="")
    else:
        tr.rich_print(found, f"{len(found)} run{'s' * (len(found) != 1)} under {folder}/")


@command(
    arg("a", help="a spec file or a run directory"),
    arg("b", help="another spec file or run directory"),
    TEXT_OR_JSON,
    DIM,
    arg("--exit-code", action="store_true", help="exit with 3 when they differ (1 stays a user error)"),
)
def diff(a: str, b: str, fmt: str = "text", dim: list[str] | None = None, exit_code: bool = False) -> None:
    """Compare two specs or run directories: the resolved specs key by key (defaults written out),
    parameters and MACs in total and per layer. Exit code 0 whether or not they differ, as a report;
    with --exit-code 3 when they differ."""
    from .tracking.diff import CompileFailed, DiffError, load_side
    from .tracking.diff import diff as compare
    from .tracking.diff import text as diff_text

    try:
        sides = [load_side(p, _parse_dims(dim)) for p in (a, b)]
    except DiffError as exc:
        raise UserError(str(exc)) from None
    except CompileFailed as exc:
        _print_diagnostics(exc.result.diagnostics, exc.result.source_lines())
        raise Exit(1) from None
    result = compare(*sides)
    if fmt == "json":
        _print_json(result)
    else:
        print(diff_text(result), end="")
    if exit_code and not result["identical"]:
        raise Exit(3)


@command(
    arg("path", nargs="?", type=_path, default="model.yaml", help="the spec to write (default: model.yaml)"),
    arg("-t", "--template", default="cnn", help="cnn, resnet (images), fcn, lstm or gru (series); default: cnn"),
    arg(
        "-d",
        "--data",
        default="digits",
        help="digits, ucr:<Name>, synthetic, or a .npz / .csv file (its shape and classes are read); default: digits",
    ),
    arg("--classes", type=_positive_int, help="number of classes of synthetic data (default 10)"),
    arg("--force", action="store_true", help="overwrite an existing file"),
)
def init(
    path: Path | None = None,
    template: str = "cnn",
    data: str = "digits",
    classes: int | None = None,
    force: bool = False,
) -> None:
    """Write a commented starter spec from a template, fitted to the data's shape and classes;
    `netspec check` accepts it and `netspec train` runs it."""
    from .init import InitError, render, write

    path = _path("model.yaml") if path is None else path
    try:
        text = render(template, data, path, classes)  # first: a wrong template or source says so
        if path.exists() and not force:
            raise InitError(f"{path} exists; pass --force to overwrite it, or choose another path")
        write(path, text, force)
    except InitError as exc:
        raise UserError(str(exc)) from None
    print(f"wrote {path} ({template} for {data}); next: netspec check {path} && netspec train {path}")


@command(
    arg("source", type=_path, help="a finished run directory (trained weights) or a spec (seeded initial weights)"),
    arg(
        "-f",
        "--format",
        dest="fmt",
        choices=("onnx", "torchscript", "exported-program", "safetensors", "python"),
        default="onnx",
        help="onnx (default), torchscript, exported-program (.pt2), safetensors, or python (model.py + weights.pt)",
    ),
    arg("-o", "--out", type=_path, help="output file (python: a folder); default RUN_DIR/export/ or ./<name>.<ext>"),
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
) -> None:
    """Export a trained run or a spec for inference: ONNX (dynamic batch and time axes), TorchScript,
    a torch.export program, safetensors or standalone Python; batchnorm is folded and dropout dropped
    first, and the written file is reloaded and compared with PyTorch."""
    from .export.pipeline import ExportError
    from .export.pipeline import export as run_export

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
            dims=_parse_dims(dim),
            seed=seed,
            lengths=lengths,
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
    arg("spec", type=_path, help="the spec file (YAML) with train: and search: sections"),
    arg("-o", "--out", type=_path, help="study directory (default runs/tune-<name>); rerun to resume the study"),
    arg("--trials", type=_positive_int, help="trials in all, earlier runs counted (default: search.trials)"),
    arg("--timeout", type=float, metavar="S", help="start no trial after S seconds (default: search.timeout)"),
    arg("--jobs", type=_positive_int, default=1, help="processes working on the study at once, sharing the cores"),
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
    epoch. Writes study.db (rerun to resume), trials.json/csv, best.yaml (a normal spec) and plots."""
    if timeout is not None and not timeout > 0:
        raise UserError(f"--timeout expects a positive number of seconds, got {timeout}")
    try:
        from .tune.study import StudyError, load_plan, run
    except ImportError as exc:
        raise UserError(f"netspec tune needs Optuna: pip install 'netspec[tune]' ({exc})") from None
    from .tune.report import rich_table, write

    plan = load_plan(spec, set_ or [])
    out = out or _path("runs") / f"tune-{plan.name}"
    s = plan.search
    print(
        f"tuning {plan.name}: {len(s.params)} values, {trials or s.trials} trials, "
        f"{' and '.join(f'{d} {o}' for o, d in zip(s.objectives, s.directions, strict=True))} -> {out}/"
    )
    try:
        study, notes, interrupted = run(plan, out, trials=trials, timeout=timeout, jobs=jobs, quiet=quiet)
    except StudyError as exc:
        raise UserError(str(exc)) from None
    for line in notes:
        print(line)
    result = write(plan, study, out)
    console = _console()
    if not console.is_terminal:  # a log file: room for every column
        console.width = 160
    console.print(rich_table(result["table"], s, result["best"], result["front"], f"{plan.name}: trials"))
    best, base = result["best"], result["baseline"]
    if best is not None:
        own = f" (the spec's own values: {base['objectives'][0]:.4f}, {base['params']:,} params)" if base else ""
        print(f"best: trial {best['number']}: {s.metric} {best['objectives'][0]:.4f}, {best['params']:,} params{own}")
        if s.multi:
            print(f"Pareto front ({s.metric} / {s.objectives[1]}): trials {', '.join(map(str, result['front']))}")
    print("wrote " + ", ".join(str(f) for f in result["files"]))
    if interrupted:
        print("interrupted: run the same command again to resume the study", file=sys.stderr)
        raise Exit(130)
    if best is None:
        raise UserError("no trial trained to the end, so there is no best spec; the table says why")
    print(f"train it: netspec train {out}/best.yaml")


# ----------------------------------------------------------------------------- parsing and exit codes


class _Formatter(argparse.HelpFormatter):
    """argparse's help layout at the terminal's width, found without importing shutil (argparse
    builds a formatter for every add_argument, and shutil with its archive modules costs ~5 ms)."""

    def __init__(self, prog: str):
        try:
            columns = int(os.environ.get("COLUMNS") or os.get_terminal_size(sys.stdout.fileno()).columns)
        except (OSError, ValueError, AttributeError):
            columns = 80
        super().__init__(prog, width=max(columns - 2, 40))


class _Parser(argparse.ArgumentParser):
    """Usage errors raise (exit code 1 through main) instead of exiting with argparse's 2."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, formatter_class=_Formatter, **kwargs)

    def error(self, message):
        raise UserError(f"{message}\n{self.format_usage().rstrip()}\nRun `{self.prog} --help` for help.")


def parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with `only`, the top level and that one command (building
    every subparser costs ~10 ms of a check's start-up)."""
    top = _Parser(
        prog="netspec",
        description="A declarative deep-learning compiler: YAML spec -> statically checked IR -> PyTorch.",
    )
    top.add_argument("--version", action="version", version=f"netspec {__version__}", help="print the version and exit")
    top.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = top.add_subparsers(dest="command", title="commands", metavar="COMMAND", parser_class=_Parser)
    for name, (fn, args) in COMMANDS.items():
        if only is not None and name != only:
            continue
        doc = (fn.__doc__ or "").strip()
        first_sentence = " ".join(doc.replace(".\n", ". ").split(". ")[0].split())
        p = sub.add_parser(name, help=first_sentence.rstrip("."), description=doc)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        for flags, kwargs in args:
            p.add_argument(*flags, **kwargs)
    return top


def _dispatch(argv: list[str]) -> int:
    from .errors import did_you_mean

    words = [a for a in argv if not a.startswith("-")]
    if words and words[0] not in COMMANDS:  # before argparse, for a "did you mean"
        hint = did_you_mean(words[0], COMMANDS) or "Run `netspec --help` for the list."
        raise UserError(f"unknown command {words[0]!r}. {hint}")
    ns = vars(parser(words[0] if words else None).parse_args(argv))
    _state["debug"] = ns.pop("debug", False)
    name = ns.pop("command")
    if name not in SHORT_LIVED:
        gc.enable()
    if name is None:
        parser().print_help()
        return 1
    COMMANDS[name][0](**ns)
    return 0


# Commands that run for a fraction of a second and allocate a bounded amount (the loader's caps):
# they run without the cycle collector, whose passes over the objects of every import cost ~5-10%
# of their start-up. The others turn it back on before they start.
SHORT_LIVED = {"check", "summarize", "ops", "schema"}


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a command and map failures to exit codes (1 user error, 2 internal)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _dispatch(argv)
    except Exit as exc:
        return exc.code
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
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
        if _state["debug"] or "--debug" in argv:
            raise
        print(f"netspec: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("This is a bug in netspec. Run again with --debug for the traceback.", file=sys.stderr)
        return 2
    finally:
        if was_enabled:
            gc.enable()


def run() -> None:
    sys.exit(main())
