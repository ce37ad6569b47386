"""Typed IR -> readable, standalone PyTorch source (model.py), and the resolved spec.

The constructors printed here are the same Ctor descriptions the in-process lowering instantiates,
and the helper classes are copied from netspec/lower/layers.py, so model.py and the in-process
module cannot drift. This module does not import torch.
"""

from __future__ import annotations

import ast
import functools
import keyword
import re
from pathlib import Path

import yaml

from .. import __version__
from ..errors import ShapeError
from ..ir.typed import TypedGraph
from ..passes.lengths import MASK, USE, USE_LAST, lengths_plan, time_axes, time_symbol
from ..spec.loader import _SCALAR_RULES
from ..spec.train_schema import RELEVANT, relevant_keys
from ..summary import fmt_int
from .classes import ClassDef, Owner, classes, ctor_of, owners
from .own import class_source, graph_classes

_LAYERS_PY = Path(__file__).with_name("layers.py")


@functools.lru_cache(maxsize=1)
def _helper_sources() -> dict[str, str]:
    text = _LAYERS_PY.read_text()
    tree = ast.parse(text)
    nodes = [n for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)]
    return {n.name: ast.get_source_segment(text, n) or "" for n in nodes}


def _with_bases(names: list[str]) -> list[str]:
    """`names` and the helper classes they derive from (SameConv1d needs SamePadding), bases first."""
    text = _LAYERS_PY.read_text()
    bases = {
        n.name: [b.id for b in n.bases if isinstance(b, ast.Name) and b.id in _helper_sources()]
        for n in ast.parse(text).body
        if isinstance(n, ast.ClassDef)
    }
    out: list[str] = []
    for name in names:
        for b in bases.get(name, []):
            if b not in out:
                out.append(b)
        if name not in out:
            out.append(name)
    return out


def class_name(name: str) -> str:
    parts = re.split(r"[^A-Za-z0-9]+", name)
    out = "".join(p[:1].upper() + p[1:] for p in parts if p)
    # `None`, `True` and `False` are keywords; a helper's name (`Add`) would be redefined by it.
    if not out or not out[0].isalpha() or keyword.iskeyword(out) or out in _helper_sources():
        out = "Net" + out
    return out


def model_class(typed: TypedGraph) -> str:
    """The model's class in model.py (what train.py and export import): the spec's name in
    CamelCase, prefixed with `Net` while a class that a layer brings (OpDef.modules) has it."""
    name = class_name(typed.graph.name)
    while name in graph_classes(typed):
        name = "Net" + name
    return name


# ----------------------------------------------------------------------------- strings into source
# Every value from a spec that reaches generated source (model.py, train.py, the resolved spec)
# goes through one of these: a spec is untrusted, and text pasted raw into a docstring or a line
# of code could end its literal and become code (`"""` then `import os`).

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def literal(v) -> str:
    """A Python literal of a plain value (repr for scalars, so no string can leave its quotes)."""
    if isinstance(v, tuple):
        return "(" + ", ".join(literal(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, list):
        return "[" + ", ".join(literal(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(x)}" for k, x in v.items()) + "}"
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        raise ValueError(f"no Python literal for {v!r}")  # repr would write the name `nan`
    if v is None or isinstance(v, bool | int | float | str):
        return repr(v)
    raise TypeError(f"no Python literal for a {type(v).__name__}")


def _escape(text: str, quote: str = "") -> str:
    """`text` with every character that is not printable (line breaks of any kind, NUL, other
    controls, bidi overrides, lone surrogates) written as its escape; with `quote`, also the
    backslash and that quote, so the text is the body of a string literal that means itself."""
    out = []
    for ch in str(text):
        if quote and ch in ("\\", quote):
            out.append("\\" + ch)
        elif not ch.isprintable():
            out.append(repr(ch)[1:-1])  # \n, \x00, \u2028, \ud800
        else:
            out.append(ch)
    return "".join(out)


def comment(text) -> str:
    """Text for one `#` comment line: it cannot end the line or the comment."""
    return _escape(text)


def doc_text(text) -> str:
    """Text for inside a `\"\"\"` docstring: the docstring's value holds it unchanged, and no `"`
    or backslash is left to end or bend the literal."""
    return _escape(text, '"')


def ident(name: str) -> str:
    """A name written as Python code (an attribute, variable or parameter; dotted for submodule
    paths): the schema allows only identifiers, so anything else is netspec's bug, refused here
    rather than written as code."""
    parts = str(name).split(".")
    if not all(_IDENT.match(p) and not keyword.iskeyword(p) for p in parts):
        raise ValueError(f"not a Python identifier, refusing to write it as code: {name!r}")
    return name


def _value(v) -> str:
    return literal(v)


def _names_expr(expr: str) -> str:
    """A block class's parameter expression (`channels`, `(stride, stride)`): names only."""
    tree = ast.parse(expr, mode="eval")
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            ident(n.id)
        elif not isinstance(n, ast.Expression | ast.Tuple | ast.Load):
            raise ValueError(f"not a parameter expression, refusing to write it as code: {expr!r}")
    return expr


def _slot_source(slot, key, value) -> str:
    """A constructor value in a block class: its parameter expression, or the literal."""
    expr = slot(key)
    return _names_expr(expr) if expr else _value(value)


def ctor_source(ctor) -> str:
    args = ", ".join(f"{ident(k)}={_value(v)}" for k, v in ctor.kwargs.items())
    return f"{ctor.cls}({args})"


def _inputs_doc(typed: TypedGraph) -> list[str]:
    return [
        doc_text(f"Input  {i.name}: {t.show()} {t.dtype}")
        for i, t in zip(typed.graph.inputs, typed.inputs, strict=True)
    ]


def _constants(typed: TypedGraph) -> list[str]:
    """INPUT_SHAPE / INPUT_DTYPE (one input), or INPUT_SHAPES / INPUT_DTYPES keyed by input name."""

    def shape(t):
        return _value(tuple(d if isinstance(d, int) else typed.bindings.get(d, d) for d in t.shape))

    def dtype(t):
        return "torch.int64" if t.dtype == "int64" else "torch.float32"

    if len(typed.inputs) == 1:
        t = typed.input
        return [
            f"INPUT_SHAPE = {shape(t)}  # one sample {comment(t.show(None))}; the batch comes first",
            f"INPUT_DTYPE = {dtype(t)}",
        ]
    pairs = list(zip(typed.graph.inputs, typed.inputs, strict=True))
    return [
        "INPUT_SHAPES = {" + ", ".join(f"{literal(i.name)}: {shape(t)}" for i, t in pairs) + "}  # per sample",
        "INPUT_DTYPES = {" + ", ".join(f"{literal(i.name)}: {dtype(t)}" for i, t in pairs) + "}",
    ]


def _chain_forward(typed: TypedGraph) -> list[str]:
    var = ident(typed.graph.inputs[0].name)
    plan = _plan(typed)
    args = f"{var}: torch.Tensor" + (", lengths: torch.Tensor | None = None" if plan else "")
    lines = ["", f"    def forward(self, {args}) -> torch.Tensor:"]
    if plan:
        lines.append("        # lengths: true lengths of a zero-padded batch of variable-length series (optional)")
    lines.append(f"        x = {var}  # {comment(typed.input.show())}")
    axes = time_axes(typed)
    for i, lay in enumerate(typed.layers):
        call = "(x)"
        if plan and plan[i] in (USE, USE_LAST):
            call = "(x, lengths)"
        elif plan and plan[i] == MASK:
            call = f"(x if lengths is None else zero_padding(x, lengths, {literal(axes[i])}))"
        lines.append(f"        x = self.{ident(lay.node.name)}{call}  # {comment(lay.out_type.show())}")
    return [*lines, "        return x"]


def _graph_forward(typed: TypedGraph) -> list[str]:
    """A graph: one variable per value, named after its layer; each call reads its `from:`."""
    graph = typed.graph
    args = ", ".join(f"{ident(i.name)}: torch.Tensor" for i in graph.inputs)
    ret = "torch.Tensor" if len(graph.outputs) == 1 else "tuple[torch.Tensor, ...]"
    lines = ["", f"    def forward(self, {args}) -> {ret}:"]
    for i, t in zip(graph.inputs, typed.inputs, strict=True):
        lines.append(f"        # {comment(i.name)}: {comment(t.show())}")
    for lay in typed.layers:
        srcs = ", ".join(ident(s) for s in lay.node.inputs)
        n = ident(lay.node.name)
        lines.append(f"        {n} = self.{n}({srcs})  # {comment(lay.out_type.show())}")
    outs = ", ".join(ident(o) for o in graph.outputs)
    return [*lines, f"        return {outs}"]


def _var_names():
    """A namer of forward variables: dotted names become `a_b`, never twice the same."""
    used: set[str] = set()

    def name(base: str) -> str:
        base = base.replace(".", "_")
        out, n = base, 2
        while out in used:
            out, n = f"{base}_{n}", n + 1
        used.add(out)
        return ident(out)

    return name


def _init_lines(owner: Owner, cls: ClassDef | None, typed: TypedGraph | None = None) -> list[str]:
    """`self.<name> = ...` for every item of a block class (or of the root model)."""
    lines, groups = [], set()
    slot = (cls.slots if cls else {}).get  # a parameter's name, or None for a literal
    for kind, x in owner.items:
        rel = owner.rel(x.node.name if kind == "layer" else x.path)
        parts = rel.split(".")
        for k in range(1, len(parts)):  # dotted names: plain containers on the way
            group = ".".join(parts[:k])
            if group not in groups:
                groups.add(group)
                lines.append(f"        self.{ident(group)} = nn.Module()")
        if kind == "layer":
            c = ctor_of(x)
            args = ", ".join(f"{ident(k)}={_slot_source(slot, ('layer', rel, k), v)}" for k, v in c.kwargs.items())
            note = f"  # {fmt_int(x.params)} params" if typed and x.params else ""
            lines.append(f"        self.{ident(rel)} = {c.cls}({args}){note}")
        else:
            args = ", ".join(f"{ident(p)}={_slot_source(slot, ('inst', rel, p), x.needs[p])}" for p, _ in x.cls.params)
            total = sum(la.params for la in typed.inside(x.path)) if typed else 0
            note = f"  # {fmt_int(total)} params" if total else ""
            lines.append(f"        self.{ident(rel)} = {ident(x.cls.name)}({args}){note}")
    return lines


def _owner_forward(owner: Owner, typed: TypedGraph, comments: bool) -> list[str]:
    """forward() of a block class or of the root: one variable per value, each call reads its inputs."""
    graph = typed.graph
    name = _var_names()
    var: dict[str, str] = {}
    if owner.inst:
        params = [name(i) for i in owner.inst.inputs]
        for src, p in zip(owner.inst.sources, params, strict=True):
            var.setdefault(src, p)
        n_out = len(owner.inst.outputs)
    else:
        params = [name(i.name) for i in graph.inputs]
        var.update((i.name, p) for i, p in zip(graph.inputs, params, strict=True))
        n_out = len(graph.outputs)
    ret = "torch.Tensor" if n_out == 1 else "tuple[torch.Tensor, ...]"
    lines = ["", f"    def forward(self, {', '.join(p + ': torch.Tensor' for p in params)}) -> {ret}:"]
    types = {la.node.name: la.out_type for la in typed.layers}
    for kind, x in owner.items:
        if kind == "layer":
            rel = owner.rel(x.node.name)
            v = var[x.node.name] = name(rel)
            note = f"  # {comment(x.out_type.show())}" if comments else ""
            lines.append(f"        {v} = self.{ident(rel)}({', '.join(var[s] for s in x.node.inputs)}){note}")
        else:
            rel = owner.rel(x.path)
            outs = x.inst.outputs
            names = [name(rel)] if len(outs) == 1 else [name(rel + "_" + o.rsplit(".", 1)[-1]) for o in outs]
            note = f"  # {comment(', '.join(types[o].show() for o in outs if o in types))}" if comments else ""
            lines.append(
                f"        {', '.join(names)} = self.{ident(rel)}({', '.join(var[s] for s in x.inst.sources)}){note}"
            )
            for o, v in zip(outs, names, strict=True):
                var[o] = v
    outs = owner.inst.outputs if owner.inst else graph.outputs
    return [*lines, f"        return {', '.join(var[o] for o in outs)}"]


def _block_classes(typed: TypedGraph, root: Owner, taken: set[str]) -> list[str]:
    lines = []
    for cls in classes(root, class_name, taken):
        uses = ", ".join(m.path for m in cls.members)
        about = cls.members[0].instance.description
        params = "".join(f", {ident(p)}: {h}" if h else f", {ident(p)}" for p, h in cls.params)
        lines += [
            "",
            "",
            f"class {ident(cls.name)}(nn.Module):",
            f'    """{doc_text(f"Block `{cls.block}`, used as {uses}.")}"""',
        ]
        if about:  # the spec's text as a string literal, never pasted into the docstring
            lines += ["", *_description(about, "    ")]
        lines += ["", f"    def __init__(self{params}) -> None:", "        super().__init__()"]
        lines += _init_lines(cls.members[0], cls)
        lines += _owner_forward(cls.members[0], typed, comments=False)
    return lines


def model_source(typed: TypedGraph, spec_file: str = "<spec>", description: str = "") -> str:
    graph = typed.graph
    cls = model_class(typed)
    ctors = [ctor_of(lay) for lay in typed.layers]
    helpers = _with_bases(sorted({c.cls for c in ctors if c.cls in _helper_sources()}))
    # Classes that layers bring in their own files (OpDef.modules), in order of first use.
    brought = graph_classes(typed)
    own = [class_source(c) for c in brought.values()]
    if typed.is_chain and MASK in (_plan(typed) or []):
        helpers.insert(0, "zero_padding")
    macs = fmt_int(typed.total_macs)
    outputs = [f"Output {name}: {t.show()}" for name, t in zip(graph.outputs, typed.outputs, strict=True)]
    # The docstring holds netspec's own text; the spec's file name and description are string
    # literals below it (SPEC_FILE, DESCRIPTION), so no spec text is ever pasted into a docstring.
    doc = [
        f'"""{doc_text(graph.name)}: generated by netspec {__version__} from SPEC_FILE (below).',
        "",
        *_inputs_doc(typed),
        *(doc_text(o) for o in outputs),
        f"Parameters: {fmt_int(typed.total_params)}; buffers: {fmt_int(typed.total_buffers)}; MACs per sample: {macs}",
        "",
        "Standalone: needs only torch. With the weights written beside it:",
        f"    model = {cls}()",
        '    model.load_state_dict(torch.load("weights.pt", weights_only=True))',
        '"""',
    ]
    head = [f"SPEC_FILE = {literal(str(spec_file))}"]
    if description:
        head += _description(description, "")
    lines = [*doc, "", "import torch", "from torch import nn", "", *head, *_constants(typed)]
    for h in helpers:
        lines += ["", "", _helper_sources()[h]]
    for source in own:
        lines += ["", "", source.strip("\n")]
    model_head = [
        "",
        "",
        f"class {ident(cls)}(nn.Module):",
        "    def __init__(self) -> None:",
        "        super().__init__()",
    ]
    if graph.instances:
        # One class per block (children first), then the model built from them.
        root = owners(typed)
        lines += _block_classes(typed, root, {cls, "Block", *_helper_sources(), *brought})
        lines += model_head
        lines += _init_lines(root, None, typed)
        lines += _owner_forward(root, typed, comments=True)
        return "\n".join([*lines, ""])
    lines += model_head
    for lay, c in zip(typed.layers, ctors, strict=True):
        note = f"  # {fmt_int(lay.params)} params" if lay.params else ""
        lines.append(f"        self.{ident(lay.node.name)} = {ctor_source(c)}{note}")
    lines += _chain_forward(typed) if typed.is_chain else _graph_forward(typed)
    return "\n".join([*lines, ""])


def _description(text: str, indent: str) -> list[str]:
    """`DESCRIPTION = ...`: the text exactly, as one string literal per line it has."""
    pieces = []
    for line in str(text).splitlines(keepends=True):  # every break splitlines knows, \u2028 too
        while len(line) > 80:  # long lines wrap at a space, kept at the end of the piece
            cut = line.rfind(" ", 0, 80) + 1 or 80
            pieces.append(line[:cut])
            line = line[cut:]
        pieces.append(line)
    if len(pieces) <= 1:
        return [f"{indent}DESCRIPTION = {literal(str(text))}"]
    return [f"{indent}DESCRIPTION = (", *(f"{indent}    {literal(p)}" for p in pieces), f"{indent})"]


def _plan(typed: TypedGraph) -> list[str] | None:
    """The lengths plan when the input has a time symbol and the network can take lengths."""
    if time_symbol(typed) is None:
        return None
    try:
        return lengths_plan(typed)
    except ShapeError:
        return None


def _yaml_value(v) -> str:
    """One YAML flow value on one line, read back by netspec's loader as the value written: a
    string with a line break is double-quoted, its breaks escaped (a multi-line scalar would need
    the indentation of where it lands), and so is one that YAML 1.2 would read as a number, a
    bool or null (`08`, `1e3`: PyYAML quotes by YAML 1.1's rules)."""
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_yaml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_yaml_value(k)}: {_yaml_value(x)}" for k, x in sorted(v.items())) + "}"
    text = yaml.safe_dump(v, default_flow_style=True, width=2**62).strip().removesuffix("...").strip()
    if isinstance(v, str) and ("\n" in text or "\r" in text or any(rx.match(text) for _, rx, _ in _SCALAR_RULES)):
        text = yaml.safe_dump(v, width=2**62, default_style='"').strip().removesuffix("...").strip()
    return text


def resolved_spec(typed: TypedGraph, data: dict, spec_file: str = "<spec>", train: dict | None = None) -> str:
    """The spec with every default and inferred value written out; comments mark what the user
    did not write. It is itself a valid spec that compiles to the same network."""
    graph = typed.graph
    out = [
        f"# Resolved by netspec {__version__} from {comment(spec_file)}.",
        "# Every default and inferred value is written out; `# default`, `# inferred` and `# generated` mark",
        "# values the user did not write.",
        *(
            ["# Blocks, vars and expressions are expanded: each layer is named by its module path."]
            if graph.instances or data.get("vars")
            else []
        ),
        *([f"# Already scaled by scale: {_yaml_value(data['scale'])}."] if data.get("scale") else []),
        "netspec: 1",
        f"name: {_yaml_value(graph.name)}",
    ]
    if data.get("description"):
        out.append(f"description: {_yaml_value(data['description'])}")
    out.append("inputs:")
    for inp in graph.inputs:
        out.append(
            f"  {_yaml_value(inp.name)}: {{shape: {_yaml_value(inp.type.shape)}, dtype: {_yaml_value(inp.type.dtype)}}}"
        )
    if graph.dims:
        out.append(f"dims: {_yaml_value(dict(graph.dims))}")
    out.append("layers:")
    for lay in typed.layers:
        node = lay.node
        out.append(f"  - {_yaml_value(node.op)}:")
        name_note = "" if "name" in node.user_set else "  # generated"
        out.append(f"      name: {_yaml_value(node.name)}{name_note}")
        from_note = "" if "from" in node.user_set else "  # default"
        out.append(f"      from: {_yaml_value(list(node.inputs))}{from_note}")
        for key, value in node.params.items():
            if value is None:
                # An unset optional value (embedding's padding_idx): the schema takes no null for
                # it, so writing `null` made the resolved spec fail to compile. Note it instead.
                out.append(f"      # {comment(key)}: null  # default (unset)")
                continue
            note = ""
            if key in lay.inferred:
                note = "  # inferred"
            elif key not in node.user_set:
                note = "  # default"
            out.append(f"      {_yaml_value(key)}: {_yaml_value(value)}{note}")
    outs_note = "" if "outputs" in data else "  # default"
    out.append(f"outputs: {_yaml_value(list(graph.outputs))}{outs_note}")
    if train is not None:
        given = data.get("train") or {}
        out.append("train:")
        for key, value in train.items():
            if isinstance(value, dict):
                sub = given.get(key) if isinstance(given.get(key), dict) else {}
                out.append(f"  {_yaml_value(key)}:")
                for k, v in value.items():
                    if key in RELEVANT and k not in relevant_keys(key, value["name"]):
                        continue  # ignored by this optimizer/schedule; writing it would be an error
                    note = "" if k in sub or (k == "name" and isinstance(given.get(key), str)) else "  # default"
                    if key == "data" and k == "source" and isinstance(given.get(key), str):
                        note = ""
                    out.append(f"    {_yaml_value(k)}: {_yaml_value(v)}{note}")
            else:
                out.append(f"  {_yaml_value(key)}: {_yaml_value(value)}{'' if key in given else '  # default'}")
    return "\n".join(out) + "\n"
