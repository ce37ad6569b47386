"""`--set key.path=value`: override any spec value before validation, so an override is checked
exactly like the file (and its diagnostics name the --set that caused them)."""

from __future__ import annotations

import re

from ..errors import Diagnostic, Location, SpecError
from .loader import Document, Mark, load_text
from .train_schema import SHORT

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def parse_key_path(key: str) -> tuple | None:
    """'train.optimizer.lr' -> ('train', 'optimizer', 'lr'); 'layers[2].conv2d.stride' too."""
    parts, pos = [], 0
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


def apply_overrides(doc: Document, sets: list[str]) -> None:
    """Apply each override to doc.data in order; raise SpecError listing every malformed one."""
    errors = []
    for item in sets or []:
        where = Location(f"--set {item}")
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
        doc.source.file_overrides[path] = f"--set {item}"
        doc.source.values[path] = Mark(0, 0)
    if errors:
        raise SpecError(errors)


def _assign(data, path: tuple, value) -> str | None:
    node = data
    for i, part in enumerate(path[:-1]):
        nxt = path[i + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return (
                    f"index [{part}] does not exist (the list has {len(node) if isinstance(node, list) else 0} items)"
                )
        elif not isinstance(node, dict):
            return f"cannot set '{part}' inside a {type(node).__name__}"
        child = node[part] if isinstance(part, int) else node.get(part)
        if child is None or (isinstance(child, str) and part in SHORT):
            # `optimizer: adam` + `--set train.optimizer.lr=...` -> {name: adam, lr: ...}
            child = {SHORT[part]: child} if isinstance(child, str) else ({} if isinstance(nxt, str) else [])
            node[part] = child
        elif isinstance(child, str) and isinstance(nxt, str) and isinstance(node, list):
            child = {child: {}}  # `- relu` -> `- relu: {...}`
            node[part] = child
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
