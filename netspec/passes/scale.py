"""Model scaling: `scale: {width: w}` multiplies every width parameter (conv out_channels, linear
out_features, recurrent hidden_size, embedding_dim) by w, rounded to a multiple of `divisor`.

The layers that set the size of a model output are the task's heads (1000 classes stay 1000), so
they keep their written width: walking back from each output, the first layer with a width
parameter on every path is a head (a layer whose `when:` is known only once shapes are may vanish,
so the walk goes on past it too).

A width written as an expression over a block's input (`${in.channels * 6}`) is not scaled: the
input it reads is scaled already. Likewise `groups` is never scaled; a depthwise conv written
`depthwise: true` follows its input's channels. (`scale.depth` multiplies repeat counts; spec/parse.py applies
it while it expands blocks.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..ir import Graph
from ..ir.graph import frozen_map, is_later
from ..ops import get
from ..record import replace

if TYPE_CHECKING:
    from ..ir import Node


def scaled_width(value: int, width: float, divisor: int = 1) -> int:
    """value * width rounded to the nearest multiple of divisor, never below divisor (or 1), and
    never more than 10% below value * width (one divisor more then): the rule of MobileNet's and
    EfficientNet's reference code (`_make_divisible`), so their scaled variants count the same."""
    target = value * width
    out = max(divisor, int(target / divisor + 0.5) * divisor)
    return out + divisor if out < 0.9 * target else out


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
        if not width_params(node.op) or is_later(node.when):
            stack.extend(node.inputs)
    return found


def scale_width(graph: Graph, width: float, divisor: int = 1) -> Graph:
    if width == 1 and divisor == 1:
        return graph
    keep = heads(graph)
    nodes: list[Node] = []
    for node in graph.nodes:
        params = dict(node.params)
        scaled: dict[str, int] = {}
        if node.name not in keep:
            for key in width_params(node.op):
                if isinstance(params.get(key), int):
                    scaled[key] = params[key]
                    params[key] = scaled_width(params[key], width, divisor)
        nodes.append(replace(node, params=frozen_map(params), scaled=frozen_map(scaled)))
    return replace(graph, nodes=tuple(nodes))
