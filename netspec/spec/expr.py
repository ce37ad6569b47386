"""Safe `${...}` expressions inside spec values.

A spec value may compute a number from named values, e.g. `channels: ${width * 2}`, choose one,
e.g. `${in.channels * t if t != 1 else in.channels}`, or build text, e.g. `name: block_${i}`. The
language is deliberately tiny and is read by this module's own tokenizer, Pratt parser and tree
walker: user text never reaches Python's eval/compile/ast, so a spec cannot run code, and every
failure is an ExprError carrying a 0-based character offset.

Language
  literals    12  0.5  .5  1e-3  1.   true  false   'text'  "text" (no escapes)
  names       [A-Za-z_][A-Za-z0-9_]*, looked up in the environment
  postfix     a.name (an attribute of a value that has them, e.g. a block input's shape: in.channels)
              a[i] (an item of a list; negative i counts from the end)
  operators   lowest `x if c else y`, then `or`, `and`, `not`, then `== != < <= > >=` (one per
              operand pair: no chains), then `+ -`, `* / // %`, unary `- +`, and `**` (right-
              associative and binding tighter than a unary minus on its left: -2**2 == -4)
  functions   min(a, b, ...) and max(a, b, ...) (two or more numbers, or one list),
              round(x) (half to even), floor(x), ceil(x), int(x) (toward zero) -> int; abs(x)

Arithmetic follows Python (`/` true division, `//` floor division, `%` Python's modulo), except:
  * booleans are not numbers: `true + 1` is an error, and `and`, `or`, `not` and the condition of
    `if` need booleans (`if n` with a number n is an error: write `if n > 0`);
  * `==` and `!=` compare values of one kind (numbers with numbers, text with text, ...);
  * every number an operator or function touches must be finite with |value| <= 2**53 (exact as a
    float); `**` estimates its magnitude before computing, so `10**10**10` fails at once;
  * a float result that is integral is returned as an int (`64 * 0.5` -> 32), because spec values
    are mostly sizes and counts; a non-integral result stays a float.
`if`/`else`, `and` and `or` evaluate only the operand they need, as in Python.
Lists and other values pass through only as a whole (`${name}` alone) or by item.

In a string, `$${` is a literal `${`. Offsets in errors from parse_expr and Expr.evaluate are into
the expression text; offsets in errors from template and substitute are into the whole string.
"""

from __future__ import annotations

import math
import operator
import re
from collections import namedtuple
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import did_you_mean
from ..record import record

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NamedTuple, TypeAlias, TypeGuard

    from ..jsontext import JSON

    Node: TypeAlias = tuple[Any, ...]  # a syntax tree node: (kind, start, end, *payload), see the parser

MAX_TEXT = 500  # characters in one expression
MAX_DEPTH = 50  # nested parentheses, calls, unary operators and `**` right operands
MAX_EXPRS = 100  # `${` in one string
LIMIT = 2**53  # largest magnitude any number may reach


class ExprError(Exception):
    """A bad expression or a failed evaluation; `offset` is 0-based into the text."""

    def __init__(self, message: str, *, hint: str | None = None, offset: int = 0):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.offset = offset

    def shifted(self, by: int) -> ExprError:
        """The same error with its offset moved into an enclosing string."""
        return ExprError(self.message, hint=self.hint, offset=self.offset + by)


# --- tokens ---------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"(?P<ws>[ \t\r\n]+)"
    r"|(?P<num>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<str>'[^'\n]*'|\"[^\"\n]*\")"
    r"|(?P<op>\*\*|//|==|!=|<=|>=|[-+*/%(),<>\[\].])"
)
_NUMBER_TAIL = re.compile(r"[A-Za-z0-9_.]*")
_BOOLS = {"true": True, "false": False}
# The language's words, and Python words a user may reach for (naming them gives a clearer error
# than "unknown variable"). `in` is not one: it names a block's input (`in.channels`).
_KEYWORDS = frozenset({"if", "else", "and", "or", "not", "is", "for", "lambda"})
_UNSUPPORTED = {
    "is": "write == or !=",
    "for": "loops are not part of expressions: use `repeat:`",
    "lambda": "functions are not part of expressions",
}
_CHAR_HINTS = {
    "=": "compare with ==",
    "!": "write != or `not`",
    **dict.fromkeys("{}", "braces cannot appear inside '${...}'"),
    **dict.fromkeys("'\"", "close the text with the same quote it opens with"),
}


if TYPE_CHECKING:  # the same fields, typed for checkers

    class _TokFields(NamedTuple):
        kind: str
        text: str
        offset: int
        value: Any = None

else:
    _TokFields = namedtuple("_Tok", "kind text offset value", defaults=(None,))


class _Tok(_TokFields):
    """kind: num, bool, name, kw, op or end; `value` of a number or bool. (collections' namedtuple,
    not typing's NamedTuple: importing typing is ~4 ms of every command's start-up.)"""

    __slots__ = ()

    @property
    def end(self) -> int:
        return self.offset + len(self.text)


def _quote(text: str) -> str:
    """'x' for messages; repr for quotes and unprintable characters so the message stays readable."""
    return f"'{text}'" if text.isprintable() and "'" not in text else repr(text)


def _number_token(text: str, m: re.Match[str]) -> _Tok:
    start, end = m.span()
    # `1e`, `1.2.3` or `2x` must not split into two tokens that then fail confusingly.
    tail = _NUMBER_TAIL.match(text, end).end()  # pyright: ignore[reportOptionalMemberAccess]  # `*` always matches
    if tail > end:
        raise ExprError(f"invalid number {_quote(text[start:tail])}", offset=start)
    raw = m.group()
    value: int | float = float(raw) if any(c in raw for c in ".eE") else int(raw)
    if not math.isfinite(value) or abs(value) > LIMIT:
        raise ExprError(f"number {raw} is too large (limit is 2**53)", offset=start)
    return _Tok("num", raw, start, value)


def _word_token(word: str, start: int) -> _Tok:
    if word in _BOOLS:
        return _Tok("bool", word, start, _BOOLS[word])
    return _Tok("kw" if word in _KEYWORDS else "name", word, start)


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            c = text[pos]
            raise ExprError(f"unexpected {_quote(c)}", hint=_CHAR_HINTS.get(c), offset=pos)
        kind = m.lastgroup
        if kind == "num":
            toks.append(_number_token(text, m))
        elif kind == "name":
            toks.append(_word_token(m.group(), pos))
        elif kind == "str":
            toks.append(_Tok("str", m.group(), pos, m.group()[1:-1]))
        elif kind == "op":
            toks.append(_Tok("op", m.group(), pos))
        pos = m.end()
    toks.append(_Tok("end", "", len(text)))
    return toks


# --- parser ---------------------------------------------------------------------------------
# Tree nodes are tuples (kind, start, end, *payload); start/end span the source so errors can
# quote it:  ("lit", s, e, value)  ("name", s, e, name)  ("unary", s, e, op, operand)
#            ("binop", s, e, op, op_offset, left, right)  ("call", s, e, fname, args)
#            ("cmp" | "logic", s, e, op, op_offset, left, right)  ("not", s, e, operand)
#            ("cond", s, e, condition, then, otherwise)  ("attr", s, e, obj, name, name_offset)
#            ("item", s, e, obj, index, bracket_offset)

_LOGIC = {"or": 2, "and": 3}
_NOT = 4  # `not a == b` is `not (a == b)`; `not a and b` is `(not a) and b`
_COMPARE = 6
_INFIX = {
    **_LOGIC,
    **dict.fromkeys(("==", "!=", "<", "<=", ">", ">="), _COMPARE),
    "+": 10,
    "-": 10,
    "*": 20,
    "/": 20,
    "//": 20,
    "%": 20,
    "**": 40,
}
_PREFIX = 30  # between `*` and `**`: -a*b == (-a)*b but -a**b == -(a**b)
_POW_RIGHT = 39  # below `**` itself, so a**b**c == a**(b**c)

# name -> (min args, max args or None)
_ARITY: dict[str, tuple[int, int | None]] = {
    "min": (1, None),
    "max": (1, None),
    "round": (1, 1),
    "floor": (1, 1),
    "ceil": (1, 1),
    "abs": (1, 1),
    "int": (1, 1),
}
FUNCTIONS = frozenset(_ARITY)


class _Parser:
    def __init__(self, text: str):
        self.toks = _tokenize(text)
        self.pos = 0
        self.depth = 0

    def peek(self) -> _Tok:
        return self.toks[self.pos]

    def take(self) -> _Tok:
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def at(self, op: str) -> bool:
        tok = self.peek()
        return tok.kind in ("op", "kw") and tok.text == op

    def enter(self, offset: int) -> None:
        # Bounds the recursion, so hostile nesting is an ExprError and never a RecursionError.
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"expression is nested too deeply (more than {MAX_DEPTH} levels)", offset=offset)

    def parse(self) -> Node:
        tree = self.conditional()
        tok = self.peek()
        if tok.kind == "end":
            return tree
        if tok.text in (")", "]"):
            raise _unexpected(tok, f"no '{'(' if tok.text == ')' else '['}' to close")
        if tok.kind == "kw":
            raise _unexpected(tok, _UNSUPPORTED.get(tok.text, "`else` needs an `if` before it"))
        raise _unexpected(tok, "missing an operator?" if tok.kind != "op" or tok.text == "(" else None)

    def conditional(self) -> Node:
        """`then if condition else otherwise`, the loosest form; right-associative."""
        then = self.expr(0)
        if not self.at("if"):
            return then
        if_tok = self.take()
        self.enter(if_tok.offset)
        condition = self.expr(0)
        if not self.at("else"):
            tok = self.peek()
            raise ExprError(
                "`if` without `else`" if tok.kind == "end" else f"unexpected {_quote(tok.text)}",
                hint="write `a if condition else b`",
                offset=tok.offset if tok.kind != "end" else if_tok.offset,
            )
        self.take()
        otherwise = self.conditional()
        self.depth -= 1
        return ("cond", then[1], otherwise[2], condition, then, otherwise)

    def expr(self, min_bp: int) -> Node:
        left = self.operand()
        while True:
            tok = self.peek()
            bp = _INFIX.get(tok.text) if tok.kind in ("op", "kw") else None
            if bp is None or bp <= min_bp:
                return left
            self.pos += 1
            if tok.text == "**":
                self.enter(tok.offset)
                right = self.expr(_POW_RIGHT)
                self.depth -= 1
            else:
                right = self.expr(bp)
            kind = "logic" if tok.text in _LOGIC else "cmp" if bp == _COMPARE else "binop"
            left = (kind, left[1], right[2], tok.text, tok.offset, left, right)
            if kind == "cmp" and _INFIX.get(self.peek().text) == _COMPARE:
                nxt = self.peek()
                raise ExprError(
                    f"chained comparison '{tok.text} ... {nxt.text}'",
                    hint="compare two values at a time and join them with `and`",
                    offset=nxt.offset,
                )

    def operand(self) -> Node:
        return self.postfix(self.primary())

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind in ("num", "bool", "str"):
            return ("lit", tok.offset, tok.end, tok.value)
        if tok.kind == "name":
            return self.call(tok) if self.at("(") else ("name", tok.offset, tok.end, tok.text)
        if tok.kind == "kw" and tok.text == "not":
            self.enter(tok.offset)
            inner = self.expr(_NOT)
            self.depth -= 1
            return ("not", tok.offset, inner[2], inner)
        if tok.kind == "kw":
            hint = _UNSUPPORTED.get(tok.text, "write `a if condition else b`" if tok.text in ("if", "else") else None)
            raise _unexpected(tok, hint or "missing an operand?")
        if tok.kind == "end":
            raise self.missing_operand()
        if tok.text == "(":
            self.enter(tok.offset)
            inner = self.conditional()
            close = self.close(tok, ")", "expected ')' or an operator")
            self.depth -= 1
            return (inner[0], tok.offset, close.end, *inner[3:])  # the span includes the parentheses
        if tok.text in ("-", "+"):
            self.enter(tok.offset)
            inner = self.expr(_PREFIX)
            self.depth -= 1
            return ("unary", tok.offset, inner[2], tok.text, inner)
        if tok.text in _INFIX:
            raise ExprError(f"missing operand before '{tok.text}'", offset=tok.offset)
        raise _unexpected(tok, "expected a number, a name or '('")

    def postfix(self, node: Node) -> Node:
        """`.name` and `[index]` after an operand, left to right: in.shape[1]."""
        while self.at(".") or self.at("["):
            tok = self.take()
            self.enter(tok.offset)
            if tok.text == ".":
                name = self.take()
                if name.kind != "name":
                    got = "nothing" if name.kind == "end" else _quote(name.text)
                    raise ExprError(f"expected an attribute name after '.', got {got}", offset=name.offset)
                node = ("attr", node[1], name.end, node, name.text, name.offset)
            else:
                index = self.conditional()
                close = self.close(tok, "]", "expected ']' or an operator")
                node = ("item", node[1], close.end, node, index, tok.offset)
            self.depth -= 1
        return node

    def missing_operand(self) -> ExprError:
        prev = self.toks[self.pos - 2] if self.pos >= 2 else None
        if prev is None:
            return ExprError("empty expression", offset=0)
        if prev.text in ("(", "["):
            closer = ")" if prev.text == "(" else "]"
            return ExprError(f"unclosed '{prev.text}'", hint=f"add '{closer}'", offset=prev.offset)
        if prev.text == ",":
            return ExprError("missing argument after ','", offset=prev.offset)
        return ExprError(f"missing operand after '{prev.text}'", offset=prev.offset)

    def close(self, opener: _Tok, closer: str, hint: str) -> _Tok:
        tok = self.peek()
        if tok.kind == "op" and tok.text == closer:
            return self.take()
        if tok.kind == "end":
            raise ExprError(f"unclosed '{opener.text}'", hint=f"add '{closer}'", offset=opener.offset)
        raise _unexpected(tok, hint)

    def call(self, name: _Tok) -> Node:
        if name.text not in _ARITY:
            hint = did_you_mean(name.text, FUNCTIONS) or "functions: " + ", ".join(sorted(FUNCTIONS))
            raise ExprError(f"unknown function '{name.text}'", hint=hint, offset=name.offset)
        paren = self.take()
        self.enter(paren.offset)
        args: list[Node] = []
        if not self.at(")"):
            args.append(self.conditional())
            while self.at(","):
                self.pos += 1
                args.append(self.conditional())
        close = self.close(paren, ")", "expected ',' or ')'")
        self.depth -= 1
        _check_arity(name, len(args))
        return ("call", name.offset, close.end, name.text, tuple(args))


def _unexpected(tok: _Tok, hint: str | None = None) -> ExprError:
    return ExprError(f"unexpected {_quote(tok.text)}", hint=hint, offset=tok.offset)


def _check_arity(name: _Tok, n: int) -> None:
    lo, hi = _ARITY[name.text]
    if hi is None and n < lo:
        msg = f"{name.text}() needs at least 2 arguments or one list"
    elif hi is not None and not lo <= n <= hi:
        msg = f"{name.text}() takes exactly 1 argument ({n} given)"
    else:
        return
    raise ExprError(msg, offset=name.offset)


# --- values ---------------------------------------------------------------------------------


class Attributes:
    """A value whose attributes an expression may read, e.g. a block input's shape (`in.channels`).
    Subclasses answer `attribute`, raising AttributeProblem for a name they do not have."""

    kind = "value"  # what messages call it

    def attribute(self, name: str) -> Any:
        raise AttributeProblem(f"{self.kind} has no attribute '{name}'")

    def show(self) -> str:
        return self.kind


class AttributeProblem(Exception):
    """Why an attribute cannot be read; the evaluator locates it."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_array(v: object) -> TypeGuard[list[Any] | tuple[Any, ...]]:
    """Whether `v` is a list or a tuple (a spec's list, or a shape); to checkers, of Any items."""
    return isinstance(v, (list, tuple))


def _kind(v: Any) -> str:
    own = getattr(v, "expr_kind", None)  # a value that names its own kind (a symbolic dim)
    if own:
        return own
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if is_array(v):
        return "list"
    if isinstance(v, Mapping):
        return "mapping"
    if isinstance(v, Attributes):
        return v.kind
    return "null" if v is None else type(v).__name__


def _show(v: Any) -> str:
    """A value as the spec author would write it, shortened for messages."""
    if isinstance(v, bool):
        text = "true" if v else "false"
    elif v is None:
        text = "null"
    elif isinstance(v, str):
        text = _quote(v if len(v) <= 30 else v[:27] + "...")
    elif isinstance(v, Attributes):
        text = v.show()
    else:
        text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _snippet(text: str, node: Node) -> str:
    part = " ".join(text[node[1] : node[2]].split())
    return part if len(part) <= 40 else part[:37] + "..."


def _closing(part: str) -> int:
    """Index of the ')' matching the '(' at part[0], or -1."""
    depth = 0
    for i, c in enumerate(part):
        depth += (c == "(") - (c == ")")
        if depth == 0:
            return i
    return -1


def _unwrap(part: str) -> str:
    """'(a - b)' -> 'a - b', but '(a) + (b)' stays: only parentheses that enclose it all go."""
    while part.startswith("(") and _closing(part) == len(part) - 1:
        part = part[1:-1].strip()
    return part


def _integral(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer() and abs(v) <= LIMIT:
        return int(v)
    return v


# --- evaluation -----------------------------------------------------------------------------


class _Eval:
    def __init__(self, text: str, env: Mapping[str, Any]):
        self.text = text
        self.env = env

    def snip(self, node: Node) -> str:
        return _snippet(self.text, node)

    def value(self, node: Node) -> Any:
        kind = node[0]
        if kind == "lit":
            return node[3]
        if kind == "name":
            return self.lookup(node)
        if kind == "unary":
            v = self.number(node[4], "arithmetic needs numbers")
            return self.checked(-v if node[3] == "-" else v, node)
        if kind == "binop":
            return self.binop(node)
        if kind == "cmp":
            return self.compare(node)
        if kind == "logic":
            left = self.boolean(node[5], f"'{node[3]}' needs booleans")
            if left == (node[3] == "or"):  # `true or ...`, `false and ...`: as Python, the rest is not read
                return left
            return self.boolean(node[6], f"'{node[3]}' needs booleans")
        if kind == "not":
            return not self.boolean(node[3], "'not' needs a boolean")
        if kind == "cond":
            chosen = node[4] if self.boolean(node[3], "the condition of 'if' must be a boolean") else node[5]
            return self.value(chosen)
        if kind == "attr":
            return self.attribute(node)
        if kind == "item":
            return self.item(node)
        return self.call(node)

    def boolean(self, node: Node, why: str) -> bool:
        v = self.value(node)
        if not isinstance(v, bool):
            hint = "compare it, e.g. `n > 0` or `n != 1`" if _is_number(v) else None
            raise ExprError(f"{why}, got {_show(v)} ({_kind(v)})", hint=hint, offset=node[1])
        return v

    def compare(self, node: Node) -> bool:
        op, at, left, right = node[3:]
        if op in ("==", "!="):
            a, b = self.value(left), self.value(right)
            if _kind(a) != _kind(b) and not (_is_number(a) and _is_number(b)):
                raise ExprError(
                    f"'{op}' compares values of one kind, got {_show(a)} ({_kind(a)}) and {_show(b)} ({_kind(b)})",
                    offset=at,
                )
            return (a == b) == (op == "==")
        a = self.number(left, f"'{op}' needs numbers")
        b = self.number(right, f"'{op}' needs numbers")
        return _COMPARISONS[op](a, b)

    def attribute(self, node: Node) -> Any:
        obj, name, at = node[3:]
        v = self.value(obj)
        if not isinstance(v, Attributes):
            raise ExprError(f"{_show(v)} ({_kind(v)}) has no attributes, so no '.{name}'", offset=at)
        try:
            return v.attribute(name)
        except AttributeProblem as exc:
            raise ExprError(f"'{self.snip(node)}': {exc.message}", hint=exc.hint, offset=at) from None

    def item(self, node: Node) -> Any:
        obj, index, at = node[3:]
        items = self.value(obj)
        if not is_array(items):
            raise ExprError(f"{_show(items)} ({_kind(items)}) is not a list, so it has no items", offset=at)
        k = self.value(index)
        if isinstance(k, bool) or not isinstance(k, int):
            raise ExprError(f"a list index must be an integer, got {_show(k)} ({_kind(k)})", offset=index[1])
        if not -len(items) <= k < len(items):
            valid = f"0 to {len(items) - 1}, or -{len(items)} to -1 from the end" if items else "none: it is empty"
            raise ExprError(f"index {k} is out of range for '{self.snip(obj)}' (valid: {valid})", offset=index[1])
        return items[k]

    def lookup(self, node: Node) -> Any:
        name = node[3]
        if name in self.env:
            return self.env[name]
        if name in FUNCTIONS:
            raise ExprError(f"'{name}' is a function; call it as {name}(...)", offset=node[1])
        defined = sorted(k for k in self.env if isinstance(k, str))  # pyright: ignore[reportUnnecessaryIsInstance]  # defensive: evaluate() takes any caller's env
        # Names in scope first: a misspelt block argument must not be "corrected" to a builtin.
        hint = did_you_mean(name, defined) or did_you_mean(name, FUNCTIONS)
        if name == "in":
            hint = "`in` is the input of a block, readable inside a block's layers only"
        if hint is None:
            shown = ", ".join(defined[:20]) + (", ..." if len(defined) > 20 else "")
            hint = f"defined here: {shown}" if defined else "no variables are defined here"
        raise ExprError(f"unknown variable '{name}'", hint=hint, offset=node[1])

    def number(self, node: Node, why: str) -> int | float:
        """Evaluate `node` and insist on a finite number within the magnitude limit."""
        v = self.value(node)
        if not _is_number(v):
            raise ExprError(f"{why}, got {_show(v)} ({_kind(v)})", hint=getattr(v, "expr_hint", None), offset=node[1])
        return self.checked(v, node)

    def checked(self, v: int | float, node: Node) -> int | float:
        if not isinstance(v, complex) and abs(v) <= LIMIT:  # False for nan and inf too
            return v
        real = not isinstance(v, complex) and not math.isnan(v)
        if node[0] == "name":  # a bad input, not a bad computation
            problem = "too large (limit is 2**53)" if real and math.isfinite(v) else "not a finite number"
            raise ExprError(f"'{node[3]}' = {_show(v)} is {problem}", offset=node[1])
        at = node[4] if node[0] == "binop" else node[1]  # a binary operation's operator
        # Operands are finite and in range, so an infinite result is an overflow.
        if real:
            raise ExprError(f"result too large in '{self.snip(node)}' (limit is 2**53)", offset=at)
        raise ExprError(f"result is not finite in '{self.snip(node)}'", offset=at)

    def binop(self, node: Node) -> int | float:
        op, at, left, right = node[3:]
        a = self.number(left, "arithmetic needs numbers")
        b = self.number(right, "arithmetic needs numbers")
        if op in ("/", "//", "%") and b == 0:
            what = "modulo" if op == "%" else "division"
            detail = "" if right[0] == "lit" else f" ({_unwrap(self.snip(right))} = {_show(b)})"
            raise ExprError(f"{what} by zero in '{self.snip(node)}'{detail}", offset=at)
        if op == "**":
            self.check_power(a, b, node)
        try:
            result = _BINOPS[op](a, b)
        except (ArithmeticError, ValueError):  # float overflow; the checks above should prevent it
            raise ExprError(f"result too large in '{self.snip(node)}' (limit is 2**53)", offset=at) from None
        return self.checked(result, node)

    def check_power(self, base: int | float, exp: int | float, node: Node) -> None:
        """Refuse a power before computing it, so `10**10**10` costs nothing."""
        at = node[4]
        if base == 0 and exp < 0:
            raise ExprError(f"zero cannot be raised to a negative power in '{self.snip(node)}'", offset=at)
        if base < 0 and isinstance(exp, float) and not exp.is_integer():
            msg = f"a negative number to a fractional power has no real value in '{self.snip(node)}'"
            raise ExprError(msg, offset=at)
        # log2|result| = exp * log2|base|; a little slack, since the exact check follows.
        if base != 0 and abs(base) != 1 and exp * math.log2(abs(base)) > 54:
            raise ExprError(f"result too large in '{self.snip(node)}' (limit is 2**53)", offset=at)

    def call(self, node: Node) -> int | float:
        name, args = node[3], node[4]
        why = f"{name}() needs numbers"
        if name in ("min", "max"):
            nums = self.list_arg(name, args[0]) if len(args) == 1 else [self.number(a, why) for a in args]
            return min(nums) if name == "min" else max(nums)
        return self.checked(_UNARY[name](self.number(args[0], why)), node)

    def list_arg(self, name: str, node: Node) -> list[int | float]:
        items = self.value(node)
        if not is_array(items):
            msg = f"{name}() needs at least 2 arguments or one list, got {_show(items)} ({_kind(items)})"
            raise ExprError(msg, offset=node[1])
        if not items:
            raise ExprError(f"{name}() of an empty list", offset=node[1])
        for v in items:
            if not _is_number(v) or not math.isfinite(v) or abs(v) > LIMIT:
                msg = f"{name}() needs a list of numbers within 2**53, got {_show(v)} ({_kind(v)})"
                raise ExprError(msg, offset=node[1])
        return list(items)


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,  # pyright: ignore[reportUnknownMemberType]  # typeshed leaves it unannotated
    "//": operator.floordiv,  # pyright: ignore[reportUnknownMemberType]  # typeshed leaves it unannotated
    "%": operator.mod,
    "**": operator.pow,  # pyright: ignore[reportUnknownMemberType]  # typeshed leaves it unannotated
}
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_UNARY: dict[str, Callable[[Any], Any]] = {
    "round": round,
    "floor": math.floor,
    "ceil": math.ceil,
    "abs": abs,
    "int": int,
}


# --- public API -----------------------------------------------------------------------------


@record
class Expr:
    """A parsed expression: `text` is the source between `${` and `}`, `tree` its syntax tree."""

    text: str
    tree: Node

    def names(self) -> frozenset[str]:
        """The variable names the expression reads (function names excluded)."""
        found: set[str] = set()
        stack = [self.tree]
        while stack:
            node = stack.pop()
            kind = node[0]
            if kind == "name":
                found.add(node[3])
            elif kind == "unary":
                stack.append(node[4])
            elif kind in ("binop", "cmp", "logic"):
                stack.extend(node[5:7])
            elif kind == "call":
                stack.extend(node[4])
            elif kind in ("not", "attr"):
                stack.append(node[3])
            elif kind in ("cond", "item"):
                stack.extend(node[3:6] if kind == "cond" else node[3:5])
        return frozenset(found)

    def evaluate(self, env: Mapping[str, Any]) -> Any:
        """The expression's value in `env`; an integral float comes back as an int."""
        try:
            return _integral(_Eval(self.text, env).value(self.tree))
        except RecursionError:  # only when called from an already deep stack
            raise ExprError("expression is nested too deeply", offset=0) from None


def parse_expr(text: str) -> Expr:
    """Parse the text between `${` and `}`; raises ExprError on a syntax error."""
    if len(text) > MAX_TEXT:
        raise ExprError(f"expression is too long ({len(text)} characters, at most {MAX_TEXT})", offset=MAX_TEXT)
    if not text.strip():
        raise ExprError("empty expression", hint="write a number, a name or a formula inside '${...}'", offset=0)
    try:
        return Expr(text, _Parser(text).parse())
    except RecursionError:
        raise ExprError("expression is nested too deeply", offset=0) from None


def has_expr(value: Any) -> bool:
    """True iff `value` is a string containing `${` (an escaped `$${` counts too)."""
    return isinstance(value, str) and "${" in value


def _scan(value: str) -> list[tuple[int, str | Expr]]:
    """Literal and Expr pieces, each with its offset in `value` (an Expr's is its text's start)."""
    pieces: list[tuple[int, str | Expr]] = []
    lit: list[str] = []
    lit_start = i = 0
    count = 0
    while True:
        j = value.find("$", i)
        if j < 0:
            lit.append(value[i:])
            break
        if value.startswith("$${", j):
            lit.append(value[i:j] + "${")
            i = j + 3
            continue
        if not value.startswith("${", j):
            lit.append(value[i : j + 1])
            i = j + 1
            continue
        lit.append(value[i:j])
        close = value.find("}", j + 2)
        if close < 0:
            hint = "close it with '}', or write '$${' for a literal '${'"
            raise ExprError("unclosed '${'", hint=hint, offset=j)
        count += 1
        if count > MAX_EXPRS:
            raise ExprError(f"too many '${{...}}' in one string (at most {MAX_EXPRS})", offset=j)
        try:
            expr = parse_expr(value[j + 2 : close])
        except ExprError as e:
            raise e.shifted(j + 2) from None
        if "".join(lit):
            pieces.append((lit_start, "".join(lit)))
        pieces.append((j + 2, expr))
        lit, lit_start, i = [], close + 1, close + 1
    if "".join(lit):
        pieces.append((lit_start, "".join(lit)))
    return pieces


def template(value: str) -> list[str | Expr]:
    """Split a string into literal str pieces and Expr pieces (`$${` becomes a literal `${`)."""
    return [piece for _, piece in _scan(value)]


def _evaluate_at(expr: Expr, start: int, env: Mapping[str, Any]) -> Any:
    try:
        return expr.evaluate(env)
    except ExprError as e:
        raise e.shifted(start) from None


def _as_text(v: Any, expr: Expr, start: int) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return v
    raise ExprError(
        f"cannot put a {_kind(v)} into text: '${{{expr.text}}}' is {_show(v)}",
        hint="a value keeps its type only when '${...}' is the whole string",
        offset=start - 2,
    )


def _substitute_str(value: str, env: Mapping[str, Any]) -> Any:
    pieces = _scan(value)
    exprs = [(start, p) for start, p in pieces if isinstance(p, Expr)]
    if len(exprs) == 1 and all(isinstance(p, Expr) or not p.strip() for _, p in pieces):
        start, expr = exprs[0]
        return _evaluate_at(expr, start, env)  # the whole value: keep the result's type
    out: list[str] = []
    for start, piece in pieces:
        out.append(piece if isinstance(piece, str) else _as_text(_evaluate_at(piece, start, env), piece, start))
    return "".join(out)


def substitute(value: JSON, env: Mapping[str, Any]) -> Any:
    """Replace every `${...}` in `value` (recursing into lists and dict values) using `env`.

    A string that is exactly one `${...}` (give or take surrounding whitespace) becomes the
    expression's value with its own type; otherwise each value is formatted into the text.
    """
    if isinstance(value, str):
        return _substitute_str(value, env) if "${" in value else value
    if isinstance(value, list):
        return [substitute(v, env) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, env) for k, v in value.items()}
    return value
