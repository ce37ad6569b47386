"""The `search:` section resolved against its spec (no torch, no Optuna: `netspec check` runs it).

The schema (spec/search_schema.py) has checked the section's shape; here each key path is found
in the spec (the path syntax and short-form rules of `--set`, spec/overrides.py), each space is
checked for being non-empty and drawable, and each value a space can give (the choices, the ends
of a range) is put in its place and schema-checked, so a value that can never be valid is an
error now, at its line, not a rejected trial later. Whether a *combination* of values gives a
network with consistent shapes is for each trial's compile to say: that is what tune searches.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from typing import Any

from ..errors import Diagnostic, SpecError, did_you_mean, format_path
from ..record import record
from ..record import replace as replace_fields
from ..spec.loader import Document
from ..spec.overrides import apply_overrides, parse_key_path
from ..spec.search_schema import CONFIRM, PRUNER, RELEVANT, SIZES, search_defaults
from ..spec.train_schema import SHORT


class _Missing:
    def __repr__(self) -> str:
        return "<not written>"


MISSING = _Missing()  # a key path the spec does not write (its default applies)


def _json(value: Any) -> str:
    """Canonical text of a value: equal values, equal text (1 and 1.0 differ, as YAML types do)."""
    return json.dumps(value, sort_keys=True)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float)


def short_label(value: Any, width: int = 24) -> str:
    """A value as a table cell: numbers and names as they are, a layer by its type, a list of
    layers by their types."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict) and len(value) == 1:
        text = str(next(iter(value)))
    elif isinstance(value, list) and value and all(isinstance(v, str | dict) for v in value):
        text = "+".join(v if isinstance(v, str) else "/".join(map(str, v)) for v in value)
    else:
        text = value if isinstance(value, str) else _json(value)
    return text if len(text) <= width else text[: width - 1] + "~"


@record
class Param:
    """One searched key path and its space."""

    key: str  # canonical key path: layers[2].conv2d.out_channels
    path: tuple
    kind: str  # choices, int or float
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    current: Any = MISSING  # the spec's own value at the path

    @property
    def coded(self) -> bool:
        """Optuna stores a categorical choice as a plain scalar: layers, lists and booleans (True == 1
        in Python) go to it as their index in the list instead."""
        if self.kind != "choices":
            return False
        return not all(_is_scalar(c) and not isinstance(c, bool) for c in self.choices)

    def decode(self, raw: Any) -> Any:
        """Optuna's value -> the spec's value (a stepped float as written: 0.3, not 0.1 x 3's 0.30000000000000004)."""
        if self.kind == "float" and self.step is not None:
            return float(f"{raw:.12g}")
        return self.choices[raw] if self.coded else raw

    def encode(self, value: Any) -> Any:
        """The spec's value -> Optuna's, or MISSING when the value is not in the space."""
        if value is MISSING:
            return MISSING
        if self.kind == "choices":
            for i, c in enumerate(self.choices):
                if _json(c) == _json(value):
                    return i if self.coded else c
            return MISSING
        if isinstance(value, bool) or not isinstance(value, int | float):
            return MISSING
        if self.kind == "int" and not isinstance(value, int):
            return MISSING
        low, high = self.low, self.high
        if low is None or high is None or not low <= value <= high:  # a range has both ends
            return MISSING
        if self.step is not None:
            k = (value - low) / self.step
            if abs(k - round(k)) > 1e-9:
                return MISSING
        return value if self.kind == "int" else float(value)

    def describe(self) -> str:
        if self.kind == "choices":
            return "one of " + ", ".join(short_label(c) for c in self.choices)
        step = f" step {self.step:g}" if self.step is not None else ""
        return f"{self.kind} in [{self.low:g}, {self.high:g}]{step}{' log' if self.log else ''}"


@record
class Search:
    params: tuple[Param, ...]
    objectives: tuple[str, ...]  # a metric, then sizes (params, macs)
    directions: tuple[str, ...]  # maximize / minimize, one per objective
    trials: int
    timeout: float | None
    sampler: str
    seed: int
    pruner: dict  # name and its settings, every default filled in
    max_params: int | None
    max_macs: int | None
    baseline: bool
    repeats: int  # runs per candidate, seeds train.seed + 0, 1, ...; the objective is their mean
    confirm_top: int = 0  # after the study: the best few trained again (0: no confirm stage) ...
    confirm_repeats: int = 0  # ... on this many seeds the study never used

    @property
    def metric(self) -> str:
        return self.objectives[0]

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    def baseline_point(self) -> dict | None:
        """Optuna's values of the spec's own point, or None when one of them lies outside its space."""
        point = {p.key: p.encode(p.current) for p in self.params}
        return None if any(v is MISSING for v in point.values()) else point


# ----------------------------------------------------------------------------- candidates


def candidate(doc: Document, values: dict[str, Any]) -> Document:
    """The spec with `values` (key path -> value) put in place as `--set` would, `search:` removed.
    Diagnostics about a set value point at `--set key=value`."""
    data = copy.deepcopy(doc.data)
    if isinstance(data, dict):
        data.pop("search", None)
    source = replace_fields(doc.source, values=dict(doc.source.values), file_overrides=dict(doc.source.file_overrides))
    cand = Document(data, source, doc.text, doc.file)
    # JSON is YAML: any value (a number, a name, a list of layers) goes through --set's own parser.
    apply_overrides(cand, [f"{key}={json.dumps(value)}" for key, value in values.items()])
    return cand


def study_key(data: dict) -> str:
    """Identity of a study: the spec and its space, but not the budget (trials, timeout, confirm) nor
    where and how fast it runs, so a study may be resumed with a larger budget or on another machine."""
    clean = json.loads(json.dumps(data, default=str))
    clean.pop("description", None)
    for section, keys in (("search", ("trials", "timeout", "confirm")), ("train", ("device", "threads"))):
        if isinstance(clean.get(section), dict):
            for key in keys:
                clean[section].pop(key, None)
    return hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).hexdigest()


# ----------------------------------------------------------------------------- key paths


# Where a key the spec does not write may still be searched (its default applies): the schema
# knows the keys there, and a probe with the value says whether this one is among them. A var or
# a dim that is not written cannot be read by anything, so searching it would change nothing.
def _may_be_unwritten(path: tuple) -> bool:
    if path[0] in ("train", "scale"):
        return True
    return len(path) >= 4 and path[-4] == "layers" and isinstance(path[-3], int)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"the value {short_label(value)!r}"


def locate(data: Any, path: tuple) -> tuple[Any, str | None, str | None]:
    """(value at `path` or MISSING, error, hint). Short forms are read as --set reads them:
    `optimizer: adam` has the key name, `- relu` the key relu."""
    node = data
    for i, part in enumerate(path):
        here = format_path(path[:i]) or "the spec"
        nxt = path[i + 1] if i + 1 < len(path) else None
        if isinstance(part, int):
            if not isinstance(node, list):
                return MISSING, f"'{here}' is {_kind(node)}, not a list: [{part}] selects nothing", None
            if part >= len(node):
                last = f"the last is [{len(node) - 1}]" if node else "it is empty"
                return (
                    MISSING,
                    f"index [{part}] does not exist: '{here}' has {len(node)} items",
                    f"indices start at 0; {last}",
                )
            child = node[part]
        else:
            if not isinstance(node, dict):
                hint = None
                if "layers" in path[:i] and isinstance(path[i - 1], str) and not isinstance(node, list):
                    # `- maxpool2d: 2`: a layer in short form has no parameter keys to set
                    hint = f"write the layer as a mapping to search its parameters, e.g. `{path[i - 1]}: {{...}}`"
                return MISSING, f"'{here}' is {_kind(node)}: it has no key '{part}'", hint
            if part not in node:
                if nxt is None and _may_be_unwritten(path):
                    return MISSING, None, None
                where = f"'{here}'" if i else "the spec's top level"
                keys = sorted(map(str, node))
                hint = did_you_mean(part, keys) or (f"{where} has: {', '.join(keys)}" if keys else None)
                if path[0] == "vars" and i == 1:
                    return MISSING, f"var '{part}' is not defined", hint or "define it under vars: and use it as ${...}"
                return MISSING, f"key '{part}' does not exist in {where}", hint
            child = node[part]
        if isinstance(nxt, str):  # the short forms --set expands (spec/overrides.py)
            if isinstance(child, str) and isinstance(part, str) and part in SHORT:
                child = {SHORT[part]: child}
            elif isinstance(child, str) and isinstance(node, list):
                child = {child: {}}
            elif child is None:
                child = {}
        node = child
    return node, None, None


# ----------------------------------------------------------------------------- the section


def resolve_search(doc: Document, train: dict | None) -> tuple[Search | None, list[Diagnostic]]:
    """Schema-valid `search:` data -> a Search, with every error found (at its line)."""
    written = doc.data["search"]
    raw = {**search_defaults(), **written}  # the schema's defaults, stated once there
    diags: list[Diagnostic] = []

    def bad(path, message, expected=None, received=None, hint=None, key=False):
        diags.append(
            Diagnostic(
                message,
                format_path(("search", *path)),
                doc.loc(("search", *path), key=key),
                expected=expected,
                received=received,
                hint=hint,
                code="search",
            )
        )

    if train is None:
        bad(
            (),
            "netspec tune trains every candidate: the spec needs a train: section",
            key=True,
            hint="add one, e.g. `train: {data: {source: digits, val_fraction: 0.2}, epochs: 20}`",
        )
    params = _params(doc, raw["space"], bad)
    objectives, directions = _objectives(raw, "objective" in written, train, bad)
    pruner = _pruner(raw["pruner"], len(objectives) > 1, bad)
    confirm = raw.get("confirm")
    if confirm is not None:
        confirm = {**CONFIRM, **confirm}
        if len(objectives) > 1:
            bad(
                ("confirm",),
                "confirm needs a single objective",
                expected="one metric as the objective, or no confirm:",
                received=f"objective: {written.get('objective')}",
                hint="with several objectives the result is the Pareto front, which has no single best to confirm",
                key=True,
            )
    if diags:
        return None, diags
    constraints = raw.get("constraints") or {}
    search = Search(
        params=tuple(params),
        objectives=tuple(objectives),
        directions=tuple(directions),
        trials=raw["trials"],
        timeout=raw.get("timeout"),
        sampler=raw["sampler"],
        seed=raw["seed"],
        pruner=pruner,
        max_params=constraints.get("max_params"),
        max_macs=constraints.get("max_macs"),
        baseline=raw["baseline"],
        repeats=raw["repeats"],
        confirm_top=confirm["top"] if confirm else 0,
        confirm_repeats=confirm["repeats"] if confirm else 0,
    )
    return search, diags


def _params(doc: Document, space: dict, bad) -> list[Param]:
    params: list[Param] = []
    seen: dict[tuple, str] = {}
    for key, entry in space.items():
        at = ("space", key)
        path = parse_key_path(key.strip())
        if not path or not isinstance(path[0], str):
            bad(
                at,
                f"malformed key path '{key}'",
                expected="a key path as --set takes it: vars.width, layers[2].conv2d.out_channels, train.optimizer.lr",
                received=repr(key),
                key=True,
            )
            continue
        if path[0] == "search":
            bad(at, "the search section cannot search itself", received=repr(key), key=True)
            continue
        overlap = next((k for p, k in seen.items() if p[: len(path)] == path or path[: len(p)] == p), None)
        if overlap is not None:
            bad(
                at,
                f"key path '{key}' overlaps '{overlap}'",
                expected="key paths of which none is inside another (each candidate sets them all)",
                received=f"'{key}' and '{overlap}'",
                hint="search the whole value, or the parts of it, not both",
                key=True,
            )
            continue
        current, error, hint = locate(doc.data, path)
        if error:
            bad(at, f"key path '{key}' does not exist in the spec: {error}", hint=hint, key=True)
            continue
        param = _space(key, path, entry, current, at, bad)
        if param is None:
            continue
        if _probe(doc, param, at, isinstance(entry, list), bad):
            seen[path] = key
            params.append(param)
    return params


def _space(key: str, path: tuple, entry: Any, current: Any, at: tuple, bad) -> Param | None:
    canonical = format_path(path)
    if isinstance(entry, list):
        entry = {"choices": entry}
    kinds = [k for k in ("choices", "int", "float") if k in entry]
    if len(kinds) != 1:
        bad(
            at,
            f"the space of '{key}' needs exactly one of choices, int, float",
            expected="[a, b, c], {choices: [...]}, {int: [low, high]} or {float: [low, high]}",
            received=f"{', '.join(kinds) or 'none of them'} (keys: {', '.join(entry)})",
        )
        return None
    kind = kinds[0]
    if kind == "choices":
        extra = [k for k in ("step", "log") if k in entry]
        if extra:
            bad(at + (extra[0],), f"{extra[0]} applies to int and float ranges, not to choices", key=True)
            return None
        texts = [_json(c) for c in entry["choices"]]
        dup = next((c for i, c in enumerate(entry["choices"]) if texts.index(texts[i]) != i), MISSING)
        if dup is not MISSING:
            bad(at + ("choices",), f"choice {short_label(dup)!r} is listed twice", hint="list each value once")
            return None
        return Param(canonical, path, kind, choices=tuple(entry["choices"]), current=current)
    low, high = entry[kind]
    step, log = entry.get("step"), entry.get("log", False)
    where = at + (kind,)
    if low > high:
        bad(
            where,
            f"empty range: low {low:g} > high {high:g}",
            expected="[low, high] with low <= high",
            received=f"[{low:g}, {high:g}]",
            hint=f"write [{high:g}, {low:g}]",
        )
        return None
    if log and step is not None:
        bad(at + ("step",), "log and step do not go together", hint="a log scale has no fixed step: drop one", key=True)
        return None
    if log and low <= 0:
        bad(where, f"a log range needs low > 0, got {low:g}", expected="low > 0", received=f"[{low:g}, {high:g}]")
        return None
    if kind == "int" and step is not None and (not float(step).is_integer()):
        bad(at + ("step",), f"an int range needs an integer step, got {step:g}", key=True)
        return None
    if step is not None:
        n = (high - low) / step
        if abs(n - round(n)) > 1e-9:
            fixed = low + math.floor(n + 1e-9) * step
            bad(
                where,
                f"high - low = {high - low:g} is not a multiple of step {step:g}",
                expected="a range the steps land on both ends of",
                received=f"[{low:g}, {high:g}] step {step:g}",
                hint=f"use high {fixed:g}",
            )
            return None
        step = int(step) if kind == "int" else float(step)
    if kind == "float":
        low, high = float(low), float(high)
    return Param(canonical, path, kind, low=low, high=high, step=step, log=log, current=current)


def _probe(doc: Document, param: Param, at: tuple, short: bool, bad) -> bool:
    """Put each value the space can give (choices, both ends) in place and validate the spec: a
    value the schema refuses there is refused here, at the search entry."""
    from ..spec.validate import validate

    if param.kind == "choices":
        inside = at if short else at + ("choices",)  # `key: [a, b]` is short for `key: {choices: [a, b]}`
        probes = [(f"choice {i + 1} ({short_label(c)})", c, inside + (i,)) for i, c in enumerate(param.choices)]
    else:
        probes = [
            (f"{end} end ({v:g})", v, at + (param.kind, k))
            for k, (end, v) in enumerate((("low", param.low), ("high", param.high)))
        ]
    for what, value, where in probes:
        try:
            found = validate(candidate(doc, {param.key: value}))
        except SpecError as exc:
            found = exc.diagnostics
        for d in found:
            if not d.is_error:
                continue
            unknown = d.message.startswith("unknown key") and d.path == param.key
            bad(
                where if not unknown else at,
                f"key path '{param.key}' names no setting: {d.message}"
                if unknown
                else f"{what} is not a valid value for '{param.key}': {d.message}"
                + (f" at {d.path}" if d.path != param.key else ""),
                expected=d.expected,
                received=d.received,
                hint=d.hint,
                key=unknown,
            )
            return False
    return True


def _objectives(raw: dict, written: bool, train: dict | None, bad) -> tuple[list[str], list[str]]:
    """The objectives and directions; `written`: whether the spec writes `objective:` (else auto)."""
    given = raw["objective"]
    objectives = [given] if isinstance(given, str) else list(given)
    task = (train or {}).get("task", "classification")
    if objectives == ["auto"]:
        objectives = ["val_accuracy" if task == "classification" else "val_loss"]
    where = ("objective",) if isinstance(given, str) else ("objective", 0)
    metric = objectives[0]
    if metric in SIZES:
        bad(
            where,
            f"the first objective must be a metric of training, not {metric}",
            expected="e.g. [val_accuracy, params]",
            received=repr(given),
            hint=f"{metric} is static: it goes after a metric such as val_accuracy",
        )
        return objectives, []
    more = [o for o in objectives[1:] if o not in SIZES]
    if more:
        bad(
            ("objective",),
            f"one metric of training only, then sizes: {more[0]} is a second metric",
            expected=f"[a metric, then {' and/or '.join(SIZES)}]",
            received=repr(given),
        )
    if train is not None:
        watched = metric.removeprefix("val_")
        if watched != "loss" and watched not in train["metrics"]:
            bad(
                where,
                f"{metric} is not computed",
                expected=f"a metric listed in train.metrics {train['metrics']}",
                received=metric,
                hint=f"add {watched} to train.metrics, or optimize val_loss",
            )
        if metric.startswith("val_") and train["data"]["val_fraction"] == 0:
            bad(
                where,
                f"{metric} needs a validation split",
                key=not written,  # objective: auto, not written: point at `search:`
                expected="train.data.val_fraction > 0",
                received="val_fraction: 0",
                hint="set train.data.val_fraction (e.g. 0.2): choosing by the test split would overstate the "
                "accuracy you then report on it",
            )
    direction = raw["direction"]
    if direction == "auto":
        direction = "maximize" if "accuracy" in metric else "minimize"
    return objectives, [direction] + ["minimize"] * (len(objectives) - 1)


def _pruner(given: Any, multi: bool, bad) -> dict:
    settings = dict(given) if isinstance(given, dict) else {"name": given}
    name = settings["name"]
    if name == "auto":
        name = "none" if multi else "median"
    elif multi and name != "none":
        path = ("pruner", "name") if isinstance(given, dict) else ("pruner",)
        bad(
            path,
            f"pruner {name} needs a single objective",
            expected="pruner: none (or auto) with several objectives",
            received=name,
            hint="Optuna prunes single-objective studies only; drop the pruner or the second objective",
        )
    for key in settings:
        if key != "name" and key not in RELEVANT.get(name, ()):
            users = [p for p, keys in RELEVANT.items() if key in keys]
            bad(
                ("pruner", key),
                f"{key} has no effect with pruner {name}",
                received=f"{key}: {settings[key]}",
                hint=f"{key} applies to {' / '.join(users)}" if users else None,
                key=True,
            )
    out = {"name": name}
    for key in RELEVANT.get(name, ()):
        out[key] = settings.get(key, PRUNER[key][1])
    return out
