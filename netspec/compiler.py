"""The front end in one call: text -> source-mapped data -> schema check -> IR -> canonical IR ->
typed IR. Every stage reports all the errors it can; a later stage runs only on a clean input,
except that schema errors come with the expression errors of the places they leave alone."""

from __future__ import annotations

import functools
import gc
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .errors import Diagnostic, SpecError, format_path
from .ir import Graph
from .ir.typed import TypedGraph
from .ops import all_ops
from .passes.canonicalize import canonicalize
from .passes.infer import infer
from .passes.scale import scale_width
from .record import factory, record
from .spec.loader import Document, load_file, load_text
from .spec.overrides import apply_overrides
from .spec.parse import parse
from .spec.resolve import SpecResolver
from .spec.train_schema import resolve_train, source_kind
from .spec.validate import validate

if TYPE_CHECKING:
    from pathlib import Path

    from .tune.space import Search


@record(frozen=False)
class Result:
    doc: Document | None = None
    graph: Graph | None = None
    typed: TypedGraph | None = None
    train: dict | None = None  # the resolved `train:` section, every default filled in
    search: Search | None = None  # the resolved `search:` section (netspec tune)
    diagnostics: list[Diagnostic] = factory(list)

    @property
    def ok(self) -> bool:
        return self.typed is not None and not any(d.is_error for d in self.diagnostics)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    def source_lines(self) -> list[str]:
        return self.doc.text.splitlines() if self.doc else []


# Key paths that are no part of what a run computes: free text, what netspec tune searches, where
# and how fast it runs, what it logs. A run may resume with any of them changed.
UNHASHED = (
    ("description",),
    ("search",),
    ("train", "device"),
    ("train", "threads"),
    ("train", "log"),
    ("train", "distributed"),
)


def spec_hash(data: dict) -> str:
    """Identity of what a run computes: the whole spec but its UNHASHED keys, so a run may resume
    on another machine or thread count, or with TensorBoard turned on."""
    import hashlib  # here, not at the top: check and summarize never need it (start-up time)

    clean = json.loads(json.dumps(data, default=str))
    for *parents, key in UNHASHED:
        owner = clean
        for name in parents:
            owner = owner.get(name) if isinstance(owner, dict) else None
        if isinstance(owner, dict):
            owner.pop(key, None)
    return hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).hexdigest()


def gc_paused(fn):
    """Run `fn` with Python's cycle collector off. Compiling allocates many small containers and
    frees almost nothing until it returns; the collector, triggered by allocation counts, would
    rescan the ever larger heap again and again (10,000 layers: growth 1.35x linear, not 1.0x)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return wrapper


@gc_paused
def compile_doc(
    doc: Document, dims: Mapping[str, int] | None = None, search: bool = True, data: bool = False
) -> Result:
    """`search=False`: leave the search: section to its schema (train and build ignore it; its
    cross-checks, e.g. that its objective needs a validation split, are for `check` and `tune`).
    `data`: also look at the data the train: section names (files exist, an image folder's sizes),
    for `check` and `train`; summarize, export and a finished run's spec do not read it."""
    res = Result(doc)
    res.diagnostics = validate(doc)
    if res.errors:
        res.diagnostics = _with_expression_errors(doc, res.diagnostics)
        return res
    graph, diags = parse(doc)
    res.diagnostics += diags
    if "train" in doc.data:
        res.train, diags = resolve_train(doc.data["train"], doc.loc)
        res.diagnostics += diags
    if search and "search" in doc.data:
        from .tune.space import resolve_search

        res.search, diags = resolve_search(doc, res.train)
        res.diagnostics += diags
    if graph is None:  # parse makes a graph of whatever it could read; its type allows none
        return res
    if doc.data.get("scale"):
        scale = doc.data["scale"]
        graph = scale_width(graph, scale.get("width", 1), scale.get("divisor", 1))
    graph, diags = canonicalize(graph)
    res.diagnostics += diags
    res.graph = graph
    if res.errors:
        return res
    graph.lint()
    res.typed, diags = infer(graph, dims, SpecResolver(doc))
    if res.typed is not None:  # conditions decided, values computed: the graph as it will be built
        res.graph = res.typed.graph
    res.diagnostics += diags
    if res.train and res.typed is not None:
        res.diagnostics += _check_data(res.train, res.typed, doc, data)
    return res


def _with_expression_errors(doc: Document, schema: list[Diagnostic]) -> list[Diagnostic]:
    """`schema`, plus the expression errors (`${widht}`, `${2 +}`) of the document: a mistake of
    their own, which a user should not meet only after fixing the schema errors. Kept are those
    of a place no schema error covers, met outside any block use, when `vars:` has no schema
    error: anything else may be an effect of a schema error (one mistake, one diagnostic)."""
    covered = [d.path for d in schema if d.path]  # an error at the root (a missing key) covers no value
    if any(_inside(p, "vars") for p in covered):
        return schema
    try:
        _, found = parse(_known_layers_only(doc))
    except Exception:  # parse expects a schema-valid document: on a broken one, nothing to add
        return schema
    extra = [
        d
        for d in found
        if d.code == "expr" and not d.context and not any(_inside(d.path, p) or _inside(p, d.path) for p in covered)
    ]
    return sorted(schema + extra, key=lambda d: (d.loc.line, d.loc.col, d.path))


def _known_layers_only(doc: Document) -> Document:
    """`doc` with each layer item that is no layer type or block (`- relux`, `- 3`) replaced by a
    bare layer of no parameters: parse can expand the rest, and what it says of the stand-in is
    dropped with every other error but the expressions'."""
    ops = all_ops()
    stand_in = next(n for n in sorted(ops) if ops[n].bare_ok and ops[n].arity == 1)
    data = dict(doc.data)
    blocks = data.get("blocks")
    known = set(ops) | (set(blocks) if isinstance(blocks, dict) else set())

    def clean(items: object) -> object:
        if not isinstance(items, list):
            return items
        kinds = [
            i if isinstance(i, str) else next(iter(i)) if isinstance(i, dict) and len(i) == 1 else None for i in items
        ]
        return [item if kind in known else stand_in for item, kind in zip(items, kinds, strict=True)]

    data["layers"] = clean(data.get("layers"))
    if isinstance(blocks, dict):
        data["blocks"] = {
            name: {**b, "layers": clean(b.get("layers"))} if isinstance(b, dict) else b for name, b in blocks.items()
        }
    return Document(data, doc.source, doc.text, doc.file)


def _inside(path: str, outer: str) -> bool:
    """Is the value at `path` (as format_path writes it) `outer` or within it?"""
    return path == outer or path.startswith((outer + ".", outer + "["))


def _check_data(cfg: dict, typed: TypedGraph, doc: Document, files: bool) -> list[Diagnostic]:
    """Pass the sample through train.data.augment, as layers pass their shapes (data/augment.py);
    with `files`, also that the data files exist and, for an image folder, a few of its files'
    sizes (data/peek.py)."""
    kind = source_kind(cfg["data"]["source"])
    diags = _check_augment(cfg, typed, doc, kind == "folder") if cfg["data"]["augment"] else []
    if cfg["data"]["standardize"] != "none" and any(t.dtype == "int64" for t in typed.inputs):
        path = ("train", "data", "standardize")  # token ids or category codes: scaling makes them other ids
        diags.append(
            Diagnostic(
                f"standardize: {cfg['data']['standardize']} on an int64 input",
                format_path(path),
                doc.loc(path),
                expected="standardize: none for integer inputs (ids for an embedding)",
                received=f"standardize: {cfg['data']['standardize']}",
                hint="scale float features only: declare the input float32, or set standardize: none",
                code="train",
            )
        )
    if not files or kind in ("digits", "synthetic", "ucr"):
        return diags
    from .data.peek import check_files, check_folder

    missing = check_files(cfg, doc.file, doc.loc)
    if missing:
        return diags + missing
    if kind == "folder" and not diags and len(typed.graph.inputs) == 1:
        shape = tuple(typed.bindings.get(d, d) if isinstance(d, str) else d for d in typed.input.shape)
        diags += check_folder(cfg, shape, doc.file, doc.loc)
    return diags


def _check_augment(cfg: dict, typed: TypedGraph, doc: Document, folder: bool) -> list[Diagnostic]:
    from .data.augment import check

    if len(typed.graph.inputs) != 1:
        path = ("train", "data", "augment")
        return [
            Diagnostic(
                "augmentation needs a model with one input",
                format_path(path),
                doc.loc(path, key=True),
                expected="one input",
                received=f"{len(typed.graph.inputs)} inputs",
                code="augment",
            )
        ]
    return check(cfg, typed.input.shape, typed.input.dtype, doc.loc, decoded=folder)


def compile_text(text: str, file: str = "<spec>", dims: Mapping[str, int] | None = None) -> Result:
    try:
        doc = load_text(text, file)
    except SpecError as exc:
        return Result(diagnostics=exc.diagnostics)
    return compile_doc(doc, dims)


@gc_paused
def compile_file(
    path: str | Path, dims: Mapping[str, int] | None = None, sets: list[str] | None = None, data: bool = False
) -> Result:
    """`sets`: `--set key.path=value` overrides, applied before validation; `data`: as compile_doc's."""
    try:
        doc = load_file(path)
        if sets:
            apply_overrides(doc, sets)
    except SpecError as exc:
        return Result(diagnostics=exc.diagnostics)
    return compile_doc(doc, dims, data=data)


def load_typed(path: str | Path, dims: Mapping[str, int] | None = None) -> TypedGraph:
    """Compile a spec file or raise SpecError with every diagnostic."""
    res = compile_file(path, dims)
    if not res.ok or res.typed is None:  # (ok means typed; a checker cannot tell)
        raise SpecError(res.diagnostics)
    return res.typed
