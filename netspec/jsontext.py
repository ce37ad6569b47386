"""JSON for people and programs at once: the outer levels indented, each deeper value on one line.

A summary's layer rows then read one per line (and diff one per line), and the work is done by
json's C encoder: `json.dumps(..., indent=2)` runs the pure-Python encoder, 10 ms of a ResNet-18
summary's 24 KB, more than the rest of printing it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, TypeAlias

    # Data as JSON or YAML gives it (a spec, a schema, a summary): for checkers only.
    JSON: TypeAlias = "dict[str, JSON] | list[JSON] | str | int | float | bool | None"

_flat = json.JSONEncoder(separators=(", ", ": "), allow_nan=True).encode  # indent=None: the C encoder


def dumps(value: Any, levels: int = 2, indent: int = 2) -> str:
    """`value` as JSON: mappings and lists that hold mappings or lists, down to depth `levels`, laid
    out one entry per line; the rest (a shape, a layer's row) on one line."""

    def walk(v: Any, depth: int) -> str:
        if depth >= levels or not isinstance(v, dict | list):
            return _flat(v)
        if not any(isinstance(x, dict | list) for x in (v.values() if isinstance(v, dict) else v)):
            return _flat(v)
        if isinstance(v, dict) and not all(isinstance(k, str) for k in v):
            return _flat(v)  # json's own rules for int/bool/None keys
        pad, inner = " " * (indent * depth), " " * (indent * (depth + 1))
        if isinstance(v, dict):
            body = ",\n".join(f"{inner}{_flat(k)}: {walk(x, depth + 1)}" for k, x in v.items())
            return "{\n" + body + "\n" + pad + "}"
        body = ",\n".join(inner + walk(x, depth + 1) for x in v)
        return "[\n" + body + "\n" + pad + "]"

    return walk(value, 0)
