"""Commands that read a spec and never import torch: check, summarize, graph, diff, init, ops, schema."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from .core import (
    COMMANDS,
    OPT_OUTPUT,
    SPEC_PANEL,
    Dims,
    Exit,
    MaxMemory,
    Sets,
    Spec,
    TableFormat,
    TextOrJson,
    UserError,
    click_command,
    command,
    compile_or_exit,
    complete_op,
    complete_spec,
    console,
    memory_limit,
    parse_dims,
    print_diagnostics,
    print_json,
    spec_file,
)

if TYPE_CHECKING:
    from ..compiler import Result
    from ..ir.typed import TypedGraph

Specs = Annotated[
    list[str],
    typer.Argument(metavar="SPEC", help="spec files (YAML) or run directories", autocompletion=complete_spec),
]


@command(
    SPEC_PANEL,
    "netspec check specs/lenet5.yaml",
    "netspec check specs/*.yaml",
    "netspec check spec.yaml -f json --set layers[0].conv2d.out_channels=64",
)
def check(spec: Specs, fmt: TextOrJson = "text", dim: Dims = None, set_: Sets = None) -> None:
    """Validate specs and check every shape statically; report all problems at once. With many
    specs, each is reported under its file name, and the exit code is 1 if any fails."""
    from ..compiler import compile_file

    dims = parse_dims(dim)
    reports = [_check_one(s, compile_file(spec_file(s), dims, set_, data=True), fmt) for s in spec]
    if fmt == "json":
        print_json(reports[0] if len(reports) == 1 else reports)
    failed = [str(r["file"]) for r in reports if not r["ok"]]
    if len(reports) > 1 and fmt == "text":
        print(
            f"{len(reports)} specs checked: " + (f"{len(failed)} failed ({', '.join(failed)})" if failed else "all OK")
        )
    if failed:
        raise Exit(1)


def _compiled(spec: str, dim: list[str] | None, sets: list[str] | None) -> TypedGraph:
    """The spec's typed graph; compile_or_exit exits on any error, so there is one."""
    typed = compile_or_exit(spec, parse_dims(dim), sets=sets).typed
    assert typed is not None, "compile_or_exit returned a spec that did not compile"
    return typed


def _check_one(spec: str, res: Result, fmt: str) -> dict[str, object]:
    """One spec's report as `check -f json` gives it; in text, printed as it is made."""
    out: dict[str, object] = {"ok": res.ok, "file": str(spec), "diagnostics": [d.to_json() for d in res.diagnostics]}
    t = res.typed if res.ok else None
    if t is not None:
        out.update(output_shape=list(t.output.shape), total_params=t.total_params, macs=t.total_macs)
    if fmt == "text":
        if res.diagnostics:
            print_diagnostics(res.diagnostics, res.source_lines(), stderr=False)
        if t is not None:
            macs = "" if t.total_macs is None else f", {t.total_macs:,} MACs"
            print(f"{spec}: OK  {t.graph.name}: {t.input.show()} -> {t.output.show()}, {t.total_params:,} params{macs}")
    return out


@command(
    SPEC_PANEL,
    "netspec summarize specs/resnet18.yaml",
    "netspec summarize specs/lstm_classifier.yaml -f json --dim T=128 --batch-size 32",
)
def summarize(
    spec: Spec,
    fmt: TableFormat = "table",
    batch_size: Annotated[int, typer.Option("-b", "--batch-size", min=1, help="batch size for activation memory")] = 1,
    dim: Dims = None,
    depth: Annotated[
        int | None,
        typer.Option("-d", "--depth", min=1, help="levels of blocks to show (1: top level only); default: all"),
    ] = None,
    set_: Sets = None,
) -> None:
    """Per-layer output shapes, parameters and MACs, with totals and memory; static, no forward pass.
    Blocks show as rows with their totals, their layers indented below."""
    from ..summary import markdown, summary_data, text

    data = summary_data(_compiled(spec, dim, set_), batch_size)
    if fmt == "json":
        print_json(data)
    elif fmt == "markdown":
        print(markdown(data, depth), end="")
    elif fmt == "text" or not sys.stdout.isatty():
        print(text(data, depth), end="")
    else:
        _rich_summary(data, depth)


def _rich_summary(data: dict, depth: int | None) -> None:
    from rich.table import Table

    from ..summary import fmt_int, fmt_shape, rows, totals_lines

    table = Table(title=f"{data['name']}  input {fmt_shape(data['input_shape'])}", title_justify="left")
    for col in ("Layer", "Type", "Output shape", "Params", "MACs"):
        table.add_column(col, justify="right" if col in ("Params", "MACs") else "left")
    for row in rows(data, depth):
        style = "bold" if row["kind"].startswith("block ") else None
        shape = fmt_shape(row["output_shape"] or [])
        table.add_row(row["label"], row["kind"], shape, fmt_int(row["params"]), fmt_int(row["macs"]), style=style)
    screen = console()
    screen.print(table)
    for k, v in totals_lines(data):
        screen.print(f"{k}: {v}")


GraphKind = Literal["svg", "png", "dot", "mmd"]
GRAPH_FORMATS: dict[str, GraphKind] = {
    ".svg": "svg",
    ".png": "png",
    ".dot": "dot",
    ".gv": "dot",
    ".mmd": "mmd",
    ".mermaid": "mmd",
}
GRAPH_KINDS = tuple(dict.fromkeys(GRAPH_FORMATS.values()))  # svg, png, dot, mmd


def _graph_format(out: str | None, fmt: GraphKind | None) -> GraphKind:
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
            f"expected one of {', '.join(GRAPH_FORMATS)}, or pass --format {'|'.join(GRAPH_KINDS)}"
        )
    return fmt or by_ext or "dot"  # (one of them is set: checked above)


@command(
    SPEC_PANEL,
    "netspec graph specs/lenet5.yaml -o lenet5.mmd",
    "netspec graph specs/resnet_ts.yaml --depth 2 -o resnet_ts.svg",
    "netspec graph runs/digits_cnn -o digits.dot",
)
def graph(
    spec: Spec,
    out: Annotated[
        str | None,
        typer.Option(
            "-o",
            "--out",
            help="the picture: .svg or .png (need Graphviz), .dot or .mmd (default: DOT on stdout)",
            rich_help_panel=OPT_OUTPUT,
        ),
    ] = None,
    fmt: Annotated[
        Literal["svg", "png", "dot", "mmd"] | None, typer.Option("-f", "--format", help="format (default: from -o)")
    ] = None,
    depth: Annotated[
        int | None,
        typer.Option("-d", "--depth", min=1, help="levels of blocks to draw (1: a block is one node); default: all"),
    ] = None,
    direction: Annotated[
        Literal["TB", "LR"], typer.Option("--direction", help="top to bottom (TB) or left to right (LR)")
    ] = "TB",
    dim: Dims = None,
    set_: Sets = None,
) -> None:
    """Draw the network as SVG, PNG, DOT or Mermaid. A node per layer (type, key parameters, parameter
    count), the shape on every edge, blocks as clusters; SVG and PNG run Graphviz's dot, text needs nothing."""
    from ..viz.graph import diagram, title_lines, to_dot, to_mermaid

    fmt = _graph_format(out, fmt)
    typed = _compiled(spec, dim, set_)
    d = diagram(typed, depth)
    title = title_lines(typed)
    text = to_mermaid(d, title, direction) if fmt == "mmd" else to_dot(d, title, direction)
    data = text.encode()
    if fmt in ("svg", "png"):
        from ..viz.render import RenderError, render

        stem = os.path.splitext(os.path.basename(out))[0] if out else typed.graph.name
        try:
            data = render(text, fmt, stem)
        except RenderError as exc:
            raise UserError(str(exc)) from None
    if out is None:
        sys.stdout.write(data.decode())
        return
    from ..runtime.atomic import atomic_write_bytes

    try:
        atomic_write_bytes(out, data)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"{typed.graph.name}: {len(d.nodes)} nodes, {len(d.edges)} edges, {len(d.clusters)} clusters -> {out}")


@command(
    SPEC_PANEL,
    "netspec diff specs/lenet5.yaml specs/digits_cnn.yaml",
    "netspec diff runs/mlp runs/mlp_wide --exit-code",
)
def diff(
    a: Annotated[str, typer.Argument(help="a spec file or a run directory", autocompletion=complete_spec)],
    b: Annotated[str, typer.Argument(help="another spec file or run directory", autocompletion=complete_spec)],
    fmt: TextOrJson = "text",
    dim: Dims = None,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="exit with 3 when they differ (1 stays a user error)")
    ] = False,
) -> None:
    """Compare two specs or run directories: the resolved specs key by key (defaults written out),
    parameters and MACs in total and per layer. Exit code 0 whether or not they differ, as a report;
    with --exit-code 3 when they differ."""
    from ..tracking.diff import CompileFailed, DiffError, load_side
    from ..tracking.diff import diff as compare
    from ..tracking.diff import text as diff_text

    try:
        sides = [load_side(p, parse_dims(dim)) for p in (a, b)]
    except DiffError as exc:
        raise UserError(str(exc)) from None
    except CompileFailed as exc:
        print_diagnostics(exc.result.diagnostics, exc.result.source_lines())
        raise Exit(1) from None
    result = compare(*sides)
    if fmt == "json":
        print_json(result)
    else:
        print(diff_text(result), end="")
    if exit_code and not result["identical"]:
        raise Exit(3)


@command(
    SPEC_PANEL,
    "netspec init specs/my_model.yaml --template cnn --data digits",
    "netspec init series.yaml -t fcn -d ucr:ItalyPowerDemand",
    "netspec init wine.yaml -t mlp -d wine.csv --label-column cls",
)
def init(
    path: Annotated[
        Path, typer.Argument(help="the spec to write", autocompletion=complete_spec, show_default=True)
    ] = Path("model.yaml"),
    template: Annotated[
        str,
        typer.Option(
            "-t",
            "--template",
            help="cnn, resnet (images), fcn, lstm or gru (series), mlp (tables)",
            autocompletion=lambda incomplete: [
                t for t in ("cnn", "resnet", "fcn", "lstm", "gru", "mlp") if t.startswith(incomplete)
            ],
        ),
    ] = "cnn",
    data: Annotated[
        str,
        typer.Option(
            "-d",
            "--data",
            help="digits, ucr:<Name>, synthetic, a .npz file, a .csv / .parquet table or a folder of images "
            "(its shape and classes are read)",
        ),
    ] = "digits",
    label_column: Annotated[
        str | None,
        typer.Option("--label-column", help="a table's label column (default: label)", show_default=False),
    ] = None,
    classes: Annotated[
        int | None, typer.Option("--classes", min=1, help="number of classes of synthetic data (default 10)")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="overwrite an existing file", rich_help_panel=OPT_OUTPUT)
    ] = False,
    max_memory: MaxMemory = None,
) -> None:
    """Write a commented starter spec from a template, fitted to the data's shape and classes;
    `netspec check` accepts it and `netspec train` runs it."""
    from ..init import InitError, render, write

    try:
        # first: a wrong template or source says so
        text = render(template, data, path, classes, memory_limit(max_memory), label_column)
        if path.exists() and not force:
            raise InitError(f"{path} exists; pass --force to overwrite it, or choose another path")
        write(path, text, force)
    except InitError as exc:
        raise UserError(str(exc)) from None
    print(f"wrote {path} ({template} for {data}); next: netspec check {path} && netspec train {path}")


@command(
    SPEC_PANEL, "netspec ops", "netspec ops conv2d", "netspec ops --augment random_resized_crop", "netspec ops -f json"
)
def ops(
    name: Annotated[
        str | None,
        typer.Argument(help="show one layer type (or augmentation op) in detail", autocompletion=complete_op),
    ] = None,
    augment: Annotated[
        bool, typer.Option("--augment", help="the train.data.augment ops instead of layer types")
    ] = False,
    fmt: TextOrJson = "text",
) -> None:
    """List the layer types (or with --augment the augmentation ops) with their parameters and defaults."""
    from ..errors import did_you_mean

    if augment:
        from ..data.augment import REGISTRY
        from ..docs import augment_rows, augment_table

        if name is not None and name not in REGISTRY:
            hint = did_you_mean(name, REGISTRY) or "Run `netspec ops --augment` for the list."
            raise UserError(f"unknown augmentation op {name!r}. {hint}")
        chosen = [REGISTRY[name]] if name else list(REGISTRY.values())
        if fmt == "json":
            print_json(augment_rows(chosen))
        else:
            print(augment_table(chosen, detail=name is not None), end="")
        return
    from ..docs import op_table, ops_json
    from ..ops import all_ops

    table = all_ops()
    if name is not None and name not in table:
        raise UserError(
            f"unknown layer type {name!r}. {did_you_mean(name, table) or 'Run `netspec ops` for the list.'}"
        )
    selected = [table[name]] if name else list(table.values())
    if fmt == "json":
        print_json(ops_json(selected))
        return
    print(op_table(selected, detail=name is not None), end="")


@command(SPEC_PANEL, "netspec schema > netspec.schema.json")
def schema() -> None:
    """Print the JSON Schema of a spec (generated from the layer registry)."""
    from ..spec.schema import schema_text

    print(schema_text(), end="")


def _complete_command(incomplete: str) -> list[str]:
    return [name for name in COMMANDS if name.startswith(incomplete)]


@command(SPEC_PANEL, "netspec help train", name="help")
def help_(
    name: Annotated[str | None, typer.Argument(help="a command", autocompletion=_complete_command)] = None,
) -> None:
    """Show a command's help: its arguments, options and examples (or, alone, the list of commands)."""
    from ..errors import did_you_mean

    if name is not None and name not in COMMANDS:
        hint = did_you_mean(name, COMMANDS) or "Run `netspec --help` for the list."
        raise UserError(f"unknown command {name!r}. {hint}")
    click_command(name).main(args=[name, "--help"] if name else ["--help"], prog_name="netspec", standalone_mode=False)
