"""What differs between two spec documents (plain data: dicts, lists, scalars), key path by key
path, for messages such as `train.optimizer.lr: 0.01 -> 0.02`. No torch, no netspec state."""

from __future__ import annotations

import json

from ..errors import format_path

ABSENT = object()  # the side of a change where the key is not written


def changes(old, new, path: tuple = ()) -> list[tuple[tuple, object, object]]:
    """(path, old value, new value) for every leaf that differs. Mappings are compared key by key
    and lists of equal length item by item; anything else is one change. Values compare with their
    type, as the spec hash does: 1, 1.0 and true are three different values."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in [*old, *(k for k in new if k not in old)]:
            out += changes(old.get(key, ABSENT), new.get(key, ABSENT), (*path, key))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [c for i, (a, b) in enumerate(zip(old, new, strict=True)) for c in changes(a, b, (*path, i))]
    return [] if _same(old, new) else [(path, old, new)]


def _same(a, b) -> bool:
    if a is ABSENT or b is ABSENT:
        return a is b
    return type(a) is type(b) and _text(a) == _text(b)


def _text(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def show_value(value, limit: int = 60) -> str:
    """A value as one short line (JSON), or `(not set)`."""
    if value is ABSENT:
        return "(not set)"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show_change(path: tuple, old, new) -> str:
    """`train.optimizer.lr: 0.01 -> 0.02`."""
    return f"{format_path(path) or '(the whole spec)'}: {show_value(old)} -> {show_value(new)}"


def touches(path: tuple, prefix: tuple) -> bool:
    """Whether a change at `path` is at, inside or around the key `prefix` (e.g. a --set's path)."""
    n = min(len(path), len(prefix))
    return path[:n] == prefix[:n]
