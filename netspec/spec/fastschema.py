"""A compiled yes/no check of a document against our JSON Schema: the fast path of validation.

jsonschema finds and explains errors well but is slow to import (~0.1 s) and to run (a 10,000-layer
spec took ~2.5 s). Almost every spec a user checks is valid, so validation first asks this module
only "is it valid?"; jsonschema runs (and is imported) only when the answer is no, to produce the
diagnostics. The schema is turned into nested closures once per schema; each keyword we use has
the semantics of JSON Schema 2020-12 as jsonschema implements them, and a keyword this module does
not know makes compilation fail, so the fast path can never skip a constraint silently. The
property test in tests/test_fastschema.py holds the two to the same answers.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, TypeAlias, TypeGuard

    from ..jsontext import JSON

    Schema: TypeAlias = dict[str, Any]  # a JSON Schema object (a subschema may also be true or false)
    Keyword: TypeAlias = "Callable[[_Compiler, Any, Schema], Check | None]"  # (compiler, keyword's value, schema)

Check = Callable[["JSON"], bool]  # an instance -> valid?

# Keywords that carry documentation only: they never affect validity. The second line: what
# yaml-language-server reads for completion, hover and its messages (docs/editors.md).
ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$schema", "$id", "$comment", "markdownDescription"}
    | {"markdownEnumDescriptions", "enumDescriptions", "errorMessage", "patternErrorMessage", "defaultSnippets"}
)


def _is_number(x: object) -> TypeGuard[int | float]:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


TYPES: dict[str, Check] = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
    "number": _is_number,
    # JSON Schema counts 2.0 as an integer, as jsonschema does
    "integer": lambda x: _is_number(x) and (isinstance(x, int) or x.is_integer()),
}


def equal(a: JSON, b: JSON) -> bool:
    """JSON equality: true and 1 differ, 1 and 1.0 do not (jsonschema's `equal`)."""
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _all(checks: list[Check]) -> Check:
    if not checks:
        return lambda x: True
    if len(checks) == 1:
        return checks[0]
    frozen = tuple(checks)
    return lambda x: all(c(x) for c in frozen)


class _Compiler:
    def __init__(self, root: Schema):
        self.root = root
        self.refs: dict[str, Check] = {}

    def ref(self, pointer: str) -> Check:
        """A `$ref`, compiled at its first use: a spec that uses 5 of the 48 layer types compiles
        5 layer schemas (this also ties the knot of recursive schemas)."""
        if pointer not in self.refs:
            if not pointer.startswith("#/"):
                raise ValueError(f"fastschema follows local $ref only, not {pointer!r}")
            target: Any = self.root
            for part in pointer[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            compiled: list[Check] = []

            def check(x: Any) -> bool:
                if not compiled:
                    compiled.append(self.compile(target))
                return compiled[0](x)

            self.refs[pointer] = check
        return self.refs[pointer]

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return lambda x: True
        if schema is False:
            return lambda x: False
        unknown = set(schema) - ANNOTATIONS - set(KEYWORDS) - {"then", "else", "$defs"}
        if unknown:
            raise ValueError(f"fastschema cannot check keyword(s) {sorted(unknown)}")
        checks = [KEYWORDS[k](self, schema[k], schema) for k in KEYWORDS if k in schema]
        return _all([c for c in checks if c is not None])


def _type(c: _Compiler, value: str | list[str], schema: Schema) -> Check:
    names = [value] if isinstance(value, str) else list(value)
    tests = tuple(TYPES[n] for n in names)
    return tests[0] if len(tests) == 1 else (lambda x: any(t(x) for t in tests))


def _enum(c: _Compiler, value: list[JSON], schema: Schema) -> Check:
    # Strings by hashing (a layer's type is checked against ~50 names); the rest by JSON equality.
    strings = frozenset(v for v in value if isinstance(v, str))
    others = tuple(v for v in value if not isinstance(v, str))
    return lambda x: x in strings if isinstance(x, str) else any(equal(x, v) for v in others)


def _const(c: _Compiler, value: JSON, schema: Schema) -> Check:
    return lambda x: equal(x, value)


def _bound(op: Callable[[Any, Any], bool]) -> Keyword:
    def keyword(c: _Compiler, value: float, schema: Schema) -> Check:
        return lambda x: not _is_number(x) or op(x, value)

    return keyword


_ECMA_CACHE: dict[str, re.Pattern[str]] = {}


def ecma_regex(pattern: str) -> re.Pattern[str]:
    """`pattern` compiled with ECMA-262's meaning of `$`, as JSON Schema specifies: end of input.
    Python's `$` also matches before a final newline, so `^[a-z]+$` would pass "fc\\n" (a layer
    name that breaks model.py, a run directory with a newline). The schema file keeps `$`, which
    editors read as ECMA; only here, for netspec's checks (fast and jsonschema), does an unescaped
    `$` outside a character class become Python's `\\Z`."""
    compiled = _ECMA_CACHE.get(pattern)
    if compiled is None:
        out: list[str] = []
        i, in_class = 0, False
        while i < len(pattern):
            ch = pattern[i]
            if ch == "\\":
                out.append(pattern[i : i + 2])
                i += 2
                continue
            if in_class:
                in_class = ch != "]"
            elif ch == "[":
                in_class = True
                # a `]` first in the class (after an optional `^`) is a literal in Python's syntax
                nxt = i + 2 if pattern[i + 1 : i + 2] == "^" else i + 1
                if pattern[nxt : nxt + 1] == "]":
                    out.append(pattern[i : nxt + 1])
                    i = nxt + 1
                    continue
            elif ch == "$":
                ch = r"\Z"
            out.append(ch)
            i += 1
        compiled = _ECMA_CACHE[pattern] = re.compile("".join(out))
    return compiled


def _pattern(c: _Compiler, value: str, schema: Schema) -> Check:
    search = ecma_regex(value).search
    return lambda x: not isinstance(x, str) or search(x) is not None


def _items(c: _Compiler, value: Schema | bool, schema: Schema) -> Check:
    item = c.compile(value)
    return lambda x: not isinstance(x, list) or all(item(v) for v in x)


def _size(kind: type[list[Any]] | type[dict[Any, Any]], ok: Callable[[int, int], bool]) -> Keyword:
    """minItems and friends: a bound on the length of a list or a mapping."""

    def keyword(c: _Compiler, value: int, schema: Schema) -> Check:
        return lambda x: not isinstance(x, kind) or ok(len(x), value)

    return keyword


def _unique_items(c: _Compiler, value: bool, schema: Schema) -> Check | None:
    if not value:
        return None
    return lambda x: (
        not isinstance(x, list) or not any(equal(x[i], x[j]) for i in range(len(x)) for j in range(i + 1, len(x)))
    )


def _properties(c: _Compiler, value: dict[str, Schema | bool], schema: Schema) -> Check:
    # Each property compiled at its first use: a spec without `search:` never compiles its schema.
    props: dict[str, Check] = {}

    def prop(k: str) -> Check:
        check = props.get(k)
        if check is None:
            check = props[k] = c.compile(value[k])
        return check

    return lambda x: not isinstance(x, dict) or all(prop(k)(v) for k, v in x.items() if k in value)


def _additional(c: _Compiler, value: Schema | bool, schema: Schema) -> Check:
    known = frozenset(schema.get("properties", ()))
    if "patternProperties" in schema:
        raise ValueError("fastschema cannot check patternProperties")
    extra = c.compile(value)
    return lambda x: not isinstance(x, dict) or all(extra(v) for k, v in x.items() if k not in known)


def _required(c: _Compiler, value: list[str], schema: Schema) -> Check:
    return lambda x: not isinstance(x, dict) or all(k in x for k in value)


def _property_names(c: _Compiler, value: Schema | bool, schema: Schema) -> Check:
    name = c.compile(value)
    return lambda x: not isinstance(x, dict) or all(name(k) for k in x)


def _if(c: _Compiler, value: Schema | bool, schema: Schema) -> Check:
    cond = c.compile(value)
    then = c.compile(schema.get("then", True))
    other = c.compile(schema.get("else", True))
    return lambda x: then(x) if cond(x) else other(x)


def _not(c: _Compiler, value: Schema | bool, schema: Schema) -> Check:
    inner = c.compile(value)
    return lambda x: not inner(x)


def _any_of(c: _Compiler, value: list[Schema | bool], schema: Schema) -> Check:
    options = [c.compile(v) for v in value]
    return lambda x: any(o(x) for o in options)


def _ref(c: _Compiler, value: str, schema: Schema) -> Check:
    return c.ref(value)


def _defs(c: _Compiler, value: Schema, schema: Schema) -> None:
    return None  # compiled when a $ref reaches them


# Ordered cheapest and most discriminating first: `all` stops at the first failure.
KEYWORDS: dict[str, Keyword] = {
    "type": _type,
    "enum": _enum,
    "const": _const,
    # as jsonschema words them (a failure is `x < minimum`, ...), so NaN passes the bounds alike
    "minimum": _bound(lambda x, b: not x < b),
    "maximum": _bound(lambda x, b: not x > b),
    "exclusiveMinimum": _bound(lambda x, b: not x <= b),
    "exclusiveMaximum": _bound(lambda x, b: not x >= b),
    "pattern": _pattern,
    "minItems": _size(list, operator.ge),
    "maxItems": _size(list, operator.le),
    "uniqueItems": _unique_items,
    "required": _required,
    "minProperties": _size(dict, operator.ge),
    "maxProperties": _size(dict, operator.le),
    "propertyNames": _property_names,
    "properties": _properties,
    "additionalProperties": _additional,
    "items": _items,
    "if": _if,
    "not": _not,
    "anyOf": _any_of,
    "$ref": _ref,
    "$defs": _defs,
}


# Where the keywords this module checks hold subschemas: one, or a mapping of them.
_ONE = ("additionalProperties", "items", "propertyNames", "if", "then", "else", "not")
_MANY = ("properties", "$defs")


def unsupported(schema: Any, at: str = "#") -> list[str]:
    """Every place in `schema` with a keyword this module cannot check, as `pointer: keyword`.
    Compilation is lazy (a property or `$ref` compiles at first use), so tests walk the whole
    schema with this to know that no input can meet an unchecked constraint."""
    if isinstance(schema, bool):
        return []
    found = [f"{at}: {k}" for k in sorted(set(schema) - ANNOTATIONS - set(KEYWORDS) - {"then", "else"})]
    for k in _ONE:
        if k in schema:
            found += unsupported(schema[k], f"{at}/{k}")
    for k in _MANY:
        for name, sub in schema.get(k, {}).items():
            found += unsupported(sub, f"{at}/{k}/{name}")
    for i, sub in enumerate(schema.get("anyOf", ())):
        found += unsupported(sub, f"{at}/anyOf/{i}")
    return found


def compile_schema(schema: Schema) -> Check:
    """A function that tells whether an instance is valid against `schema` (no explanations)."""
    return _Compiler(schema).compile(schema)
