"""Typed IR -> an executable nn.Module, from the same constructor descriptions the code generator
prints, so the in-process module and the generated model.py hold identical submodules."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ShapeError
from ..ir.typed import LayerInfo, TypedGraph
from ..passes.lengths import MASK, USE, USE_LAST, lengths_plan, time_axes
from . import layers as custom
from .classes import ctor_of
from .own import op_classes


def instantiate(layer: LayerInfo) -> nn.Module:
    c = ctor_of(layer)
    if c.cls.startswith("nn."):
        return getattr(nn, c.cls[3:])(**c.kwargs)
    own = op_classes(layer.node.op)  # a layer module's own classes (OpDef.modules)
    if c.cls in own:
        return own[c.cls](**c.kwargs)
    return getattr(custom, c.cls)(**c.kwargs)


class Block(nn.Module):
    """Holds the layers of one block instance (or of a dotted-name group) so state-dict keys follow
    the spec's structure (`stage2.block0.conv1.weight`); the enclosing SpecModule runs them."""

    def __init__(self, block: str = ""):
        super().__init__()
        self._block = block

    def extra_repr(self) -> str:
        return f"block={self._block}" if self._block else ""


def _container(root: nn.Module, path: tuple[str, ...], kinds: dict[str, str]) -> nn.Module:
    """The module at `path` under root, creating Block containers on the way."""
    mod = root
    for k, part in enumerate(path):
        child = mod._modules.get(part)
        if child is None:
            child = Block(kinds.get(".".join(path[: k + 1]), ""))
            mod.add_module(part, child)
        mod = child
    return mod


class SpecModule(nn.Module):
    """The spec's layers as named submodules, run in spec order; state-dict keys are
    `<layer name>.<tensor>`. A chain runs `forward(x)`; a graph takes one argument per input and
    feeds each layer the values named in its `from:`, returning one tensor or a tuple of outputs.

    `forward(x, lengths)` (chains) takes the true lengths of a zero-padded variable-length batch;
    the plan from passes.lengths says which layers receive them. Bookkeeping attributes are
    private, so no layer name can collide with them.
    """

    def __init__(self, typed: TypedGraph):
        super().__init__()
        self._order = [layer.node.name for layer in typed.layers]
        self._sources = {layer.node.name: layer.node.inputs for layer in typed.layers}
        self._inputs = [i.name for i in typed.graph.inputs]
        self._outputs = list(typed.graph.outputs)
        self._chain = typed.is_chain
        self._axes = time_axes(typed)
        try:
            self._plan = lengths_plan(typed) if self._chain else None
        except ShapeError:
            self._plan = None  # fixed-length use only; forward(x, lengths) then explains why not
        kinds = {inst.path: inst.block for inst in typed.graph.instances}
        self._mods = {}  # qualified name -> module (a plain dict: the modules are registered below)
        for layer in typed.layers:
            node = layer.node
            module = instantiate(layer)
            _container(self, node.scope, kinds).add_module(node.local, module)
            self._mods[node.name] = module

    def forward(self, *xs: torch.Tensor, lengths: torch.Tensor | None = None):
        if not self._chain:
            if lengths is not None:
                raise ValueError("variable-length input is supported for chains of layers only")
            env = dict(zip(self._inputs, xs, strict=True))
            for name in self._order:
                env[name] = self._mods[name](*(env[src] for src in self._sources[name]))
            outs = tuple(env[name] for name in self._outputs)
            return outs[0] if len(outs) == 1 else outs
        if len(xs) == 2 and lengths is None:  # model(x, lengths) positionally, like model.py
            x, lengths = xs
        elif len(xs) == 1:
            x = xs[0]
        else:
            raise TypeError(f"a chain of layers takes one input tensor (and its lengths), got {len(xs)} tensors")
        if lengths is None:
            for name in self._order:
                x = self._mods[name](x)
            return x
        if self._plan is None:
            raise ValueError("this network cannot take variable-length input; see `netspec check`")
        for name, step, axis in zip(self._order, self._plan, self._axes, strict=True):
            if step in (USE, USE_LAST):
                x = self._mods[name](x, lengths)
            elif step == MASK:
                assert axis is not None  # the plan masks only where the input has a time axis
                x = self._mods[name](custom.zero_padding(x, lengths, axis))
            else:
                x = self._mods[name](x)
        return x


def lower(typed: TypedGraph, seed: int | None = 0) -> SpecModule:
    """Build the module; with a seed, initialization is reproducible without touching global RNG."""
    if seed is None:
        return SpecModule(typed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SpecModule(typed)
