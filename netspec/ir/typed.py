"""The typed graph: a graph after shape inference, with every layer's input and output types and
its parameter, buffer and MAC counts. passes/infer.py makes it; summaries, lowering, export and
the runtime read it.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..record import factory, record
from .graph import Graph, Node
from .types import TensorType


@record
class LayerInfo:
    node: Node  # params fully resolved, inferred values included
    in_type: TensorType  # the (first) input
    out_type: TensorType
    params: int
    buffers: int
    macs: int | None  # per sample; None when a symbolic dim leaves it unknown
    inferred: frozenset[str] = frozenset()
    out_elems: int | None = None  # output elements per sample (concrete when dims are bound)
    in_types: tuple[TensorType, ...] = ()  # every input, for merges


@record
class TypedGraph:
    graph: Graph
    inputs: tuple[TensorType, ...]  # one per graph input, in order
    layers: tuple[LayerInfo, ...]
    bindings: Mapping[str, int] = factory(lambda: {})  # a lambda, not `dict`: checkers infer dict[str, int]
    unbound: tuple[str, ...] = ()

    @property
    def input(self) -> TensorType:
        return self.inputs[0]

    @property
    def outputs(self) -> tuple[TensorType, ...]:
        types = {i.name: t for i, t in zip(self.graph.inputs, self.inputs, strict=True)}
        types.update((la.node.name, la.out_type) for la in self.layers)
        return tuple(types[name] for name in self.graph.outputs)

    @property
    def output(self) -> TensorType:
        return self.outputs[0]

    @property
    def is_chain(self) -> bool:
        """One input, one output, each layer reading the one before, no blocks (whose classes in
        model.py have their own forward): forward(x) is a plain chain."""
        if self.graph.instances:
            return False
        prev = self.graph.inputs[0].name
        for la in self.layers:
            if la.node.inputs != (prev,):
                return False
            prev = la.node.name
        return len(self.graph.inputs) == 1 and self.graph.outputs == (prev,)

    def inside(self, path: str) -> list[LayerInfo]:
        """The layers of the block instance (or group) at module path `path`."""
        return [la for la in self.layers if la.node.name.startswith(path + ".")]

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def total_buffers(self) -> int:
        return sum(layer.buffers for layer in self.layers)

    @property
    def total_macs(self) -> int | None:
        total = 0
        for layer in self.layers:
            if layer.macs is None:
                return None
            total += layer.macs
        return total
