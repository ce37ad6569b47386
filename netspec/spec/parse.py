"""Spec data (already schema-valid) -> IR graph. Short forms become full ones here:
`- relu`, `- linear: 10` (the op's shorthand parameter) and `- conv2d: {...}` all give a Node
holding exactly the parameters the user wrote, with their source locations."""

from __future__ import annotations

import keyword

from ..errors import Diagnostic, did_you_mean, format_path
from ..ir import Graph, Input, Node, TensorType
from ..ir.graph import frozen_map
from ..ops import all_ops
from .loader import Document

# Names nn.Module.add_module refuses ("attribute 'x' already exists"): every public nn.Module
# attribute (torch 2.x; tests/test_diagnostics.py checks this list against the installed torch),
# plus `order`, which the lowered SpecModule sets on itself. The earlier partial list let
# `name: buffers` pass `check` and then crash the build.
_MODULE_ATTRS = """
T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda double
dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter get_submodule
half ipu load_state_dict modules mtia named_buffers named_children named_modules named_parameters
parameters register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
register_load_state_dict_pre_hook register_module register_parameter register_state_dict_post_hook
register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule share_memory state_dict to
to_empty train training type xpu zero_grad
"""
# self: a graph's forward names values after layers. lengths and zero_padding: model.py's chain
# forward takes `lengths` and calls `zero_padding` beside the input argument, so an input named
# either gave a duplicate argument (SyntaxError) or a tensor called as the helper.
RESERVED = frozenset(_MODULE_ATTRS.split()) | {"order", "self", "lengths", "zero_padding"}


def _name_error(doc, path, name, seen, *, key: bool = False) -> Diagnostic | None:
    """`key`: an input's name is its mapping key, so point there rather than at its {shape: ...}."""
    where = format_path(path)
    if name in seen:
        first = doc.loc(seen[name])
        return Diagnostic(
            f"duplicate name '{name}'",
            where,
            doc.loc(path, key=key),
            expected="a name not used before (by an input or a layer)",
            received=f"'{name}', already used at line {first.line}",
            hint="names are how `from:` and `outputs:` refer to layers; give each its own",
            code="name",
        )
    if name in RESERVED or keyword.iskeyword(name) or name.startswith("_"):
        return Diagnostic(
            f"name '{name}' is reserved",
            where,
            doc.loc(path, key=key),
            expected="a name that is not a Python keyword, an nn.Module attribute, or private",
            received=repr(name),
            hint=f"try '{name}_1'",
            code="name",
        )
    return None


def _reference(doc, path, ref, defined, later, what) -> Diagnostic | None:
    """Check one name in `from:` or `outputs:`; layers may only read what is defined before them."""
    if ref in defined:
        return None
    if ref in later:
        return Diagnostic(
            f"'{ref}' is defined later",
            format_path(path),
            doc.loc(path),
            expected=f"{what} defined above this point (layers run in order, so a graph has no cycles)",
            received=f"'{ref}', defined at line {doc.loc(later[ref]).line}",
            hint="move this layer below the one it reads",
            code="graph",
        )
    hint = did_you_mean(ref, defined)
    return Diagnostic(
        f"unknown name '{ref}'",
        format_path(path),
        doc.loc(path),
        expected=f"{what}: one of {', '.join(sorted(defined)) or 'nothing yet'}",
        received=repr(ref),
        hint=hint,
        code="graph",
    )


def parse(doc: Document) -> tuple[Graph | None, list[Diagnostic]]:
    data = doc.data
    ops = all_ops()
    diags: list[Diagnostic] = []
    seen: dict[str, tuple] = {}
    inputs = []
    for in_name, in_spec in data["inputs"].items():
        path = ("inputs", in_name)
        err = _name_error(doc, path, in_name, seen, key=True)
        if err:
            diags.append(err)
        seen[in_name] = path
        dtype = in_spec.get("dtype", "float32")
        inputs.append(Input(in_name, TensorType(tuple(in_spec["shape"]), dtype), doc.loc(path, key=True), path))

    items = []
    for i, item in enumerate(data["layers"]):
        if isinstance(item, str):
            op, raw, mapping = item, {}, False
        else:
            ((op, raw),) = item.items()
            mapping = isinstance(raw, dict)
            if raw is None:
                raw = {}
            elif not mapping:
                raw = {ops[op].shorthand: raw}
        items.append((i, op, dict(raw), mapping))

    # Names first (explicit ones reserve theirs), so `from:` can tell "later" from "unknown".
    taken = set(seen) | {raw["name"] for _, _, raw, _ in items if "name" in raw}
    counters: dict[str, int] = {}
    names = []
    later: dict[str, tuple] = {}
    explicit = set()  # layer indices whose name the user wrote (resolved specs mark the others)
    for i, op, raw, _ in items:
        name = raw.pop("name", None)
        if name is not None:
            explicit.add(i)
        if name is None:
            while True:
                counters[op] = counters.get(op, 0) + 1
                name = f"{op}_{counters[op]}"
                if name not in taken:
                    break
        else:
            err = _name_error(doc, ("layers", i, op, "name"), name, {**seen, **later})
            if err:
                diags.append(err)
        later.setdefault(name, ("layers", i, op, "name"))
        names.append(name)

    nodes = []
    defined = {inp.name for inp in inputs}
    prev = inputs[0].name
    for (i, op, raw, mapping), name in zip(items, names, strict=True):
        base = ("layers", i, op)
        later.pop(name, None)
        given = raw.pop("from", None)
        sources = [prev] if given is None else [given] if isinstance(given, str) else list(given)
        arity = ops[op].arity
        for k, ref in enumerate(sources):
            where = base + ("from", k) if isinstance(given, list) else base + ("from",)
            if ref == name and ref not in defined:
                # Not "unknown name": the name exists, it is this very layer (a one-layer cycle).
                diags.append(
                    Diagnostic(
                        f"layer '{name}' reads itself",
                        format_path(where),
                        doc.loc(where),
                        expected="a graph input or a layer defined above this one (a graph has no cycles)",
                        received=repr(ref),
                        hint="name the earlier layer or input it should read",
                        code="graph",
                    )
                )
                continue
            err = _reference(doc, where, ref, defined, later, "a graph input or a layer")
            if err:
                diags.append(err)
        if arity == 1 and len(sources) != 1:
            diags.append(
                Diagnostic(
                    f"{op} reads one input",
                    format_path(base + ("from",)),
                    doc.loc(base + ("from",)),
                    expected="one name in `from:`",
                    received=f"{len(sources)} names: {sources}",
                    hint="combine them first with add, concat, multiply or mean",
                    code="graph",
                )
            )
        elif arity is None and len(sources) < 2:
            diags.append(
                Diagnostic(
                    f"{op} merges two or more inputs",
                    format_path(base + ("from",) if given is not None else base),
                    doc.loc(base + ("from",)),
                    expected="`from: [a, b, ...]` naming two or more earlier layers or inputs",
                    received=f"{len(sources)} input: {sources}",
                    code="graph",
                )
            )
        locs = {k: doc.loc(base + (k,)) for k in raw} if mapping else {k: doc.loc(base) for k in raw}
        user_set = frozenset(raw) | ({"from"} if given is not None else set()) | ({"name"} if i in explicit else set())
        nodes.append(
            Node(
                name=name,
                op=op,
                params=frozen_map(raw),
                inputs=tuple(sources),
                user_set=user_set,
                loc=doc.loc(base, key=True),
                path=base,
                param_locs=frozen_map(locs),
            )
        )
        defined.add(name)
        prev = name
    outputs = data.get("outputs")
    if outputs is None:
        outputs = [prev]
    else:
        for k, ref in enumerate(outputs):
            err = _reference(doc, ("outputs", k), ref, defined, {}, "an output")
            if err:
                diags.append(err)
    dims = dict(data.get("dims", {}))
    graph = Graph(
        str(data.get("name", "model")), tuple(inputs), tuple(nodes), tuple(outputs), frozen_map(dims), doc.file
    )
    return graph, diags
