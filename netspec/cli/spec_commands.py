"""Commands that read a spec and never import torch: check, summarize, graph, diff, init, ops, schema."""

from __future__ import annotations

import os
import sys

from .core import (
    DIM,
    MAX_MEMORY,
    SET,
    SPEC,
    TABLE_FORMAT,
    TEXT_OR_JSON,
    Exit,
    UserError,
    arg,
    command,
    compile_or_exit,
    console,
    memory_limit,
    parse_dims,
    path_arg,
    positive_int,
    print_diagnostics,
    print_json,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up (~4 ms)
if TYPE_CHECKING:
    from pathlib import Path


@command(SPEC, TEXT_OR_JSON, DIM, SET)
def check(spec: str, fmt: str = "text", dim: list[str] | None = None, set_: list[str] | None = None) -> None:
    """Validate a spec and check every shape statically; report all problems at once."""
    from ..compiler import compile_file

    res = compile_file(spec, parse_dims(dim), set_)
    if fmt == "json":
        out = {"ok": res.ok, "file": str(spec), "diagnostics": [d.to_json() for d in res.diagnostics]}
        if res.ok:
            t = res.typed
            out.update(output_shape=list(t.output.shape), total_params=t.total_params, macs=t.total_macs)
        print_json(out)
        raise Exit(0 if res.ok else 1)
    if res.diagnostics:
        print_diagnostics(res.diagnostics, res.source_lines(), stderr=False)
    if not res.ok:
        raise Exit(1)
    t = res.typed
    macs = "" if t.total_macs is None else f", {t.total_macs:,} MACs"
    print(f"{spec}: OK  {t.graph.name}: {t.input.show()} -> {t.output.show()}, {t.total_params:,} params{macs}")


@command(
    SPEC,
    TABLE_FORMAT,
    arg("-b", "--batch-size", type=positive_int, default=1, help="batch size for activation memory"),
    DIM,
    arg("-d", "--depth", type=positive_int, help="levels of blocks to show (1: top level only); default: all"),
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
    from ..summary import markdown, summary_data, text

    res = compile_or_exit(spec, parse_dims(dim), sets=set_)
    data = summary_data(res.typed, batch_size)
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
    screen = console()
    screen.print(table)
    for k, v in totals_lines(data):
        screen.print(f"{k}: {v}")


GRAPH_FORMATS = {".svg": "svg", ".png": "png", ".dot": "dot", ".gv": "dot", ".mmd": "mmd", ".mermaid": "mmd"}
GRAPH_KINDS = tuple(dict.fromkeys(GRAPH_FORMATS.values()))  # svg, png, dot, mmd


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
            f"expected one of {', '.join(GRAPH_FORMATS)}, or pass --format {'|'.join(GRAPH_KINDS)}"
        )
    return fmt or by_ext


@command(
    SPEC,
    arg("-o", "--out", help="the picture: .svg or .png (need Graphviz), .dot or .mmd (default: DOT on stdout)"),
    arg("-f", "--format", dest="fmt", choices=GRAPH_KINDS, help="format (default: from -o)"),
    arg("-d", "--depth", type=positive_int, help="levels of blocks to draw (1: a block is one node); default: all"),
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
    from ..viz.graph import diagram, title_lines, to_dot, to_mermaid

    fmt = _graph_format(out, fmt)
    res = compile_or_exit(spec, parse_dims(dim), sets=set_)
    d = diagram(res.typed, depth)
    title = title_lines(res.typed)
    text = to_mermaid(d, title, direction) if fmt == "mmd" else to_dot(d, title, direction)
    data = text.encode()
    if fmt in ("svg", "png"):
        from ..viz.render import RenderError, render

        stem = os.path.splitext(os.path.basename(out))[0] if out else res.typed.graph.name
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
    print(f"{res.typed.graph.name}: {len(d.nodes)} nodes, {len(d.edges)} edges, {len(d.clusters)} clusters -> {out}")


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
    arg("path", nargs="?", type=path_arg, default="model.yaml", help="the spec to write (default: model.yaml)"),
    arg("-t", "--template", default="cnn", help="cnn, resnet (images), fcn, lstm or gru (series); default: cnn"),
    arg(
        "-d",
        "--data",
        default="digits",
        help="digits, ucr:<Name>, synthetic, or a .npz / .csv file (its shape and classes are read); default: digits",
    ),
    arg("--classes", type=positive_int, help="number of classes of synthetic data (default 10)"),
    arg("--force", action="store_true", help="overwrite an existing file"),
    MAX_MEMORY,
)
def init(
    path: Path | None = None,
    template: str = "cnn",
    data: str = "digits",
    classes: int | None = None,
    force: bool = False,
    max_memory: str | None = None,
) -> None:
    """Write a commented starter spec from a template, fitted to the data's shape and classes;
    `netspec check` accepts it and `netspec train` runs it."""
    from ..init import InitError, render, write

    path = path_arg("model.yaml") if path is None else path
    try:
        # first: a wrong template or source says so
        text = render(template, data, path, classes, memory_limit(max_memory))
        if path.exists() and not force:
            raise InitError(f"{path} exists; pass --force to overwrite it, or choose another path")
        write(path, text, force)
    except InitError as exc:
        raise UserError(str(exc)) from None
    print(f"wrote {path} ({template} for {data}); next: netspec check {path} && netspec train {path}")


@command(arg("name", nargs="?", help="show one layer type in detail"), TEXT_OR_JSON)
def ops(name: str | None = None, fmt: str = "text") -> None:
    """List the layer types with their parameters and defaults."""
    from ..docs import op_table, ops_json
    from ..errors import did_you_mean
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


@command()
def schema() -> None:
    """Print the JSON Schema of a spec (generated from the layer registry)."""
    from ..spec.schema import schema_text

    print(schema_text(), end="")
