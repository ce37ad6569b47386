"""Model scaling: `scale: {width: w}` multiplies every width parameter (conv out_channels, linear
out_features, recurrent hidden_size, embedding_dim) by w, rounded to a multiple of `divisor`.

The layers that set the size of a model output are the task's heads (1000 classes stay 1000), so
they keep their written width: walking back from each output, the first layer with a width
parameter on every path is a head. (`scale.depth` multiplies repeat counts; spec/parse.py applies
it while it expands blocks.)
"""

from __future__ import annotations

from ..ir import Graph
from ..ops import get
from ..record import replace


def scaled_width(value: int, width: float, divisor: int = 1) -> int:
    """round(value * width) to the nearest multiple of divisor, never below divisor (or 1)."""
    target = value * width / divisor
    return max(divisor, int(target + 0.5) * divisor)


def width_params(op: str) -> list[str]:
    return [p.name for p in get(op).params if p.width]


def heads(graph: Graph) -> set[str]:
    """Names of the layers that set an output's size (see the module doc)."""
    by_name = {n.name: n for n in graph.nodes}
    found: set[str] = set()
    seen: set[str] = set()
    stack = list(graph.outputs)
    while stack:
        name = stack.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        node = by_name[name]
        if width_params(node.op):
            found.add(name)
        else:
            stack.extend(node.inputs)
    return found


def scale_width(graph: Graph, width: float, divisor: int = 1) -> Graph:
    if width == 1 and divisor == 1:
        return graph
    keep = heads(graph)
    nodes = []
    for node in graph.nodes:
        params = dict(node.params)
        if node.name not in keep:
            for key in width_params(node.op):
                if isinstance(params.get(key), int):
                    params[key] = scaled_width(params[key], width, divisor)
        nodes.append(node.with_params(params))
    return replace(graph, nodes=tuple(nodes))
