"""The JSON Schema of a spec, generated from the layer registry.

schemas/netspec.schema.json is this function's output, checked in so editors
(yaml-language-server) can use it; a test fails when the two drift.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..ops import all_ops
from ..ops.params import NAME_PATTERN, Param
from ..ops.registry import OpDef
from .search_schema import search_schema
from .train_schema import SOURCE_PATTERN, train_schema  # pyright: ignore[reportUnknownVariableType]  # (returns a bare dict; train_schema.py is typed apart)

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Schema = dict[str, Any]  # a JSON Schema (or part of one), as JSON reads it

SCHEMA_ID = "https://netspec.dev/schemas/netspec.schema.json"
# A dotted name is a module path: blocks produce them (`stage2.block0.conv1`), and a resolved spec
# writes them back, so `from:`, `outputs:` and `name:` all take them.
REF_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
# The model name names the run directory runs/<name>: no separator, and neither . nor .. (runs/ itself
# or the folder above it).
DIR_NAME_PATTERN = r"^(?!\.{1,2}$)[A-Za-z0-9_.\-]+$"
IDENTIFIER = "letters, digits and _ (a Python identifier, not starting with a digit)"
# What each pattern of the schema asks for, in words: `netspec check`'s message and expected text
# (spec/validate.py), and the editor's (patternErrorMessage); a pattern not listed is a plain name.
PATTERN_WORDS = {
    NAME_PATTERN: ("invalid name", IDENTIFIER),
    REF_PATTERN: ("invalid name", IDENTIFIER + ", or a dotted path of them such as stage2.conv1"),
    DIR_NAME_PATTERN: (
        "invalid name",
        "letters, digits, _, . and - (the name of the run directory runs/<name>), not . or ..",
    ),
    SOURCE_PATTERN: ("invalid data source", "digits, synthetic, ucr:<Name>, or a path ending in .npz or .csv"),
}
UNKNOWN_LAYER = (
    "unknown layer type",
    "a layer type (see `netspec ops`) or a block defined under `blocks:`",
    "run `netspec ops` for the list of layer types",
)
MAX_REPEAT = 1000
# A spec with more layers than this, written or expanded, is a mistake (or an attack: nested
# repeats multiply); refusing it early keeps every check fast.
MAX_LAYERS = 10_000
COMMON_KEYS = {
    "name": {
        "title": "name",
        "type": "string",
        "pattern": REF_PATTERN,
        "description": "layer name (a Python identifier); default: <type>_<n>",
        "examples": ["conv1", "logits"],
    },
    "from": {
        "title": "from",
        "type": ["string", "array"],
        "pattern": REF_PATTERN,
        "items": {"type": "string", "pattern": REF_PATTERN},
        "minItems": 1,
        "description": "the earlier layer(s) or input(s) this layer reads; default: the previous layer",
        "examples": ["conv1", ["stem", "branch"]],
    },
}
EXPR_DEF = {
    "type": "string",
    "description": "an expression such as ${width * 2} or ${in.channels * 6 if t != 1 else in.channels}: numbers, "
    "text, + - * / // % **, comparisons, and/or/not, a if c else b, min/max/round/floor/ceil/abs/int, and the "
    "names of vars, block arguments and (in a block) `in` and its inputs; checked once evaluated",
}
_IS_EXPR = {"type": "string", "pattern": r"\$\{"}
# Editor annotations: they stay on the outside of `exprable`'s wrapper, where editors look for them.
_ANNOTATIONS = ("title", "description", "markdownDescription", "default", "examples", "defaultSnippets")


def exprable(schema: Schema) -> Schema:
    """`schema`, or a `${...}` expression in its place (and in its list items). The expression's
    value is checked against `schema` once evaluated (spec/parse.py)."""
    inner = {k: v for k, v in schema.items() if k not in _ANNOTATIONS}
    if isinstance(inner.get("items"), dict):
        inner["items"] = exprable(inner["items"])
    outer = {k: schema[k] for k in _ANNOTATIONS if k in schema}
    return {**outer, "if": _IS_EXPR, "then": {"$ref": "#/$defs/expr"}, "else": inner}


REPEAT = exprable(
    {
        "title": "repeat",
        "type": "integer",
        "minimum": 0,
        "maximum": MAX_REPEAT,
        "description": "stack this many copies, each reading the one before (named <name>0, <name>1, ...); "
        "0 passes the input through; default: one layer, no copies",
        "examples": [3, "${depth}"],
    }
)


WHEN = {
    "title": "when",
    "if": _IS_EXPR,
    "then": {"$ref": "#/$defs/expr"},
    "else": {"type": "boolean"},
    "description": "include this item only when the condition holds, e.g. ${stride == 1 and in.channels == channels}; "
    "otherwise the next item reads what this one would have read; default: true",
    "examples": ["${stride == 1}", "${in.channels != channels}"],
}


def _param_examples(op: OpDef) -> dict[str, list[Any]]:
    """Each parameter's values in the layer's registered examples (a scalar sets the shorthand):
    editors offer real settings, and tests compile every one of them."""
    out: dict[str, list[Any]] = {}
    for ex in op.examples:
        params: Any = ex.params
        given: dict[str, Any] = (
            cast_schema(params) if isinstance(params, dict) else {} if params is None else {str(op.shorthand): params}
        )
        for k, v in given.items():
            if v not in out.setdefault(k, []):
                out[k].append(v)
    return out


def op_schema(op: OpDef, authoring: bool = True) -> Schema:
    """One layer type's schema. `authoring`: as written in a spec (expressions allowed, `repeat`);
    otherwise as evaluated, which is what the values must finally satisfy."""
    wrap: Callable[[Schema], Schema] = exprable if authoring else (lambda s: s)
    props = {**COMMON_KEYS, **({"repeat": REPEAT, "when": WHEN} if authoring else {})}
    examples = _param_examples(op)
    props.update({p.name: wrap(_param_schema(p, examples.get(p.name))) for p in op.params})
    needed = [p.name for p in op.params if p.required]
    mapping = {
        "type": "object",
        "properties": props,
        "required": needed,
        "additionalProperties": False,
    }
    if op.shorthand:
        # an editor's hover shows the innermost description: the layer's, not the parameter's
        other = {"description": f"{op.doc} A single value sets {op.shorthand}.", **op.param(op.shorthand).kind.schema()}
        if op.bare_ok:  # `- dropout:` (null) means all defaults, as `- dropout` does
            types = other["type"] if isinstance(other.get("type"), list) else [other["type"]] if "type" in other else []
            if "enum" in other:
                other = {**other, "enum": [*other["enum"], None]}
            else:
                other = {**other, "type": [*types, "null"]}
        other = wrap(other)
    elif op.bare_ok:
        other = {"type": "null"}
    else:  # parameters are required: only the mapping form is valid
        other = {"type": "object", "errorMessage": needs_parameters(op.name, needed)}
    out: Schema = {
        "title": op.name,
        "description": op.doc,
        "markdownDescription": _op_markdown(op),
        "if": {"type": "object"},
        "then": mapping,
        "else": other,
    }
    if needed:  # completion inserts the mapping with the required keys, not the bare name
        body = {n: f"${{{i}}}" for i, n in enumerate(needed, 1)}
        out["defaultSnippets"] = [{"label": f"{op.name} with its required parameters", "body": body}]
    return out


def needs_parameters(name: str, needed: list[str]) -> str:
    """netspec's words for a layer written without its required parameters."""
    keys = ", ".join(f"{n}: ..." for n in needed)
    return f"layer '{name}' needs parameters: expected a mapping with {', '.join(needed)}; hint: write `- {name}: {{{keys}}}`"


def _param_schema(p: Param, examples: list[Any] | None) -> Schema:
    """A parameter's schema with what editors show: its default in the hover text, and each
    choice of an enum with its meaning (completion offers every one, not just the examples)."""
    s: Schema = p.schema(examples)
    default: Any = p.json_default
    s["markdownDescription"] = markdown_text(s["description"]) + (
        f"\n\ndefault: `{yaml_scalar(default)}`" if default is not None else ""
    )
    target: Schema | None = s if "enum" in s else s["then"] if "enum" in s.get("then", {}) else None
    meanings: tuple[str, ...] = getattr(p.kind, "meanings", ())
    if target is not None and len(meanings) == len(target["enum"]):
        values: list[Any] = target["enum"]
        docs = [m + (" (default)" if v == default else "") for v, m in zip(values, meanings, strict=True)]
        target["markdownEnumDescriptions"] = [markdown_text(d) for d in docs]
        s["defaultSnippets"] = [
            {"label": str(v), "markdownDescription": markdown_text(d), "body": v}
            for v, d in zip(values, docs, strict=True)
        ]
    return s


def yaml_scalar(value: object) -> str:
    """A default as a spec writes it: true, null, [1, 1], zeros."""
    return value if isinstance(value, str) else json.dumps(value)


def markdown_text(text: str) -> str:
    """Plain text for a markdownDescription: `code` spans kept, * _ < > [ ] outside them escaped
    (`D*H` is not emphasis)."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # the even parts are outside code spans
        parts[i] = "".join("\\" + c if c in "*_<>[]" else c for c in parts[i])
    return "`".join(parts)


def _op_markdown(op: OpDef) -> str:
    """A layer type's hover text: what it does, its shape rule, and its parameters with defaults."""
    lines = [markdown_text(op.doc)]
    if op.shape_rule:
        lines.append(f"shape: `{op.shape_rule}`")
    params: list[str] = []
    for p in op.params:
        what = "required" if p.required else "inferred" if p.inferred else f"default `{yaml_scalar(p.json_default)}`"
        params.append(f"- `{p.name}` ({what}): {markdown_text(p.doc)}")
    if params:
        lines.append("\n".join(params))
    if op.shorthand:
        lines.append(f"`- {op.name}: <value>` sets {op.shorthand}")
    return "\n\n".join(lines)


def _block_arg(block: str, arg: str, required: bool) -> Schema:
    need = "required: the block gives it no default" if required else "default: the block's args: entry"
    return {
        "title": arg,
        "description": f"argument of block {block}: any value or ${{...}} expression; {need}",
        "examples": [64, "${width * 2}"],
    }


def block_use_schema(name: str, args: tuple[str, ...], required: tuple[str, ...]) -> Schema:
    """A use of block `name`: its arguments (any value or expression) plus name/from/repeat."""
    props = {**COMMON_KEYS, "repeat": REPEAT, "when": WHEN, **{a: _block_arg(name, a, a in required) for a in args}}
    return {
        "title": f"block {name}",
        "description": f"a use of the block {name} defined under blocks:"
        + (f" with arguments {', '.join(args)}" if args else ""),
        "if": {"type": "object"},
        "then": {"type": "object", "properties": props, "required": list(required), "additionalProperties": False},
        "else": {"type": "object"} if required else {"type": "null"},
    }


def _outputs(description: str) -> Schema:
    return {
        "title": "outputs",
        "type": "array",
        "minItems": 1,
        "uniqueItems": True,
        "items": {"type": "string", "pattern": REF_PATTERN},
        "description": description,
        "examples": [["logits"], ["logits", "features"]],
    }


# Examples for editors (a test validates each one against its field's schema).
_CONV = {"conv2d": {"out_channels": 6, "kernel_size": 5}}
_BLOCK_LAYERS = [{"conv2d": {"out_channels": "${channels}", "kernel_size": 3, "padding": 1}}, "batchnorm2d", "relu"]
_BLOCK = {"args": {"channels": None}, "layers": _BLOCK_LAYERS}


def _block_def_schema() -> Schema:
    return {
        "type": "object",
        "required": ["layers"],
        "additionalProperties": False,
        "properties": {
            "description": {
                "title": "description",
                "type": "string",
                "description": "free text",
                "examples": ["conv, batchnorm, relu"],
            },
            "args": {
                "title": "args",
                "type": "object",
                "propertyNames": {"pattern": NAME_PATTERN},
                "description": "the block's arguments and their defaults; null: no default, every use must give it",
                "examples": [{"channels": None, "stride": 1}],
            },
            "inputs": {
                "title": "inputs",
                "type": "array",
                "minItems": 1,
                "maxItems": 16,
                "uniqueItems": True,
                "items": {"type": "string", "pattern": NAME_PATTERN},
                "description": "names of the values the block reads (a use's `from:` gives them in order)",
                "default": ["x"],
                "examples": [["x"], ["x", "skip"]],
            },
            "layers": {
                "title": "layers",
                "type": "array",
                "minItems": 1,
                "items": {"$ref": "#/$defs/layer"},
                "description": "the block's layers, in order (required)",
                "examples": [_BLOCK_LAYERS],
            },
            "outputs": _outputs("the values the block returns; default: its last layer"),
        },
    }


class _OpDefs(dict[str, "Schema"]):
    """`$defs` whose layer-type entries are made when first looked up: a spec that uses 5 of the
    48 layer types makes 5 of their schemas (the fast check follows `$ref`s by lookup). Iterating
    or printing it shows only what was made, so every other reader gets a plain dict."""

    def __init__(self, defs: Schema, make: Callable[[str], Schema]):
        super().__init__(defs)
        self.make = make

    def __missing__(self, name: str) -> Schema:
        value = self[name] = self.make(name)  # KeyError for a name that is no layer type
        return value


def _augment_op() -> Schema:
    from ..data.augment import (  # made only for a spec that declares augmentation
        item_schema,  # pyright: ignore[reportUnknownVariableType]  # (returns a bare dict; data/ is typed apart)
    )

    return cast_schema(item_schema())


def _op_defs(defs: Schema, authoring: bool, lazy: bool) -> Schema:
    ops = all_ops()
    if lazy:
        return _OpDefs(defs, lambda n: _augment_op() if n == "augment_op" else op_schema(ops[n], authoring))
    return {**defs, "augment_op": _augment_op(), **{n: op_schema(ops[n], authoring) for n in sorted(ops)}}


def build_schema(
    blocks: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] | None = None, lazy: bool = False
) -> Schema:
    """The spec schema. `blocks` (name, args, required args) of one document makes the schema of
    that document: its block names become layer types, so a misspelt one or an unknown argument
    is reported like any other. Without it (the published schema) any name may be a block.
    `lazy`: layer types' schemas are made when looked up (for spec/fastschema.py only)."""
    ops = all_ops()
    names = sorted(ops)
    uses = {b[0]: block_use_schema(*b) for b in blocks or ()}
    bare = [n for n in names if ops[n].bare_ok] + [b for b, _, req in blocks or () if not req]
    if blocks is not None:  # a document's own schema, which netspec validates it with
        layer = _layer_schema(
            {"enum": bare},
            {"enum": names + sorted(uses)},
            {n: f"#/$defs/{n}" for n in names} | {b: f"#/$defs/block:{b}" for b in sorted(uses)},
        )
        editor: Schema = {}
    else:  # the published schema: an editor's, which cannot know a document's block names
        layer, editor = _editor_layers(ops)
    dim = {
        "type": ["integer", "string"],
        "minimum": 1,
        "maximum": 2**31 - 1,
        "pattern": NAME_PATTERN,
        "description": "a fixed size, or a symbol such as T for a size known only at run time",
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "netspec network spec",
        "description": "A declarative neural network: inputs, layers (a chain, or a graph with from:), "
        "reusable blocks, and how to train it.",
        "type": "object",
        "required": ["netspec", "inputs", "layers"],
        "additionalProperties": False,
        "properties": {
            "netspec": {
                "title": "netspec",
                "const": 1,
                "description": "spec format version; write `netspec: 1` (required)",
                "examples": [1],
            },
            "name": {
                "title": "name",
                "type": "string",
                "pattern": DIR_NAME_PATTERN,
                "description": "model name (the default run directory is runs/<name>)",
                "default": "model",
                "examples": ["lenet5", "digits_cnn"],
            },
            "description": {
                "title": "description",
                "type": "string",
                "description": "free text",
                "examples": ["A small CNN for the 8x8 digits"],
            },
            "vars": {
                "title": "vars",
                "type": "object",
                "description": "named values for ${...} expressions; a var may use the vars above it",
                "propertyNames": {"pattern": NAME_PATTERN},
                "additionalProperties": {"type": ["number", "string", "boolean", "array"]},
                "examples": [{"width": 64, "wide": "${width * 2}"}],
            },
            "scale": {
                "title": "scale",
                "type": "object",
                "additionalProperties": False,
                "description": "scale a whole network: widths (channels, features, hidden sizes) and repeat counts",
                "examples": [{"width": 0.5}, {"width": 2, "depth": 2, "divisor": 8}],
                "properties": {
                    "width": {
                        "title": "width",
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "maximum": 64,
                        "default": 1,
                        "description": "multiplies every width parameter except those of the layers that "
                        "set an output's size (the task's heads)",
                        "examples": [0.5, 2],
                    },
                    "depth": {
                        "title": "depth",
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "maximum": 64,
                        "default": 1,
                        "description": "multiplies every `repeat:` count (rounded up)",
                        "examples": [0.5, 2],
                    },
                    "divisor": {
                        "title": "divisor",
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 1024,
                        "default": 1,
                        "description": "scaled widths are rounded to a multiple of this (8 suits tensor cores)",
                        "examples": [8],
                    },
                },
            },
            "blocks": {
                "title": "blocks",
                "type": "object",
                "description": "reusable groups of layers, used as layer types with arguments",
                "propertyNames": {
                    "pattern": NAME_PATTERN,
                    "patternErrorMessage": _words(*PATTERN_WORDS[NAME_PATTERN]),
                    # if/then, not `not`: an editor shows `errorMessage` for this but not for a `not`
                    "if": {"enum": names},
                    "then": {"type": "null", "errorMessage": RESERVED_BLOCK},
                },
                "additionalProperties": {"$ref": "#/$defs/block"},
                "examples": [{"conv_bn": _BLOCK}],
            },
            "inputs": {
                "title": "inputs",
                "type": "object",
                "description": "the model's inputs (forward arguments, in order): one sample's shape each; "
                "the batch dimension is implicit (required)",
                "examples": [{"image": {"shape": [1, 28, 28]}}, {"series": {"shape": ["T", 6]}}],
                "minProperties": 1,
                "maxProperties": 16,
                "propertyNames": {"pattern": NAME_PATTERN},
                "additionalProperties": {
                    "type": "object",
                    "required": ["shape"],
                    "additionalProperties": False,
                    "properties": {
                        "shape": {
                            "title": "shape",
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 8,
                            "items": exprable(dim),
                            "description": "per-sample shape, e.g. [1, 32, 32] or [T, 6] (required)",
                            "examples": [[1, 28, 28], ["T", 6]],
                        },
                        "dtype": {
                            "title": "dtype",
                            "enum": ["float32", "int64"],
                            "default": "float32",
                            "description": "int64 for token ids (embedding input)",
                            "examples": ["float32", "int64"],
                        },
                    },
                },
            },
            "dims": {
                "title": "dims",
                "type": "object",
                "description": "nominal sizes of symbolic dims, used for MACs and memory (e.g. {T: 100})",
                "propertyNames": {"pattern": NAME_PATTERN},
                "additionalProperties": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                "examples": [{"T": 100}],
            },
            "layers": {**_LAYERS, "items": {"$ref": "#/$defs/layer"}} if blocks is not None else _LAYERS,
            "outputs": _outputs("the layers whose values the model returns, in order; default: the last layer"),
            "train": train_schema(),
            "search": search_schema(),
        },
        **editor.pop("root", {}),
        "$defs": _op_defs(
            {
                **editor,
                "layer": layer,
                "block": _block_def_schema(),
                "expr": EXPR_DEF,
                **{f"block:{b}": use for b, use in uses.items()},
            },
            authoring=True,
            lazy=lazy,
        ),
    }


_LAYERS = {
    "title": "layers",
    "type": "array",
    "minItems": 1,
    "description": "the layers, in order: each reads the one before unless it names `from:` (required)",
    "examples": [[_CONV, "relu", "flatten", {"linear": 10}]],
}
_LAYER_DOC = (
    "a layer: `- relu`, `- linear: 10`, or `- conv2d: {out_channels: 6, kernel_size: 5}`; "
    "or a use of a block: `- basic: {channels: 64}`"
)
RESERVED_BLOCK = (
    "block has the name of a layer type: expected a block name that is not a layer type (see `netspec ops`); "
    "hint: rename it, e.g. <name>_block"
)


def _words(message: str, expected: str, hint: str | None = None) -> str:
    """An editor's message in netspec's words (spec/validate.py), without the received value,
    which an editor's message cannot name."""
    return f"{message}: expected {expected}" + (f"; hint: {hint}" if hint else "")


def _layer_schema(string: Schema, key: Schema, refs: dict[str, str], other: Schema | None = None) -> Schema:
    """A layer item: a string (`string`: what it may be) or a mapping of one key (`key`: what it
    may be) whose value `refs` checks by the key (`other`: a key not in `refs`)."""
    mapping = {
        "minProperties": 1,
        "maxProperties": 1,
        "propertyNames": key,
        # `properties` checks only the key present: one lookup per layer, not one test per type
        "properties": {n: {"$ref": r} for n, r in refs.items()},
    }
    if other is not None:
        mapping["additionalProperties"] = other
    return {
        "description": _LAYER_DOC,
        "type": ["string", "object"],
        "if": {"type": "string"},
        "then": string,
        "else": mapping,
    }


def _one_of(names: list[str]) -> str:
    return "^(" + "|".join(names) + ")$"  # layer type names are identifiers: nothing to escape


def _editor_layers(ops: dict[str, OpDef]) -> tuple[Schema, Schema]:
    """The published schema's layer items: without `blocks:`, only layer types (a misspelt one is
    flagged); with it, a layer type or any name (a block's: a schema cannot list a document's
    block names), whose `name`, `from`, `repeat` and `when` are still checked. Either way, a bare
    layer type that needs parameters is flagged as netspec flags it. Returns the `layer`
    definition and the other definitions, with under "root" the keywords for the root schema."""
    names = sorted(ops)
    bare = [n for n in names if ops[n].bare_ok]
    needs = [n for n in names if not ops[n].bare_ok]
    refs = {n: f"#/$defs/{n}" for n in names}
    unknown = _words(*UNKNOWN_LAYER)
    needs_params = {
        # `- conv2d`: netspec says "needs parameters" (an editor's message cannot name the type)
        "if": {"pattern": _one_of(needs)},
        "then": {
            "type": "object",
            "errorMessage": "layer needs parameters: expected a mapping with its required parameters; "
            "hint: write `- <type>: {<parameter>: ...}` (completion inserts them)",
        },
    }
    # Patterns, not enums, for the names: an editor lists an enum's values in the hover of every
    # layer. And for hover only (it never fails), an anyOf that the server evaluates before the
    # rest: it shows the first title and description it meets, and of an anyOf only its best
    # match, so `- relu` shows relu's docs.
    hover = [
        *({"const": n, "title": n, "description": ops[n].doc} for n in bare),
        {"type": "string", "not": {"pattern": _one_of(bare)}},
        {"type": "object"},
    ]
    builtin = _layer_schema(
        {**needs_params, "else": {"pattern": _one_of(bare), "patternErrorMessage": unknown}},
        {"enum": names, "errorMessage": unknown},
        refs,
    )
    builtin["anyOf"] = hover
    any_name = _layer_schema(
        {"pattern": NAME_PATTERN, "patternErrorMessage": _words(*PATTERN_WORDS[NAME_PATTERN]), **needs_params},
        {"pattern": REF_PATTERN, "patternErrorMessage": _words(*PATTERN_WORDS[REF_PATTERN])},
        refs,
        {"$ref": "#/$defs/block_use"},
    )
    any_name["anyOf"] = hover
    use = {
        "title": "block use",
        "description": "a use of a block defined under blocks: its arguments, and name, from, repeat and when",
        "if": {"type": "object"},
        "then": {"type": "object", "properties": {**COMMON_KEYS, "repeat": REPEAT, "when": WHEN}},
        "else": {"type": "null"},
    }
    root = {
        "if": {"required": ["blocks"]},
        "then": {"properties": {"layers": {**_LAYERS, "items": {"$ref": "#/$defs/layer"}}}},
        "else": {"properties": {"layers": {**_LAYERS, "items": {"$ref": "#/$defs/builtin_layer"}}}},
    }
    return any_name, {"root": root, "builtin_layer": builtin, "block_use": use}


def published_schema() -> Schema:
    """The schema `netspec schema` prints, for editors (schemas/netspec.schema.json). A copy:
    build_schema shares sub-schemas with module-level tables (train_schema's), which the editor
    additions must not change under netspec's own validation."""
    schema = cast_schema(json.loads(json.dumps(build_schema())))
    for_editors(schema)
    return schema


def evaluated_layer_schema(lazy: bool = False) -> Schema:
    """What a layer's values must satisfy once its expressions are evaluated."""
    ops = all_ops()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {n: {"$ref": f"#/$defs/{n}"} for n in ops},
        "$defs": _op_defs({}, authoring=False, lazy=lazy),
    }


# The keywords whose values are schemas (or mappings or lists of them), for walking a schema.
_SUBSCHEMA = ("if", "items", "additionalProperties", "propertyNames", "then", "else", "not")
_SUBSCHEMAS = ("properties", "$defs", "anyOf")


def cast_schema(value: Any) -> Schema:
    """`value`, known to be a mapping read from JSON, as a Schema (a checker sees dict[Any, Any])."""
    return value


def cast_list(value: Any) -> list[Any]:
    return list(value)


def for_editors(schema: Any) -> None:
    """Add, in place, what yaml-language-server shows and netspec's own schema does without: each
    pattern's message in netspec's words, and the default in the hover text of a field that has
    one (the server shows `default` nowhere). Runs on the published schema only."""
    if not isinstance(schema, dict):
        return
    schema = cast_schema(schema)
    if "pattern" in schema and "patternErrorMessage" not in schema:
        message, expected = PATTERN_WORDS.get(
            schema["pattern"], ("invalid value", f"text matching {schema['pattern']}")
        )
        schema["patternErrorMessage"] = _words(message, expected)
    if "default" in schema and "description" in schema and "markdownDescription" not in schema:
        default = f"default: `{yaml_scalar(schema['default'])}`"
        schema["markdownDescription"] = f"{markdown_text(schema['description'])}\n\n{default}"
    for key in _SUBSCHEMA[1:]:  # not into `if`: a failing `if` shows no message
        for_editors(schema.get(key))
    for key in _SUBSCHEMAS:
        value: Any = schema.get(key)
        for sub in cast_list(value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()):
            for_editors(sub)


def schema_text() -> str:
    return json.dumps(published_schema(), indent=2, sort_keys=False) + "\n"
