"""A chosen point of the search as a normal spec file: the spec as written, with the chosen values
put in place and the `search:` section removed, so `netspec check` and `netspec train` take it.

The text is edited in place where it can be (scalars and flow-style values: comments and layout
stay); otherwise (a key the spec does not write, a block-style list replaced) the whole spec is
written out from its data. Either way the file is read back and must give exactly the data of the
candidate that was trained, or the other form is used.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import SpecError
from ..spec.loader import Document, load_text
from ..spec.overrides import parse_key_path
from .space import candidate

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")  # fullmatch: "a\n" must be quoted
_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n"}  # YAML 1.1 readers take these as values


def float_text(value: float) -> str:
    """repr, with a '.' in the mantissa: YAML 1.1 readers take `1e-05` for a string, `1.0e-05` for a number."""
    text = repr(float(value))
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa if '.' in mantissa else mantissa + '.0'}e{exponent}"
    return text


def flow(value: Any) -> str:
    """A value as YAML flow text, read back by netspec's loader (and YAML 1.1 readers) as the same value."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, str):
        return value if _PLAIN.fullmatch(value) and value.lower() not in _WORDS else json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{flow(str(k))}: {flow(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _node(root: yaml.Node, path: tuple) -> yaml.Node | None:
    node = root
    for part in path:
        if isinstance(part, int) and isinstance(node, yaml.SequenceNode) and part < len(node.value):
            node = node.value[part]
        elif isinstance(part, str) and isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
            if node is None:
                return None
        else:
            return None  # a short form (`optimizer: adam`) or a missing index: not in the text
    return node


def _splice(text: str, values: dict[str, Any]) -> str | None:
    """The text with each value replaced where it is written and `search:` cut out; None when some
    value cannot be replaced in place."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        return None
    edits = []
    for key, value in values.items():
        node = _node(root, parse_key_path(key) or ())
        if node is None:
            return None
        block = isinstance(node, yaml.ScalarNode) and node.style in ("|", ">")
        if block or (isinstance(node, yaml.CollectionNode) and not node.flow_style):  # a block mapping or list
            return None
        edits.append((node.start_mark.index, node.end_mark.index, flow(value)))
    for k, (key_node, _) in enumerate(root.value):
        if key_node.value == "search":
            edits.append(
                _cut(text, key_node.start_mark.line, root.value[k + 1][0] if k + 1 < len(root.value) else None)
            )
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _cut(text: str, first: int, next_key: yaml.Node | None) -> tuple[int, int, str]:
    """The edit that removes the lines of a top-level section starting at line `first` (0-based),
    with a comment just above it, but not the blank lines before the next key."""
    lines = text.splitlines(keepends=True)
    end = next_key.start_mark.line if next_key is not None else len(lines)
    while end > first and not lines[end - 1].strip():
        end -= 1
    while first > 0 and lines[first - 1].lstrip().startswith("#") and not lines[first - 1].startswith("# yaml-"):
        first -= 1
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    return offsets[first], offsets[end], ""


_SCHEMA_LINE = "# yaml-language-server: $schema="


def _moved(line: str, src: Path, dst: Path) -> str:
    """The schema comment of a file moved from folder `src` to `dst`: a relative path still points
    at the schema (a URL or an absolute path stays as it is)."""
    target = line[len(_SCHEMA_LINE) :].strip()
    if not target or "://" in target or os.path.isabs(target):
        return line
    return _SCHEMA_LINE + Path(os.path.relpath(src / target, dst)).as_posix() + "\n"


def _dump(data: dict, original: str) -> str:
    first = original.splitlines()[0] if original.startswith("# yaml-language-server") else None
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, allow_unicode=True, width=110)
    return (first + "\n" if first else "") + body


def _same(text: str, data: Any) -> bool:
    try:
        again = load_text(text).data
    except SpecError:
        return False
    return json.dumps(again, sort_keys=True) == json.dumps(data, sort_keys=True)


def spec_text(doc: Document, values: dict[str, Any], header: list[str], dest: Path | None = None) -> str:
    """The spec of one candidate as a file: `values` (key path -> value) in place, no `search:`,
    `header` as comments at the top (below a yaml-language-server line, whose relative schema path
    is made relative to `dest`, where the file goes)."""
    data = candidate(doc, values).data
    text = _splice(doc.text, values)
    if text is None or not _same(text, data):
        text = _dump(data, doc.text)
        if not _same(text, data):  # pragma: no cover - safe_dump reads back as itself
            raise AssertionError("the written spec does not read back as the candidate")
    lines = text.splitlines(keepends=True)
    at = 1 if lines and lines[0].startswith(_SCHEMA_LINE) else 0
    if at and dest is not None:
        lines[0] = _moved(lines[0], Path(doc.file).parent, dest.parent)
    comments = "".join(f"# {h}\n" if h else "#\n" for h in header)
    return "".join(lines[:at]) + comments + "".join(lines[at:])
