"""Safe YAML loading with a source map.

PyYAML composes the text into a node tree (no object construction, so no tag can run code); we
then build plain Python values ourselves. That walk is where we:
  * record the line and column of every key and value (the source map behind file:line:col);
  * reject duplicate keys, which PyYAML would silently resolve to the last one;
  * resolve scalars with YAML 1.2 core rules: `1e-3` is a float, `on`/`yes`/`no` stay strings;
  * reject every tag but the standard scalar/collection ones;
  * bound alias expansion and nesting depth, so an alias bomb fails fast with bounded memory.
"""

from __future__ import annotations

import math
import os
import re
from typing import TYPE_CHECKING

import yaml

from ..errors import Diagnostic, Location, SpecError, format_path
from ..record import factory, record

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from typing import Any, TypeAlias

    KeyPath: TypeAlias = tuple[str | int, ...]  # ('layers', 3, 'conv2d'): keys and list indices

MAX_NODES = 200_000  # values built after alias expansion; a real spec has a few thousand
MAX_DEPTH = 64
MAX_BYTES = 2 * 1024 * 1024  # a resolved ResNet-152 is about 150 KB

_T = "tag:yaml.org,2002:"
_SCALAR_RULES = [
    (_T + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")),
    (_T + "int", re.compile(r"^(?:[-+]?[0-9][0-9_]*|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")),
    (
        _T + "float",
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+.0123456789"),
    ),
    (_T + "null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]),
]


class _Loader(yaml.SafeLoader):
    """SafeLoader whose implicit resolvers follow the YAML 1.2 core schema."""

    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}
    _depth = 0

    if TYPE_CHECKING:  # unannotated in PyYAML's stubs

        def peek_event(self) -> yaml.Event: ...

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        # PyYAML's composer recurses once per nesting level, so `[[[[...]]]]` thousands deep
        # would escape as a RecursionError (after seconds); refuse it while composing instead.
        if self._depth >= MAX_DEPTH:
            raise _TooBig(self.peek_event(), f"the document nests deeper than {MAX_DEPTH} levels")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


for _tag, _regexp, _first in _SCALAR_RULES:
    _Loader.add_implicit_resolver(_tag, _regexp, _first)  # pyright: ignore[reportUnknownMemberType]  # unannotated in PyYAML's stubs
# Clearing the inherited resolvers above also dropped the one for `<<`; without it merge keys
# would load as a literal '<<' key.
_Loader.add_implicit_resolver(_T + "merge", re.compile(r"^(?:<<)$"), ["<"])  # pyright: ignore[reportUnknownMemberType]  # as above


@record
class Mark:
    line: int  # 1-based
    col: int  # 1-based


@record(frozen=False)
class SourceMap:
    """Key path (tuple of str/int) -> marks of the key and of the value."""

    file: str
    # lambdas, not `dict`: checkers then infer the declared key and value types
    keys: dict[KeyPath, Mark] = factory(lambda: {})
    values: dict[KeyPath, Mark] = factory(lambda: {})
    file_overrides: dict[KeyPath, str] = factory(lambda: {})  # paths set by --set

    def loc(self, path: Sequence[str | int], *, key: bool = False) -> Location:
        """Location of `path`, falling back to the nearest ancestor that has one."""
        path = tuple(path)
        while True:
            if path in self.file_overrides:
                return Location(self.file_overrides[path])
            mark = (self.keys.get(path) if key else None) or self.values.get(path)
            if mark is not None:
                return Location(self.file, mark.line, mark.col)
            if not path:
                return Location(self.file)
            path = path[:-1]


@record(frozen=False)
class Document:
    data: Any
    source: SourceMap
    text: str
    file: str

    def loc(self, path: Sequence[str | int], *, key: bool = False) -> Location:
        return self.source.loc(path, key=key)


def _mark(node: yaml.Node | yaml.Event) -> Mark:
    m = node.start_mark
    return Mark(m.line + 1, m.column + 1)


def _show_tag(tag: str) -> str:
    """'tag:yaml.org,2002:python/name:os.system' -> '!!python/name:os.system', as it was written."""
    return "!!" + tag[len(_T) :] if tag.startswith(_T) else tag


def _expanded_size(root: yaml.Node) -> None:
    """Raise _TooBig when building `root` would make more than MAX_NODES values.

    An alias is the same node object as its anchor, so a memo keyed by node identity counts the
    fully expanded size in time linear in the *written* document: a billion-laughs bomb is
    refused before any of it is built. (The builder also counts, as a backstop.)
    """
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if depth > MAX_DEPTH:  # also ends a self-referencing anchor (`&a [*a]`)
            raise _TooBig(node, f"the document nests deeper than {MAX_DEPTH} levels")
        n = 1
        if isinstance(node, yaml.SequenceNode):
            n += sum(size(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            n += sum(size(value, depth + 1) for _, value in node.value)
        if n > MAX_NODES:
            raise _TooBig(node, f"the document expands to more than {MAX_NODES:,} values")
        sizes[id(node)] = n
        return n

    size(root, 0)


class _Builder:
    def __init__(self, file: str):
        self.source = SourceMap(file)
        self.file = file
        self.count = 0
        self.errors: list[Diagnostic] = []

    def _err(self, node: yaml.Node, path: KeyPath, message: str, **kw: Any) -> None:
        m = _mark(node)
        self.errors.append(
            Diagnostic(message, format_path(path), Location(self.file, m.line, m.col), code="yaml", **kw)
        )

    def build(self, node: yaml.Node, path: KeyPath, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBig(node, f"the document expands to more than {MAX_NODES:,} values")
        if depth > MAX_DEPTH:
            raise _TooBig(node, f"the document nests deeper than {MAX_DEPTH} levels")
        self.source.values.setdefault(path, _mark(node))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _T + "seq":
                self._err(node, path, f"YAML tag '{_show_tag(node.tag)}' is not allowed", hint="remove the tag")
            return [self.build(child, path + (i,), depth + 1) for i, child in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            if node.tag != _T + "map":
                self._err(node, path, f"YAML tag '{_show_tag(node.tag)}' is not allowed", hint="remove the tag")
            return self._mapping(node, path, depth)
        raise AssertionError(f"unexpected YAML node {node!r}")  # pragma: no cover

    def _mapping(self, node: yaml.MappingNode, path: KeyPath, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_seen: dict[str, Mark] = {}
        merges: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _T + "merge":
                merges.append((key_node, value_node))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._err(key_node, path, "mapping keys must be plain strings")
                continue
            key = self._scalar(key_node, path)
            if not isinstance(key, str):
                key = str(key_node.value)  # `1: x` or `true: x` as keys: keep the text
            if key in first_seen:
                prev = first_seen[key]
                self._err(
                    key_node,
                    path + (key,),
                    # both lines in the message itself, for output that drops the location
                    f"duplicate key '{key}' on line {_mark(key_node).line} (first defined on line {prev.line})",
                    hint="YAML keeps only one of them; remove or rename one",
                )
                continue
            first_seen[key] = _mark(key_node)
            self.source.keys.setdefault(path + (key,), _mark(key_node))  # merged keys never displace these
            out[key] = self.build(value_node, path + (key,), depth + 1)
        # `<<: *anchor` merges a mapping (or a list of them, earlier ones winning); explicit keys
        # win. Merged after the explicit keys, so the source map keeps their locations; merged
        # keys point at the anchor's text, where they were written.
        for key_node, value_node in merges:
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            if not all(isinstance(src, yaml.MappingNode) for src in sources):
                # at the '<<' itself: an alias's node carries the anchor's position, not this one
                self._err(key_node, path, "a YAML merge key '<<' needs a mapping or a list of mappings")
                continue
            for src in sources:
                for k, v in self.build(src, path, depth + 1).items():
                    out.setdefault(k, v)
        return out

    def _scalar(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        tag, text = node.tag, node.value
        if tag == _T + "str" or tag == "!":
            return text
        if tag == _T + "null":
            return None
        if tag == _T + "bool":
            return text.lower() == "true"
        if tag == _T + "int":
            clean = text.replace("_", "")
            if len(clean) > 4300:  # Python's int() guard; nothing real needs that many digits
                self._err(node, path, "integer literal is too long", received=f"{len(clean)} digits")
                return 0
            if clean.startswith(("0x", "0o")):
                return int(clean, 0)
            return int(clean)
        if tag == _T + "float":
            low = text.lower().replace("_", "")
            if low.endswith(".nan"):
                return math.nan
            if low.endswith(".inf"):
                return -math.inf if low.startswith("-") else math.inf
            return float(low)
        self._err(
            node,
            path,
            f"YAML tag '{_show_tag(tag)}' is not allowed",
            expected="plain YAML values (numbers, strings, lists, mappings)",
            received=f"{_show_tag(tag)} {text!r}",
            hint="netspec never constructs objects from tags; remove the tag",
        )
        return None


class _TooBig(Exception):
    def __init__(self, node: yaml.Node | yaml.Event, message: str):
        super().__init__(message)
        self.node = node
        self.message = message


def _too_big(file: str, exc: _TooBig) -> SpecError:
    m = _mark(exc.node)
    return SpecError(
        [
            Diagnostic(
                exc.message,
                "",
                Location(file, m.line, m.col),
                hint="deeply nested or repeatedly aliased anchors ('billion laughs') are refused",
                code="yaml",
            )
        ]
    )


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, file: str) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
    problem = exc.problem or str(exc)
    message = f"invalid YAML: {problem}"
    if exc.context and exc.context.startswith("while ") and exc.context_mark:
        # e.g. "while parsing a flow sequence": say where the unfinished construct began
        cm = exc.context_mark
        message += f" ({exc.context} that starts at line {cm.line + 1}, column {cm.column + 1})"
    elif exc.context:
        message = f"invalid YAML: {exc.context}, {problem}"
    # PyYAML reports a tab as the repr '\t' ("found character '\t' that cannot start any
    # token"), so look at the offending line's indentation as well as the wording.
    lines = text.splitlines()
    line = lines[mark.line] if mark and mark.line < len(lines) else ""
    indent = line[: len(line) - len(line.lstrip())]
    hint = None
    if "\t" in indent or "\\t" in problem or "tab" in problem.lower():
        hint = "YAML does not allow tabs for indentation; use spaces"
    elif "another document" in problem:
        hint = "a spec is a single YAML document; remove the second '---'"
    elif "<block end>" in problem:
        hint = "check this line's indentation: entries of one list or mapping must line up"
    elif "${" in line and "{" in problem:
        hint = 'quote an expression: "${...}" (braces are YAML syntax inside {...} and [...])'
    elif "mapping values are not allowed" in problem:
        hint = "quote a value that contains ': ', or check the indentation"
    return Diagnostic(message, "", loc, hint=hint, code="yaml")


if getattr(yaml, "__with_libyaml__", False):
    from yaml._yaml import CParser  # what yaml.cyaml imports it from; its stubs export it from here

    class _CLoader(CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        """libyaml's parser and composer (about 6x faster) with the same YAML 1.2 scalar rules."""

        yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers

        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    _c_loader: type[_CLoader] | None = _CLoader
else:  # pragma: no cover - PyYAML built without libyaml
    _c_loader = None

if TYPE_CHECKING:  # yaml.parse and yaml.compose as they behave: unannotated in PyYAML's stubs

    def _yaml_parse(stream: str, Loader: type) -> Iterator[yaml.Event]: ...
    def _yaml_compose(stream: str, Loader: type) -> yaml.Node | None: ...

else:
    _yaml_parse, _yaml_compose = yaml.parse, yaml.compose


def _fast_compose(text: str) -> yaml.Node | None:
    """Compose with libyaml when it is there: check the nesting depth on its event stream first
    (its composer recurses in C), then compose. None when libyaml is missing or finds a problem:
    the pure-Python composer then runs and reports it in the words netspec's hints know."""
    if _c_loader is None:
        return None
    try:
        depth = 0
        for event in _yaml_parse(text, Loader=_c_loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _TooBig(event, f"the document nests deeper than {MAX_DEPTH} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        loader = _c_loader(text)
        try:
            return loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.YAMLError:
        return None


def load_text(text: str, file: str = "<spec>") -> Document:
    """Parse YAML text into plain data plus a source map; raise SpecError on any problem."""
    try:
        root = _fast_compose(text)
        if root is None:
            root = _yaml_compose(text, Loader=_Loader)
    except _TooBig as exc:
        raise _too_big(file, exc) from None
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_syntax_error(exc, text, file)]) from None
    except yaml.reader.ReaderError as exc:
        # Not a MarkedYAMLError: it carries only a character offset, turned into line:col here.
        before = text[: exc.position]
        loc = Location(file, before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1)
        raise SpecError(
            [
                Diagnostic(
                    f"invalid YAML: control character U+{exc.character:04X} is not allowed",
                    "",
                    loc,
                    hint="remove it; a spec is plain text",
                    code="yaml",
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError([Diagnostic(f"invalid YAML: {exc}", "", Location(file), code="yaml")]) from None
    # A lone `---` composes to an empty null scalar: as empty as a file of comments.
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == _T + "null" and root.value == ""):
        raise SpecError(
            [Diagnostic("the spec is empty", "", Location(file, 1, 1), expected="a mapping with 'layers'", code="yaml")]
        )
    builder = _Builder(file)
    try:
        _expanded_size(root)
        data = builder.build(root, (), 0)
    except _TooBig as exc:
        raise _too_big(file, exc) from None
    if builder.errors:
        raise SpecError(builder.errors)
    return Document(data, builder.source, text, file)


def load_file(path: str | os.PathLike[str]) -> Document:
    name = os.fspath(path)
    try:
        size = os.stat(name).st_size
        if size <= MAX_BYTES:
            with open(name, "rb") as f:
                raw = f.read()
        else:
            raw = None
    except OSError as exc:
        raise SpecError([Diagnostic(f"cannot read the spec: {exc.strerror}", "", Location(name), code="io")]) from None
    if raw is None:
        raise SpecError(
            [
                Diagnostic(
                    "the spec file is too large",
                    "",
                    Location(name),
                    expected=f"at most {MAX_BYTES // 1024 // 1024} MiB",
                    received=f"{size:,} bytes",
                    hint="a spec is a few KB: write repeated layers as a block with `repeat:`, "
                    "and keep data in a file named by train.data.source",
                    code="io",
                )
            ]
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(
            [
                Diagnostic(
                    "the spec is not valid UTF-8",
                    "",
                    Location(name, line, col),
                    received=f"byte 0x{raw[exc.start]:02x} at offset {exc.start}",
                    hint="save the file as UTF-8",
                    code="yaml",
                )
            ]
        ) from None
    return load_text(text, name)
