"""The command line's machinery on typer: the app, the options several commands share, completion,
and mapping failures to exit codes. The commands themselves live in spec_commands.py (front end, no
torch), run_commands.py (build, train, evaluate, predict, export), tune_command.py and report_commands.py
(runs, plot).

Start-up: typer (with its vendored click) is the floor of every command; the command bodies import
what they need when they run, rich is imported only for help, errors and tables, and the click
command is built only for the subcommand being run (building all of them costs a few ms that
`netspec check` need not pay; `--help` and completion build them all).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Annotated, Literal

import typer

from .. import __version__
from ..errors import Diagnostic, SpecError

_state: dict[str, bool | str | None] = {"debug": False}  # debug: --debug given; command: the subcommand run

APP_HELP = "A declarative deep-learning compiler: YAML spec -> statically checked IR -> PyTorch."
APP_EPILOG = (
    "Run [bold]netspec help COMMAND[/bold] (or [bold]netspec COMMAND --help[/bold]) for a command's options and "
    "examples. Exit codes: 0 ok, 1 the spec or another input is wrong, 2 an internal error (a traceback with "
    "[bold]--debug[/bold]), 130 interrupted."
)

# Help panels: commands by what they work on, options by concern.
SPEC_PANEL, RUN_PANEL, REPORT_PANEL = "Spec (static, no torch)", "Build and run", "Runs"
OPT_SPEC, OPT_OUTPUT, OPT_TRAIN, OPT_RESOURCES = "Spec values", "Output", "Training", "Resources"


class UserError(Exception):
    """A mistake in what the user gave us (not a spec diagnostic): exit code 1."""


class PipeClosed(Exception):
    """stdout's reader went away (`netspec runs | head`)."""


class Exit(Exception):
    """Leave with this exit code (after the command has said why)."""

    def __init__(self, code: int = 0):
        super().__init__(code)
        self.code = code


def print_json(value) -> None:
    from ..jsontext import dumps  # json: ~3 ms of start-up that the text formats do not need

    print(dumps(value))


def console(stderr: bool = False):
    from rich.console import Console  # honours NO_COLOR, and writes no escape codes to a pipe

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


# ----------------------------------------------------------------------------- declaring commands

COMMANDS: dict = {}  # name -> (function, keyword arguments of Typer.command)


def examples(*lines: str) -> str:
    """A command's epilog: its examples, one per line as a user types them."""
    body = "\n\n".join(f"  [bold]$[/bold] {line}" for line in lines)
    return f"[bold]Examples[/bold]\n\n{body}"


def command(panel: str, *example_lines: str, name: str | None = None):
    """Register a command: its name is the function's (or `name`), its help the docstring, its
    parameters typer's annotations; `example_lines` end its help."""

    def register(fn):
        @functools.wraps(fn)  # typer reads the signature and annotations through __wrapped__
        def guarded(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except BrokenPipeError:  # not an OSError past here: click's handler would make it exit 1
                raise PipeClosed from None

        # The docstring's lines are source layout: rich wraps the text to the terminal instead.
        paragraphs = [" ".join(p.split()) for p in (fn.__doc__ or "").strip().split("\n\n")]
        short = paragraphs[0].replace(". ", ".\n", 1).split("\n")[0].rstrip(".")
        COMMANDS[name or fn.__name__.rstrip("_")] = (
            guarded,
            {
                "help": "\n\n".join(paragraphs),
                "short_help": short,
                "rich_help_panel": panel,
                "epilog": examples(*example_lines),
            },
        )
        return fn

    return register


def path_arg(text: str) -> Path:
    return Path(text)


def parse_dims(values: list[str] | None) -> dict[str, int]:
    dims = {}
    for item in values or []:
        name, sep, num = item.partition("=")
        if not sep or not name.isidentifier() or not num.strip().isdigit() or int(num) < 1:
            raise UserError(f"--dim expects NAME=SIZE with a positive integer size, e.g. --dim T=128; got {item!r}")
        dims[name] = int(num)
    return dims


def spec_file(spec: str) -> str:
    """A spec argument as a file: a run directory (of `netspec train`) stands for its resolved spec."""
    if os.path.isdir(spec):
        resolved = os.path.join(spec, "spec.resolved.yaml")
        if os.path.isfile(resolved):
            return resolved
        raise UserError(f"{spec} is a folder, not a spec file, and holds no spec.resolved.yaml (it is not a run)")
    return spec


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

    res = compile_file(spec_file(spec), dims, sets)
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


# ----------------------------------------------------------------------------- completion
# Each returns the candidates for what the user has typed so far; none imports torch.


def _entries(incomplete: str):
    folder, _, stem = incomplete.rpartition("/")
    base = folder + "/" if folder else ""
    try:
        with os.scandir(folder or ".") as it:
            names = sorted((e.name, e.is_dir()) for e in it if e.name.startswith(stem) and not e.name.startswith("."))
    except OSError:
        return []
    return [(base + n, d) for n, d in names]


def complete_spec(incomplete: str) -> list[str]:
    """Spec files (*.yaml, *.yml) and folders to walk into."""
    return [p + "/" if d else p for p, d in _entries(incomplete) if d or p.endswith((".yaml", ".yml"))]


def complete_run_dir(incomplete: str) -> list[str]:
    """Folders: runs first (they hold spec.resolved.yaml or checkpoints/), then the others."""
    folders = [p for p, d in _entries(incomplete) if d]
    runs = [p for p in folders if os.path.exists(os.path.join(p, "spec.resolved.yaml"))]
    return runs + [p + "/" for p in folders if p not in runs]


def complete_op(incomplete: str) -> list[str]:
    from ..ops import all_ops

    return [name for name in all_ops() if name.startswith(incomplete)]


def set_keys() -> list[str]:
    """The key paths `--set` takes, from the schema: every setting of the train: section, nested."""
    from ..spec.train_schema import train_schema

    keys: list[str] = ["name", "description"]

    def walk(schema: dict, prefix: str, depth: int) -> None:
        for key, sub in (schema.get("properties") or {}).items():
            path = f"{prefix}.{key}"
            keys.append(path)
            if depth < 3 and isinstance(sub, dict):
                # a setting written as a mapping or a shorthand: its mapping form's keys
                for branch in [sub, sub.get("else"), *sub.get("anyOf", []), *sub.get("oneOf", [])]:
                    if isinstance(branch, dict) and "properties" in branch:
                        walk(branch, path, depth + 1)

    walk(train_schema(), "train", 0)
    return list(dict.fromkeys(keys))


def complete_set(incomplete: str) -> list[str]:
    return [f"{k}=" for k in set_keys() if f"{k}=".startswith(incomplete)]


# ----------------------------------------------------------------------------- shared options

Spec = Annotated[
    str, typer.Argument(metavar="SPEC", help="the spec file (YAML), or a run directory", autocompletion=complete_spec)
]
SpecPath = Annotated[Path, typer.Argument(metavar="SPEC", help="the spec file (YAML)", autocompletion=complete_spec)]
RunDir = Annotated[
    Path, typer.Argument(metavar="RUN_DIR", help="a finished run directory", autocompletion=complete_run_dir)
]
Dims = Annotated[
    list[str] | None,
    typer.Option(
        "--dim",
        metavar="NAME=SIZE",
        help="nominal size of a symbolic dim, e.g. --dim T=128 (repeatable)",
        rich_help_panel=OPT_SPEC,
    ),
]
Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="override a spec value by key path, e.g. --set train.optimizer.lr=0.01 (repeatable)",
        autocompletion=complete_set,
        rich_help_panel=OPT_SPEC,
    ),
]
TableFormat = Annotated[
    Literal["table", "json", "markdown", "text"],
    typer.Option("-f", "--format", help="table (text when not a terminal), json, markdown or text"),
]
TextOrJson = Annotated[Literal["text", "json"], typer.Option("-f", "--format", help="text or json")]
Force = Annotated[
    bool, typer.Option("--force", help="overwrite files in an existing output directory", rich_help_panel=OPT_OUTPUT)
]
MaxMemory = Annotated[
    str | None,
    typer.Option(
        "--max-memory",
        metavar="SIZE",
        help="refuse specs whose static estimate, or data whose declared size, exceeds this, e.g. 8GB (default: RAM)",
        rich_help_panel=OPT_RESOURCES,
    ),
]
PositiveInt = Annotated[int | None, typer.Option(min=1)]


# ----------------------------------------------------------------------------- the app and exit codes


def _version(value: bool) -> None:
    if value:
        print(f"netspec {__version__}")
        raise typer.Exit(0)


def _top(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks of internal errors")] = False,
) -> None:
    """A declarative deep-learning compiler: YAML spec -> statically checked IR -> PyTorch."""


def app(only: str | None = None) -> typer.Typer:
    """The typer app: every command, or with `only` just that one (what a run of it needs)."""
    ns = typer.Typer(
        name="netspec",
        help=APP_HELP,
        epilog=APP_EPILOG,
        rich_markup_mode="rich",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
    )
    ns.callback()(_top)
    for name, (fn, kwargs) in COMMANDS.items():
        if only is None or name == only:
            ns.command(name, **kwargs)(fn)
    return ns


def click_command(only: str | None = None):
    return typer.main.get_command(app(only))


def _subcommand(argv: list[str]) -> str | None:
    """The subcommand a command line names: its first word (of the top level's options only the
    completion ones take a value, the shell's name)."""
    if any(a.startswith(("--show-completion", "--install-completion")) for a in argv):
        return None
    words = [a for a in argv if not a.startswith("-")]
    return words[0] if words else None


def _dispatch(argv: list[str]) -> int:
    from ..errors import did_you_mean

    name = _subcommand(argv)
    completing = "_NETSPEC_COMPLETE" in os.environ  # the shell asks for candidates: every command
    if name is not None and name not in COMMANDS and not completing:
        hint = did_you_mean(name, COMMANDS) or "Run `netspec --help` for the list."
        raise UserError(f"unknown command {name!r}. {hint}")
    _state["command"] = name
    if name not in SHORT_LIVED:
        gc.enable()
    only = None if completing or name is None else name
    rv = click_command(only).main(args=argv, prog_name="netspec", standalone_mode=False)
    return rv if isinstance(rv, int) else 0


# Commands that run for a fraction of a second, allocate a bounded amount (the loader's caps) and
# leave nothing to clean up (no files, threads, atexit hooks): they run without the cycle collector,
# whose passes over the objects of every import cost ~5-10% of their start-up, and end without the
# interpreter's teardown of every imported module (~10 ms). The others keep both.
SHORT_LIVED = {"check", "summarize", "ops", "schema"}


def _usage_error(exc) -> None:
    """A click usage error (unknown option, missing argument, bad value): the subcommand's usage, a
    pointer to its --help and the message (with click's "did you mean"). In typer's rich panel on a
    terminal; plain lines in a pipe or a log, where a panel would wrap the message mid-word."""
    if sys.stderr.isatty():
        from typer import rich_utils

        rich_utils.rich_format_error(exc)
    else:
        exc.show()


def _quiet_pipe() -> None:
    """stdout's reader went away (`netspec runs | head`): drop what is left, as a Unix tool would."""
    with contextlib.suppress(OSError, ValueError):  # no stdout descriptor to redirect: nothing to drop
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


# ----------------------------------------------------------------------------- foreign warnings
# A normal run prints netspec's own lines only. The third-party warnings a run can still meet are
# listed here, each matched narrowly (category, the file that warns, the message's own words; regular
# expressions compiled on first use) and said once in netspec's words, naming the setting that causes
# it; any other warning is shown as Python shows it (one netspec has not met is better seen than hidden).
_FOREIGN = (
    (
        # torch's DataLoader on train.data.loader.workers above the cores it may use: the setting is
        # the user's (auto never does it), the advice worth keeping, torch's wording not.
        UserWarning,
        r"torch[/\\]utils[/\\]data[/\\]dataloader\.py\Z",
        r"This DataLoader will create (?P<n>\d+) worker processes in total\. "
        r"Our suggested max number of worker in current system is (?P<max>\d+)",
        "warning: train.data.loader.workers asks for {n} worker processes, more than the {max} cores this "
        "process may use: they compete with the training steps and may slow the run; fewer workers (or auto) "
        "leave a core to the steps",
    ),
    (
        # An op without a deterministic kernel under train.deterministic (warn_only=True: it runs, and
        # says so; on CUDA, some backward passes). Raised inside torch's C++ for whichever Python line
        # called the op, so the file is any: the message alone is matched.
        UserWarning,
        None,
        r"(?P<op>\S+) does not have a deterministic implementation, but you set "
        r"'torch\.use_deterministic_algorithms\(True, warn_only=True\)'",
        "note: {op} has no deterministic implementation on this device: with train.deterministic the "
        "run may still differ from run to run in the last digits",
    ),
)


def _own_warnings() -> None:
    """Show the warnings of _FOREIGN in netspec's words, once each (call inside catch_warnings)."""
    show = warnings.showwarning
    said: set[str] = set()

    def showwarning(message, category, filename, lineno, file=None, line=None):
        for cat, where, rx, text in _FOREIGN:
            m = re.match(rx, str(message)) if issubclass(category, cat) else None  # re caches the patterns
            if m and (where is None or re.search(where, str(filename))):
                own = text.format(**m.groupdict())
                if own not in said:
                    said.add(own)
                    print(own, file=sys.stderr)
                return
        show(message, category, filename, lineno, file, line)

    warnings.showwarning = showwarning


def _ordered_output() -> None:
    """Line by line, in the order written, also when stdout and stderr share a pipe (`netspec tune
    spec.yaml 2>&1 | tee log`): Python block-buffers a piped stdout, so its lines came out after
    stderr lines written later (an error after the summary it follows). A line per write costs
    nothing next to what the commands do; on a terminal stdout is line-buffered anyway."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):  # None, closed, or not a TextIOWrapper
            stream.reconfigure(line_buffering=True)  # pyright: ignore[reportAttributeAccessIssue]  # TextIO's stubs lack it


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a command and map failures to exit codes (1 user error, 2 internal)."""
    from typer import Abort
    from typer._click import exceptions as click_exc

    argv = sys.argv[1:] if argv is None else list(argv)
    # --debug may stand anywhere (before or after the command); the top level declares it for --help.
    _state["debug"] = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        with warnings.catch_warnings():  # restored on return: main() also runs inside other programs (tests)
            _own_warnings()
            return _dispatch(argv)
    except Exit as exc:
        return exc.code
    except click_exc.NoArgsIsHelpError as exc:  # `netspec` alone: its help, as a usage error
        print(exc.ctx.get_help() if exc.ctx else APP_HELP, file=sys.stderr)
        return 1
    except click_exc.ClickException as exc:
        _usage_error(exc)
        return 1
    except Abort:
        return 130
    except SystemExit as exc:  # shell completion answers and exits
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
    except (BrokenPipeError, PipeClosed):
        _quiet_pipe()
        return 141  # 128 + SIGPIPE, what a shell shows for a tool whose reader closed the pipe
    except Exception as exc:
        if _state["debug"]:
            raise
        print(f"netspec: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("This is a bug in netspec. Run again with --debug for the traceback.", file=sys.stderr)
        return 2
    finally:
        if was_enabled:
            gc.enable()


def run() -> None:
    _ordered_output()
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the reader left while the last lines sat in the buffer
        _quiet_pipe()
        code = code or 141
    if _state.get("command") in SHORT_LIVED:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
