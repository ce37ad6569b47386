"""Symbolic dimensions: sizes known only when the model runs (`T`, and what layers make of it).

A symbolic dim is a `Sym`: a string (its canonical text, so it prints, compares and hashes as a
string does) that also holds its value as a polynomial with integer coefficients over atoms:

    atom      a symbol (T), floor(p / k) for a polynomial p and an integer k > 1, or min(p, q)
    monomial  a product of atoms (T*U after a flatten)
    Sym       sum of coefficient * monomial, plus a constant

Every operation returns the canonical form, so two dims are equal exactly when their texts are:
`T - 2 + 1 - 2 + 1` and `T - 3 + 1` are both `T-2`; `floor((T - 8) / 2) + 1` is `T//2-3` (integer
multiples move out of a floor); `ceil(x / k)` is `(x+k-1)//k`; `floor(floor(x / a) / b)` is
`x//(a*b)`. Dims are sizes, so symbols are integers and floors are exact integer floors.
No third-party imports: this is the bottom floor, beside ir/types.py.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Literal, TypeAlias

    # The polynomial form the module comment below describes, for type checkers.
    SymAtom: TypeAlias = "tuple[Literal['sym'], str]"
    FloorAtom: TypeAlias = "tuple[Literal['floor'], Poly, int]"
    MinAtom: TypeAlias = "tuple[Literal['min'], Poly, Poly]"
    # Narrowed by its tag (atom[0] == "floor") only where a variable is declared `Atom`.
    Atom: TypeAlias = "SymAtom | FloorAtom | MinAtom"
    Mono: TypeAlias = "tuple[Atom, ...]"
    Poly: TypeAlias = "tuple[tuple[tuple[Mono, int], ...], int]"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# A polynomial is (terms, const): terms a sorted tuple of (monomial, coefficient != 0), a
# monomial a sorted tuple of atoms, an atom ("sym", name), ("floor", poly, k) or ("min", p, q).


def _poly(terms: dict[Mono, int], const: int) -> Poly:
    kept = {m: c for m, c in terms.items() if c}
    return tuple(sorted(kept.items(), key=lambda mc: _mono_text(mc[0]))), const


def _const(k: int) -> Poly:
    return (), k


def _atom_poly(atom: Atom) -> Poly:
    return (((atom,), 1),), 0


def _add(a: Poly, b: Poly) -> Poly:
    terms = dict(a[0])
    for m, c in b[0]:
        terms[m] = terms.get(m, 0) + c
    return _poly(terms, a[1] + b[1])


def _scale(a: Poly, k: int) -> Poly:
    return _poly({m: c * k for m, c in a[0]}, a[1] * k)


def _mul(a: Poly, b: Poly) -> Poly:
    out = _scale(b, a[1])
    for ma, ca in a[0]:
        out = _add(out, _poly({tuple(sorted((*ma, *mb), key=_atom_text)): ca * cb for mb, cb in b[0]}, 0))
        out = _add(out, _poly({ma: ca * b[1]}, 0))
    return out


def _floordiv(a: Poly, k: int) -> Poly:
    """floor(a / k) for integer-valued a: whole multiples of k leave the floor."""
    if k == 1:
        return a
    quotient: dict[Mono, int] = {}
    rest: dict[Mono, int] = {}
    for m, c in a[0]:
        q, r = divmod(c, k)
        quotient[m], rest[m] = q, r
    q0, r0 = divmod(a[1], k)
    rest_poly = _poly(rest, r0)
    if not rest_poly[0]:
        return _poly(quotient, q0)  # 0 <= r0 < k: its floor is 0
    inner = rest_poly
    (only, coeff), *more = rest_poly[0]
    atom: Atom = only[0]  # declared, to narrow by tag; a monomial has one or more
    if not more and coeff == 1 and len(only) == 1 and atom[0] == "floor":
        # floor((floor(x / a) + r) / k) = floor((x + r*a) / (a*k)), for 0 <= r < k
        _, x, a_k = atom
        inner, k = _add(x, _const(rest_poly[1] * a_k)), a_k * k
        q1, r1 = divmod(inner[1], k)  # the constant may have grown past k
        inner, q0 = (inner[0], r1), q0 + q1
    return _add(_poly(quotient, q0), _atom_poly(("floor", inner, k)))


def _min(a: Poly, b: Poly) -> Poly:
    diff = _add(a, _scale(b, -1))
    if not diff[0]:
        return a if diff[1] <= 0 else b
    first, second = sorted((a, b), key=_text)
    return _atom_poly(("min", first, second))


# --- text ------------------------------------------------------------------------------------


def _atom_text(atom: Atom) -> str:
    if atom[0] == "sym":
        return atom[1]
    if atom[0] == "min":
        return f"min({_text(atom[1])}, {_text(atom[2])})"
    body = _text(atom[1])
    return f"{body if _NAME.match(body) else f'({body})'}//{atom[2]}"


def _mono_text(mono: Mono) -> str:
    # In a product a floor needs its parentheses: T*U//2 would read (T*U)//2.
    return "*".join(f"({_atom_text(a)})" if len(mono) > 1 and a[0] == "floor" else _atom_text(a) for a in mono)


def _text(p: Poly) -> str:
    if len(p[0]) == 1 and p[1] and p[0][0][1] == 1 and len(p[0][0][0]) == 1:
        atom: Atom = p[0][0][0][0]
        if atom[0] == "floor":
            # floor(x / k) + c prints as (x + c*k)//k, how a length formula is written: (T-7)//2
            _, inner, k = atom
            return _atom_text(("floor", _add(inner, _const(p[1] * k)), k))
    parts: list[str] = []
    for mono, c in p[0]:
        factor = _mono_text(mono)
        if c != 1 and len(mono) == 1 and mono[0][0] == "floor":
            factor = f"({factor})"  # -(T//2), 2*(T//2): not (-T)//2 or (2*T)//2
        body = factor if abs(c) == 1 else f"{abs(c)}*{factor}"
        parts.append(("-" if c < 0 else "+") + body)
    if p[1] or not parts:
        parts.append(f"{p[1]:+d}")
    text = "".join(parts)
    return text[1:] if text.startswith("+") else text


def _value(p: Poly, env: dict[str, int]) -> int:
    total = p[1]
    atom: Atom  # declared, so the checks of its tag below narrow it
    for mono, c in p[0]:
        v = c
        for atom in mono:
            if atom[0] == "sym":
                v *= env[atom[1]]
            elif atom[0] == "floor":
                v *= _value(atom[1], env) // atom[2]
            else:
                v *= min(_value(atom[1], env), _value(atom[2], env))
        total += v
    return total


def _names(p: Poly, out: set[str]) -> set[str]:
    atom: Atom  # declared, so the check of its tag below narrows it
    for mono, _ in p[0]:
        for atom in mono:
            if atom[0] == "sym":
                out.add(atom[1])
            else:
                for part in atom[1:]:
                    if isinstance(part, tuple):
                        _names(part, out)
    return out


# --- the value type --------------------------------------------------------------------------


class Sym(str):
    """A symbolic dim: its canonical text, with its polynomial in `poly`."""

    poly: Poly

    def __new__(cls, poly: Poly) -> Sym:
        obj = super().__new__(cls, _text(poly))
        obj.poly = poly
        return obj

    def __reduce__(self):  # pickle and copy rebuild it from its polynomial, not its text
        return Sym, (self.poly,)

    def names(self) -> set[str]:
        return _names(self.poly, set())

    def value(self, env: dict[str, int]) -> int:
        """Its size once every symbol has one (KeyError names an unbound symbol)."""
        return _value(self.poly, env)


Dim = int | str


def _as_poly(d: Dim) -> Poly:
    if isinstance(d, Sym):
        return d.poly
    if isinstance(d, int):
        return _const(d)
    if _NAME.match(d):
        return _atom_poly(("sym", d))
    raise ValueError(f"not a dimension: {d!r}")


def _dim(p: Poly) -> Dim:
    """An int when no symbol is left (T - T), else a Sym."""
    return p[1] if not p[0] else Sym(p)


def symbol(name: str) -> Sym:
    return Sym(_atom_poly(("sym", name)))


def plus(a: Dim, b: Dim) -> Dim:
    return _dim(_add(_as_poly(a), _as_poly(b)))


def times(a: Dim, b: Dim) -> Dim:
    return _dim(_mul(_as_poly(a), _as_poly(b)))


def floordiv(a: Dim, k: int) -> Dim:
    return _dim(_floordiv(_as_poly(a), k))


def ceildiv(a: Dim, k: int) -> Dim:
    return _dim(_floordiv(_add(_as_poly(a), _const(k - 1)), k))


def smaller(a: Dim, b: Dim) -> Dim:
    return _dim(_min(_as_poly(a), _as_poly(b)))


def value(d: Dim, env: dict[str, int]) -> Dim:
    """`d` with its symbols bound by `env`; unchanged while one is unbound."""
    if isinstance(d, int):
        return d
    p = _as_poly(d)
    return _value(p, env) if _names(p, set()) <= set(env) else d
