"""Static type and shape inference, and parameter / buffer / MAC counts. No forward pass.

Runs twice when the input has symbolic dims: once symbolically (the shapes people read, and the
check), and once with every symbol bound to its nominal size (spec `dims:` or `--dim`), which gives
the concrete MAC and activation counts and catches a nominal size too small for the network.

A node with a value that reads a block input's shape (an `ir.graph.Later`) is resolved by the
`resolver` when inference reaches it: it then has its values, or passes its input on when its
`when:` is false. The TypedGraph holds the resolved graph, in which no Later value is left.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import WARNING, Diagnostic, ShapeError, format_path
from ..ir import Graph, Node, TensorType
from ..ir import types as T
from ..ir.graph import is_later
from ..ir.typed import LayerInfo, TypedGraph
from ..ops import all_ops, get
from ..record import factory, record, replace
from .canonicalize import shape_diag


def _accepts(node: Node, x: TensorType) -> ShapeError | None:
    op = get(node.op)
    acc = op.accepts
    if acc.dtype != "any" and x.dtype != acc.dtype:
        hint = None
        if acc.dtype == "int64":
            hint = "declare the input with `dtype: int64` (token ids)"
        elif x.dtype == "int64":
            readers = " or ".join(f"`{o.name}`" for o in all_ops().values() if o.vocab_size)
            hint = f"integer ids go through an {readers} layer first" if readers else None
        return ShapeError(
            f"wrong input dtype for {node.op}",
            expected=f"{acc.dtype} input {acc.axes}",
            received=f"{x.dtype} {x.show()}",
            hint=hint,
        )
    if not acc.ok_rank(x.rank):
        want = f"rank {' or '.join(str(r) for r in acc.ranks)}" if acc.ranks else f"rank >= {acc.min_rank}"
        hint = None
        if acc.ranks and x.rank > max(acc.ranks):
            hint = "add `- flatten` or a global pooling layer before it"
        if op.low_rank_hint and acc.ranks and x.rank < min(acc.ranks):
            hint = op.low_rank_hint
        return ShapeError(
            f"{node.op} expects {acc.axes} per sample",
            expected=f"{want} per sample {acc.axes} (plus the batch)",
            received=f"rank {x.rank}: {x.show()}",
            hint=hint,
        )
    return None


def _warn(node: Node, x: TensorType) -> list[Diagnostic]:
    """Legal but suspicious layer uses (each layer's `warn` hook); every one that applies is reported."""
    hook = get(node.op).warn
    return hook(node, x) if hook else []


if TYPE_CHECKING:
    from typing import Protocol

    from ..ir import Instance

    class Resolver(Protocol):
        """Resolves a graph's Later values once the types they read are known (spec/resolve.py's
        SpecResolver is the one netspec uses; a protocol, so this floor imports nothing above it)."""

        def node(self, node: Node, types: Mapping[str, TensorType]) -> tuple[Node | str | None, list[Diagnostic]]:
            """The node with its values; or the value it passes on (a str) when its `when:` is false;
            or None when it failed (diagnostics say why)."""
            ...

        def value(self, value: object, types: Mapping[str, TensorType]) -> object:
            """A block argument's value (None when it failed: its readers report that)."""
            ...


@record(frozen=False)
class _Changes:
    # (lambdas, not `dict`: checkers infer the item types from the field's)
    nodes: dict[str, Node] = factory(lambda: {})  # name -> the node with its Later values resolved
    alias: dict[str, str] = factory(lambda: {})  # name of a skipped node -> the value it passes on


def _run(
    graph: Graph, inputs: tuple[TensorType, ...], prefix: str, resolver: Resolver | None = None
) -> tuple[list[LayerInfo], list[Diagnostic], _Changes]:
    """Infer layer by layer; a failed layer only stops the layers that depend on it, so errors in
    independent branches are all reported."""
    layers: list[LayerInfo] = []
    diags: list[Diagnostic] = []
    changes = _Changes()
    types = {i.name: t for i, t in zip(graph.inputs, inputs, strict=True)}
    for node in graph.nodes:
        if any(src not in types for src in node.inputs):
            continue  # reads a failed layer: that error is reported already
        if node.is_later:
            if resolver is None:
                raise AssertionError(f"{node.name}: a value left for shape inference and no resolver")
            done, found = resolver.node(node, types)
            diags += found
            if isinstance(done, str):  # `when:` is false: the layer passes `done` on
                changes.alias[node.name] = done
                if done in types:
                    types[node.name] = types[done]
                continue
            if done is None:
                continue
            node = changes.nodes[node.name] = done
        op = get(node.op)
        xs = tuple(types[src] for src in node.inputs)
        x = xs[0]
        try:
            for each in xs:
                err = _accepts(node, each)
                if err:
                    raise err
            y, inferred = op.infer(node.params, x if op.arity == 1 else xs)
        except ShapeError as exc:
            diags.append(shape_diag(node, exc, prefix))
            continue
        diags.extend(d.within(node.via) for d in _warn(node, x))
        resolved = replace(node, params={**node.params, **inferred})
        p = dict(resolved.params)
        layers.append(
            LayerInfo(
                resolved,
                x,
                y,
                op.param_count(p, x, y),
                op.buffer_count(p, x, y),
                op.macs(p, x, y),
                frozenset(k for k in inferred if k not in node.user_set),
                y.numel(),
                xs,
            )
        )
        types[node.name] = y
    return layers, diags, changes


def _resolved(graph: Graph, changes: _Changes, resolver: Resolver | None, types: Mapping[str, TensorType]) -> Graph:
    if not changes.nodes and not changes.alias and not any(_later_args(i) for i in graph.instances):
        return graph
    if resolver is None:  # (changes come from a resolver: here a block argument is left, as in _run)
        raise AssertionError("a block argument left for shape inference and no resolver")
    graph = graph.without(changes.alias, changes.nodes)
    instances = tuple(
        replace(i, args={k: resolver.value(v, types) if is_later(v) else v for k, v in i.args.items()})
        if _later_args(i)
        else i
        for i in graph.instances
    )
    return replace(graph, instances=instances)


def _later_args(inst: Instance) -> bool:
    return any(is_later(v) for v in inst.args.values())


def _unused(graph: Graph) -> list[Diagnostic]:
    """Layers no output depends on, and inputs nothing reads: legal, but almost always a wrong `from:`."""
    needed = set(graph.outputs)
    for node in reversed(graph.nodes):
        if node.name in needed:
            needed.update(node.inputs)
    unused = [
        (
            f"layer '{n.name}' does not reach any output",
            n.path,
            n.loc,
            "every layer on a path to an output",
            "read it with `from:` in a later layer, list it in `outputs:`, or remove it",
            n.via,
        )
        for n in graph.nodes
        if n.name not in needed
    ] + [
        (
            f"input '{i.name}' is never read",
            i.path,
            i.loc,
            "every input read by a layer on a path to an output",
            "read it with `from:`",
            (),
        )
        for i in graph.inputs
        if i.name not in needed
    ]
    received = f"outputs: {list(graph.outputs)}"
    return [
        Diagnostic(
            msg,
            format_path(path),
            loc,
            expected=expected,
            received=received,
            hint=hint,
            severity=WARNING,
            code="graph",
            context=via,
        )
        for msg, path, loc, expected, hint, via in unused
    ]


def infer(
    graph: Graph, dims: Mapping[str, int] | None = None, resolver: Resolver | None = None
) -> tuple[TypedGraph | None, list[Diagnostic]]:
    """Infer every layer's output type and counts; None plus diagnostics when a shape is wrong."""
    in_types = tuple(i.type for i in graph.inputs)
    layers, diags, changes = _run(graph, in_types, "", resolver)
    if any(d.is_error for d in diags):
        return None, diags
    types = {i.name: t for i, t in zip(graph.inputs, in_types, strict=True)}
    types.update((la.node.name, la.out_type) for la in layers)
    resolved = _resolved(graph, changes, resolver, types)
    if resolved is not graph:  # readers of a skipped layer now read what it passed on
        inputs = {n.name: n.inputs for n in resolved.nodes}
        layers = [replace(la, node=replace(la.node, inputs=inputs[la.node.name])) for la in layers]
        graph = resolved
    diags += _unused(graph)
    bindings = {**graph.dims, **(dims or {})}
    syms = list(dict.fromkeys(s for t in in_types for s in T.symbols(t.shape)))
    unbound = tuple(s for s in syms if s not in bindings)
    used = {s: bindings[s] for s in syms if s in bindings}
    if syms and not unbound:
        concrete = tuple(TensorType(tuple(T.substitute(d, used) for d in t.shape), t.dtype) for t in in_types)
        where = ", ".join(f"{k} = {v}" for k, v in used.items())
        counted, more, _ = _run(graph, concrete, f"with {where}: ")
        errors = [d for d in more if d.is_error]
        if errors:
            return None, diags + errors
        # Keep the symbolic shapes for display; take the counts from the concrete run.
        layers = [
            replace(s, macs=c.macs, params=c.params, buffers=c.buffers, out_elems=c.out_elems)
            for s, c in zip(layers, counted, strict=True)
        ]
    return TypedGraph(graph, in_types, tuple(layers), used, unbound), diags
