"""What differs between two spec documents (plain data: dicts, lists, scalars), key path by key
path, for messages such as `train.optimizer.lr: 0.01 -> 0.02`. No torch, no netspec state."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..errors import format_path

if TYPE_CHECKING:
    from typing import TypeAlias

    from ..jsontext import JSON
    from .loader import KeyPath

    Value: TypeAlias = "JSON | _Absent"


class _Absent:
    """The type of ABSENT (a class of its own, so checkers tell it from data)."""

    __slots__ = ()


ABSENT = _Absent()  # the side of a change where the key is not written


def changes(old: Value, new: Value, path: KeyPath = ()) -> list[tuple[KeyPath, Value, Value]]:
    """(path, old value, new value) for every leaf that differs. Mappings are compared key by key
    and lists of equal length item by item; anything else is one change. Values compare with their
    type, as the spec hash does: 1, 1.0 and true are three different values."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[tuple[KeyPath, Value, Value]] = []
        for key in [*old, *(k for k in new if k not in old)]:
            out += changes(old.get(key, ABSENT), new.get(key, ABSENT), (*path, key))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [c for i, (a, b) in enumerate(zip(old, new, strict=True)) for c in changes(a, b, (*path, i))]
    return [] if _same(old, new) else [(path, old, new)]


def _same(a: Value, b: Value) -> bool:
    if a is ABSENT or b is ABSENT:
        return a is b
    return type(a) is type(b) and _text(a) == _text(b)


def _text(value: Value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def show_value(value: object, limit: int = 60) -> str:
    """A value as one short line (JSON), or `(not set)`."""
    if value is ABSENT:
        return "(not set)"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show_change(path: KeyPath, old: object, new: object) -> str:
    """`train.optimizer.lr: 0.01 -> 0.02`."""
    return f"{format_path(path) or '(the whole spec)'}: {show_value(old)} -> {show_value(new)}"


def touches(path: KeyPath, prefix: KeyPath) -> bool:
    """Whether a change at `path` is at, inside or around the key `prefix` (e.g. a --set's path)."""
    n = min(len(path), len(prefix))
    return path[:n] == prefix[:n]
