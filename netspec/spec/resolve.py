"""Values that read a block input's shape, resolved during shape inference.

Inside a block, `in` is the block's (first) input and each input is also readable by its name:
`${in.channels * t}`, `${skip.shape[0]}`, `${in.length}`; so is every layer above the value, by
its name, in a block or at the top (`${project.shape == in.shape}`). Expanding a block (spec/parse.py)
cannot know those shapes, so a value that reads one stays a `LaterValue` (an `ir.graph.Later`),
and so does anything computed from it (a block argument passed on to an inner block). Shape
inference reaches the layer after the layers that make its inputs, and asks `SpecResolver` for the
value then; errors are located at the expression, as any other.

What an input offers (`InputShape.attribute`), by its layout (channels first for conv stacks and
images, (T, F) for sequences; a graph input's layout is read from its rank and symbols):
  shape     every dim, a list (`in.shape[0]`)        rank      the number of dims
  channels  dim 0 of a (C, ...) tensor               features  the last dim of (F,) or (T, F)
  length    the time axis: T of (T, F), L of (C, L)  height, width (and depth): (C, [D,] H, W)
  dtype     'float32' or 'int64'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import Diagnostic, did_you_mean, format_path
from ..ir import Node, TensorType
from ..ir.graph import Later, frozen_map, is_later
from ..passes.canonicalize import canonical_node  # pyright: ignore[reportUnknownVariableType]  # its `keys` is not annotated yet (passes' types work)
from ..record import record, replace
from .expr import AttributeProblem, Attributes, ExprError, is_array, substitute, template
from .loader import Document
from .validate import show, validate_evaluated  # pyright: ignore[reportUnknownVariableType]  # validate.py is not annotated yet

if TYPE_CHECKING:
    from typing import Any, NoReturn

    from ..errors import Location
    from ..jsontext import JSON
    from .loader import KeyPath

EXPR_EXPECTED = (
    "an expression of numbers, text, + - * / // % **, comparisons, and/or/not, `a if c else b`, "
    "min/max/round/floor/ceil/abs/int, and names in scope (vars, block arguments, `in` and a block's inputs)"
)
_ATTRIBUTES = ("shape", "rank", "channels", "features", "length", "height", "width", "depth", "dtype")


class SymbolicDim(str):
    """A dim known only when the model runs (T): readable and comparable, not a number."""

    expr_kind = "symbolic dim"
    expr_hint = "its size is known only when the model runs: pool over that axis first, or give the input a fixed size"


class InputShape(Attributes):
    """A block input's static type, as expressions read it (see the module doc)."""

    kind = "tensor"

    def __init__(self, t: TensorType):
        self.t = t

    def show(self) -> str:
        return self.t.show(batch=None)

    def _layout(self) -> str:
        """ "channels", "sequence" or "" (a rank-2 graph input that could be (C, L) or (T, F))."""
        t = self.t
        if t.layout or t.rank != 2:
            return t.layout or ("channels" if t.rank > 2 else "")
        symbolic = [not isinstance(d, int) for d in t.shape]
        if symbolic == [True, False]:
            return "sequence"  # (T, F): the time axis is the symbol
        if symbolic == [False, True]:
            return "channels"  # (C, T)
        return ""

    def attribute(self, name: str) -> Any:
        t, layout = self.t, self._layout()
        shape = [d if isinstance(d, int) else SymbolicDim(d) for d in t.shape]
        if name == "shape":
            return shape
        if name == "rank":
            return t.rank
        if name == "dtype":
            return t.dtype
        if name not in _ATTRIBUTES:
            hint = did_you_mean(name, _ATTRIBUTES) or "attributes: " + ", ".join(_ATTRIBUTES)
            raise AttributeProblem(f"a tensor has no attribute '{name}'", hint)
        where = f"{self.show()} is {'a (T, F) sequence' if layout == 'sequence' else f'of rank {t.rank}'}"
        if name == "channels" and t.rank >= 2 and layout != "sequence":
            return shape[0]
        if name == "features" and (t.rank == 1 or layout == "sequence"):
            return shape[-1]
        if name == "length" and t.rank == 2 and layout:
            return shape[0] if layout == "sequence" else shape[1]
        spatial = {3: ("height", "width"), 4: ("depth", "height", "width")}.get(t.rank, ())
        if name in spatial and layout != "sequence":
            return shape[1 + spatial.index(name)]
        if name == "length" and t.rank == 2:
            raise AttributeProblem(
                f"{self.show()} may be (C, L) or (T, F), so its length is ambiguous",
                hint="write in.shape[1] for (C, L) or in.shape[0] for (T, F)",
            )
        return _missing(name, where)


def _missing(name: str, where: str) -> NoReturn:
    raise AttributeProblem(f"{where}, which has no {name}", hint="index its dims instead: in.shape[k]")


@record
class Pending:
    """In a block's scope during expansion: the name of the graph value whose shape `in` (or an
    input's name) stands for."""

    value: str


@record
class LaterValue(Later):
    """A value as written, with what its expressions read (Pending inputs, other LaterValues)."""

    value: Any
    env: Mapping[str, Any]
    path: KeyPath
    via: tuple[str, ...] = ()


def names_read(value: JSON) -> set[str] | None:
    """The names the `${...}` in `value` (a string or a list of them) read; None on a syntax error."""
    found: set[str] = set()
    try:
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and "${" in text:
                for piece in template(text):
                    if not isinstance(piece, str):
                        found |= piece.names()
    except ExprError:
        return None
    return found


def later(
    value: JSON, env: Mapping[str, Any], path: KeyPath, via: tuple[str, ...], values: Mapping[str, Any]
) -> LaterValue | None:
    """`value` as a LaterValue when it reads a shape, else None: it can be evaluated now. A shape
    is read through `in` or a block input (Pending in `env`), another LaterValue, or the name of
    a layer or input in scope (`values`: local name -> value name) that no var or argument shadows."""
    names = names_read(value)
    if not names:
        return None
    read = {n: env[n] for n in names if n in env}
    read.update((n, Pending(values[n])) for n in names if n not in env and isinstance(values.get(n), str))
    if not any(isinstance(v, Pending | LaterValue) for v in read.values()):
        return None
    return LaterValue(value, frozen_map(read), path, via)


def expr_diag(doc: Document, exc: ExprError, value: JSON, path: KeyPath, via: tuple[str, ...]) -> Diagnostic:
    return Diagnostic(
        f"cannot evaluate expression: {exc.message}",
        format_path(path),
        doc.loc(path),
        expected=EXPR_EXPECTED,
        received=show(first_expr(value)),
        hint=exc.hint,
        code="expr",
    ).within(via)


def contains_expr(value: JSON) -> bool:
    if isinstance(value, list):
        return any(contains_expr(v) for v in value)
    return isinstance(value, str) and "${" in value


def first_expr(value: JSON) -> JSON:
    if isinstance(value, list):
        return next((v for v in value if contains_expr(v)), value)
    return value


def with_source(diag: Diagnostic, raw: Mapping[str, JSON]) -> Diagnostic:
    """Say which expression produced a value that failed its check."""
    key = diag.path.rsplit(".", 1)[-1].split("[")[0]
    text = raw.get(key) if key in raw else next(iter(raw.values()), None) if len(raw) == 1 else None
    if not contains_expr(text):
        return diag
    return Diagnostic(
        diag.message,
        diag.path,
        diag.loc,
        expected=diag.expected,
        received=f"{diag.received}, the value of {first_expr(text)}",
        hint=diag.hint,
        code=diag.code,
        severity=diag.severity,
        context=diag.context,
    )


def _jsonable(v: Any) -> Any:
    """A canonical parameter value as the schema reads values: tuples are lists again."""
    return [_jsonable(x) for x in v] if is_array(v) else v


class SpecResolver:
    """passes/infer.py's Resolver: evaluates a node's Later values with the types inference found."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.done: dict[int, tuple[Any, bool]] = {}  # id(LaterValue) -> (value, ok): each is evaluated once
        self.seen: set[tuple[Location, str, str | None]] = set()

    def report(self, diags: list[Diagnostic], diag: Diagnostic) -> None:
        key = (diag.loc, diag.message, diag.received)
        if key not in self.seen:
            self.seen.add(key)
            diags.append(diag)

    def evaluate(self, value: LaterValue, types: Mapping[str, TensorType], diags: list[Diagnostic]) -> tuple[Any, bool]:
        if id(value) in self.done:
            return self.done[id(value)]
        env: dict[str, Any] = {}
        result: tuple[Any, bool] = (None, False)
        for name, v in value.env.items():
            if isinstance(v, Pending):
                if v.value not in types:  # the input failed: reported where it did
                    break
                env[name] = InputShape(types[v.value])
            elif isinstance(v, LaterValue):
                env[name], ok = self.evaluate(v, types, diags)
                if not ok:
                    break
            else:
                env[name] = v
        else:
            try:
                result = (substitute(value.value, env), True)
            except ExprError as exc:
                self.report(diags, expr_diag(self.doc, exc, value.value, value.path, value.via))
        self.done[id(value)] = result
        return result

    def value(self, value: Any, types: Mapping[str, TensorType]) -> Any:
        return self.evaluate(value, types, [])[0]

    def node(self, node: Node, types: Mapping[str, TensorType]) -> tuple[Node | str | None, list[Diagnostic]]:
        diags: list[Diagnostic] = []
        if is_later(node.when):
            when, ok = self.evaluate(node.when, types, diags)
            if not ok:
                return None, diags
            if not isinstance(when, bool):
                self.report(diags, when_diag(self.doc, node.when.path, when, node.when.value, node.via))
                return None, diags
            if not when:
                return node.skip_to, diags
            node = replace(node, when=True, skip_to=None)
        keys = [k for k, v in node.params.items() if is_later(v)]
        params = dict(node.params)
        raw: dict[str, JSON] = {}
        for key in keys:
            raw[key] = params[key].value
            params[key], ok = self.evaluate(params[key], types, diags)
            if not ok:
                return None, diags
        if keys:
            written = {k: _jsonable(params[k]) for k in node.user_set if k in params}
            errs = validate_evaluated(self.doc, {node.op: written}, node.path[:-1])
            for err in errs:
                self.report(diags, with_source(err, raw).within(node.via))
            if errs:
                return None, diags
        done, found = canonical_node(node.with_params(params), keys)
        diags += found
        return (None if any(d.is_error for d in found) else done), diags


def when_diag(doc: Document, path: KeyPath, value: Any, written: JSON, via: tuple[str, ...]) -> Diagnostic:
    return Diagnostic(
        "`when:` must be true or false",
        format_path(path),
        doc.loc(path),
        expected="a boolean, e.g. ${stride == 1 and in.channels == channels}",
        received=f"{show(value)}" + (f", the value of {written}" if contains_expr(written) else ""),
        hint="compare numbers to get a boolean: `n > 0`, `k != 1`",
        code="expr",
    ).within(via)
