"""Typed IR -> an executable nn.Module, from the same constructor descriptions the code generator
prints, so the in-process module and the generated model.py hold identical submodules."""

from __future__ import annotations

import torch
from torch import nn

from ..ops import get
from ..passes.infer import LayerInfo, TypedGraph
from . import layers as custom


def ctor_of(layer: LayerInfo):
    return get(layer.node.op).lower(dict(layer.node.params), layer.in_type, layer.out_type)


def instantiate(layer: LayerInfo) -> nn.Module:
    c = ctor_of(layer)
    if c.cls.startswith("nn."):
        return getattr(nn, c.cls[3:])(**c.kwargs)
    return getattr(custom, c.cls)(**c.kwargs)


class SpecModule(nn.Module):
    """A chain of named submodules, in spec order; state-dict keys are `<layer name>.<tensor>`."""

    def __init__(self, typed: TypedGraph):
        super().__init__()
        self.order = [layer.node.name for layer in typed.layers]
        for layer in typed.layers:
            self.add_module(layer.node.name, instantiate(layer))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.order:
            x = getattr(self, name)(x)
        return x


def lower(typed: TypedGraph, seed: int | None = 0) -> SpecModule:
    """Build the module; with a seed, initialization is reproducible without touching global RNG."""
    if seed is None:
        return SpecModule(typed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SpecModule(typed)
