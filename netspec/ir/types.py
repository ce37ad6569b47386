"""Tensor types of the IR and the small pure helpers for symbolic dimensions.

Shapes are per sample: the batch dimension is implicit and always symbolic, so it never appears
here. A dimension is an int or a symbolic one: a spec input's symbol ("T") or what layers make of
it, an `ir.dims.Sym` in canonical form ("T-4", "T//2-3"), so two dims are equal exactly when
their texts are. Counts are computed in a second pass where every symbol is bound to a nominal
size (spec `dims:` or `--dim T=...`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..record import record
from . import dims

if TYPE_CHECKING:
    from collections.abc import Iterable

Dim = int | str
FLOAT = "float32"
INT = "int64"


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


def numel(shape: Iterable[Dim]) -> int | None:
    n = 1
    for d in shape:
        if not isinstance(d, int):
            return None
        n *= d
    return n


def add(d: Dim, k: int) -> Dim:
    """d + k, in canonical form: ("T-1") + 1 is "T"."""
    return d + k if isinstance(d, int) else dims.plus(d, k)


def floordiv_plus1(num: Dim, stride: int, *, ceil: bool = False) -> Dim:
    """floor(num / stride) + 1 (or ceil) for an int or symbolic numerator."""
    if isinstance(num, int):
        q = -(-num // stride) if ceil else num // stride
        return q + 1
    return dims.plus(dims.ceildiv(num, stride) if ceil else dims.floordiv(num, stride), 1)


def mul(shape: Iterable[Dim]) -> Dim:
    """Product of dims; symbolic when any factor is."""
    out: Dim = 1
    for d in shape:
        out = out * d if isinstance(out, int) and isinstance(d, int) else dims.times(out, d)
    return out


def total(shape: Iterable[Dim]) -> Dim:
    """Sum of dims (a concat's joined axis); symbolic when any term is."""
    out: Dim = 0
    for d in shape:
        out = out + d if isinstance(out, int) and isinstance(d, int) else dims.plus(out, d)
    return out


def substitute(d: Dim, bindings: dict[str, int]) -> Dim:
    """`d` with its symbols bound; unchanged while one is unbound."""
    return dims.value(d, bindings)


def symbols(shape: Iterable[Dim]) -> list[str]:
    return [d for d in shape if isinstance(d, str)]
