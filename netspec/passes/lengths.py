"""Which layers see the lengths of a padded, variable-length batch.

Series of unequal length are zero-padded per batch. Padding must never change a result, so the
lengths travel with the batch while the time axis (the input's symbol, e.g. T) survives unchanged:
recurrent layers pack the sequence, global pooling masks the padding, and layers that act on each
step alone pass the padding through untouched. A layer that would mix padded steps into real
ones (a strided conv, a flatten or softmax over time) is an error, found statically.
"""

from __future__ import annotations

from ..errors import ShapeError
from .infer import TypedGraph

USE = "use"  # called with lengths; the time axis survives
USE_LAST = "use_last"  # called with lengths; the output has no time axis left
KEEP = "keep"  # called plainly; acts per step, time axis unchanged
MASK = "mask"  # time axis unchanged but the layer reaches across steps (a 'same' conv): the padded
# steps are zeroed first, so the layer sees exactly the zeros an unpadded series would be padded with
PLAIN = "plain"  # no time axis any more


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
    plan = []
    alive = sym is not None
    for layer in typed.layers:
        if not alive:
            plan.append(PLAIN)
            continue
        x, y, op = layer.in_type, layer.out_type, layer.node.op
        axis = x.shape.index(sym) if sym in x.shape else None
        if op in ("lstm", "gru", "rnn") and axis == 0:
            plan.append(USE if sym in y.shape else USE_LAST)
        elif op in ("global_avgpool", "global_maxpool") and x.rank == 2 and axis == 1:
            plan.append(USE_LAST)
        elif sym in y.shape and y.shape.index(sym) == axis and not _mixes_time(layer, axis):
            plan.append(MASK if layer.node.op.startswith("conv") else KEEP)
        else:
            raise ShapeError(
                f"{op} '{layer.node.name}' would mix the padding of variable-length series into real steps",
                expected=f"layers that keep the time axis {sym} until a recurrent layer or global pooling",
                received=f"{x.show()} -> {y.show()}",
                hint="use padding: same with stride 1 for convolutions over time, or pool over time first",
            )
        alive = plan[-1] in (USE, KEEP, MASK)
    return plan


def _mixes_time(layer, axis: int) -> bool:
    """Per-step layers that still reach across time."""
    op, p, rank = layer.node.op, layer.node.params, layer.in_type.rank
    if op in ("softmax", "log_softmax"):
        return p["dim"] % (rank + 1) == axis + 1
    if op == "layernorm":
        return axis >= rank - len(p["normalized_shape"])
    return False
