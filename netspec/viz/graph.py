"""The network as a diagram, from the typed IR: one node per layer (name, type, the parameters the
spec set, parameter count), one edge per value a layer reads labelled with its shape, inputs and
outputs as nodes of their own, block instances as nested clusters. Written as Graphviz DOT or
Mermaid text by pure functions; no torch, no Graphviz (render.py runs `dot` for SVG / PNG).

`diagram()` builds a plain description first, so the two text formats cannot disagree and the
tests can check the structure without parsing either.
"""

from __future__ import annotations

import re

from ..ir.typed import TypedGraph
from ..ops import get
from ..record import record

# Node ids: layer and input names are the IR's (unique, letters, digits, `_` and `.`); a collapsed
# block is its instance path (never a layer's name). An output needs a node of its own beside the
# layer that computes it, so it takes a prefix no name can contain.
OUTPUT_PREFIX = "output:"


@record
class DNode:
    id: str
    kind: str  # "input", "layer", "block" (a collapsed block instance) or "output"
    lines: tuple[str, ...]  # the label, one entry per line
    cluster: str | None  # the innermost drawn block instance around it
    family: str = ""  # the op family of a layer (colours)


@record
class DEdge:
    src: str  # node ids
    dst: str
    shape: str  # the value's per-sample type with the batch, e.g. "(B, 64, T)"


@record
class Cluster:
    path: str  # the block instance's module path
    parent: str | None
    lines: tuple[str, ...]


@record
class Diagram:
    name: str
    nodes: tuple[DNode, ...]
    edges: tuple[DEdge, ...]
    clusters: tuple[Cluster, ...]  # parents before their children


# ----------------------------------------------------------------------------- the description

_ABBREV = {
    "out_channels": "out",
    "out_features": "out",
    "kernel_size": "k",
    "stride": "s",
    "padding": "pad",
    "dilation": "dil",
    "hidden_size": "hidden",
    "num_layers": "layers",
    "num_embeddings": "vocab",
    "embedding_dim": "dim",
}
_NOT_SHOWN = {"name", "from", "repeat", "when"}
_LINE = 34  # characters per label line before the parameter list wraps


def fmt_value(v) -> str:
    if isinstance(v, tuple | list):
        if v and len(set(v)) == 1:
            return fmt_value(v[0])  # (3, 3) -> 3, as a person would write it
        return "x".join(fmt_value(x) for x in v)
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _wrap(items: list[str], width: int = _LINE) -> list[str]:
    lines: list[str] = []
    for item in items:
        sep = " " if item.startswith("(") else ", "
        if lines and len(lines[-1]) + len(sep) + len(item) <= width:
            lines[-1] += sep + item
        else:
            lines.append(item)
    return lines


def _params_line(n: int) -> list[str]:
    return [f"{n:,} params"] if n else []


def _layer_lines(la, local: str) -> tuple[str, ...]:
    """Name; type and the parameters the spec set (in the op's order); parameter count."""
    node = la.node
    shown = [p.name for p in get(node.op).params if p.name in node.user_set and p.name not in _NOT_SHOWN]
    items = [f"{_ABBREV.get(k, k)}={fmt_value(node.params[k])}" for k in shown]
    return (local, *_wrap([node.op, *items]), *_params_line(la.params))


def _block_lines(inst, local: str, params: int) -> tuple[str, ...]:
    args = ", ".join(f"{k}={fmt_value(v)}" for k, v in inst.args.items())
    return (*_wrap([f"{local}: {inst.block}", *([f"({args})"] if args else [])]), *_params_line(params))


def _holders(name: str, paths) -> list[str]:
    """The block instances around `name`, outermost first (a dotted name alone is not one)."""
    parts = name.split(".")
    return [p for p in (".".join(parts[:k]) for k in range(1, len(parts))) if p in paths]


def _local(name: str, cluster: str | None) -> str:
    return name[len(cluster) + 1 :] if cluster else name


def diagram(typed: TypedGraph, depth: int | None = None) -> Diagram:
    """The diagram of a typed graph. `depth` N draws N levels of blocks, as `summarize --depth`:
    a block instance at level N becomes one node standing for all its layers."""
    g = typed.graph
    insts = {i.path: i for i in g.instances}
    holders = {la.node.name: _holders(la.node.name, insts) for la in typed.layers}
    level = {p: len(_holders(p, insts)) for p in insts}
    drawn = {p for p in insts if depth is None or level[p] < depth - 1}  # clusters
    collapsed = {p for p in insts if depth is not None and level[p] == depth - 1}

    def node_of(value: str) -> str:
        """The node that shows a value: its layer, or the collapsed block that holds it."""
        hs = holders.get(value, ())
        return hs[depth - 1] if depth is not None and len(hs) >= depth else value

    def cluster_of(path_or_name: str) -> str | None:
        hs = [h for h in _holders(path_or_name, insts) if h in drawn]
        return hs[-1] if hs else None

    nodes: list[DNode] = []
    for i, t in zip(g.inputs, typed.inputs, strict=True):
        dtype = [] if t.dtype == "float32" else [t.dtype]
        nodes.append(DNode(i.name, "input", (f"input {i.name}", t.show(), *dtype), None))

    block_params: dict[str, int] = {}
    for la in typed.layers:
        hs = holders[la.node.name]
        for h in hs:
            block_params[h] = block_params.get(h, 0) + la.params

    seen_blocks: set[str] = set()
    for la in typed.layers:
        nid = node_of(la.node.name)
        if nid in collapsed:
            if nid not in seen_blocks:  # at its first layer's place
                seen_blocks.add(nid)
                where = cluster_of(nid)
                nodes.append(DNode(nid, "block", _block_lines(insts[nid], _local(nid, where), 0), where))
            continue
        where = cluster_of(la.node.name)
        family = get(la.node.op).family
        nodes.append(DNode(nid, "layer", _layer_lines(la, _local(la.node.name, where)), where, family))
    # Collapsed blocks get their totals now that every layer is counted.
    nodes = [
        DNode(n.id, n.kind, (*n.lines, *_params_line(block_params.get(n.id, 0))), n.cluster) if n.kind == "block" else n
        for n in nodes
    ]

    edges: list[DEdge] = []
    into_blocks: set[tuple[str, str]] = set()
    for la in typed.layers:
        dst = node_of(la.node.name)
        for src, t in zip(la.node.inputs, la.in_types, strict=True):
            s = node_of(src)
            if s == dst:
                continue  # inside a collapsed block
            if dst in collapsed:  # one edge per value entering the block, however many layers read it
                if (src, dst) in into_blocks:
                    continue
                into_blocks.add((src, dst))
            edges.append(DEdge(s, dst, t.show()))
    for name, t in zip(g.outputs, typed.outputs, strict=True):
        nodes.append(DNode(OUTPUT_PREFIX + name, "output", (f"output {name}", t.show()), None))
        edges.append(DEdge(node_of(name), OUTPUT_PREFIX + name, t.show()))

    clusters = tuple(
        Cluster(p, cluster_of(p), _block_lines(insts[p], _local(p, cluster_of(p)), block_params.get(p, 0)))
        for p in sorted(drawn, key=lambda p: (level[p], insts[p].start, p))
    )
    return Diagram(g.name, tuple(nodes), tuple(edges), clusters)


def title_lines(typed: TypedGraph) -> tuple[str, ...]:
    dims = ", ".join(f"{k} = {v}" for k, v in typed.bindings.items())
    return (typed.graph.name, f"{typed.total_params:,} params" + (f" (counted with {dims})" if dims else ""))


# ----------------------------------------------------------------------------- Graphviz DOT

_FILL = {
    "input": "#d1fae5",
    "output": "#fde68a",
    "block": "#e0e7ff",
    "convolution": "#dbeafe",
    "linear": "#dbeafe",
    "recurrent": "#dbeafe",
    "normalization": "#fce7f3",
    "activation": "#fef9c3",
    "pooling": "#ede9fe",
    "merge": "#ffedd5",
}
_CLUSTER_FILL = ("#f8fafc", "#eef2f7")  # alternate by nesting so nested blocks stand out


def _one_line(text: str) -> str:
    """Every line break (\\n, \\r, \\u2028, ...) and other non-printable character as a space:
    a label line must stay one line in either format."""
    return "".join(c if c.isprintable() else " " for c in text)


def dot_quote(text: str) -> str:
    """A DOT double-quoted string. Backslashes are doubled first: in a label `\\n`, `\\N`, `\\G` and
    friends are escapes, and a name or expression must never turn into one."""
    text = _one_line(text).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def dot_label(lines, left: bool = False) -> str:
    """Lines joined by DOT's line breaks, `\\n` centred or `\\l` left-justified, written after
    quoting each line so no name can add one. Graphviz decodes HTML entities in labels (`&amp;`
    draws `&`), so `&` is written as one."""
    parts = [dot_quote(ln.replace("&", "&amp;"))[1:-1] for ln in lines]
    if left:
        return '"' + "".join(p + "\\l" for p in parts) + '"'
    return '"' + "\\n".join(parts) + '"'


def _nesting(d: Diagram) -> tuple[dict[str | None, list[DNode]], dict[str | None, list[Cluster]]]:
    """The nodes of each cluster and the clusters inside each (key None: the top level), in order."""
    members: dict[str | None, list[DNode]] = {}
    for n in d.nodes:
        members.setdefault(n.cluster, []).append(n)
    children: dict[str | None, list[Cluster]] = {}
    for c in d.clusters:
        children.setdefault(c.parent, []).append(c)
    return members, children


def to_dot(d: Diagram, title: tuple[str, ...] = (), direction: str = "TB") -> str:
    out = [
        f"digraph {dot_quote(d.name)} {{",
        f"  graph [rankdir={direction}, fontname=Helvetica, fontsize=12, labelloc=t, nodesep=0.3, ranksep=0.35"
        + (f", label={dot_label(title)}" if title else "")
        + "];",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=10, color="#64748b",'
        ' fillcolor="#f1f5f9"];',
        '  edge [fontname=Helvetica, fontsize=9, color="#64748b", fontcolor="#334155"];',
    ]
    members, children = _nesting(d)

    def node_line(n: DNode, pad: str) -> str:
        attrs = [f"label={dot_label(n.lines)}"]
        fill = _FILL.get(n.kind) or _FILL.get(n.family)
        if fill:
            attrs.append(f'fillcolor="{fill}"')
        if n.kind in ("input", "output"):
            attrs.append("shape=oval")
        elif n.kind == "block":
            attrs.append("shape=box3d")
        return f"{pad}{dot_quote(n.id)} [{', '.join(attrs)}];"

    def emit(parent: str | None, nesting: int) -> None:
        pad = "  " * (nesting + 1)
        for c in children.get(parent, []):
            out.append(f"{pad}subgraph {dot_quote('cluster_' + c.path)} {{")
            fill = _CLUSTER_FILL[nesting % 2]
            out.append(
                f'{pad}  graph [label={dot_label(c.lines, left=True)}, style="rounded,filled", fillcolor="{fill}",'
                ' color="#94a3b8", fontsize=10, labeljust=l];'
            )
            emit(c.path, nesting + 1)
            out.append(f"{pad}}}")
        out.extend(node_line(n, pad) for n in members.get(parent, []))

    emit(None, 0)
    out.extend(f"  {dot_quote(e.src)} -> {dot_quote(e.dst)} [label={dot_quote(' ' + e.shape)}];" for e in d.edges)
    out.append("}")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- Mermaid

_MERMAID_ENTITIES = {"#": "#35;", '"': "#quot;", "&": "#amp;", "<": "#lt;", ">": "#gt;", "`": "#96;"}
_MERMAID_ESCAPE = re.compile("[" + re.escape("".join(_MERMAID_ENTITIES)) + "]")
MERMAID_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*\Z")


def mermaid_text(text: str) -> str:
    """Text for inside a quoted Mermaid label: its entity codes (`#quot;`) for the characters that
    would end the quote, start an entity or read as HTML; no line breaks."""
    text = _one_line(text)
    return _MERMAID_ESCAPE.sub(lambda m: _MERMAID_ENTITIES[m.group()], text)


def mermaid_ids(names) -> dict[str, str]:
    """Mermaid ids for node and cluster ids: letters, digits and `_` only, with a prefix so none is
    a keyword (`end`, `graph`, `subgraph`) or reads as an edge (`o--`, `x--`); unique."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        base = "n_" + re.sub(r"[^A-Za-z0-9_]", "_", name)
        mid, k = base, 1
        while mid in used:
            k += 1
            mid = f"{base}_{k}"
        used.add(mid)
        out[name] = mid
    return out


def to_mermaid(d: Diagram, title: tuple[str, ...] = (), direction: str = "TB") -> str:
    ids = mermaid_ids([n.id for n in d.nodes] + ["cluster_" + c.path for c in d.clusters])

    def label(lines) -> str:
        return '"' + "<br/>".join(mermaid_text(ln) for ln in lines) + '"'

    shapes = {"input": ("([", "])"), "output": ("([", "])"), "block": ("[[", "]]"), "layer": ("[", "]")}
    out = []
    if title:
        # YAML front matter: a double-quoted scalar, where only a backslash and `"` need escaping
        out += ["---", 'title: "' + _one_line(title[0]).replace("\\", "\\\\").replace('"', '\\"') + '"', "---"]
    out.append(f"flowchart {direction}")
    members, children = _nesting(d)

    def emit(parent: str | None, pad: str) -> None:
        for c in children.get(parent, []):
            out.append(f"{pad}subgraph {ids['cluster_' + c.path]}[{label(c.lines)}]")
            emit(c.path, pad + "  ")
            out.append(f"{pad}end")
        for n in members.get(parent, []):
            left, right = shapes[n.kind]
            out.append(f"{pad}{ids[n.id]}{left}{label(n.lines)}{right}")

    emit(None, "  ")
    out += [f'  {ids[e.src]} -->|"{mermaid_text(e.shape)}"| {ids[e.dst]}' for e in d.edges]
    classes: dict[str, list[str]] = {}
    for n in d.nodes:
        key = n.kind if n.kind != "layer" else n.family
        if key in _FILL:
            classes.setdefault(key, []).append(ids[n.id])
    for key, members_ in classes.items():  # prefixed: `linear` and friends are Mermaid words elsewhere
        out.append(f"  classDef c_{key} fill:{_FILL[key]},stroke:#64748b")
        out.append(f"  class {','.join(members_)} c_{key}")
    return "\n".join(out) + "\n"
