"""Invariants of shape inference that the type checker made explicit (issue 23, types)."""

from __future__ import annotations

import pytest

from netspec.ir import Graph, Input, Instance, Node, TensorType
from netspec.ir.graph import Later
from netspec.ir.typed import LayerInfo, TypedGraph
from netspec.passes.canonicalize import canonicalize
from netspec.passes.infer import infer


def _graph(args: dict[str, object]) -> Graph:
    node = Node("b.fc", "linear", {"out_features": 2}, ("x",))
    block = Instance("b", "blk", args, ("x",), ("x",), ("b.fc",))
    graph, diags = canonicalize(Graph("g", (Input("x", TensorType((3,))),), (node,), ("b.fc",), instances=(block,)))
    assert not diags
    return graph


def test_block_argument_left_without_resolver_is_an_assertion() -> None:
    # A block argument that reads a shape needs the resolver; without one inference says so
    # (as it does for a layer's value) instead of failing on None.
    with pytest.raises(AssertionError, match="no resolver"):
        infer(_graph({"k": Later()}))


def test_block_arguments_resolved_need_no_resolver() -> None:
    typed, diags = infer(_graph({"k": 4}))
    assert typed is not None and not diags
    assert typed.total_macs == 6


def test_total_macs_unknown_when_any_layer_is() -> None:
    typed, _ = infer(_graph({"k": 4}))
    assert typed is not None
    layer = typed.layers[0]
    unknown = LayerInfo(layer.node, layer.in_type, layer.out_type, layer.params, layer.buffers, None)
    assert TypedGraph(typed.graph, typed.inputs, (layer, unknown)).total_macs is None
    assert TypedGraph(typed.graph, typed.inputs, ()).total_macs == 0
