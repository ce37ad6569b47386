"""The JSON Schema of a spec, generated from the layer registry.

schemas/netspec.schema.json is this function's output, checked in so editors
(yaml-language-server) can use it; a test fails when the two drift.
"""

from __future__ import annotations

import json

from ..ops import all_ops
from ..ops.params import NAME_PATTERN
from ..ops.registry import OpDef
from .train_schema import train_schema

SCHEMA_ID = "https://netspec.dev/schemas/netspec.schema.json"
COMMON_KEYS = {
    "name": {
        "type": "string",
        "pattern": NAME_PATTERN,
        "description": "layer name (a Python identifier); default: <type>_<n>",
    },
    "from": {
        "type": ["string", "array"],
        "pattern": NAME_PATTERN,
        "items": {"type": "string", "pattern": NAME_PATTERN},
        "minItems": 1,
        "description": "the earlier layer(s) or input(s) this layer reads; default: the previous layer",
    },
}


def op_schema(op: OpDef) -> dict:
    props = {**COMMON_KEYS, **{p.name: p.schema() for p in op.params}}
    mapping = {
        "type": "object",
        "properties": props,
        "required": [p.name for p in op.params if p.required],
        "additionalProperties": False,
    }
    if op.shorthand:
        other = {**op.param(op.shorthand).schema(), "description": f"shorthand for {op.shorthand}"}
        if op.bare_ok:  # `- dropout:` (null) means all defaults, as `- dropout` does
            types = other["type"] if isinstance(other.get("type"), list) else [other["type"]] if "type" in other else []
            if "enum" in other:
                other = {**other, "enum": [*other["enum"], None]}
            else:
                other = {**other, "type": [*types, "null"]}
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


def build_schema() -> dict:
    ops = all_ops()
    names = sorted(ops)
    layer = {
        "description": "a layer: `- relu`, `- linear: 10`, or `- conv2d: {out_channels: 6, kernel_size: 5}`",
        "type": ["string", "object"],
        "if": {"type": "string"},
        "then": {"enum": [n for n in names if ops[n].bare_ok]},
        "else": {
            "minProperties": 1,
            "maxProperties": 1,
            "propertyNames": {"enum": names},
            "allOf": [{"if": {"required": [n]}, "then": {"properties": {n: {"$ref": f"#/$defs/{n}"}}}} for n in names],
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
        "description": "A declarative neural network: inputs, layers (a chain, or a graph with from:), and how to train it.",
        "type": "object",
        "required": ["netspec", "inputs", "layers"],
        "additionalProperties": False,
        "properties": {
            "netspec": {"const": 1, "description": "spec format version; write `netspec: 1`"},
            "name": {
                "type": "string",
                "pattern": r"^(?!\.{1,2}$)[A-Za-z0-9_.\-]+$",
                "description": "model name (the default run directory is runs/<name>)",
            },
            "description": {"type": "string", "description": "free text"},
            "inputs": {
                "type": "object",
                "description": "the model's inputs (forward arguments, in order): one sample's shape each; "
                "the batch dimension is implicit",
                "minProperties": 1,
                "maxProperties": 16,
                "propertyNames": {"pattern": NAME_PATTERN},
                "additionalProperties": {
                    "type": "object",
                    "required": ["shape"],
                    "additionalProperties": False,
                    "properties": {
                        "shape": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 8,
                            "items": dim,
                            "description": "per-sample shape, e.g. [1, 32, 32] or [T, 6]",
                        },
                        "dtype": {
                            "enum": ["float32", "int64"],
                            "default": "float32",
                            "description": "int64 for token ids (embedding input)",
                        },
                    },
                },
            },
            "dims": {
                "type": "object",
                "description": "nominal sizes of symbolic dims, used for MACs and memory (e.g. {T: 100})",
                "propertyNames": {"pattern": NAME_PATTERN},
                "additionalProperties": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
            },
            "layers": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/layer"}},
            "outputs": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"type": "string", "pattern": NAME_PATTERN},
                "description": "the layers whose values the model returns, in order; default: the last layer",
            },
            "train": train_schema(),
        },
        "$defs": {"layer": layer, **{n: op_schema(ops[n]) for n in names}},
    }


def schema_text() -> str:
    return json.dumps(build_schema(), indent=2, sort_keys=False) + "\n"
