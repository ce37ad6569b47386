"""JSON Schema validation that reports every error at once, as netspec diagnostics.

A compiled yes/no check (spec/fastschema.py) passes a valid document without importing jsonschema;
otherwise jsonschema finds the errors and this module turns each into a message a person can act on: the
location of the offending key or value, what was expected, what was received, and a hint
(including "did you mean" for unknown keys and layer types).
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

from ..errors import Diagnostic, closest, did_you_mean, format_path
from ..ops import all_ops
from .fastschema import compile_schema, ecma_regex
from .loader import Document
from .schema import IDENTIFIER, MAX_LAYERS, PATTERN_WORDS, UNKNOWN_LAYER, build_schema, evaluated_layer_schema

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

    from jsonschema import ValidationError
    from jsonschema.protocols import Validator

    from .fastschema import Check
    from .schema import Schema

    Path = tuple[str | int, ...]  # a key path into the document
    Key = tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] | str  # a schema: block signature or EVALUATED

_TYPE_NAMES: dict[type, str] = {
    dict: "mapping",
    list: "list",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
}


def _mapping(value: Any) -> dict[Any, Any]:
    """A value known (by isinstance) to be a mapping of the document, as a checker should see it:
    its keys and values are any YAML values."""
    return value


def _list(value: Any) -> list[Any]:
    """As _mapping, for a list."""
    return value


def type_name(v: Any) -> str:
    if v is None:
        return "null"
    kind: type[object] = type(v)  # pyright: ignore[reportUnknownVariableType]  # (v is any YAML value)
    return _TYPE_NAMES.get(kind, kind.__name__)


def show(v: Any) -> str:
    if isinstance(v, dict | list):
        return type_name(v)
    if isinstance(v, bool) or v is None:  # as YAML spells them, not Python's True/None
        return {True: "true", False: "false", None: "null"}[v] + f" ({type_name(v)})"
    text = repr(v) if isinstance(v, str) else str(v)
    if isinstance(v, int) and len(text) > 20:  # say how long, not just where it was cut
        return f"{text[:12]}... (a {len(text.lstrip('-'))}-digit integer)"
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type_name(v)})"


def _at(data: Any, path: Path) -> Any:
    for part in path:
        data = data[part]
    return data


def _at_or_none(data: Any, path: Path) -> Any:
    try:
        return _at(data, path)
    except (KeyError, IndexError, TypeError):
        return None


def _nonfinite(data: Any, path: Path = ()) -> Iterator[tuple[Path, float]]:
    """(path, value) of every NaN or infinity: JSON Schema cannot refuse them (NaN passes every
    bound), and no size, rate or probability of a spec may be one."""
    if isinstance(data, float) and not math.isfinite(data):
        yield path, data
    elif isinstance(data, dict):
        for k, v in _mapping(data).items():
            yield from _nonfinite(v, path + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(_list(data)):
            yield from _nonfinite(v, path + (i,))


EVALUATED = "evaluated"  # the schema key of one evaluated layer; other keys are block signatures


def _schema(key: Key, lazy: bool) -> Schema:
    return evaluated_layer_schema(lazy) if isinstance(key, str) else build_schema(key, lazy)


@functools.lru_cache(maxsize=16)
def _is_valid(key: Key) -> Check:
    """The fast yes/no check (spec/fastschema.py); jsonschema runs only on a no, to explain it."""
    return compile_schema(_schema(key, lazy=True))


@functools.cache
def _jsonschema_class() -> type[Validator]:
    """Draft 2020-12 as jsonschema implements it, except `pattern`: JSON Schema regexes are ECMA-262's,
    where `$` is the end of input (jsonschema's re.search lets "fc\\n" match `^[a-z]+$`)."""
    from jsonschema import Draft202012Validator, ValidationError, validators

    def pattern(validator: Validator, value: str, instance: Any, schema: Schema) -> Iterator[ValidationError]:
        if isinstance(instance, str) and ecma_regex(value).search(instance) is None:
            yield ValidationError(f"{instance!r} does not match {value!r}")

    # jsonschema's `extend` is untyped: its result is the class it extends, with one keyword replaced
    return validators.extend(Draft202012Validator, {"pattern": pattern})  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]


def jsonschema_validator(schema: Schema | bool) -> Validator:
    """A jsonschema validator of `schema` that reads patterns as the fast check does."""
    return _jsonschema_class()(schema)


@functools.lru_cache(maxsize=16)
def _validator(key: Key) -> Validator:
    return jsonschema_validator(_schema(key, lazy=False))


def block_signature(data: Any) -> tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]:
    """(name, args, required args) of each block the document defines, as far as it is well formed
    (the schema reports the rest); keys the per-document schema."""
    blocks = _mapping(data).get("blocks") if isinstance(data, dict) else None
    out: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []
    for name, block in _mapping(blocks).items() if isinstance(blocks, dict) else ():
        args = _mapping(block).get("args") if isinstance(block, dict) else None
        given = _mapping(args) if isinstance(args, dict) else {}
        out.append((str(name), tuple(map(str, given)), tuple(str(a) for a, v in given.items() if v is None)))
    return tuple(out)


def _expected_type(t: Any) -> str:
    names = {
        "object": "a mapping",
        "array": "a list",
        "integer": "an integer",
        "number": "a number",
        "string": "a string",
        "boolean": "true or false",
        "null": "nothing (no value)",
    }
    ts = _list(t) if isinstance(t, list) else [t]
    return " or ".join(names.get(str(x), str(x)) for x in ts)


def _layer_op(doc: Document, path: Path) -> tuple[str | None, Path]:
    """For a path inside a layer item (`layers[i]`, or `blocks.b.layers[i]`), the layer's type and
    the item's path; (None, ()) elsewhere."""
    for i in range(len(path) - 2, -1, -1):
        if path[i] == "layers" and isinstance(path[i + 1], int):
            try:
                item = _at(doc.data, path[: i + 2])
            except (KeyError, IndexError, TypeError):
                return None, ()
            if isinstance(item, dict) and len(_mapping(item)) == 1:
                return str(next(iter(_mapping(item)))), path[: i + 2]
            if isinstance(item, str):
                return item, path[: i + 2]
            return None, path[: i + 2]
    return None, ()


def _blocks(doc: Document) -> dict[str, list[str]]:
    """The document's block names and their required arguments."""
    return {name: list(required) for name, _, required in block_signature(doc.data)}


def _is_item(doc: Document, path: Path) -> bool:
    """Is `path` a layer item itself (not a key inside one)?"""
    return bool(path) and _layer_op(doc, path)[1] == path


def _branches_of_type(err: ValidationError) -> set[int]:
    """The anyOf branches whose `type` admits the failing instance (or that name no type)."""
    return {i for i, branch in enumerate(_list(err.validator_value)) if _admits(branch, err.instance)}


def _admits(branch: Any, value: Any) -> bool:
    """Does the branch's `type` (or that of every branch of its own anyOf) admit the value?"""
    if not isinstance(branch, dict):
        return True
    schema = _mapping(branch)
    if "type" not in schema and "anyOf" in schema:
        return any(_admits(b, value) for b in _list(schema["anyOf"]))
    t = schema.get("type")
    names: list[str] = [t] if isinstance(t, str) else list(_list(t or []))
    return not names or any(_TYPE_OK[n](value) for n in names if n in _TYPE_OK)


_TYPE_OK: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}


def _diag(doc: Document, err: ValidationError, prefix: Path = ()) -> list[Diagnostic]:
    """`prefix`: where the validated instance sits in the document (for values checked alone)."""
    path = prefix + tuple(err.absolute_path)
    kw = str(err.validator)
    inst: Any = err.instance
    wanted: Any = err.validator_value  # the keyword's value in the schema: a bound, a list of choices...
    schema: dict[Any, Any] = _mapping(err.schema) if isinstance(err.schema, dict) else {}
    ops = all_ops()

    def make(message: str, p: Path = path, *, key: bool = False, **kwargs: Any) -> Diagnostic:
        return Diagnostic(message, format_path(p), doc.loc(p, key=key), code="schema", **kwargs)

    if path == ("blocks",) and isinstance(inst, str) and inst in ops and kw in ("not", "type"):
        # propertyNames' if/then (an editor shows a then's message, not a not's)
        return [
            make(
                f"block '{inst}' has the name of a layer type",
                path + (inst,),
                key=True,
                expected="a block name that is not a layer type (see `netspec ops`)",
                received=repr(inst),
                hint=f"rename it, e.g. '{inst}_block'",
            )
        ]
    if kw == "additionalProperties":
        allowed: list[str] = sorted(schema.get("properties", {}))
        out: list[Diagnostic] = []
        for k in _mapping(inst):
            if k in allowed:
                continue
            op, item = _layer_op(doc, path)
            where = f"for {op}" if op and path == item + (op,) else "here"
            out.append(
                make(
                    f"unknown key '{k}'",
                    path + (k,),
                    key=True,
                    expected=f"one of the keys allowed {where}: {', '.join(allowed)}",
                    received=repr(k),
                    hint=did_you_mean(k, allowed) or "remove it: unknown keys are errors, never ignored",
                )
            )
        return out
    if kw == "anyOf":
        # A value with a short form and a mapping form (`- resize: 256` / `{size: [h, w]}`): explain it
        # by the branch of its own type (the mapping's unknown key, not "valid under none").
        fits = [
            e
            for e in err.context or ()
            if e.validator != "type" and e.relative_schema_path[0] in _branches_of_type(err)
        ]
        if fits:
            return [d for e in fits for d in _diag(doc, e, prefix)]
    if kw == "enum" and len(path) >= 2 and path[-2] == "augment" and isinstance(inst, str):
        from ..data.augment import REGISTRY

        name = inst
        if isinstance(_at(doc.data, path), dict):
            path = path + (name,)
        needs = REGISTRY[name].required if name in REGISTRY else []
        if needs:
            return [
                make(
                    f"augmentation op '{name}' needs parameters",
                    expected=f"a mapping with {', '.join(needs)}",
                    received=repr(name),
                    hint=f"write `- {name}: {{{', '.join(n + ': ...' for n in needs)}}}`",
                )
            ]
        return [
            make(
                f"unknown augmentation op '{name}'",
                path,
                key=isinstance(_at_or_none(doc.data, path[:-1]), dict),
                expected="an augmentation op (see `netspec ops --augment`)",
                received=repr(name),
                hint=did_you_mean(name, REGISTRY) or "run `netspec ops --augment` for the list",
            )
        ]
    if kw == "enum":
        choices = _list(wanted)
        if _is_item(doc, path) and isinstance(inst, str):
            kinds = [c for c in choices if isinstance(c, str)]  # layer types and this spec's blocks
            if isinstance(_at(doc.data, path), dict):
                # `- convd2: {...}`: jsonschema reports the propertyNames enum at the item; point
                # at the type key itself, as for any other unknown key.
                return [
                    make(
                        f"unknown layer type '{inst}'",
                        path + (inst,),
                        key=True,
                        expected=UNKNOWN_LAYER[1],
                        received=repr(inst),
                        hint=did_you_mean(inst, kinds) or UNKNOWN_LAYER[2],
                    )
                ]
            if inst in _blocks(doc):
                return [
                    make(
                        f"block '{inst}' needs arguments",
                        expected="a mapping with " + ", ".join(_blocks(doc)[inst]),
                        received=repr(inst),
                        hint=f"write `- {inst}: {{{', '.join(a + ': ...' for a in _blocks(doc)[inst])}}}`",
                    )
                ]
            if inst in ops:
                needed = [p.name for p in ops[inst].params if p.required]
                example = ", ".join(f"{n}: ..." for n in needed)
                return [
                    make(
                        f"layer '{inst}' needs parameters",
                        expected=f"a mapping with {', '.join(needed)}",
                        received=repr(inst),
                        hint=f"write `- {inst}: {{{example}}}`",
                    )
                ]
            return [
                make(
                    f"unknown layer type '{inst}'",
                    expected=UNKNOWN_LAYER[1],
                    received=repr(inst),
                    hint=did_you_mean(inst, kinds) or UNKNOWN_LAYER[2],
                )
            ]
        return [
            make(
                "value is not one of the allowed choices",
                expected="one of " + ", ".join(repr(c) for c in choices),
                received=show(inst),
                hint=did_you_mean(inst, [str(c) for c in choices]) if isinstance(inst, str) else None,
            )
        ]
    if kw == "required":
        missing: list[str] = [str(r) for r in _list(wanted) if r not in inst]
        op, item = _layer_op(doc, path)
        out = list[Diagnostic]()
        props: dict[str, Any] = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            # `kernal_size: 5` is one mistake: its unknown-key error already says "did you mean
            # 'kernel_size'?", so don't also report kernel_size as missing.
            typos = {closest(str(k), props) for k in _mapping(inst) if k not in props}
            missing = [m for m in missing if m not in typos]
        for m in missing:
            hint = None
            if op in ops and path == item + (op,):
                hint = f"{m}: {ops[op].param(m).doc}"
            elif op in _blocks(doc) and path == item + (op,):
                hint = f"block {op} has no default for {m}"
            elif m == "netspec":
                hint = "add `netspec: 1` as the first line"
            out.append(make(f"missing required key '{m}'", key=bool(path), expected=f"a key '{m}'", hint=hint))
        return out
    if kw == "type":
        op, item = _layer_op(doc, path)
        hint = None
        if op in ops and path == item + (op,) and "object" in str(wanted):
            needed = [p.name for p in ops[op].params if p.required]
            hint = f"{op} takes a mapping: `{op}: {{{', '.join(n + ': ...' for n in needed)}}}`"
        elif isinstance(inst, float) and "integer" in str(wanted):
            hint = "sizes are whole numbers"
        elif isinstance(inst, str) and _is_number(inst) and ("integer" in str(wanted) or "number" in str(wanted)):
            hint = "write the number without quotes"  # only when it is one: not for `kernel_size: three`
        return [make("wrong type", expected=_expected_type(wanted), received=show(inst), hint=hint)]
    if kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        sym = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[kw]
        return [make("value out of range", expected=f"a value {sym} {wanted}", received=show(inst))]
    if kw in ("minItems", "maxItems"):
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        want = f"exactly {lo}" if lo == hi else (f"at least {lo}" if kw == "minItems" else f"at most {hi}")
        hint = "one value per spatial axis, or a single int for all" if lo == hi and lo and lo > 1 else None
        return [
            make("wrong number of items", expected=f"a list of {want} items", received=f"{len(inst)} items", hint=hint)
        ]
    if kw in ("minProperties", "maxProperties"):
        if _is_item(doc, path):
            keys = list(inst)
            hint = "put `name:` and parameters inside the layer's mapping: `- conv2d: {name: c1, ...}`"
            if len(keys) > 1 and any(k in ops for k in keys):
                hint += "; or a '-' is missing between two layers"
            return [
                make(
                    "a layer has exactly one key, its type",
                    expected="`- <type>: <parameters>`",
                    received=f"keys {keys}",
                    hint=hint,
                )
            ]
        if path == ("inputs",):
            return [
                make(
                    "wrong number of inputs",
                    expected="1 to 16 entries under inputs",
                    received=f"{len(inst)} entries",
                )
            ]
    if kw == "const":
        hint = "write `netspec: 1`, the spec format this version reads" if path == ("netspec",) else None
        return [make("unsupported value", expected=repr(wanted), received=show(inst), hint=hint)]
    if kw == "pattern":
        parent = _at(doc.data, path)
        hint = _unprintable_hint(inst, wanted)
        if isinstance(parent, dict) and inst in parent:
            # propertyNames: the offending *key* is the instance, reported at its mapping's path
            return [
                make(
                    f"invalid name {inst!r}",  # repr: a newline in the name stays on this line
                    path + (inst,),
                    key=True,
                    expected=_IDENTIFIER,
                    received=show(inst),
                    hint=hint,
                )
            ]
        if "shape" in path:
            return [
                make(
                    "invalid dimension",
                    expected="a positive integer, or a symbol such as T (letters, digits and _)",
                    received=show(inst),
                    hint=hint
                    or (
                        "write the number without quotes"
                        if inst.isdigit()
                        else "a symbol is a plain name (give its size with `dims:` or --dim); "
                        "arithmetic goes in an expression: ${size * 2}"
                    ),
                )
            ]
        message, expected = _PATTERN_WORDS.get(wanted, ("invalid name", _IDENTIFIER))
        return [make(message, expected=expected, received=show(inst), hint=hint)]
    return [make(err.message)]


_IDENTIFIER = IDENTIFIER
_PATTERN_WORDS = PATTERN_WORDS  # what each pattern asks for, in words (the default: a plain name)


def _unprintable_hint(inst: Any, pattern: str) -> str | None:
    """A hint naming the whitespace or control characters of a string refused by `pattern`, when
    they are why: "fc\\n" looks like fc in most places a person would look."""
    if not isinstance(inst, str):
        return None

    def bad(c: str) -> bool:
        return c.isspace() or not c.isprintable()

    if ecma_regex(pattern).search("".join(c for c in inst if not bad(c))) is None:
        return None  # something else is wrong too (or instead): the expected text says what
    start = next((i for i, c in enumerate(inst) if not bad(c)), len(inst))
    end = next((i + 1 for i in range(len(inst) - 1, -1, -1) if not bad(inst[i])), start)
    parts = [f"the {inst[:start]!r} at its start"] if start else []
    parts += [f"the {inst[end:]!r} at its end"] if end < len(inst) else []
    if not parts:
        parts = [f"the {next(c for c in inst if bad(c))!r} inside it"]
    return f"remove {' and '.join(parts)}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def validate(doc: Document) -> list[Diagnostic]:
    """All schema errors of the document, sorted by position."""
    whole: Any = doc.data
    if not isinstance(whole, dict):
        return [
            Diagnostic(
                "the spec must be a mapping",
                "",
                doc.loc(()),
                expected="a mapping with netspec, inputs and layers",
                received=type_name(whole),
                code="schema",
            )
        ]
    data = _mapping(whole)
    blocks = data.get("blocks")
    written: list[Path] = [("layers",)]
    written += [("blocks", b, "layers") for b in (_mapping(blocks) if isinstance(blocks, dict) else {})]
    count = sum(len(_list(x)) for x in (_at_or_none(data, p) for p in written) if isinstance(x, list))
    if count > MAX_LAYERS:
        return [
            Diagnostic(
                "too many layers",
                "layers",
                doc.loc(("layers",), key=True),
                expected=f"at most {MAX_LAYERS:,} layers, counting those of blocks",
                received=f"{count:,} layers",
                hint="a network this long is better written with blocks and `repeat:`",
                code="schema",
            )
        ]
    nonfinite = dict(_nonfinite(data))
    diags: list[Diagnostic] = [
        Diagnostic(
            "not a finite number",
            format_path(p),
            doc.loc(p),
            expected="a finite number (NaN and infinity are never valid here)",
            received=show(v),
            code="schema",
        )
        for p, v in nonfinite.items()
    ]
    signature = block_signature(data)
    if not diags and _is_valid(signature)(data):
        return []
    for err in _validator(signature).iter_errors(data):
        if tuple(err.absolute_path) in nonfinite:
            continue  # said once above, instead of as a wrong type and a bound
        diags.extend(_diag(doc, err))
    unique = {(d.path, d.message, d.expected): d for d in diags}
    return sorted(unique.values(), key=lambda d: (d.loc.line, d.loc.col, d.path))


def validate_evaluated(doc: Document, item: dict[str, Any], path: Path) -> list[Diagnostic]:
    """Check a layer whose `${...}` values were just evaluated (`item` = {type: params}) against
    what its values must be; `path` is where the layer is written, for locations."""
    if _is_valid(EVALUATED)(item):
        return []
    diags = [d for err in _validator(EVALUATED).iter_errors(item) for d in _diag(doc, err, path)]
    return list({(d.path, d.message, d.expected): d for d in diags}.values())
