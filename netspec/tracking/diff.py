"""`netspec diff A B`: two specs, two run directories, or one of each, compared through their
resolved specs (every default written out, blocks expanded, layers named), their parameter and
MAC totals, and per layer where the layers differ. A run directory stands for its
spec.resolved.yaml; for runs the status, best and test metric are compared too.

Both sides are compiled by netspec's front end and resolved the same way (a run's resolved spec is
resolved again, so a run written by an older netspec gains the defaults added since). No torch.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..compiler import Result, compile_file
from ..ir.typed import TypedGraph
from ..lower.codegen import resolved_spec
from ..record import record
from ..summary import fmt_int, fmt_shape
from .runs import run_info


class DiffError(Exception):
    """A user mistake (a missing file, a folder that is not a run): exit code 1."""


class CompileFailed(Exception):
    """One side does not compile: the CLI prints its diagnostics."""

    def __init__(self, result: Result):
        super().__init__("the spec does not compile")
        self.result = result


@record(frozen=False)
class Side:
    path: str
    kind: str  # "spec" or "run"
    typed: TypedGraph
    resolved: dict
    run: dict | None  # tracking.runs.run_info of a run directory


def load_side(path: str, dims: dict | None = None) -> Side:
    p = Path(path)
    run = None
    if p.is_dir():
        spec = p / "spec.resolved.yaml"
        if not spec.is_file():
            raise DiffError(f"{path} is a folder but not a run directory: it has no spec.resolved.yaml")
        run = run_info(p)
    elif p.is_file():
        spec = p
    else:
        raise DiffError(f"{path} does not exist; expected a spec file (YAML) or a run directory")
    res = compile_file(spec, dims)
    if not res.ok:
        raise CompileFailed(res)
    typed, doc = res.typed, res.doc
    assert typed is not None and doc is not None  # ok: the document parsed and its graph typed
    text = resolved_spec(typed, doc.data, str(spec), res.train)
    resolved = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return Side(path, "run" if run is not None else "spec", typed, resolved, run)


# ----------------------------------------------------------------------------- the comparison


def _keyed(resolved: dict) -> dict:
    """The resolved spec with its layer list as a mapping by name (`layers[conv1]`), so that an
    inserted layer shows as one addition, not as every later layer changed."""
    out = dict(resolved)
    layers = {}
    for item in resolved.get("layers") or []:
        ((op, params),) = item.items()
        params = dict(params)
        name = params.pop("name")
        layers[name] = {"op": op, **params}
    out["layers"] = layers
    return out


def _walk(path: str, a, b, missing, out: list[dict]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            sub = f"{path}[{key}]" if path == "layers" else (f"{path}.{key}" if path else key)
            _walk(sub, a.get(key, missing), b.get(key, missing), missing, out)
    elif a is missing:
        out.append({"path": path, "change": "added", "b": b})
    elif b is missing:
        out.append({"path": path, "change": "removed", "a": a})
    elif a != b:
        out.append({"path": path, "change": "changed", "a": a, "b": b})


def spec_changes(a: dict, b: dict) -> list[dict]:
    """Key paths whose values differ, in the order of A (B's new keys after): changed, added, removed."""
    out: list[dict] = []
    _walk("", _keyed(a), _keyed(b), object(), out)
    return out


def _delta(a: int | None, b: int | None) -> dict:
    return {"a": a, "b": b, "delta": None if a is None or b is None else b - a}


def layer_changes(a: TypedGraph, b: TypedGraph) -> list[dict]:
    """Layers added, removed, or with another type, output shape, parameter or MAC count."""

    def table(t: TypedGraph) -> dict:
        return {
            la.node.name: {
                "op": la.node.op,
                "output_shape": list(la.out_type.shape),
                "params": la.params,
                "macs": la.macs,
            }
            for la in t.layers
        }

    ta, tb = table(a), table(b)
    out = []
    for name in [*ta, *(n for n in tb if n not in ta)]:
        la, lb = ta.get(name), tb.get(name)
        if la == lb:
            continue
        if la is None or lb is None:
            row = la or lb
            assert row is not None  # the name is a layer of a or of b
            out.append({"name": name, "change": "added" if la is None else "removed", **row})
            continue
        out.append(
            {
                "name": name,
                "change": "changed",
                "op": {"a": la["op"], "b": lb["op"]},
                "output_shape": {"a": la["output_shape"], "b": lb["output_shape"]},
                "params": _delta(la["params"], lb["params"]),
                "macs": _delta(la["macs"], lb["macs"]),
            }
        )
    return out


def _run_fields(run: dict | None) -> dict | None:
    if run is None:
        return None
    keys = ("status", "epochs_done", "epochs_planned", "monitor", "best", "test_metric", "test", "spec_hash")
    return {k: run[k] for k in keys}


def diff(a: Side, b: Side) -> dict:
    """The whole comparison as JSON values (`netspec diff --format json`)."""
    changes = spec_changes(a.resolved, b.resolved)
    layers = layer_changes(a.typed, b.typed)
    out = {
        "a": {"path": a.path, "kind": a.kind, "name": a.typed.graph.name},
        "b": {"path": b.path, "kind": b.kind, "name": b.typed.graph.name},
        "identical": not changes and not layers,
        "changes": changes,
        "params": _delta(a.typed.total_params, b.typed.total_params),
        "macs": _delta(a.typed.total_macs, b.typed.total_macs),
        "layers": layers,
    }
    if a.run is not None or b.run is not None:
        out["runs"] = {"a": _run_fields(a.run), "b": _run_fields(b.run)}
    return out


# ----------------------------------------------------------------------------- text


def _value(v) -> str:
    if isinstance(v, tuple):
        v = list(v)
    text = yaml.safe_dump(v, default_flow_style=True, width=10_000, sort_keys=False)
    return text.strip().removesuffix("...").strip()


def _count(d: dict) -> str:
    """'1,234 -> 2,345 (+1,111)' or '1,234 (same)'."""
    if d["a"] == d["b"]:
        return f"{fmt_int(d['a'])} (same)"
    delta = "" if d["delta"] is None else f" ({d['delta']:+,})"
    return f"{fmt_int(d['a'])} -> {fmt_int(d['b'])}{delta}"


def _moved(d: dict) -> bool:
    return d["a"] != d["b"]


def _metric(run: dict | None, which: str) -> str:
    if run is None:
        return "-"
    if which == "best":
        return "-" if run["best"] is None else f"{run['monitor']} {run['best']:.4f}"
    return "-" if run["test"] is None else f"{run['test_metric']} {run['test']:.4f}"


def text(d: dict) -> str:
    lines = [f"a: {d['a']['path']} ({d['a']['kind']} {d['a']['name']})"]
    lines.append(f"b: {d['b']['path']} ({d['b']['kind']} {d['b']['name']})")
    if d["identical"]:
        lines.append("no differences: the resolved specs, parameters and MACs are the same")
    else:
        n = len(d["changes"])
        lines.append(f"resolved spec: {n} difference{'s' * (n != 1)}")
        for c in d["changes"]:
            if c["change"] == "changed":
                lines.append(f"  ~ {c['path']}: {_value(c['a'])} -> {_value(c['b'])}")
            else:
                sign, v = ("+", c["b"]) if c["change"] == "added" else ("-", c["a"])
                lines.append(f"  {sign} {c['path']}: {_value(v)}")
    lines.append(f"params: {_count(d['params'])}")
    lines.append(f"MACs:   {_count(d['macs'])}")
    if d["layers"]:
        n = len(d["layers"])
        lines.append(f"layers: {n} differ{'s' * (n == 1)}")
        for la in d["layers"]:
            if la["change"] != "changed":
                sign = "+" if la["change"] == "added" else "-"
                lines.append(
                    f"  {sign} {la['name']} {la['op']} {fmt_shape(la['output_shape'])}: "
                    f"{fmt_int(la['params'])} params, {fmt_int(la['macs'])} MACs"
                )
                continue
            parts = [la["op"]["a"] if la["op"]["a"] == la["op"]["b"] else f"{la['op']['a']} -> {la['op']['b']}"]
            sa, sb = (fmt_shape(la["output_shape"][k]) for k in ("a", "b"))
            parts.append(sa if sa == sb else f"{sa} -> {sb}")
            counts = [
                f"{k} {_count(la[key])}" for k, key in (("params", "params"), ("MACs", "macs")) if _moved(la[key])
            ]
            lines.append(f"  ~ {la['name']} " + " ".join(parts) + (": " + ", ".join(counts) if counts else ""))
    if "runs" in d:
        ra, rb = d["runs"]["a"], d["runs"]["b"]
        for label, key in (("status", None), ("best", "best"), ("test", "test")):
            va = (ra or {}).get("status", "-") if key is None else _metric(ra, key)
            vb = (rb or {}).get("status", "-") if key is None else _metric(rb, key)
            lines.append(f"run {label}: {va if va == vb else f'{va} -> {vb}'}")
    return "\n".join(lines) + "\n"
