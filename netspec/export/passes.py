"""Inference-time graph passes on the IR: fold each batchnorm into the convolution or linear layer
that feeds it alone, and drop the layers that are the identity at inference (dropout, identity).

The passes rewrite the graph only; the weights follow through `Plan` (export/weights.py folds
them), so the rewritten graph lowers, prints (model.py) and counts like any other. No torch here.
"""

from __future__ import annotations

from ..ir import Graph, Node
from ..ir.typed import LayerInfo, TypedGraph
from ..ops import get
from ..passes.infer import infer
from ..record import record, replace

# Which layers are dropped (OpDef.inference_identity) and which batchnorm folds into which layer
# (OpDef.folds_bn) are the layers' own traits.


@record
class Fold:
    """Batchnorm `bn` folded into `into` (a conv or linear layer)."""

    into: str
    bn: str
    eps: float
    affine: bool
    had_bias: bool


@record
class Plan:
    folds: tuple[Fold, ...] = ()
    dropped: tuple[tuple[str, str], ...] = ()  # (layer name, op)

    def describe(self) -> str:
        """ "folded 20 batchnorm layers, dropped 2 dropout": what the passes removed."""
        parts = []
        if self.folds:
            parts.append(f"folded {len(self.folds)} batchnorm layer{'s' * (len(self.folds) != 1)}")
        for op in sorted({o for _, o in self.dropped}):
            n = sum(o == op for _, o in self.dropped)
            parts.append(f"dropped {n} {op}")
        return ", ".join(parts) or "nothing to remove"


def _consumers(graph: Graph) -> dict[str, int]:
    """How many times each value is read: by a layer, a graph output or a block's output list."""
    uses: dict[str, int] = {}
    for n in graph.nodes:
        for src in n.inputs:
            uses[src] = uses.get(src, 0) + 1
    for out in graph.outputs:
        uses[out] = uses.get(out, 0) + 1
    return uses


def _folds_into(producer: LayerInfo | None, bn: Node) -> bool:
    """Does the batchnorm `bn` fold into `producer`'s output (the producer's `folds_bn` trait)?"""
    if producer is None:
        return False
    node = producer.node
    return get(node.op).folds_bn(dict(node.params), producer.in_type, producer.out_type) == bn.op


def _foldable(producer: Node | None, bn: Node, uses: dict[str, int], graph: Graph) -> bool:
    if producer is None or uses.get(producer.name) != 1:
        return False
    # Without running statistics a batchnorm normalizes by the batch's own, even at inference.
    return bn.params["track_running_stats"] and bn.name not in graph.outputs


def plan(typed: TypedGraph, fold_bn: bool = True, drop: bool = True) -> Plan:
    graph = typed.graph
    by_name = {n.name: n for n in graph.nodes}
    layers = {la.node.name: la for la in typed.layers}
    uses = _consumers(graph)
    folds, dropped = [], []
    for node in graph.nodes:
        if drop and get(node.op).inference_identity and node.name not in graph.outputs:
            dropped.append((node.name, node.op))
        elif fold_bn and node.inputs and _folds_into(layers.get(node.inputs[0]), node):
            producer = by_name[node.inputs[0]]
            if not _foldable(producer, node, uses, graph):
                continue
            p = node.params
            folds.append(Fold(producer.name, node.name, p["eps"], p["affine"], producer.params["bias"]))
    return Plan(tuple(folds), tuple(dropped))


def rewrite(graph: Graph, plan: Plan) -> Graph:
    """The graph without the plan's batchnorm and dropped layers; readers of a removed layer read
    what it read (a folded batchnorm's readers read its conv, which now has a bias)."""
    alias = {bn.bn: bn.into for bn in plan.folds} | {name: None for name, _ in plan.dropped}
    biased = {
        n.name: replace(n, params={**n.params, "bias": True}, user_set=n.user_set | {"bias"})
        for n in graph.nodes
        if n.name in {f.into for f in plan.folds}
    }
    return graph.without(alias, biased)


def optimize(typed: TypedGraph, fold_bn: bool = True, drop: bool = True) -> tuple[TypedGraph, Plan]:
    """The typed graph after the passes (shapes and counts inferred again), and what they removed."""
    p = plan(typed, fold_bn, drop)
    if not p.folds and not p.dropped:
        return typed, p
    graph = rewrite(typed.graph, p)
    new, diags = infer(graph, typed.bindings)
    if new is None:  # the passes keep every shape; failing here is a bug, not a user mistake
        raise AssertionError("the inference passes broke the graph: " + "; ".join(d.render() for d in diags))
    return new, p
