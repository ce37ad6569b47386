"""The block structure of a typed graph, for model.py: one nn.Module class per block.

Instances of a block may differ (stage2 has 128 channels, stage3 256), so a class takes the values
that differ as constructor parameters. A value that is the same in every instance is written as
a literal; one that follows a block argument is written as that argument (`channels`); any other
(an inferred input size, say) becomes a parameter named after its layer (`conv1_in_channels`).
Instances whose layers differ in structure (another repeat count) get a class each.
This module does not import torch.
"""

from __future__ import annotations

import keyword

from ..ir import Instance
from ..ir.typed import LayerInfo, TypedGraph
from ..ops import get
from ..record import factory, record


def ctor_of(layer: LayerInfo):
    """The layer's constructor description: what module.py instantiates and model.py prints."""
    return get(layer.node.op).lower(dict(layer.node.params), layer.in_type, layer.out_type)


def channels_last_helps(typed: TypedGraph) -> bool:
    """Does a layer of the network run faster in channels-last memory format on CUDA (its
    OpDef.channels_last)? What train.channels_last: auto decides by, there and in train.py."""
    return any(get(layer.node.op).channels_last for layer in typed.layers)


@record(frozen=False)
class Owner:
    """The root model or one block instance, with its direct items in forward order."""

    path: str  # "" for the root
    inst: Instance | None
    items: list = factory(list)  # ("layer", LayerInfo) | ("inst", Owner)
    cls: ClassDef | None = None
    needs: dict = factory(dict)  # parameter of its class -> this instance's value

    def rel(self, name: str) -> str:
        """`name` relative to this owner: `stage2.block0.conv1` in stage2 -> `block0.conv1`."""
        return name[len(self.path) + 1 :] if self.path else name

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.inst.inputs if self.inst else ()

    @property
    def instance(self) -> Instance:
        """The block instance it holds: every owner but the root, which no class is made for."""
        assert self.inst is not None, f"the root owner holds no block instance ({self.path!r})"
        return self.inst

    def local_ref(self, value: str):
        """A value as this owner sees it: input k, or a value of its own items."""
        if self.inst:
            for k, src in enumerate(self.inst.sources):
                if src == value:
                    return ("in", k)
        return ("v", self.rel(value))


@record(frozen=False)
class ClassDef:
    name: str
    block: str
    members: list[Owner]
    params: list[tuple[str, str]]  # (name, type hint)
    slots: dict  # slot -> Python expression (a literal or a parameter)


def owners(typed: TypedGraph) -> Owner:
    """The tree of owners: the root and every block instance, each with its layers and children."""
    root = Owner("", None)
    by_path = {"": root}
    for inst in typed.graph.instances:  # outermost first, so parents exist
        by_path[inst.path] = Owner(inst.path, inst)
    starts = {}
    for inst in typed.graph.instances:
        parent = by_path[_owner_path(inst.scope, by_path)]
        parent.items.append(("inst", by_path[inst.path]))
        starts[inst.path] = inst.start
    index = {layer.node.name: i for i, layer in enumerate(typed.layers)}
    for layer in typed.layers:
        by_path[_owner_path(layer.node.scope, by_path)].items.append(("layer", layer))

    def key(item):
        kind, x = item
        return (starts[x.path], 0) if kind == "inst" else (index[x.node.name], 1)

    for owner in by_path.values():
        owner.items.sort(key=key)
    return root


def _owner_path(scope: tuple[str, ...], by_path: dict) -> str:
    """The deepest block instance holding a module at `scope` (dotted names add plain groups)."""
    for k in range(len(scope), 0, -1):
        path = ".".join(scope[:k])
        if path in by_path:
            return path
    return ""


def _structure(owner: Owner) -> tuple:
    """What must match for two instances to share a class."""
    items = []
    for kind, x in owner.items:
        if kind == "layer":
            c = ctor_of(x)
            reads = tuple(owner.local_ref(s) for s in x.node.inputs)
            items.append(("layer", owner.rel(x.node.name), x.node.op, c.cls, tuple(c.kwargs), reads))
        else:
            reads = tuple(owner.local_ref(s) for s in x.inst.sources)
            items.append(("inst", owner.rel(x.path), id(x.cls), reads))
    outs = tuple(owner.local_ref(v) for v in owner.instance.outputs)
    return (owner.instance.block, owner.instance.inputs, tuple(items), outs)


def _same(a, b) -> bool:
    return _norm(a) == _norm(b) and type(_norm(a)) is type(_norm(b))


def _norm(v):
    return tuple(_norm(x) for x in v) if isinstance(v, list | tuple) else v


def _hint(values) -> str:
    kinds = {type(v) for v in values}
    if len(kinds) == 1:
        return {int: "int", float: "float", bool: "bool", str: "str", tuple: "tuple"}.get(kinds.pop(), "")
    return ""


def _slots(owner: Owner) -> dict:
    """slot -> this instance's value, for every constructor value of its items."""
    out = {}
    for kind, x in owner.items:
        if kind == "layer":
            for k, v in ctor_of(x).kwargs.items():
                out[("layer", owner.rel(x.node.name), k)] = v
        else:
            for p, v in x.needs.items():
                out[("inst", owner.rel(x.path), p)] = v
    return out


def _make_class(name: str, members: list[Owner]) -> ClassDef:
    per = [_slots(m) for m in members]
    args = list(members[0].instance.args)
    params: dict[str, str] = {}  # parameter -> type hint, in order of first use
    derived: dict[str, tuple] = {}  # derived parameter -> (slot it was made for, value vector)
    slots = {}
    for slot in per[0]:
        vec = [p[slot] for p in per]
        if all(_same(v, vec[0]) for v in vec):
            slots[slot] = None  # the same in every member: written as a literal
            continue
        slots[slot] = _arg_expr(vec, members, args, params) or _derived(slot, vec, derived, params, args)
    # Arguments first, in the block's order, then the derived values.
    ordered = [(a, params[a]) for a in args if a in params] + [(p, h) for p, h in params.items() if p not in args]
    cls = ClassDef(name, members[0].instance.block, members, ordered, slots)
    for m, values in zip(members, per, strict=True):
        m.cls = cls
        m.needs = {p: m.instance.args[p] if p in args else values[derived[p][0]] for p, _ in ordered}
    return cls


def _arg_expr(vec, members, args, params) -> str | None:
    """`channels` when the values follow argument `channels`; `(stride, stride)` for per-axis tuples."""
    for a in args:
        avec = [m.instance.args.get(a) for m in members]
        if all(_same(v, av) for v, av in zip(vec, avec, strict=True)):
            expr = a
        elif all(isinstance(v, tuple) and v and all(_same(x, av) for x in v) for v, av in zip(vec, avec, strict=True)):
            expr = "(" + ", ".join([a] * len(vec[0])) + ("," if len(vec[0]) == 1 else "") + ")"
        else:
            continue
        params.setdefault(a, _hint(avec))
        return expr
    return None


def _derived(slot, vec, derived, params, args) -> str:
    """A parameter for values that follow no argument; one per distinct vector of values."""
    for pname, (_, dvec) in derived.items():
        if all(_same(x, y) for x, y in zip(vec, dvec, strict=True)):
            return pname
    base = f"{slot[1].replace('.', '_')}_{slot[2]}"
    pname, n = base, 2
    while pname in params or pname in args or pname == "self" or keyword.iskeyword(pname):
        pname, n = f"{base}_{n}", n + 1
    derived[pname] = (slot, vec)
    params[pname] = _hint(vec)
    return pname


def classes(root: Owner, class_name, taken: set[str]) -> list[ClassDef]:
    """Group the instances into classes, lowest first: a parent's structure includes its
    children's classes, so they must exist. Height (not depth) orders them, so a block used at
    two nesting depths still gets one class. `taken`: class names already used in the file."""
    out: list[ClassDef] = []
    by_height: dict[int, list[Owner]] = {}

    def height(o: Owner) -> int:
        h = 1 + max((height(x) for kind, x in o.items if kind == "inst"), default=-1)
        if o.inst:
            by_height.setdefault(h, []).append(o)
        return h

    height(root)
    for h in sorted(by_height):
        level: dict[tuple, list[Owner]] = {}
        for o in by_height[h]:
            level.setdefault(_structure(o), []).append(o)
        for members in level.values():
            name = class_name(members[0].instance.block)
            n = 2
            while name in taken:
                name, n = f"{class_name(members[0].instance.block)}{n}", n + 1
            taken.add(name)
            out.append(_make_class(name, members))
    return out
