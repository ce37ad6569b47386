"""`--set key.path=value`: override any spec value before validation, so an override is checked
exactly like the file (and its diagnostics name the --set that caused them)."""

from __future__ import annotations

import os
import posixpath
import re
from typing import TYPE_CHECKING

from ..errors import Diagnostic, Location, SpecError
from .loader import Document, Mark, load_text
from .train_schema import SHORT, source_kind

if TYPE_CHECKING:
    from ..jsontext import JSON
    from .loader import KeyPath

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def parse_key_path(key: str) -> KeyPath | None:
    """'train.optimizer.lr' -> ('train', 'optimizer', 'lr'); 'layers[2].conv2d.stride' too."""
    parts: list[str | int] = []
    pos = 0
    for chunk in key.split("."):
        if not chunk:
            return None
        pos = 0
        while pos < len(chunk):
            m = _PART.match(chunk, pos)
            if not m:
                return None
            parts.append(m.group(1) if m.group(1) else int(m.group(2)))
            pos = m.end()
    return tuple(parts)


# Keys whose values are data paths: a relative one given with --set is relative to the current
# directory (where the user typed it), one written in a spec to the spec's folder.
PATH_KEYS = {
    ("train", "data"),  # its shorthand: `--set train.data=x.npz`
    ("train", "data", "source"),
    ("train", "data", "labels"),
    ("train", "data", "test_source"),
    ("train", "data", "test_labels"),
}


def absolute_paths(sets: list[str], cwd: str) -> list[str]:
    """The --set items with each relative data path made absolute against `cwd`: what the run
    stores (RUN/data.json), so a resume from another directory reads the same files."""
    out: list[str] = []
    for item in sets or []:
        key, sep, text = item.partition("=")
        value = text.strip()
        is_path = parse_key_path(key.strip()) in PATH_KEYS and value and not value.startswith(("{", "[", '"', "'"))
        if sep and is_path and source_kind(value) not in ("digits", "synthetic", "ucr") and not posixpath.isabs(value):
            item = f"{key}={posixpath.join(cwd, value)}"
        out.append(item)
    return out


def apply_overrides(doc: Document, sets: list[str]) -> None:
    """Apply each override to doc.data in order; raise SpecError listing every malformed one.
    Relative data paths in them are made absolute against the current directory first."""
    errors: list[Diagnostic] = []
    for typed, item in zip(sets or [], absolute_paths(sets, os.getcwd()), strict=True):
        where = Location(f"--set {typed}")  # as the user typed it
        key, sep, text = item.partition("=")
        path = parse_key_path(key.strip()) if sep else None
        if not path:
            errors.append(
                Diagnostic(
                    "malformed --set",
                    "",
                    where,
                    expected="KEY.PATH=VALUE, e.g. train.optimizer.lr=0.01",
                    received=repr(item),
                    code="set",
                )
            )
            continue
        try:
            value = load_text(text, f"--set {item}").data if text.strip() else None
        except SpecError as exc:
            errors += exc.diagnostics
            continue
        err = _assign(doc.data, path, value)
        if err:
            errors.append(Diagnostic(err, key, where, code="set"))
            continue
        # Diagnostics about this value point at the --set, not at the file's old line.
        doc.source.file_overrides[path] = f"--set {typed}"
        doc.source.values[path] = Mark(0, 0)
    if errors:
        raise SpecError(errors)


def _assign(data: JSON, path: KeyPath, value: JSON) -> str | None:
    node = data
    for i, part in enumerate(path[:-1]):
        nxt = path[i + 1]
        child: JSON
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return (
                    f"index [{part}] does not exist (the list has {len(node) if isinstance(node, list) else 0} items)"
                )
            child = node[part]
            if child is None:
                child = node[part] = {} if isinstance(nxt, str) else []
            elif isinstance(child, str) and isinstance(nxt, str):
                child = node[part] = {child: {}}  # `- relu` -> `- relu: {...}`
        elif not isinstance(node, dict):
            return f"cannot set '{part}' inside a {type(node).__name__}"
        else:
            child = node.get(part)
            if child is None or (isinstance(child, str) and part in SHORT):
                # `optimizer: adam` + `--set train.optimizer.lr=...` -> {name: adam, lr: ...}
                child = node[part] = (
                    {SHORT[part]: child} if isinstance(child, str) else ({} if isinstance(nxt, str) else [])
                )
        node = child
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            return f"index [{last}] does not exist"
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        return f"cannot set '{last}' inside a {type(node).__name__}"
    return None
