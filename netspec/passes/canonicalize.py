"""Canonicalize: fill every default, normalize values (ints to per-axis tuples, integral floats to
ints), and run the input-independent checks of each layer so all of them are reported at once."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from ..errors import Diagnostic, ShapeError, format_path
from ..ir import Graph, Node
from ..ir.graph import is_later
from ..ops import get
from ..ops.params import REQUIRED, ParamValueError
from ..record import replace

if TYPE_CHECKING:
    from collections.abc import Collection


def shape_diag(node: Node, err: ShapeError, prefix: str = "") -> Diagnostic:
    path = node.path + ((err.param,) if err.param and err.param in node.param_locs else ())
    received = err.received
    if node.scaled:  # say what scale.width did, since the value checked is not the one written
        done = ", ".join(f"{k} {v} -> {node.params[k]}" for k, v in node.scaled.items())
        received = f"{received} (scale.width made {done})" if received else f"scale.width made {done}"
    return Diagnostic(
        f"{node.op} '{node.name}': {prefix}{err.message}",
        format_path(path),
        node.loc_of(err.param),
        expected=err.expected,
        received=received,
        hint=err.hint,
        code="shape",
    ).within(node.via)


def canonical_node(node: Node, keys: Collection[str] | None = None) -> tuple[Node, list[Diagnostic]]:
    """`node` with defaults filled and values normalized (only `keys`, when given), and the
    input-independent checks run once no value waits for shape inference (a Later value)."""
    op = get(node.op)
    diags: list[Diagnostic] = []
    resolved = dict(node.params)
    for p in op.params:
        if keys is not None and p.name not in keys:
            continue
        value = node.params.get(p.name, None if p.default is REQUIRED else p.default)
        if value is not None and not is_later(value):
            try:
                value = p.kind.normalize(value)
            except ParamValueError as exc:
                diags.append(
                    Diagnostic(
                        f"invalid value for {p.name}",
                        format_path(node.path + (p.name,)),
                        node.loc_of(p.name),
                        expected=str(exc),
                        received=str(node.params.get(p.name)),
                        code="schema",
                    ).within(node.via)
                )
                value = p.default
        resolved[p.name] = value
    node = node.with_params(resolved)
    if not node.is_later:
        # An earlier diagnostic may have left a value unusable; that one is reported already.
        with contextlib.suppress(KeyError, TypeError):
            diags.extend(shape_diag(node, err) for err in op.validate(resolved))
    return node, diags


def canonicalize(graph: Graph) -> tuple[Graph, list[Diagnostic]]:
    diags: list[Diagnostic] = []
    nodes: list[Node] = []
    for node in graph.nodes:
        node, found = canonical_node(node)
        diags += found
        nodes.append(node)
    return replace(graph, nodes=tuple(nodes)), diags
