"""Module classes that a layer brings in its own file (OpDef.modules), for layers torch has no
module for. They are ordinary imported code: the in-process builder instantiates the classes, and
model.py gets a copy of their source text, read from the layer's file. Nothing is executed from
text, and model.py stays standalone because the copied classes may use `torch` and `nn` only
(checked here, before any file is written)."""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import textwrap

from ..ir.typed import TypedGraph
from ..ops import get

# What model.py defines before the copied classes: its imports.
_AVAILABLE = frozenset({"torch", "nn"}) | frozenset(dir(builtins))


class OwnClassError(ValueError):
    """A layer module's classes cannot be used as they are written (a fault of that module)."""


@functools.cache
def op_classes(op: str) -> dict[str, type]:
    """The classes layer type `op` brings, by name (empty for a layer built from torch or netspec)."""
    make = get(op).modules
    if make is None:
        return {}
    out: dict[str, type] = {}
    for cls in make():
        if not isinstance(cls, type):
            raise OwnClassError(f"layer {op!r}: OpDef.modules() must return classes, got {cls!r}")
        out[cls.__name__] = cls
    return out


def graph_classes(typed: TypedGraph) -> dict[str, type]:
    """Every class the graph's layers bring, in order of first use; one name means one class."""
    out: dict[str, type] = {}
    for layer in typed.layers:
        for name, cls in op_classes(layer.node.op).items():
            if out.setdefault(name, cls) is not cls:
                raise OwnClassError(
                    f"two layer modules define a class {name!r} (layer {layer.node.op!r} and another): "
                    "model.py can hold only one; rename one of them"
                )
    return out


@functools.cache
def class_source(cls: type) -> str:
    """The class's source text, dedented, after checking that it needs nothing model.py lacks."""
    try:
        text = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError) as exc:
        raise OwnClassError(f"cannot read the source of {cls.__qualname__} for model.py: {exc}") from None
    missing = sorted(_free_names(ast.parse(text)) - _AVAILABLE - {cls.__name__})
    if missing:
        raise OwnClassError(
            f"{cls.__qualname__} ({inspect.getsourcefile(cls)}) uses {', '.join(missing)}, which model.py will not "
            "have: a layer's own classes may use torch, nn and builtins only (define helpers inside the class)"
        )
    return text


def _free_names(tree: ast.AST) -> set[str]:
    """Names read in `tree` that nothing in it binds (parameters, assignments, imports, defs).
    Coarse on purpose: a name bound anywhere counts as bound everywhere, which is enough to catch
    a module-level helper or import that the copy would lose."""
    bound: set[str] = set()
    read: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return read - bound
