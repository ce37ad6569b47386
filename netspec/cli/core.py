"""The command line's machinery: declaring commands, shared arguments and helpers, parsing, and
mapping failures to exit codes. The commands themselves live in spec_commands.py (front end, no
torch), run_commands.py (build, train, evaluate, predict, export, tune) and report_commands.py
(runs, plot)."""

from __future__ import annotations

import argparse
import gc
import os
import sys

from .. import __version__
from ..errors import Diagnostic, SpecError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up (~4 ms)
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


def print_json(value) -> None:
    from ..jsontext import dumps  # json: ~3 ms of start-up that the text formats do not need

    print(dumps(value))


def console(stderr: bool = False):
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


def path_arg(text: str) -> Path:
    from pathlib import Path  # not at the top: pathlib costs ~7 ms of start-up, check and summarize need none

    return Path(text)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def parse_dims(values: list[str] | None) -> dict[str, int]:
    dims = {}
    for item in values or []:
        name, sep, num = item.partition("=")
        if not sep or not name.isidentifier() or not num.strip().isdigit() or int(num) < 1:
            raise UserError(f"--dim expects NAME=SIZE with a positive integer size, e.g. --dim T=128; got {item!r}")
        dims[name] = int(num)
    return dims


def print_diagnostics(diags: list[Diagnostic], lines: list[str], stderr: bool = True) -> None:
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


def compile_or_exit(spec: str, dims: dict, *, stderr: bool = True, sets: list[str] | None = None):
    from ..compiler import compile_file

    res = compile_file(spec, dims, sets)
    if not res.ok:
        print_diagnostics(res.diagnostics, res.source_lines(), stderr)
        raise Exit(1)
    if res.warnings:
        print_diagnostics(res.warnings, res.source_lines(), True)
    return res


def memory_limit(value: str | None) -> int:
    from ..memory import default_limit, parse_size

    if value is None:
        return default_limit()
    try:
        return parse_size(value)
    except ValueError as exc:
        raise UserError(f"--max-memory: {exc}") from None


# Arguments several commands share.
SPEC = arg("spec", help="the spec file (YAML)")  # a str: check and summarize never need pathlib
RUN_DIR = arg("run_dir", type=path_arg, help="a finished run directory")
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
TABLE_FORMAT = arg(
    "-f",
    "--format",
    dest="fmt",
    choices=("table", "json", "markdown", "text"),
    default="table",
    help="table (text when not a terminal), json, markdown or text",
)
TEXT_OR_JSON = arg("-f", "--format", dest="fmt", choices=("text", "json"), default="text", help="text or json")
FORCE = arg("--force", action="store_true", help="overwrite files in an existing output directory")
MAX_MEMORY = arg(
    "--max-memory",
    metavar="SIZE",
    help="refuse specs whose static estimate, or data whose declared size, exceeds this, e.g. 8GB (default: RAM)",
)


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
    from ..errors import did_you_mean

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
        print_diagnostics(exc.diagnostics, [])
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
