"""The command line, on typer: every command declared with annotated parameters, help rendered by
rich, shell completion (`netspec --install-completion`). The commands call the library and render.

Exit codes: 0 ok, 1 the spec (or another user input, or the command line) is wrong, 2 an internal
error, 130 interrupted (Ctrl-C; `train` first stops with a checkpoint), 141 the reader of stdout went
away. Tracebacks only with --debug. check, summarize, graph, ops, schema, init, runs and diff never
import torch.
"""

# Registered in this order, which is the order of `netspec --help`: the spec's commands first.
# isort: off
from . import spec_commands, run_commands, tune_command, report_commands  # noqa: F401

# isort: on
from .core import COMMANDS, Exit, UserError, app, click_command, main, run

__all__ = ["COMMANDS", "Exit", "UserError", "app", "click_command", "main", "run"]
