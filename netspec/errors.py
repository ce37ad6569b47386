"""One diagnostic type for every user mistake, and the exception that carries a batch of them.

A diagnostic says where (file:line:col and the key path), what was expected, what was received,
and a hint. Every stage of the front end appends diagnostics instead of raising on the first one,
so a single `netspec check` run reports all independent errors in a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .record import asdict, factory, record, replace

ERROR = "error"
WARNING = "warning"


@record
class Location:
    file: str = "<spec>"
    line: int = 0  # 1-based; 0 when unknown
    col: int = 0  # 1-based; 0 when unknown

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.col}"
        return self.file


@record
class Diagnostic:
    message: str
    path: str = ""  # key path, e.g. "layers[3].conv2d.kernel_size"
    loc: Location = factory(Location)
    expected: str | None = None
    received: str | None = None
    hint: str | None = None
    severity: str = ERROR
    code: str = "spec"  # a short category: yaml, schema, unknown-key, shape, ...
    # Where a block's layer was instantiated, innermost first: "in block `basic` used at f:41:7".
    context: tuple[str, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def to_json(self) -> dict:
        d = asdict(self)
        d["loc"] = {"file": self.loc.file, "line": self.loc.line, "col": self.loc.col}
        d["context"] = list(self.context)
        return d

    def within(self, context: tuple[str, ...]) -> Diagnostic:
        """This diagnostic, said of a layer inside the block instances `context` names."""
        return replace(self, context=self.context + tuple(c for c in context if c not in self.context))

    def render(self, source_lines: Sequence[str] | None = None) -> str:
        """Plain-text form: `file:line:col: error[code]: path: message` plus detail lines."""
        head = f"{self.loc}: {self.severity}[{self.code}]: "
        head += f"{self.path}: {self.message}" if self.path else self.message
        out = [head]
        if source_lines and 0 < self.loc.line <= len(source_lines):
            text = source_lines[self.loc.line - 1].rstrip("\n")
            out.append(f"  {self.loc.line:>4} | {text}")
            out.append("       | " + " " * max(self.loc.col - 1, 0) + "^")
        if self.expected is not None:
            out.append(f"  expected: {self.expected}")
        if self.received is not None:
            out.append(f"  received: {self.received}")
        if self.hint:
            out.append(f"  hint: {self.hint}")
        out += [f"  {line}" for line in self.context]
        return "\n".join(out)


class SpecError(Exception):
    """Raised when a spec has at least one error; carries every diagnostic found."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = list(diagnostics)
        first = next((d for d in self.diagnostics if d.is_error), None)
        super().__init__(first.render() if first else "invalid spec")


def missing_section(file: str, key: str, expected: str, example: str) -> SpecError:
    """The spec lacks a top-level section a command needs (train: for train, search: for tune)."""
    hint = f"add e.g.\n{key}:\n{example}"
    return SpecError(
        [Diagnostic(f"the spec has no {key}: section", key, Location(file), expected, hint=hint, code=key)]
    )


class ShapeError(Exception):
    """Raised by a pure shape rule; the pass that calls it adds the node's location.

    `param` names the parameter to blame, so the diagnostic points at its line.
    """

    def __init__(
        self,
        message: str,
        *,
        expected: str | None = None,
        received: str | None = None,
        hint: str | None = None,
        param: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.received = received
        self.hint = hint
        self.param = param


def _edits(a: str, b: str) -> int:
    """Edit distance counting an adjacent swap as one edit (optimal string alignment)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice a misspelt `word` most likely meant, or None if nothing is close."""
    word = str(word).lower()
    by_lower = {str(c).lower(): c for c in sorted(set(choices), key=str)}
    # Case is ignored ('LSTM' -> 'lstm'). difflib alone ties 'convd2' between conv1d/conv2d/conv3d
    # and picks the last name; among its close matches prefer the fewest edits (a swap is one).
    import difflib  # only when there is a mistake to explain

    close = difflib.get_close_matches(word, list(by_lower), n=5, cutoff=0.6)
    best = min(close, key=lambda c: _edits(word, c), default=None)
    # difflib's ratio alone finds 'concat' in 'frobnicate'; a real typo is a few edits away.
    if best is None or _edits(word, best) > max(2, len(word) // 3):
        return None
    return by_lower[best]


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean' hint for a misspelt key or name, or None if nothing is close."""
    match = closest(word, choices)
    return f"did you mean '{match}'?" if match else None


def format_path(path: Sequence[str | int]) -> str:
    """('layers', 3, 'conv2d', 'kernel_size') -> 'layers[3].conv2d.kernel_size'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
