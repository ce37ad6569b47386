"""Spec data (already schema-valid) -> IR graph. Short forms become full ones here:
`- relu`, `- linear: 10` (the op's shorthand parameter) and `- conv2d: {...}` all give a Node
holding exactly the parameters the user wrote, with their source locations."""

from __future__ import annotations

import keyword

from ..errors import Diagnostic
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
RESERVED = frozenset(_MODULE_ATTRS.split()) | {"order"}


def parse(doc: Document) -> tuple[Graph | None, list[Diagnostic]]:
    data = doc.data
    ops = all_ops()
    diags: list[Diagnostic] = []
    ((in_name, in_spec),) = data["inputs"].items()
    dtype = in_spec.get("dtype", "float32")
    graph_input = Input(
        in_name, TensorType(tuple(in_spec["shape"]), dtype), doc.loc(("inputs", in_name), key=True), ("inputs", in_name)
    )

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

    taken = {in_name} | {raw["name"] for _, _, raw, _ in items if "name" in raw}
    counters: dict[str, int] = {}
    seen: dict[str, tuple] = {in_name: ("inputs", in_name)}
    nodes = []
    prev = in_name
    for i, op, raw, mapping in items:
        base = ("layers", i, op)
        name = raw.pop("name", None)
        if name is None:
            while True:
                counters[op] = counters.get(op, 0) + 1
                name = f"{op}_{counters[op]}"
                if name not in taken:
                    break
        else:
            where = base + ("name",)
            if name in seen:
                first = doc.loc(seen[name])
                diags.append(
                    Diagnostic(
                        f"duplicate layer name '{name}'",
                        f"layers[{i}].{op}.name",
                        doc.loc(where),
                        expected="a name not used before",
                        received=f"'{name}', already used at line {first.line}",
                        code="name",
                    )
                )
            elif name in RESERVED or keyword.iskeyword(name) or name.startswith("_"):
                diags.append(
                    Diagnostic(
                        f"layer name '{name}' is reserved",
                        f"layers[{i}].{op}.name",
                        doc.loc(where),
                        expected="a name that is not a Python keyword, an nn.Module attribute, or private",
                        received=repr(name),
                        hint=f"try '{name}_1'",
                        code="name",
                    )
                )
        seen.setdefault(name, base + ("name",))
        if mapping:
            locs = {k: doc.loc(base + (k,)) for k in raw}
        else:
            locs = {k: doc.loc(base) for k in raw}
        nodes.append(
            Node(
                name=name,
                op=op,
                params=frozen_map(raw),
                inputs=(prev,),
                user_set=frozenset(raw),
                loc=doc.loc(base, key=True),
                path=("layers", i, op),
                param_locs=frozen_map(locs),
            )
        )
        prev = name
    dims = dict(data.get("dims", {}))
    graph = Graph(str(data.get("name", "model")), (graph_input,), tuple(nodes), (prev,), frozen_map(dims), doc.file)
    return graph, diags
