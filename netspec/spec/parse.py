"""Spec data (already schema-valid) -> IR graph. Short forms become full ones here:
`- relu`, `- linear: 10` (the op's shorthand parameter) and `- conv2d: {...}` all give a Node
holding exactly the parameters the user wrote, with their source locations.

Blocks are expanded here too: every use of a block instantiates its layers as nodes named by
module path (`stage2.block0.conv1`), with `${...}` expressions evaluated in the block's scope
(its arguments over the spec's `vars:`). A node inside a block points at the block's definition
and remembers its use sites (Node.via), so every later diagnostic can name both.
"""

from __future__ import annotations

import keyword
import math
from collections import ChainMap
from typing import TYPE_CHECKING

from ..errors import WARNING, Diagnostic, did_you_mean, format_path
from ..ir import Graph, Input, Instance, Node, TensorType
from ..ir.graph import frozen_map
from ..ops import all_ops
from ..record import factory, record, replace
from .expr import ExprError, has_expr, substitute
from .loader import Document
from .resolve import LaterValue, Pending, contains_expr, expr_diag, later, names_read, when_diag, with_source
from .schema import MAX_LAYERS, MAX_REPEAT
from .validate import show, validate_evaluated  # pyright: ignore[reportUnknownVariableType]  # validate.py is not annotated yet

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from typing import Any, TypeGuard

    from ..errors import Location
    from .loader import KeyPath

MAX_NESTING = 32

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


def _name_error(
    doc: Document, path: KeyPath, name: str, seen: Mapping[str, KeyPath], *, key: bool = False
) -> Diagnostic | None:
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
    bad = [p for p in name.split(".") if p in RESERVED or keyword.iskeyword(p) or p.startswith("_")]
    if bad:
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


# Names model.py's generated classes use beside a block's arguments and inputs.
_CODE_NAMES = frozenset({"self", "super", "nn", "torch", "math"})


def _variable_error(doc: Document, path: KeyPath, name: str) -> Diagnostic | None:
    """Block arguments and inputs become Python parameters in model.py, beside its classes
    (capitalized: `Basic`, `Add`) and the names its code calls."""
    if name in _CODE_NAMES or keyword.iskeyword(name) or name.startswith("_") or name[:1].isupper():
        return Diagnostic(
            f"name '{name}' is reserved",
            format_path(path),
            doc.loc(path, key=True),
            expected="a name that starts with a lowercase letter and is not a Python keyword or one of "
            + ", ".join(sorted(_CODE_NAMES)),
            received=repr(name),
            hint=f"try '{name.lower()}_1'" if name[:1].isupper() else f"try '{name}_1'",
            code="name",
        )
    return None


def _reference(
    doc: Document, path: KeyPath, ref: str, defined: Mapping[str, Any], later: Mapping[str, KeyPath], what: str
) -> Diagnostic | None:
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
    shown = sorted(n for n in defined if "." not in n) or sorted(defined)
    return Diagnostic(
        f"unknown name '{ref}'",
        format_path(path),
        doc.loc(path),
        expected=f"{what}: one of {', '.join(shown) or 'nothing yet'}",
        received=repr(ref),
        hint=hint,
        code="graph",
    )


class _Failed:
    """The value of a layer that could not be built (already reported): readers stay quiet."""

    def __repr__(self) -> str:
        return "<failed>"


FAILED = _Failed()


@record(frozen=False)
class _Multi:
    """A block instance with several outputs: a bare reference to it must pick one."""

    instance: str
    outputs: tuple[str, ...]  # local output names
    values: tuple[str, ...] = ()  # their value names


@record(frozen=False)
class _Scope:
    """What one body (the spec's `layers:` or a block's) can see: names -> values."""

    prefix: str  # module path of the body: "" at the top, "stage2.block0." inside blocks
    what: str  # how messages call a readable value here
    # lambdas, not `dict`: checkers then infer the declared key and value types
    table: dict[str, Any] = factory(lambda: {})  # local reference -> value name or _Multi
    paths: dict[str, KeyPath] = factory(lambda: {})  # local name -> where it is defined


@record(frozen=False)
class _Body:
    """Where a body of items is expanded: its scope, what its expressions see (vars, block
    arguments, `in`), the block uses that led here (innermost first) and the blocks being expanded."""

    scope: _Scope
    env: dict[str, Any]
    via: tuple[str, ...] = ()
    stack: tuple[str, ...] = ()


@record(frozen=False)
class _Item:
    """One item of a body (a layer or a block use) as it is expanded."""

    kind: str  # the layer type or block name
    raw: dict[str, Any]  # its keys, less name, from, when and repeat as they are taken
    mapping: bool  # written as a mapping, so each key has its own location
    path: KeyPath  # where it is written: (..., i, kind)
    name: str
    explicit: bool  # the name is written, not generated
    given: Any = None  # `from:` as written
    sources: list[str] | None = None  # the values it reads; None when one is wrong (reported)
    count: int | None = None  # `repeat:`; None: not repeated


def _indexed(base: str, k: int) -> str:
    return f"{base}_{k}" if base[-1].isdigit() else f"{base}{k}"


class _Expander:
    def __init__(self, doc: Document):
        self.doc = doc
        self.data = doc.data
        self.ops = all_ops()
        self.blocks: dict[str, dict[str, Any]] = dict(self.data.get("blocks") or {})
        scale: dict[str, Any] = self.data.get("scale") or {}
        self.depth: float = scale.get("depth", 1)
        self.diags: list[Diagnostic] = []
        self.nodes: list[Node] = []
        self.instances: list[Instance] = []
        self.used_blocks: set[str] = set()
        self.acyclic_blocks: set[str] = set()  # blocks whose uses, followed down, close no cycle
        self.seen_diags: set[tuple[Location, str, str | None]] = set()
        self.overflow = False
        # Every module path made so far (layers and block instances) -> where its name is written,
        # and the path of the body that made each layer.
        self.claimed: dict[str, KeyPath] = {}
        self.made_in: dict[str, str] = {}

    # -- diagnostics -----------------------------------------------------------------------
    def report(self, diag: Diagnostic | None, via: tuple[str, ...] = ()) -> None:
        """Keep one copy of what every instance of a block would say about its definition."""
        if diag is None:
            return
        key = (diag.loc, diag.message, diag.received)
        if key not in self.seen_diags:
            self.seen_diags.add(key)
            self.diags.append(diag.within(via))

    def evaluate(
        self,
        value: Any,
        env: Mapping[str, Any],
        path: KeyPath,
        via: tuple[str, ...],
        values: Mapping[str, Any] | None = None,
    ) -> tuple[Any, bool]:
        """`value` with its `${...}` evaluated, or a LaterValue when it reads the shape of a block
        input or of a value in `values` (the layers and inputs in scope): shape inference
        evaluates it then; (value, ok)."""
        if not contains_expr(value):
            return value, True
        deferred = later(value, env, path, via, values or {})
        if deferred is not None:
            return deferred, True
        try:
            return substitute(value, env), True
        except ExprError as exc:
            self.report(expr_diag(self.doc, exc, value, path, ()), via)
            return value, False

    # -- the spec's top level --------------------------------------------------------------
    def globals(self) -> dict[str, Any]:
        env: dict[str, Any] = {}
        written: dict[str, Any] = self.data.get("vars") or {}
        for name, value in written.items():
            value, ok = self.evaluate(value, env, ("vars", name), ())
            if ok:
                env[name] = value
        return env

    def inputs(self, env: dict[str, Any], scope: _Scope) -> list[Input]:
        inputs: list[Input] = []
        for in_name, in_spec in self.data["inputs"].items():
            path = ("inputs", in_name)
            self.report(_name_error(self.doc, path, in_name, scope.paths, key=True))
            scope.paths[in_name] = path
            scope.table[in_name] = in_name
            shape: list[int | str] = []
            for k, dim in enumerate(in_spec["shape"]):
                value, ok = self.evaluate(dim, env, path + ("shape", k), ())
                if ok and has_expr(dim) and not _is_dim(value):
                    self.report(
                        Diagnostic(
                            "invalid dimension",
                            format_path(path + ("shape", k)),
                            self.doc.loc(path + ("shape", k)),
                            expected="a positive integer (or a symbol such as T)",
                            received=f"{show(value)} from {dim}",
                            code="expr",
                        )
                    )
                shape.append(value if ok and _is_dim(value) else 1)
            dtype = in_spec.get("dtype", "float32")
            inputs.append(Input(in_name, TensorType(tuple(shape), dtype), self.doc.loc(path, key=True), path))
        return inputs

    # -- a body of layers --------------------------------------------------------------------
    def body(self, layers: list[Any], base: KeyPath, ctx: _Body, first: Any) -> Any:
        """Instantiate `layers` (written at `base`) in `ctx.scope`; returns the last value. `first`
        is what the first layer reads by default."""
        scope, via = ctx.scope, ctx.via
        items: list[tuple[int, str, dict[str, Any], bool]] = []
        raw: dict[str, Any]
        for i, item in enumerate(layers):
            if isinstance(item, str):
                kind, raw, mapping = item, {}, False
            else:
                ((kind, written),) = item.items()
                mapping = isinstance(written, dict)
                if written is None:
                    raw = {}
                elif not mapping:
                    raw = {self.ops[kind].shorthand: written}  # pyright: ignore[reportAssignmentType]  # the schema allows a scalar only where there is a shorthand
                else:
                    raw = written
            items.append((i, kind, dict(raw), mapping))

        # Names first (explicit ones reserve theirs), so `from:` can tell "later" from "unknown".
        taken = set(scope.table) | {raw["name"] for _, _, raw, _ in items if "name" in raw}
        counters: dict[str, int] = {}
        later: dict[str, KeyPath] = {}
        names: list[tuple[str, bool]] = []
        for i, kind, raw, _ in items:
            name = raw.pop("name", None)
            explicit = name is not None
            if name is None:
                while True:
                    counters[kind] = counters.get(kind, 0) + 1
                    name = f"{kind}_{counters[kind]}"
                    if name not in taken:
                        break
            else:
                path = base + (i, kind, "name")
                self.report(_name_error(self.doc, path, name, ChainMap(scope.paths, later)), via)
            later.setdefault(name, base + (i, kind, "name"))
            names.append((name, explicit))

        prev = first
        for (i, kind, raw, mapping), (name, explicit) in zip(items, names, strict=True):
            if self.overflow:
                return prev
            path = base + (i, kind)
            later.pop(name, None)
            if not explicit and "repeat" not in raw:
                # A generated name gives way to anything made since it was chosen (a copy of a
                # repeated layer may be called `relu_1` too).
                n = 1
                while scope.prefix + name in self.claimed or name in scope.paths or name in later:
                    name, n = f"{kind}_{n}", n + 1
            item = _Item(kind, raw, mapping, path, name, explicit, raw.pop("from", None))
            when = self.condition(raw.pop("when", True), kind in self.ops, path + ("when",), ctx)
            item.sources = self.sources(item, prev, later, ctx)  # checked even if the item is skipped
            if when is False:  # as if the item were not written: its name stands for what it would read
                scope.paths[name] = base + (i, kind, "name")
                scope.table[name] = prev
                continue
            if "repeat" in raw:
                item.count = self.repeat_count(raw.pop("repeat"), path + ("repeat",), ctx, item.sources)
            if when is None:
                value = None
            elif kind in self.ops:
                value = self.layer(item, ctx)
                if isinstance(when, LaterValue) and isinstance(value, str):
                    self.conditional(value, item.count, when, prev)
            else:
                value = self.use(item, ctx)
            scope.paths[name] = base + (i, kind, "name")
            value = FAILED if value is None else value
            scope.table[name] = value
            if isinstance(value, _Multi):  # `enc.h` also names the last copy's `h`
                scope.table.update((f"{name}.{o}", v) for o, v in zip(value.outputs, value.values, strict=True))
            prev = value
        return prev

    def condition(self, raw: Any, layer: bool, path: KeyPath, ctx: _Body) -> bool | LaterValue | None:
        """An item's `when:`: True, False, a LaterValue (a layer's condition on a block input's
        shape, decided by shape inference), or None when it is wrong (reported)."""
        if raw is True:
            return True
        via = ctx.via
        value, ok = self.evaluate(raw, ctx.env, path, via, ctx.scope.table)
        if not ok:
            return None
        if isinstance(value, LaterValue):
            if layer:
                return value
            self.report(
                Diagnostic(
                    "a block use's `when:` cannot read a block input's shape",
                    format_path(path),
                    self.doc.loc(path),
                    expected="a condition over vars and block arguments (known when the block is expanded)",
                    received=str(raw),
                    hint="put the condition on the layers inside the block, where `in` is known",
                    code="expr",
                ),
                via,
            )
            return None
        if not isinstance(value, bool):
            self.report(when_diag(self.doc, path, value, raw, ()), via)
            return None
        return value

    def conditional(self, value: str, count: int | None, when: LaterValue, prev: Any) -> None:
        """Mark the nodes a conditional layer made: shape inference keeps them or skips them all."""
        made = 1 if count is None else count
        for k in range(len(self.nodes) - made, len(self.nodes)):
            first = k == len(self.nodes) - made
            self.nodes[k] = replace(self.nodes[k], when=when, skip_to=prev if first and isinstance(prev, str) else None)
        if made > 1:  # a skipped copy passes on what the first copy would have read
            for k in range(len(self.nodes) - made + 1, len(self.nodes)):
                self.nodes[k] = replace(self.nodes[k], skip_to=self.nodes[k - 1].name)

    def sources(self, item: _Item, prev: Any, later: Mapping[str, KeyPath], ctx: _Body) -> list[str] | None:
        """The value names an item reads; None when one of them is wrong (already reported)."""
        given, path, name, scope, via = item.given, item.path, item.name, ctx.scope, ctx.via
        refs = [given] if isinstance(given, str) else list(given) if given is not None else None
        if refs is None:
            if isinstance(prev, _Multi):
                self.report(self._multi_error(prev, path, "the previous layer"), via)
                return None
            return None if prev is FAILED else [prev]
        out: list[str] | None = []
        for k, ref in enumerate(refs):
            where = path + ("from", k) if isinstance(given, list) else path + ("from",)
            if ref == name and ref not in scope.table:
                # Not "unknown name": the name exists, it is this very layer (a one-layer cycle).
                self.report(
                    Diagnostic(
                        f"layer '{name}' reads itself",
                        format_path(where),
                        self.doc.loc(where),
                        expected=f"{scope.what} defined above this one (a graph has no cycles)",
                        received=repr(ref),
                        hint="name the earlier layer or input it should read",
                        code="graph",
                    ),
                    via,
                )
                out = None
                continue
            err = _reference(self.doc, where, ref, scope.table, later, scope.what)
            if err and scope.prefix and ref not in later and not err.hint:
                err = Diagnostic(
                    err.message,
                    err.path,
                    err.loc,
                    expected=err.expected,
                    received=err.received,
                    hint="a block reads only its inputs and its own layers; pass other values in with `inputs:`",
                    code=err.code,
                )
            if err:
                self.report(err, via)
                out = None
                continue
            value = scope.table[ref]
            if value is FAILED:
                out = None
            elif isinstance(value, _Multi):
                self.report(self._multi_error(value, where, f"'{ref}'"), via)
                out = None
            elif out is not None:
                out.append(value)
        return out

    def _multi_error(self, multi: _Multi, path: KeyPath, what: str) -> Diagnostic:
        return Diagnostic(
            f"{what} is block instance '{multi.instance}', which has {len(multi.outputs)} outputs",
            format_path(path),
            self.doc.loc(path),
            expected="one value: name an output of the block",
            received=", ".join(multi.outputs),
            hint=f"write `from: {multi.instance}.{multi.outputs[0]}`",
            code="graph",
        )

    def repeat_count(self, raw: Any, path: KeyPath, ctx: _Body, sources: list[str] | None) -> int | None:
        via = ctx.via
        value, ok = self.evaluate(raw, ctx.env, path, via)
        if not ok:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REPEAT:
            self.report(
                Diagnostic(
                    "invalid repeat count",
                    format_path(path),
                    self.doc.loc(path),
                    expected=f"an integer from 0 to {MAX_REPEAT}",
                    received=show(value) + (f" from {raw}" if has_expr(raw) else ""),
                    code="expr",
                ),
                via,
            )
            return None
        # round() first: 50 x 1.1 is 55.000000000000007 in floats, and ceil would make it 56.
        count = math.ceil(round(value * self.depth, 9)) if value else 0
        if count != 1 and sources is not None and len(sources) != 1:
            self.report(
                Diagnostic(
                    "only a layer that reads one value can repeat",
                    format_path(path),
                    self.doc.loc(path),
                    expected="one name in `from:`: each copy reads the copy before it",
                    received=f"{len(sources)} inputs",
                    code="graph",
                ),
                via,
            )
            return None
        return count

    # -- one layer -----------------------------------------------------------------------------
    def layer(self, item: _Item, ctx: _Body) -> Any:
        op, raw, path, name, count, sources = item.kind, item.raw, item.path, item.name, item.count, item.sources
        scope, env, via = ctx.scope, ctx.env, ctx.via
        # A repeated layer's values may read `index`, its copy's number: evaluated per copy then.
        per_copy = count is not None and _reads(raw.values(), "index")
        params, ok = self.params(item, {**env, "index": 0} if per_copy else env, ctx)
        self.check_arity(op, sources, item.given, path, via)
        if not ok:
            return None
        # A layer whose inputs are wrong is still built (reading nothing), so its own parameters get checked too.
        locs = {k: self.doc.loc(path + (k,)) for k in raw} if item.mapping else {k: self.doc.loc(path) for k in raw}
        user_set = frozenset(raw)
        if item.given is not None:
            user_set |= {"from"}
        if item.explicit:
            user_set |= {"name"}
        copies = [name] if count is None else [_indexed(name, k) for k in range(count)]
        value = (sources[0] if sources else FAILED) if count == 0 else None
        reads = tuple(sources or ())
        for k, local in enumerate(copies):
            if not self.room():
                return None
            if per_copy and k:
                params, ok = self.params(item, {**env, "index": k}, ctx)
                if not ok:
                    return None
            if count is not None:
                self.report(_name_error(self.doc, path + ("name",), local, scope.paths), via)
                scope.paths[local] = path + ("name",)
            value = scope.prefix + local
            if not self.claim(value, path + ("name",), via):
                return None
            self.made_in[value] = scope.prefix
            self.nodes.append(
                Node(
                    name=value,
                    op=op,
                    params=frozen_map(params),
                    inputs=reads,
                    user_set=user_set,
                    loc=self.doc.loc(path, key=True),
                    path=path,
                    param_locs=frozen_map(locs),
                    via=via,
                )
            )
            scope.table[local] = value
            reads = (value,)
        return value

    def params(self, item: _Item, env: Mapping[str, Any], ctx: _Body) -> tuple[dict[str, Any], bool]:
        """A layer's written parameters with their expressions evaluated (in `env`, which may add
        a copy's `index`) and checked; (params, ok)."""
        op, raw, mapping, path, via, scope = item.kind, item.raw, item.mapping, item.path, ctx.via, ctx.scope
        params: dict[str, Any] = {}
        ok = True
        computed = False
        for key, value in raw.items():
            where = path + (key,) if mapping else path
            params[key], good = self.evaluate(value, env, where, via, scope.table)
            ok = ok and good
            computed = computed or contains_expr(value)
        if ok and computed and not any(isinstance(v, LaterValue) for v in params.values()):
            # (a layer with a LaterValue is checked whole once shape inference has evaluated it)
            errs = validate_evaluated(self.doc, {op: params}, path[:-1])
            for err in errs:
                self.report(with_source(err, raw), via)
            ok = not errs
        return params, ok

    def claim(self, qualified: str, path: KeyPath, via: tuple[str, ...]) -> bool:
        """Take a module path; a second layer or instance with the same path is an error (a copy
        of a repeated layer or a dotted name can meet a name the per-body check did not see)."""
        if qualified in self.claimed:
            self.report(_name_error(self.doc, path, qualified, self.claimed), via)
            return False
        self.claimed[qualified] = path
        return True

    def check_arity(self, op: str, sources: list[str] | None, given: Any, path: KeyPath, via: tuple[str, ...]) -> None:
        if sources is None:
            return
        arity = self.ops[op].arity
        if arity == 1 and len(sources) != 1:
            self.report(
                Diagnostic(
                    f"{op} reads one input",
                    format_path(path + ("from",)),
                    self.doc.loc(path + ("from",)),
                    expected="one name in `from:`",
                    received=f"{len(sources)} names: {sources}",
                    hint="combine them first with add, concat, multiply or mean",
                    code="graph",
                ),
                via,
            )
        elif arity is None and len(sources) < 2:
            self.report(
                Diagnostic(
                    f"{op} merges two or more inputs",
                    format_path(path + ("from",) if given is not None else path),
                    self.doc.loc(path + ("from",)),
                    expected="`from: [a, b, ...]` naming two or more earlier layers or inputs",
                    received=f"{len(sources)} input: {sources}",
                    code="graph",
                ),
                via,
            )

    def room(self) -> bool:
        if len(self.nodes) < MAX_LAYERS:
            return True
        if not self.overflow:
            self.overflow = True
            self.report(
                Diagnostic(
                    f"the spec expands to more than {MAX_LAYERS:,} layers",
                    "",
                    self.doc.loc(()),
                    expected=f"at most {MAX_LAYERS:,} layers after blocks and repeats are expanded",
                    received="more",
                    hint="check the `repeat:` counts and the scale.depth multiplier",
                    code="graph",
                )
            )
        return False

    # -- one use of a block ------------------------------------------------------------------
    def use(self, item: _Item, ctx: _Body) -> Any:
        block, raw, path, name, sources, count = item.kind, item.raw, item.path, item.name, item.sources, item.count
        scope, env, via, stack = ctx.scope, ctx.env, ctx.via, ctx.stack
        self.used_blocks.add(block)
        use_loc = self.doc.loc(path, key=True)
        if block in stack:
            chain = " -> ".join([*stack[stack.index(block) :], block])
            self.report(
                Diagnostic(
                    f"block '{block}' uses itself",
                    format_path(path),
                    use_loc,
                    expected="blocks that nest without a cycle",
                    received=chain,
                    hint="a block cannot contain itself, directly or through other blocks",
                    code="graph",
                ),
                via,
            )
            return None
        if len(stack) >= MAX_NESTING:
            self.report(
                Diagnostic(
                    "blocks nest too deep",
                    format_path(path),
                    use_loc,
                    expected=f"at most {MAX_NESTING} levels of blocks",
                    received=" -> ".join([*stack, block]),
                    code="graph",
                ),
                via,
            )
            return None
        if count == 0 and self.hidden_cycle(block, use_loc, stack, via):
            return None
        definition = self.blocks[block]
        declared = dict(definition.get("args") or {})
        per_copy = count is not None and _reads(raw.values(), "index")
        given, ok = self.args(item, declared, {**env, "index": 0} if per_copy else env, ctx)
        inputs = list(definition.get("inputs") or ["x"])
        if sources is not None and len(sources) != len(inputs):
            self.report(
                Diagnostic(
                    f"block '{block}' reads {len(inputs)} input{'s' * (len(inputs) > 1)} ({', '.join(inputs)})",
                    format_path(path + ("from",)),
                    self.doc.loc(path + ("from",)),
                    expected=f"{len(inputs)} name{'s' * (len(inputs) > 1)} in `from:`, in the order of its inputs",
                    received=f"{len(sources)}: {sources}",
                    code="graph",
                ),
                via,
            )
            return None
        if sources is None or not ok:
            return None
        copies = [name] if count is None else [_indexed(name, k) for k in range(count)]
        value: Any = sources[0] if count == 0 else None
        reads: list[Any] = list(sources)
        for k, local in enumerate(copies):
            if per_copy and k:
                given, ok = self.args(item, declared, {**env, "index": k}, ctx)
                if not ok:
                    return None
            if count is not None:
                self.report(_name_error(self.doc, path + ("name",), local, scope.paths), via)
                scope.paths[local] = path + ("name",)
            value = self.instance(item, ctx, given, reads, local)
            if value is None:
                return None
            if isinstance(value, _Multi) and count is not None and count > 1:
                self.report(self._multi_error(value, path + ("repeat",), "a repeated block"), via)
                return None
            reads = [value]
        return value

    def args(
        self, item: _Item, declared: dict[str, Any], env: Mapping[str, Any], ctx: _Body
    ) -> tuple[dict[str, Any], bool]:
        """A block use's arguments as given, evaluated in `env`; (given, ok)."""
        block, raw, path, via = item.kind, item.raw, item.path, ctx.via
        given: dict[str, Any] = {}
        ok = True
        for key, value in raw.items():
            if value is None and key in declared and declared[key] is None:
                self.report(self._missing_arg(block, key, path, via), via)
                ok = False
                continue
            given[key], good = self.evaluate(value, env, path + (key,), via, ctx.scope.table)
            ok = ok and good
        return given, ok

    def _missing_arg(self, block: str, arg: str, path: KeyPath, via: tuple[str, ...]) -> Diagnostic:
        return Diagnostic(
            f"block '{block}' needs a value for '{arg}'",
            format_path(path + (arg,)),
            self.doc.loc(path + (arg,)),
            expected=f"a value for '{arg}': the block gives it no default (its args: say `{arg}: null`)",
            received="null, which means not given",
            hint=f"write the value, e.g. `{arg}: 64`",
            code="schema",
        )

    def block_uses(self, block: str) -> list[tuple[str, KeyPath]]:
        """(used block, path of the use) of each item of `block`'s layers that uses a block."""
        uses: list[tuple[str, KeyPath]] = []
        for i, item in enumerate(self.blocks[block].get("layers") or []):
            kind = item if isinstance(item, str) else next(iter(item), None) if _is_mapping(item) else None
            if kind in self.blocks and kind not in self.ops:
                uses.append((kind, ("blocks", block, "layers", i, kind)))
        return uses

    def hidden_cycle(self, block: str, use_loc: Location, stack: tuple[str, ...], via: tuple[str, ...]) -> bool:
        """A `repeat: 0` use makes no instance, so `use` never walks into the block and would not
        see it use itself; docs/blocks.md makes a cycle an error whatever the counts. Walks the
        block-use graph below `block` (every use, whatever its repeat) and reports the first cycle
        at the use that closes it, as instantiating would."""
        done = self.acyclic_blocks
        if block in done:
            return False
        # Depth first, iteratively: a chain of thousands of blocks must not hit Python's recursion limit.
        chain: list[str] = [*stack, block]
        vias: list[tuple[str, ...]] = [(f"in block `{block}` used at {use_loc}", *via)]
        todo: list[Iterator[tuple[str, KeyPath]]] = [iter(self.block_uses(block))]
        while todo:
            step = next(todo[-1], None)
            if step is None:  # nothing below it closes a cycle: later walks skip it
                todo.pop()
                vias.pop()
                done.add(chain.pop())
                continue
            used, where = step
            loc = self.doc.loc(where, key=True)
            if used in chain:
                self.report(
                    Diagnostic(
                        f"block '{used}' uses itself",
                        format_path(where),
                        loc,
                        expected="blocks that nest without a cycle",
                        received=" -> ".join([*chain[chain.index(used) :], used]),
                        hint="a block cannot contain itself, directly or through other blocks "
                        "(not even through a use that repeats 0 times)",
                        code="graph",
                    ),
                    vias[-1],
                )
                return True
            if used not in done:
                chain.append(used)
                vias.append((f"in block `{used}` used at {loc}", *vias[-1]))
                todo.append(iter(self.block_uses(used)))
        return False

    def instance(self, item: _Item, ctx: _Body, given: dict[str, Any], sources: list[str], local: str) -> Any:
        """One instance of the block `item` uses, named `local`, with the arguments `given`,
        reading `sources`."""
        block, path, scope, via = item.kind, item.path, ctx.scope, ctx.via
        definition = self.blocks[block]
        declared = dict(definition.get("args") or {})
        inputs = list(definition.get("inputs") or ["x"])
        qualified = scope.prefix + local
        def_path = ("blocks", block)
        use_loc = self.doc.loc(path, key=True)
        if not self.claim(qualified, path + ("name",), via):
            return None
        inner_via = (f"in block `{block}` used at {use_loc}" + (f" as '{qualified}'" if qualified else ""), *via)
        # `in` and the input names read the shapes of what the block reads (spec/resolve.py).
        env: dict[str, Any] = {
            **self.global_env,
            "in": Pending(sources[0]),
            **{i: Pending(s) for i, s in zip(inputs, sources, strict=True)},
        }
        args: dict[str, Any] = {}
        for arg, default in declared.items():
            if arg in given:
                args[arg] = given[arg]
            else:
                value, ok = self.evaluate(default, {**env, **args}, def_path + ("args", arg), inner_via)
                if not ok:
                    return None
                args[arg] = value
        env.update(args)
        inner = _Scope(prefix=qualified + ".", what="an input of the block or a layer above")
        for k, (inp, src) in enumerate(zip(inputs, sources, strict=True)):
            where = def_path + ("inputs", k)
            self.report(_name_error(self.doc, where, inp, inner.paths))
            inner.paths[inp] = where
            inner.table[inp] = src
        first_node = len(self.nodes)
        inner_ctx = _Body(inner, env, inner_via, (*ctx.stack, block))
        last = self.body(definition["layers"], def_path + ("layers",), inner_ctx, sources[0])
        outs = definition.get("outputs")
        if outs is None:
            values: list[Any] = [last]  # one output: reached by the instance's name alone
            names: list[str] = []
        else:
            values, names = [], list(outs)
            for k, ref in enumerate(outs):
                err = _reference(self.doc, def_path + ("outputs", k), ref, inner.table, {}, "an output of the block")
                self.report(err, inner_via)
                values.append(None if err else inner.table[ref])
        if any(v is None or v is FAILED or isinstance(v, _Multi) for v in values):
            return None
        self.instances.append(
            Instance(
                qualified,
                block,
                frozen_map(args),
                tuple(inputs),
                tuple(sources),
                tuple(values),
                use_loc,
                first_node,
                str(definition.get("description", "")),
            )
        )
        # Outside, an instance is its outputs: `enc` (one output) or `enc.h` (several). Its other
        # layers stay private, so each block can become a class with a plain forward.
        if len(values) == 1:
            return values[0]
        for out_name, v in zip(names, values, strict=True):
            scope.table[f"{local}.{out_name}"] = v
        return _Multi(qualified, tuple(names), tuple(values))

    # -- everything ----------------------------------------------------------------------------
    def check_definitions(self) -> None:
        """Block arguments and inputs become Python parameters in model.py: checked once per
        block, used or not."""
        for block, definition in self.blocks.items():
            args: dict[str, Any] = definition.get("args") or {}
            for arg in args:
                self.report(_variable_error(self.doc, ("blocks", block, "args", arg), arg))
            for k, inp in enumerate(definition.get("inputs") or []):
                self.report(_variable_error(self.doc, ("blocks", block, "inputs", k), inp))

    def run(self) -> Graph | None:
        self.check_definitions()
        self.global_env = self.globals()
        top = _Scope(prefix="", what="a graph input or a layer")
        inputs = self.inputs(self.global_env, top)
        last = self.body(self.data["layers"], ("layers",), _Body(top, self.global_env), inputs[0].name)
        outputs = self.data.get("outputs")
        if outputs is None:
            if isinstance(last, _Multi):
                self.report(self._multi_error(last, ("layers", len(self.data["layers"]) - 1), "the last layer"))
            outputs = [last] if isinstance(last, str) else []
        else:
            resolved: list[str] = []
            for k, ref in enumerate(outputs):
                err = _reference(self.doc, ("outputs", k), ref, top.table, {}, "an output")
                if err is None and isinstance(top.table[ref], _Multi):
                    err = self._multi_error(top.table[ref], ("outputs", k), f"'{ref}'")
                self.report(err)
                if err is None and top.table[ref] is not FAILED:
                    resolved.append(top.table[ref])
            outputs = resolved
        for block in self.blocks:
            if block not in self.used_blocks:
                self.report(
                    Diagnostic(
                        f"block '{block}' is never used",
                        format_path(("blocks", block)),
                        self.doc.loc(("blocks", block), key=True),
                        expected="each block used by at least one layer (its layers are checked where it is used)",
                        received="no use",
                        hint=f"use it as a layer: `- {block}: {{...}}`, or remove it",
                        severity=WARNING,
                        code="graph",
                    )
                )
        self.check_paths()
        dims = dict(self.data.get("dims", {}))
        return Graph(
            str(self.data.get("name", "model")),
            tuple(inputs),
            tuple(self.nodes),
            tuple(outputs),
            frozen_map(dims),
            self.doc.file,
            tuple(sorted(self.instances, key=lambda inst: inst.path.count("."))),
        )

    def check_paths(self) -> None:
        """A module path is a layer or a container, never both (`a` and `a.b`), and only a block's
        own layers live inside its instances."""
        names = {n.name: n for n in self.nodes}
        instances = {i.path for i in self.instances}
        for node in self.nodes:
            parts = node.name.split(".")
            for k in range(1, len(parts)):
                holder = ".".join(parts[:k])
                inside = holder in instances and not self.made_in.get(node.name, "").startswith(holder + ".")
                if holder in names or inside:
                    what = "layer" if holder in names else "block instance"
                    self.report(
                        Diagnostic(
                            f"name '{node.name}' puts a layer inside {what} '{holder}'",
                            format_path(node.path + ("name",)),
                            self.doc.loc(node.path + ("name",)),
                            expected="a dotted name whose leading part is a new group",
                            received=repr(node.name),
                            hint=f"'{holder}' is a {what}; rename one of them",
                            code="name",
                        ),
                        node.via,
                    )
                    break


def _reads(values: Iterable[Any], name: str) -> bool:
    """Whether any `${...}` in `values` reads `name`."""
    return any(name in (names_read(v) or ()) for v in values if contains_expr(v))


def _is_mapping(value: object) -> TypeGuard[dict[str, Any]]:
    """A mapping of the spec (its keys are text: the loader makes them so)."""
    return isinstance(value, dict)


def _is_dim(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 1 <= value <= 2**31 - 1
    return isinstance(value, str) and value.isascii() and value.isidentifier()  # as NAME_PATTERN: no "Tλ"


def parse(doc: Document) -> tuple[Graph | None, list[Diagnostic]]:
    expander = _Expander(doc)
    graph = expander.run()
    return graph, expander.diags
