"""Static model summary: per-layer shapes, parameters, buffers, MACs, and memory. No torch.

MACs follow torchvision's convention: weights of convolutions, linear and recurrent layers only
(no bias, normalization, pooling or activation); FLOPs = 2 x MACs. Recurrent layers count
T x (weight elements of each layer and direction) per sample.
"""

from __future__ import annotations

from .ir.typed import TypedGraph

BYTES = 4  # float32


def _shape(shape, batch) -> list:
    return [batch, *shape]


def _total(counts: list[int | None]) -> int | None:
    """The sum of per-layer counts, or None when any is unknown (a symbolic dim left unbound)."""
    known = [c for c in counts if c is not None]
    return sum(known) if len(known) == len(counts) else None


def summary_data(typed: TypedGraph, batch_size: int = 1) -> dict:
    layers = []
    for layer in typed.layers:
        layers.append(
            {
                "name": layer.node.name,
                "type": layer.node.op,
                "from": list(layer.node.inputs),
                "output_shape": _shape(layer.out_type.shape, batch_size),
                "params": layer.params,
                "buffers": layer.buffers,
                "macs": layer.macs,
                "line": layer.node.loc.line,
            }
        )
    blocks = []
    types = {la.node.name: la.out_type for la in typed.layers}
    for inst in typed.graph.instances:
        inside = typed.inside(inst.path)
        out = types.get(inst.outputs[0])
        blocks.append(
            {
                "name": inst.path,
                "type": inst.block,
                "args": dict(inst.args),
                "output_shape": _shape(out.shape, batch_size) if out else None,
                "params": sum(la.params for la in inside),
                "buffers": sum(la.buffers for la in inside),
                "macs": _total([la.macs for la in inside]),
                "line": inst.loc.line,
                "start": inst.start,
            }
        )
    macs = typed.total_macs
    elems = _total([layer.out_elems for layer in typed.layers])
    activation = None if elems is None else elems * BYTES * batch_size
    return {
        "name": typed.graph.name,
        "input_shape": _shape(typed.input.shape, batch_size),
        "output_shape": _shape(typed.output.shape, batch_size),
        "inputs": {i.name: _shape(t.shape, batch_size) for i, t in zip(typed.graph.inputs, typed.inputs, strict=True)},
        "outputs": {
            name: _shape(t.shape, batch_size) for name, t in zip(typed.graph.outputs, typed.outputs, strict=True)
        },
        "batch_size": batch_size,
        "dims": dict(typed.bindings),
        "unbound_dims": list(typed.unbound),
        "layers": layers,
        "blocks": blocks,
        "total_params": typed.total_params,
        "trainable_params": typed.total_params,  # every parameter trains; nothing is frozen
        "non_trainable_params": 0,
        "buffers": typed.total_buffers,
        "macs": macs,
        "flops": None if macs is None else 2 * macs,
        "param_bytes": typed.total_params * BYTES,
        "buffer_bytes": typed.total_buffers * BYTES,
        "activation_bytes": activation,
        "mac_convention": "torchvision: conv/linear/recurrent weights only, no bias; per sample; FLOPs = 2 x MACs",
    }


def rows(data: dict, depth: int | None = None) -> list[dict]:
    """Display rows in forward order: each block instance (with its totals) before its layers,
    names indented by nesting. `depth` N keeps N levels (1: the top-level items only); a block
    at the last level stands for everything inside it."""
    blocks = data.get("blocks", [])
    paths = {b["name"] for b in blocks}

    def holders(name: str) -> list[str]:
        """The block instances around `name`, outermost first (a dotted layer name alone is not one)."""
        parts = name.split(".")
        return [p for p in (".".join(parts[:k]) for k in range(1, len(parts))) if p in paths]

    entries = [((b["start"], 0, len(holders(b["name"]))), b, "block " + b["type"]) for b in blocks]
    entries += [((i, 1, 0), lay, lay["type"]) for i, lay in enumerate(data["layers"])]
    out = []
    for _, row, kind in sorted(entries, key=lambda e: e[0]):
        around = holders(row["name"])
        if depth is not None and len(around) >= depth:
            continue
        local = row["name"][len(around[-1]) + 1 :] if around else row["name"]
        out.append({**row, "label": "  " * len(around) + local, "kind": kind})
    return out


def human(n: int | None, unit: str = "") -> str:
    if n is None:
        return "?"
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.2f} {suffix}{unit}"
    return f"{n} {unit}".strip()


def human_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    for div, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= div:
            return f"{n / div:.2f} {suffix}"
    return f"{n} B"


def fmt_shape(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def fmt_int(n) -> str:
    return "?" if n is None else f"{n:,}"


def totals_lines(data: dict) -> list[tuple[str, str]]:
    macs = data["macs"]
    rows = [
        ("Total params", fmt_int(data["total_params"])),
        ("Trainable params", fmt_int(data["trainable_params"])),
        ("Non-trainable params", fmt_int(data["non_trainable_params"])),
        ("Buffers", fmt_int(data["buffers"])),
        ("MACs per sample", f"{fmt_int(macs)} ({human(macs)})"),
        ("Parameter memory", human_bytes(data["param_bytes"] + data["buffer_bytes"])),
        (f"Forward activations (batch {data['batch_size']})", human_bytes(data["activation_bytes"])),
    ]
    if data["unbound_dims"]:
        dims = ", ".join(data["unbound_dims"])
        rows.append(("Note", f"MACs depend on {dims}: pass --dim {data['unbound_dims'][0]}=N or set `dims:`"))
    elif data["dims"]:
        rows.append(("Counted with", ", ".join(f"{k} = {v}" for k, v in data["dims"].items())))
    return rows


def markdown(data: dict, depth: int | None = None) -> str:
    out = [f"## {data['name']}", "", "| layer | type | output shape | params | MACs |", "|---|---|---|---:|---:|"]
    for row in rows(data, depth):
        name = row["label"].replace("  ", "&nbsp;&nbsp;")
        out.append(
            f"| {name} | {row['kind']} | {fmt_shape(row['output_shape'] or [])} | "
            f"{fmt_int(row['params'])} | {fmt_int(row['macs'])} |"
        )
    out.append("")
    out += [f"- {k}: {v}" for k, v in totals_lines(data)]
    out.append(f"- MACs convention: {data['mac_convention']}")
    return "\n".join(out) + "\n"


def text(data: dict, depth: int | None = None) -> str:
    """Plain fixed-width table (for files and non-terminals)."""
    table = [("Layer", "Type", "Output shape", "Params", "MACs")]
    table += [
        (r["label"], r["kind"], fmt_shape(r["output_shape"] or []), fmt_int(r["params"]), fmt_int(r["macs"]))
        for r in rows(data, depth)
    ]
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    lines = []
    for j, r in enumerate(table):
        cells = [r[i].ljust(widths[i]) if i < 3 else r[i].rjust(widths[i]) for i in range(5)]
        lines.append("  ".join(cells).rstrip())
        if j == 0:
            lines.append("-" * len(lines[0]))
    lines.append("")
    lines += [f"{k}: {v}" for k, v in totals_lines(data)]
    return "\n".join(lines) + "\n"
