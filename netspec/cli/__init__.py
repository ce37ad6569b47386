"""The command line: a thin argparse layer that parses flags, calls the library and renders with rich.

Exit codes: 0 ok, 1 the spec (or another user input) is wrong, 2 an internal error, 130 interrupted
(Ctrl-C; `train` first stops with a checkpoint). Tracebacks only with --debug. check, summarize, graph,
ops, schema, init, runs and diff never import torch.

argparse, not typer/click: a whole `netspec check` process takes about 0.15 s here, and typer alone
(with pydantic, which it imports to coerce every parameter) cost about 0.2 s before a command ran
(docs/benchmarks.md). Commands are plain functions; `@command(...)` declares their arguments.
"""

# Registered in this order, which is the order of `netspec --help`: the spec's commands first.
# isort: off
from . import spec_commands, run_commands, report_commands  # noqa: F401

# isort: on
from .core import COMMANDS, Exit, UserError, main, parser, run

__all__ = ["COMMANDS", "Exit", "UserError", "main", "parser", "run"]
