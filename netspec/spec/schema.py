"""The JSON Schema of a spec, generated from the layer registry.

schemas/netspec.schema.json is this function's output, checked in so editors
(yaml-language-server) can use it; a test fails when the two drift.
"""

from __future__ import annotations

from ..ops import all_ops
from ..ops.params import NAME_PATTERN
from ..ops.registry import OpDef
from .search_schema import search_schema
from .train_schema import train_schema

SCHEMA_ID = "https://netspec.dev/schemas/netspec.schema.json"
# A dotted name is a module path: blocks produce them (`stage2.block0.conv1`), and a resolved spec
# writes them back, so `from:`, `outputs:` and `name:` all take them.
REF_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
# The model name names the run directory runs/<name>: no separator, and neither . nor .. (runs/ itself
# or the folder above it).
DIR_NAME_PATTERN = r"^(?!\.{1,2}$)[A-Za-z0-9_.\-]+$"
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
_ANNOTATIONS = ("title", "description", "default", "examples")


def exprable(schema: dict) -> dict:
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


def _param_examples(op: OpDef) -> dict[str, list]:
    """Each parameter's values in the layer's registered examples (a scalar sets the shorthand):
    editors offer real settings, and tests compile every one of them."""
    out: dict[str, list] = {}
    for ex in op.examples:
        given = ex.params if isinstance(ex.params, dict) else {} if ex.params is None else {op.shorthand: ex.params}
        for k, v in given.items():
            if v not in out.setdefault(k, []):
                out[k].append(v)
    return out


def op_schema(op: OpDef, authoring: bool = True) -> dict:
    """One layer type's schema. `authoring`: as written in a spec (expressions allowed, `repeat`);
    otherwise as evaluated, which is what the values must finally satisfy."""
    wrap = exprable if authoring else (lambda s: s)
    props = {**COMMON_KEYS, **({"repeat": REPEAT, "when": WHEN} if authoring else {})}
    examples = _param_examples(op)
    props.update({p.name: wrap(p.schema(examples.get(p.name))) for p in op.params})
    mapping = {
        "type": "object",
        "properties": props,
        "required": [p.name for p in op.params if p.required],
        "additionalProperties": False,
    }
    if op.shorthand:
        # the key's hover shows the layer's docs; this is the value's
        other = {"description": f"shorthand for {op.shorthand}", **op.param(op.shorthand).kind.schema()}
        if op.bare_ok:  # `- dropout:` (null) means all defaults, as `- dropout` does
            types = other["type"] if isinstance(other.get("type"), list) else [other["type"]] if "type" in other else []
            if "enum" in other:
                other = {**other, "enum": [*other["enum"], None]}
            else:
                other = {**other, "type": [*types, "null"]}
        other = wrap(other)
    elif op.bare_ok:
        other = {"type": "null"}
    else:
        other = {"type": "object"}  # parameters are required: only the mapping form is valid
    return {
        "title": op.name,
        "description": op.doc,
        "if": {"type": "object"},
        "then": mapping,
        "else": other,
    }


def _block_arg(block: str, arg: str, required: bool) -> dict:
    need = "required: the block gives it no default" if required else "default: the block's args: entry"
    return {
        "title": arg,
        "description": f"argument of block {block}: any value or ${{...}} expression; {need}",
        "examples": [64, "${width * 2}"],
    }


def block_use_schema(name: str, args: tuple[str, ...], required: tuple[str, ...]) -> dict:
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


def _outputs(description: str) -> dict:
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


def _block_def_schema() -> dict:
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


class _OpDefs(dict):
    """`$defs` whose layer-type entries are made when first looked up: a spec that uses 5 of the
    48 layer types makes 5 of their schemas (the fast check follows `$ref`s by lookup). Iterating
    or printing it shows only what was made, so every other reader gets a plain dict."""

    def __init__(self, defs: dict, make):
        super().__init__(defs)
        self.make = make

    def __missing__(self, name: str) -> dict:
        value = self[name] = self.make(name)  # KeyError for a name that is no layer type
        return value


def _augment_op() -> dict:
    from ..data.augment import item_schema  # made only for a spec that declares augmentation

    return item_schema()


def _op_defs(defs: dict, authoring: bool, lazy: bool) -> dict:
    ops = all_ops()
    if lazy:
        return _OpDefs(defs, lambda n: _augment_op() if n == "augment_op" else op_schema(ops[n], authoring))
    return {**defs, "augment_op": _augment_op(), **{n: op_schema(ops[n], authoring) for n in sorted(ops)}}


def build_schema(
    blocks: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] | None = None, lazy: bool = False
) -> dict:
    """The spec schema. `blocks` (name, args, required args) of one document makes the schema of
    that document: its block names become layer types, so a misspelt one or an unknown argument
    is reported like any other. Without it (the published schema) any name may be a block.
    `lazy`: layer types' schemas are made when looked up (for spec/fastschema.py only)."""
    ops = all_ops()
    names = sorted(ops)
    uses = {b[0]: block_use_schema(*b) for b in blocks or ()}
    bare = [n for n in names if ops[n].bare_ok] + [b for b, _, req in blocks or () if not req]
    item_names = {"enum": names + sorted(uses)} if blocks is not None else {"pattern": REF_PATTERN}
    layer = {
        "description": "a layer: `- relu`, `- linear: 10`, or `- conv2d: {out_channels: 6, kernel_size: 5}`; "
        "or a use of a block: `- basic: {channels: 64}`",
        "type": ["string", "object"],
        "if": {"type": "string"},
        "then": {"enum": bare} if blocks is not None else {"pattern": NAME_PATTERN},
        "else": {
            "minProperties": 1,
            "maxProperties": 1,
            "propertyNames": item_names,
            # `properties` checks only the key present: one lookup per layer, not one test per type
            "properties": {
                n: {"$ref": f"#/$defs/{d}"}
                for n, d in [*((n, n) for n in names), *((b, f"block:{b}") for b in sorted(uses))]
            },
        },
    }
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
                "propertyNames": {"pattern": NAME_PATTERN, "not": {"enum": names}},
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
            "layers": {
                "title": "layers",
                "type": "array",
                "minItems": 1,
                "items": {"$ref": "#/$defs/layer"},
                "description": "the layers, in order: each reads the one before unless it names `from:` (required)",
                "examples": [[_CONV, "relu", "flatten", {"linear": 10}]],
            },
            "outputs": _outputs("the layers whose values the model returns, in order; default: the last layer"),
            "train": train_schema(),
            "search": search_schema(),
        },
        "$defs": _op_defs(
            {
                "layer": layer,
                "block": _block_def_schema(),
                "expr": EXPR_DEF,
                **{f"block:{b}": use for b, use in uses.items()},
            },
            authoring=True,
            lazy=lazy,
        ),
    }


def evaluated_layer_schema(lazy: bool = False) -> dict:
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


def schema_text() -> str:
    import json  # `netspec schema` only: start-up of check and summarize does without

    return json.dumps(build_schema(), indent=2, sort_keys=False) + "\n"
