"""The IR: immutable nodes in a graph. Passes map Graph -> Graph (or Graph -> TypedGraph).

A node keeps where it came from (file, line, column, key path) so every later pass can name the
spec line when something goes wrong. `params` holds exactly what the user wrote until the
canonicalize pass fills defaults; `user_set` remembers which keys the user wrote either way.

A value inside a block may read the shape of the block's input (`${in.channels * 6}`); the
expansion cannot know it, so such a parameter (and a `when:` condition) is a `Later` value that
shape inference resolves once the input's type is known (spec/resolve.py says how). After
inference no `Later` value is left in the graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from ..errors import Location
from ..record import factory, record, replace
from .types import TensorType

if TYPE_CHECKING:
    from typing import Any


def frozen_map(d: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(d or {}))


class Later:
    """A parameter value, a `when:` condition or a block argument that shape inference resolves
    (see the module doc); canonicalize and scaling leave it as it is."""


def is_later(value: Any) -> bool:
    return isinstance(value, Later)


@record
class Input:
    name: str
    type: TensorType
    loc: Location = factory(Location)
    path: tuple[str | int, ...] = ()


@record
class Node:
    name: str
    op: str
    params: Mapping[str, Any]
    inputs: tuple[str, ...]
    user_set: frozenset[str] = frozenset()
    loc: Location = factory(Location)
    path: tuple[str | int, ...] = ()  # key path of the layer in the spec, e.g. ("layers", 3)
    param_locs: Mapping[str, Location] = factory(frozen_map)
    # Set for layers of a block instance: the use sites, innermost first (see Diagnostic.context).
    via: tuple[str, ...] = ()
    # A `when:` condition known only once shapes are (a Later value), and the value the layer
    # passes on when the condition is false: what the next layer would read without it.
    when: Any = True
    skip_to: str | None = None
    # Width parameters scale.width changed: name -> the value written, for messages.
    scaled: Mapping[str, int] = factory(frozen_map)

    @property
    def scope(self) -> tuple[str, ...]:
        """The module path of the block instances (or dotted name) that hold this layer."""
        return tuple(self.name.split(".")[:-1])

    @property
    def local(self) -> str:
        """The name inside its block: `stage2.block0.conv1` -> `conv1`."""
        return self.name.rsplit(".", 1)[-1]

    def with_params(self, params: Mapping[str, Any]) -> Node:
        return replace(self, params=frozen_map(params))

    @property
    def is_later(self) -> bool:
        """Whether shape inference must resolve something of this node first."""
        return is_later(self.when) or any(is_later(v) for v in self.params.values())

    def loc_of(self, param: str | None) -> Location:
        if param and param in self.param_locs:
            return self.param_locs[param]
        return self.loc


@record
class Instance:
    """One use of a block: a module `path` (e.g. `stage2.block0`) whose layers are the graph's
    nodes named `<path>.<local>`. Kept so lowering and summaries can rebuild the hierarchy."""

    path: str
    block: str  # the block's name under `blocks:`
    args: Mapping[str, Any]  # argument values after defaults and expressions
    inputs: tuple[str, ...]  # the block's input names (local)
    sources: tuple[str, ...]  # the values it reads, one per input (names in the enclosing graph)
    outputs: tuple[str, ...]  # the values it returns (qualified node names)
    loc: Location = factory(Location)  # the use site
    start: int = 0  # index of the first node created for it (orders it among its siblings)
    description: str = ""  # the block's description

    @property
    def local(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    @property
    def scope(self) -> tuple[str, ...]:
        return tuple(self.path.split(".")[:-1])


@record
class Graph:
    name: str
    inputs: tuple[Input, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]
    dims: Mapping[str, int] = factory(frozen_map)  # nominal sizes of symbols
    file: str = "<spec>"
    instances: tuple[Instance, ...] = ()  # block uses, outermost first

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def without(self, alias: Mapping[str, str | None], nodes: Mapping[str, Node] | None = None) -> Graph:
        """The graph without the nodes `alias` names: readers of a removed node read its alias
        (None: the removed node's first input). `nodes` replaces nodes by name on the way; block
        instances follow, and one left without layers goes with them."""
        by_name = {n.name: n for n in self.nodes}

        def resolve(name: str) -> str:
            while name in alias:
                name = alias[name] or by_name[name].inputs[0]
            return name

        kept: list[Node] = []
        new_index: dict[int, int] = {}
        for i, node in enumerate(self.nodes):
            new_index[i] = len(kept)  # where the node at i would have been: orders block instances
            if node.name in alias:
                continue
            node = (nodes or {}).get(node.name, node)
            kept.append(replace(node, inputs=tuple(resolve(s) for s in node.inputs)))
        names = {n.name for n in kept}
        instances = tuple(
            replace(
                inst,
                sources=tuple(resolve(s) for s in inst.sources),
                outputs=tuple(resolve(o) for o in inst.outputs),
                start=new_index.get(inst.start, len(kept)),
            )
            for inst in self.instances
            if any(k.startswith(inst.path + ".") for k in names)
        )
        out = replace(self, nodes=tuple(kept), outputs=tuple(resolve(o) for o in self.outputs), instances=instances)
        out.lint()
        return out

    def lint(self) -> None:
        """Check the invariants every pass relies on: unique names, defined before use."""
        seen = {i.name for i in self.inputs}
        if len(seen) != len(self.inputs):
            raise AssertionError("duplicate graph input names")
        for n in self.nodes:
            if n.name in seen:
                raise AssertionError(f"duplicate node name {n.name!r}")
            for src in n.inputs:
                if src not in seen:
                    raise AssertionError(f"node {n.name!r} reads {src!r} before it is defined")
            seen.add(n.name)
        for out in self.outputs:
            if out not in seen:
                raise AssertionError(f"output {out!r} is not defined")
