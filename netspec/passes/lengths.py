"""Which layers see the lengths of a padded, variable-length batch.

Series of unequal length are zero-padded per batch. Padding must never change a result, so the
lengths travel with the batch while the time axis (the input's symbol, e.g. T) survives unchanged:
recurrent layers pack the sequence, global pooling masks the padding, and layers that act on each
step alone pass the padding through untouched. A layer that would mix padded steps into real
ones (a strided conv, a flatten or softmax over time) is an error, found statically.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ShapeError
from ..ir.typed import TypedGraph
from ..ops import get
from ..ops.registry import KEEP, MASK, MIX, USE, USE_LAST

if TYPE_CHECKING:
    from ..ir.typed import LayerInfo

# What each layer does with the lengths is its OpDef's `lengths` trait (ops/registry.py says what
# USE, USE_LAST, KEEP, MASK and MIX mean); a layer whose input has lost the time axis is PLAIN.
PLAIN = "plain"  # no time axis any more

__all__ = ["KEEP", "MASK", "MIX", "PLAIN", "USE", "USE_LAST", "lengths_plan", "time_axes", "time_symbol"]


def time_symbol(typed: TypedGraph) -> str | None:
    return next((d for d in typed.input.shape if isinstance(d, str)), None)


def time_axes(typed: TypedGraph) -> list[int | None]:
    """Per layer, the axis of the time symbol in its input batch (batch first), or None."""
    sym = time_symbol(typed)
    return [1 + la.in_type.shape.index(sym) if sym in la.in_type.shape else None for la in typed.layers]


def lengths_plan(typed: TypedGraph) -> list[str]:
    """One entry per layer; raises ShapeError naming the first layer that breaks the lengths."""
    sym = time_symbol(typed)
    if sym is not None and not typed.is_chain:
        raise ShapeError(
            "variable-length input is supported for chains of layers only",
            expected="a chain (no from:, no blocks, one input, one output)",
            received=f"a graph with inputs {[i.name for i in typed.graph.inputs]}"
            + (f" and {len(typed.graph.instances)} block uses" if typed.graph.instances else ""),
        )
    plan: list[str] = []
    alive = sym is not None
    for layer in typed.layers:
        if not alive:
            plan.append(PLAIN)
            continue
        x, y, op = layer.in_type, layer.out_type, layer.node.op
        axis = x.shape.index(sym) if sym in x.shape else None
        step = _step(layer, axis)
        # KEEP and MASK act per step: the time axis must stay where it was
        kept = step in (KEEP, MASK) and sym in y.shape and y.shape.index(sym) == axis
        if step in (USE, USE_LAST) or kept:
            plan.append(step)
        else:
            raise ShapeError(
                f"{op} '{layer.node.name}' would mix the padding of variable-length series into real steps",
                expected=f"layers that keep the time axis {sym} until a recurrent layer or global pooling",
                received=f"{x.show()} -> {y.show()}",
                hint="use padding: same with stride 1 for convolutions over time, or pool over time first",
            )
        alive = plan[-1] in (USE, KEEP, MASK)
    return plan


def _step(layer: LayerInfo, axis: int | None) -> str:
    """The layer's `lengths` trait; a layer whose input has no time axis mixes it (an error)."""
    rule = get(layer.node.op).lengths
    if axis is None:
        return MIX
    return rule(dict(layer.node.params), layer.in_type, layer.out_type, axis) if callable(rule) else rule
