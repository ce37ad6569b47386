"""Typed IR -> an executable nn.Module, from the same constructor descriptions the code generator
prints, so the in-process module and the generated model.py hold identical submodules."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ShapeError
from ..ops import get
from ..passes.infer import LayerInfo, TypedGraph
from ..passes.lengths import MASK, USE, USE_LAST, lengths_plan, time_axes
from . import layers as custom


def ctor_of(layer: LayerInfo):
    return get(layer.node.op).lower(dict(layer.node.params), layer.in_type, layer.out_type)


def instantiate(layer: LayerInfo) -> nn.Module:
    c = ctor_of(layer)
    if c.cls.startswith("nn."):
        return getattr(nn, c.cls[3:])(**c.kwargs)
    return getattr(custom, c.cls)(**c.kwargs)


class SpecModule(nn.Module):
    """A chain of named submodules, in spec order; state-dict keys are `<layer name>.<tensor>`.

    `forward(x, lengths)` takes the true lengths of a zero-padded variable-length batch; the plan
    from passes.lengths says which layers receive them.
    """

    def __init__(self, typed: TypedGraph):
        super().__init__()
        self.order = [layer.node.name for layer in typed.layers]
        self.axes = time_axes(typed)
        try:
            self.plan = lengths_plan(typed)
        except ShapeError:
            self.plan = None  # fixed-length use only; forward(x, lengths) then explains why not
        for layer in typed.layers:
            self.add_module(layer.node.name, instantiate(layer))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is None:
            for name in self.order:
                x = getattr(self, name)(x)
            return x
        if self.plan is None:
            raise ValueError("this network cannot take variable-length input; see `netspec check`")
        for name, step, axis in zip(self.order, self.plan, self.axes, strict=True):
            if step in (USE, USE_LAST):
                x = getattr(self, name)(x, lengths)
            elif step == MASK:
                x = getattr(self, name)(custom.zero_padding(x, lengths, axis))
            else:
                x = getattr(self, name)(x)
        return x


def lower(typed: TypedGraph, seed: int | None = 0) -> SpecModule:
    """Build the module; with a seed, initialization is reproducible without touching global RNG."""
    if seed is None:
        return SpecModule(typed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SpecModule(typed)
