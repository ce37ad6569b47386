"""Canonicalize: fill every default, normalize values (ints to per-axis tuples, integral floats to
ints), and run the input-independent checks of each layer so all of them are reported at once."""

from __future__ import annotations

import contextlib

from ..errors import Diagnostic, ShapeError, format_path
from ..ir import Graph
from ..ops import get
from ..ops.params import REQUIRED, ParamValueError
from ..record import replace


def shape_diag(node, err: ShapeError, prefix: str = "") -> Diagnostic:
    path = node.path + ((err.param,) if err.param and err.param in node.param_locs else ())
    return Diagnostic(
        f"{node.op} '{node.name}': {prefix}{err.message}",
        format_path(path),
        node.loc_of(err.param),
        expected=err.expected,
        received=err.received,
        hint=err.hint,
        code="shape",
    ).within(node.via)


def canonicalize(graph: Graph) -> tuple[Graph, list[Diagnostic]]:
    diags: list[Diagnostic] = []
    nodes = []
    for node in graph.nodes:
        op = get(node.op)
        resolved = {}
        for p in op.params:
            value = node.params.get(p.name, None if p.default is REQUIRED else p.default)
            if value is not None:
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
        # An earlier diagnostic may have left a value unusable; that one is reported already.
        with contextlib.suppress(KeyError, TypeError):
            diags.extend(shape_diag(node, err) for err in op.validate(resolved))
        nodes.append(node.with_params(resolved))
    return replace(graph, nodes=tuple(nodes)), diags
