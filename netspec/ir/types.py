"""Tensor types of the IR and the small pure helpers for symbolic dimensions.

Shapes are per sample: the batch dimension is implicit and always symbolic, so it never appears
here. A dimension is an int or a symbolic expression kept as a string ("T", "T-4",
"(T-8)//2+1"). Symbolic strings are for display and checking only; counts are computed in a
second pass where every symbol is bound to a nominal size (spec `dims:` or `--dim T=...`).
"""

from __future__ import annotations

import re

from ..record import record

Dim = int | str
FLOAT = "float32"
INT = "int64"

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # fullmatch ($ would pass a final newline)


@record
class TensorType:
    shape: tuple[Dim, ...]
    dtype: str = FLOAT
    # What produced the layout: "channels" for (C, *spatial) from conv/pool/batchnorm,
    # "sequence" for (T, F) from recurrent/embedding, "" when unknown. Used only for warnings.
    layout: str = ""

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    def numel(self) -> int | None:
        """Elements per sample, or None when a dimension is symbolic."""
        return numel(self.shape)

    def show(self, batch: str | None = "B") -> str:
        dims = ([batch] if batch else []) + [str(d) for d in self.shape]
        return "(" + ", ".join(dims) + ")"


def numel(shape) -> int | None:
    n = 1
    for d in shape:
        if not isinstance(d, int):
            return None
        n *= d
    return n


def _atom(d: Dim) -> str:
    """Parenthesize a compound symbolic expression before it is combined further."""
    s = str(d)
    return s if isinstance(d, int) or _IDENT.fullmatch(s) or (s.startswith("(") and s.endswith(")")) else f"({s})"


# A trailing integer term of a symbolic sum: "T-1" -> ("T", -1). The character before the sign must
# end an operand (a name, a digit or a parenthesis), so "T*-1" and "T//-2" are never split.
_TRAILING_CONST = re.compile(r"(.*[A-Za-z0-9_)])([+-]\d+)")


def add(d: Dim, k: int) -> Dim:
    """d + k, folding constants: ("T-1") + 1 is "T", not "T-1+1"."""
    if isinstance(d, int):
        return d + k
    if k == 0:
        return d
    m = _TRAILING_CONST.fullmatch(d)
    if m and _balanced(m.group(1)):
        d, k = m.group(1), k + int(m.group(2))
        if k == 0:
            return d
    return f"{d}{k:+d}"


def _balanced(expr: str) -> bool:
    """Whether every parenthesis of expr closes inside it, so its last term is a top-level one."""
    depth = 0
    for ch in expr:
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            return False
    return depth == 0


def floordiv_plus1(num: Dim, stride: int, *, ceil: bool = False) -> Dim:
    """floor(num / stride) + 1 (or ceil) for an int or symbolic numerator."""
    if isinstance(num, int):
        q = -(-num // stride) if ceil else num // stride
        return q + 1
    if stride == 1:
        return add(num, 1)
    op = "ceil" if ceil else "floor"
    return f"{op}({_atom(num)}/{stride})+1"


def mul(dims) -> Dim:
    """Product of dims; symbolic when any factor is."""
    n = numel(dims)
    if n is not None:
        return n
    const = 1
    syms = []
    for d in dims:
        if isinstance(d, int):
            const *= d
        else:
            syms.append(_atom(d))
    parts = ([str(const)] if const != 1 else []) + syms
    return "*".join(parts)


def substitute(d: Dim, bindings: dict[str, int]) -> Dim:
    """Bind a plain symbol; compound expressions are only ever produced by layers, not inputs."""
    if isinstance(d, str) and d in bindings:
        return bindings[d]
    return d


def symbols(shape) -> list[str]:
    return [d for d in shape if isinstance(d, str)]
