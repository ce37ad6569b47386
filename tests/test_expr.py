"""The `${...}` expression language: Python's arithmetic as the oracle, every error with its offset,
substitution into spec values, and hostile input that must fail fast with an ExprError."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netspec.spec.expr import AttributeProblem, Attributes, Expr, ExprError, has_expr, parse_expr, substitute, template


def ev(text: str, **env):
    return parse_expr(text).evaluate(env)


def err(text: str, **env) -> ExprError:
    with pytest.raises(ExprError) as info:
        ev(text, **env)
    return info.value


# --- Python as the oracle -------------------------------------------------------------------
# Expressions are composed as strings, so Python's own parser decides what each one means. Leaves
# are digits 0-9 (or d**k with k <= 2) and there are at most 6, which keeps every intermediate far
# below 2**53; a zero divisor must give our "by zero" error where Python raises.

_leaf = st.integers(0, 9).map(str) | st.builds("{}**{}".format, st.integers(0, 9), st.integers(0, 2))
_space = st.sampled_from(["", " ", "  "])


def _grow(children):
    binary = st.builds(
        "{}{}{}{}{}".format, children, _space, st.sampled_from(["+", "-", "*", "/", "//", "%"]), _space, children
    )
    return binary | children.map("({})".format) | children.map("-{}".format)


ARITH = st.recursive(_leaf, _grow, max_leaves=6)


@settings(max_examples=200, deadline=None)
@given(ARITH)
def test_matches_python_arithmetic(text):
    try:
        want = eval(text, {"__builtins__": {}})  # the TEST's oracle on a generated string
    except ZeroDivisionError:
        assert "by zero" in err(text).message
        return
    got = ev(text)
    assert got == want
    integral = isinstance(want, int) or want.is_integer()
    assert type(got) is (int if integral else float)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),  # left-associative
        ("100 // 7 // 2", 7),
        ("2 * 3 % 4", 2),
        ("-2 ** 2", -4),  # ** binds tighter than unary minus on its left
        ("(-2) ** 2", 4),
        ("2 ** 3 ** 2", 512),  # right-associative
        ("2 ** -1", 0.5),  # negative exponent gives a float
        ("2 ** -3 ** 2", 2**-9),
        ("-3 * 2", -6),
        ("2 - -3", 5),
        ("+-+3", -3),
        ("7 / 2", 3.5),
        ("-7 // 2", -4),  # floor division
        ("-7 % 3", 2),  # Python modulo
        ("7.5 % 2", 1.5),
        ("0.5", 0.5),
        (".5 + 1.", 1.5),
        ("1e-3", 0.001),
        ("2E3", 2000),
        ("true", True),
        ("false", False),
        (" \t1\n+ 1 ", 2),
    ],
)
def test_values(text, want):
    got = ev(text)
    assert got == want and type(got) is type(want)


def test_integral_float_becomes_int():
    assert type(ev("64 * 0.5")) is int and ev("64 * 0.5") == 32
    assert type(ev("w / 2", w=64)) is int
    assert ev("w", w=3.0) == 3 and type(ev("w", w=3.0)) is int
    assert ev("w * 0.1", w=3) == 0.30000000000000004  # non-integral stays float
    assert type(ev("1 / 3")) is float


def test_names():
    assert parse_expr("min(a, b * c) + round(d) - e ** -f").names() == {"a", "b", "c", "d", "e", "f"}
    assert parse_expr("1 + 2").names() == frozenset()
    assert parse_expr("x + x").names() == {"x"}


def test_expr_object():
    e = parse_expr(" w*2 ")
    assert isinstance(e, Expr) and e.text == " w*2 " and isinstance(e.tree, tuple)
    assert e == parse_expr(" w*2 ") and hash(e) == hash(parse_expr(" w*2 "))
    with pytest.raises(AttributeError):
        e.text = "x"  # frozen


# --- functions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("min(3, 1, 2)", 1),
        ("max(3, 1.5)", 3),
        ("min(xs)", 1),
        ("max(xs)", 4),
        ("round(2.5)", 2),  # half to even
        ("round(3.5)", 4),
        ("round(-0.5)", 0),
        ("round(7)", 7),
        ("floor(-0.5)", -1),
        ("ceil(1.2)", 2),
        ("abs(-3)", 3),
        ("abs(-2.5)", 2.5),
        ("int(-2.7)", -2),  # toward zero
        ("int(2.7)", 2),
        ("max(w // 4, 8) * 2", 32),
        ("min(max(1, 2), 3)", 2),
    ],
)
def test_functions(text, want):
    got = ev(text, xs=[3, 1, 4], w=64)
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("min()", "min() needs at least 2 arguments or one list", 0),
        ("1 + max(2)", "max() needs at least 2 arguments or one list, got 2", 8),
        ("round(1, 2)", "round() takes exactly 1 argument (2 given)", 0),
        ("abs()", "abs() takes exactly 1 argument (0 given)", 0),
        ("min(empty)", "min() of an empty list", 4),
        ("max(mixed)", "max() needs a list of numbers", 4),
        ("round(t)", "round() needs numbers, got 'abc' (string)", 6),
        ("min(1, true)", "min() needs numbers, got true (boolean)", 7),
        ("min", "'min' is a function; call it as min(...)", 0),
    ],
)
def test_function_errors(text, message, offset):
    e = err(text, empty=[], mixed=[1, "a"], t="abc")
    assert message in e.message and e.offset == offset


def test_unknown_function():
    e = err("2 * flor(x)", x=1)
    assert e.message == "unknown function 'flor'" and e.offset == 4 and e.hint == "did you mean 'floor'?"
    e = err("frobnicate(1)")
    assert e.hint.startswith("functions: abs, ceil")


# --- errors -----------------------------------------------------------------------------------


def test_unknown_variable():
    e = err("widht * 2", width=3, depth=2)
    assert e.message == "unknown variable 'widht'" and e.offset == 0 and e.hint == "did you mean 'width'?"
    e = err("1 + zzz", a=1, c=2, b=3)
    assert e.offset == 4 and e.hint == "defined here: a, b, c"
    assert err("zzz").hint == "no variables are defined here"


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("", "empty expression", 0),
        ("   ", "empty expression", 0),
        ("1 +", "missing operand after '+'", 2),
        ("2 * (3 -", "missing operand after '-'", 7),
        ("* 3", "missing operand before '*'", 0),
        ("1 + * 3", "missing operand before '*'", 4),
        ("(1 + 2", "unclosed '('", 0),
        ("((1)", "unclosed '('", 0),
        ("(", "unclosed '('", 0),
        ("min(1, 2", "unclosed '('", 3),
        ("min(1,", "missing argument after ','", 5),
        ("min(1,)", "unexpected ')'", 6),
        ("1 + 2)", "unexpected ')'", 5),
        ("()", "unexpected ')'", 1),
        ("1 2", "unexpected '2'", 2),
        ("(1) (2)", "unexpected '('", 4),
        ("1, 2", "unexpected ','", 1),
        ("a = 1", "unexpected '='", 2),
        ("a < 1 < 2", "chained comparison '< ... <'", 6),
        ("!a", "unexpected '!'", 0),
        ("1 if a", "`if` without `else`", 2),
        ("1 if a 2", "unexpected '2'", 7),
        ("else 2", "unexpected 'else'", 0),
        ("a is b", "unexpected 'is'", 2),
        ("not", "missing operand after 'not'", 0),
        ("a {b}", "unexpected '{'", 2),
        ("'s", 'unexpected "\'"', 0),
        ("1 & 2", "unexpected '&'", 2),
        ("1 ^ 2", "unexpected '^'", 2),
        ("a.", "expected an attribute name after '.', got nothing", 2),
        ("a.(b)", "expected an attribute name after '.', got '('", 2),
        ("a[1", "unclosed '['", 1),
        ("a[]", "unexpected ']'", 2),
        ("1e", "invalid number '1e'", 0),
        ("2 + 1.2.3", "invalid number '1.2.3'", 4),
        ("3x", "invalid number '3x'", 0),
        ("1_000", "invalid number '1_000'", 0),
        ("x + \x00", "unexpected '\\x00'", 4),
        ("٣", "unexpected '٣'", 0),  # only ASCII digits are numbers
        ("99999999999999999999", "number 99999999999999999999 is too large", 0),
        ("1e400", "number 1e400 is too large", 0),
    ],
)
def test_syntax_errors(text, message, offset):
    with pytest.raises(ExprError) as info:
        parse_expr(text)
    assert message in info.value.message and info.value.offset == offset


def test_syntax_hints():
    with pytest.raises(ExprError) as info:
        parse_expr("a = 1")
    assert info.value.hint == "compare with =="
    with pytest.raises(ExprError) as info:
        parse_expr("1 2")
    assert info.value.hint == "missing an operator?"


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("a / b", "division by zero in 'a / b' (b = 0)", 2),
        ("a // (b - b)", "division by zero in 'a // (b - b)' (b - b = 0)", 2),
        ("a % z", "modulo by zero in 'a % z' (z = 0.0)", 2),
        ("1 + a / 0", "division by zero in 'a / 0'", 6),
        ("true + 1", "arithmetic needs numbers, got true (boolean)", 0),
        ("1 - false", "arithmetic needs numbers, got false (boolean)", 4),
        ("-t", "arithmetic needs numbers, got 'abc' (string)", 1),
        ("xs * 2", "arithmetic needs numbers, got [1, 2] (list)", 0),
        ("n + 1", "arithmetic needs numbers, got null (null)", 0),
        ("0 ** -1", "zero cannot be raised to a negative power", 2),
        ("(0 - 8) ** (1 / 3)", "no real value", 8),
        ("big + 0", "'big' = 9007199254740993 is too large", 0),
        ("inf * 1", "'inf' = inf is not a finite number", 0),
        ("nan * 1", "'nan' = nan is not a finite number", 0),
        ("lim + 1", "result too large in 'lim + 1'", 4),
        ("lim * lim", "result too large", 4),
        ("3 ** 34", "result too large in '3 ** 34'", 2),
        ("10 ** 10 ** 10", "result too large", 3),
        ("2 ** 53.5", "result too large", 2),
        ("1.5 ** 10000", "result too large", 4),
        ("0.5 ** -100", "result too large", 4),
        ("lim / 1e-300", "result too large", 4),
    ],
)
def test_evaluation_errors(text, message, offset):
    env = dict(a=3, b=0, z=0.0, t="abc", xs=[1, 2], n=None, big=2**53 + 1, lim=2**53)
    env.update(inf=math.inf, nan=math.nan)
    e = err(text, **env)
    assert message in e.message and e.offset == offset


def test_limits_are_inclusive():
    assert ev("2 ** 53") == 2**53
    assert ev("-(2 ** 53)") == -(2**53)
    assert ev("lim", lim=2**60) == 2**60  # passing through untouched is not arithmetic
    assert ev("1 ** lim + (-1) ** lim + 0 ** lim", lim=2**53) == 2
    assert ev("0.5 ** lim", lim=2**53) == 0
    assert ev("2 ** -2000") == 0


def test_pass_through_values():
    assert ev("t", t="abc") == "abc"
    assert ev("(xs)", xs=[1, 2]) == [1, 2]
    assert ev("flag", flag=True) is True


# --- hostile input ----------------------------------------------------------------------------


def _fails_fast(text: str, message: str) -> None:
    start = time.perf_counter()
    with pytest.raises(ExprError) as info:
        parse_expr(text).evaluate({})
    assert message in info.value.message
    assert time.perf_counter() - start < 0.5


def test_limits():
    _fails_fast("1" * 501, "too long")
    _fails_fast("(" * 51 + "1" + ")" * 51, "nested too deeply")
    _fails_fast("-" * 499 + "1", "nested too deeply")
    _fails_fast("2**" * 166 + "2", "nested too deeply")
    _fails_fast("min(" * 60 + "1" + ")" * 60, "nested too deeply")
    _fails_fast("9**9**9**9", "too large")
    _fails_fast("10**10**10", "too large")
    assert ev("(" * 50 + "1" + ")" * 50) == 1
    assert ev("-" * 50 + "1") == 1
    assert ev("+".join(["1"] * 250)) == 250  # long flat expressions are fine
    assert ev(" " * 499 + "1") == 1


def test_too_many_expressions():
    assert substitute("${1}" * 100, {}) == "1" * 100
    with pytest.raises(ExprError) as info:
        substitute("${1}" * 101, {})
    assert "too many" in info.value.message and info.value.offset == 400


# --- template and substitute ------------------------------------------------------------------


def test_has_expr():
    assert has_expr("a ${b}") and has_expr("$${b}")
    assert not has_expr("a $b {c}") and not has_expr(3) and not has_expr(["${x}"])


def test_template():
    pieces = template("conv_${i}x${ j * 2 }!")
    assert pieces[0] == "conv_" and pieces[2] == "x" and pieces[4] == "!"
    assert pieces[1].text == "i" and pieces[3].text == " j * 2 "
    assert template("plain") == ["plain"]
    assert template("") == []
    assert template("$${a}") == ["${a}"]
    assert [type(p) for p in template("${a}${b}")] == [Expr, Expr]


def test_template_errors():
    with pytest.raises(ExprError) as info:
        template("ab ${x + 1")
    assert info.value.message == "unclosed '${'" and info.value.offset == 3
    with pytest.raises(ExprError) as info:
        template("ab ${x + {y}}")
    assert info.value.message == "unexpected '{'" and info.value.offset == 9  # offset into the string
    with pytest.raises(ExprError) as info:
        template("${}")
    assert info.value.message == "empty expression" and info.value.offset == 2


ENV = {"w": 64, "i": 3, "lr": 0.001, "name": "enc", "sizes": [1, 2], "on": True, "half": 0.5}


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("${w}", 64),
        ("  ${ w * 2 }  ", 128),  # whole value: the type is kept
        ("${w * half}", 32),
        ("${lr}", 0.001),
        ("${name}", "enc"),
        ("${sizes}", [1, 2]),
        ("${on}", True),
        ("block_${i}", "block_3"),
        ("${name}_${w // 2}", "enc_32"),
        ("lr=${lr}", "lr=0.001"),
        ("${w / 3}", 64 / 3),
        ("x${w / 3}", f"x{64 / 3!r}"),
        ("${w * half}px", "32px"),
        ("${on}/${false}", "true/false"),
        ("$${w}", "${w}"),  # escaped
        ("cost $${w} is ${w}", "cost ${w} is 64"),
        ("a $ b $$ c", "a $ b $$ c"),  # no '${': unchanged
        ("$$${w}", "$${w}"),  # read left to right: '$' then '$${'
        (5, 5),
        (None, None),
    ],
)
def test_substitute(value, want):
    got = substitute(value, ENV)
    assert got == want and type(got) is type(want)


def test_substitute_nested():
    spec = {"layers": [{"conv": {"ch": "${w}", "name": "c${i}"}}, ["${i + 1}", 7]], "k": ("${w}",)}
    out = substitute(spec, ENV)
    assert out == {"layers": [{"conv": {"ch": 64, "name": "c3"}}, [4, 7]], "k": ("${w}",)}
    assert spec["layers"][0]["conv"]["ch"] == "${w}"  # the input is untouched
    assert out["layers"] is not spec["layers"]


@pytest.mark.parametrize(
    ("value", "message", "offset"),
    [
        ("n_${sizes}", "cannot put a list into text: '${sizes}' is [1, 2]", 2),
        ("x ${y}", "unknown variable 'y'", 4),
        ("ab ${w +}", "missing operand after '+'", 7),
        ("ab ${w / 0}", "division by zero", 7),
        ("${ i }_${ on + 1 }", "arithmetic needs numbers, got true (boolean)", 10),
    ],
)
def test_substitute_errors(value, message, offset):
    with pytest.raises(ExprError) as info:
        substitute(value, ENV)
    assert message in info.value.message and info.value.offset == offset


# --- robustness: nothing but ExprError escapes -------------------------------------------------

_VALUES = st.one_of(
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=5),
    st.none(),
    st.lists(st.one_of(st.integers(-(2**60), 2**60), st.floats(), st.booleans(), st.text(max_size=2)), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
_ENVS = st.dictionaries(st.sampled_from(["a", "b", "x", "min", "ab"]), _VALUES, max_size=4)
_TOKENS = [
    *[
        "0",
        "1",
        "2",
        "9",
        "0.5",
        ".5",
        "1e3",
        "1e-3",
        "1e308",
        "9007199254740993",
        "a",
        "b",
        "x",
        "ab",
        "true",
        "false",
    ],
    *["+", "-", "*", "/", "//", "%", "**", "(", ")", ",", "==", "{", "}", "$", "if"],
    *["min", "max", "round", "floor", "ceil", "abs", "int", "nope"],
]


def _check_outcome(run) -> None:
    try:
        run()
    except ExprError as e:
        assert isinstance(e.message, str) and isinstance(e.offset, int) and e.offset >= 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), max_size=25), st.sampled_from([" ", ""]), _ENVS)
def test_token_soup_only_raises_expr_error(tokens, sep, env):
    text = sep.join(tokens)
    _check_outcome(lambda: parse_expr(text).evaluate(env))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789.eE+-*/%() ,_abxtruefalsminround=<{}$\t\x00٣", max_size=40), _ENVS)
def test_random_text_only_raises_expr_error(text, env):
    _check_outcome(lambda: parse_expr(text).evaluate(env))
    _check_outcome(lambda: substitute(text, env))
    _check_outcome(lambda: substitute([{"k": "${" + text + "}"}, "p${" + text + "}q"], env))
    _check_outcome(lambda: template(text))


_ATOMS = st.sampled_from(["0", "1", "2", "0.5", "7", "1e15", "9007199254740992", "a", "b", "x", "min", "true", "-1"])


def _grow_any(children):
    ops = st.sampled_from(["+", "-", "*", "/", "//", "%", "**"])
    funcs = st.sampled_from(["min", "max", "round", "floor", "ceil", "abs", "int", "nope"])
    return (
        st.builds("{} {} {}".format, children, ops, children)
        | children.map("({})".format)
        | children.map("-{}".format)
        | st.builds("{}({})".format, funcs, st.lists(children, max_size=3).map(", ".join))
    )


@settings(max_examples=200, deadline=None)
@given(st.recursive(_ATOMS, _grow_any, max_leaves=10), _ENVS)
def test_wellformed_expressions_give_a_value_or_expr_error(text, env):
    try:
        value = parse_expr(text).evaluate(env)
    except ExprError as e:
        assert 0 <= e.offset <= len(text)
        return
    if isinstance(value, (int, float)) and not isinstance(value, bool) and parse_expr(text).tree[0] != "name":
        assert math.isfinite(value) and abs(value) <= 2**53


# --- conditionals, comparisons, attributes and items ------------------------------------------


class _Dims(Attributes):
    """A stand-in for a block input's shape: attributes read, unknown ones refused with a hint."""

    kind = "tensor"

    def attribute(self, name):
        if name == "channels":
            return 64
        if name == "shape":
            return [64, 8, 8]
        raise AttributeProblem(f"no attribute '{name}'", hint="try channels")

    def show(self):
        return "(64, 8, 8)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("t * 2 if s == 1 else 3", 12),
        ("t * 2 if s != 1 else 3", 3),
        ("1 if false else 2 if true else 3", 2),  # right-associative
        ("(1 if false else 2) * 3", 6),
        ("not s == 1", False),  # not (s == 1)
        ("not false and false", False),  # (not false) and false
        ("false or true and false", False),  # and binds tighter than or
        ("s < 2 or 1 / 0 > 1", True),  # or reads its right side only when it must
        ("s > 2 and 1 / 0 > 1", False),
        ("1 if true else 1 / 0", 1),  # the branch not taken is not evaluated
        ("xs[0] + xs[-1]", 4),
        ("x.channels * t", 384),
        ("x.shape[1] * x.shape[-1]", 64),
        ("x.shape[0] == x.channels", True),
        ("'same' if t % 2 == 0 else 'valid'", "same"),
        ('name == "a"', True),
        ("1 == 1.0", True),
        ("2 ** 2 >= 4", True),
        ("-2 < -1", True),
    ],
)
def test_conditionals_comparisons_attributes(text, expected):
    env = {"t": 6, "s": 1, "xs": [1, 2, 3], "name": "a", "x": _Dims()}
    got = parse_expr(text).evaluate(env)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("1 if t else 2", "the condition of 'if' must be a boolean, got 6 (integer)", "compare it"),
        ("t and true", "'and' needs booleans, got 6 (integer)", "compare it"),
        ("not t", "'not' needs a boolean, got 6 (integer)", "compare it"),
        ("name == 1", "'==' compares values of one kind, got 'a' (string) and 1 (integer)", None),
        ("name < 1", "'<' needs numbers, got 'a' (string)", None),
        ("xs[3]", "index 3 is out of range for 'xs' (valid: 0 to 2, or -3 to -1 from the end)", None),
        ("xs[true]", "a list index must be an integer, got true (boolean)", None),
        ("t[0]", "6 (integer) is not a list, so it has no items", None),
        ("t.channels", "6 (integer) has no attributes, so no '.channels'", None),
        ("x.length", "'x.length': no attribute 'length'", "try channels"),
        ("x + 1", "arithmetic needs numbers, got (64, 8, 8) (tensor)", None),
    ],
)
def test_conditional_and_attribute_errors(text, message, hint):
    env = {"t": 6, "xs": [1, 2, 3], "name": "a", "x": _Dims()}
    with pytest.raises(ExprError) as info:
        parse_expr(text).evaluate(env)
    assert info.value.message == message
    assert (info.value.hint or "").startswith(hint or "")


def test_names_include_every_operand_of_new_forms():
    expr = parse_expr("a.channels if not b == c[d] else e or f")
    assert expr.names() == {"a", "b", "c", "d", "e", "f"}


def test_unknown_names_suggest_from_scope_before_builtins():
    # `ints` is one edit from the builtin `int` and from the block argument `inst`: scope wins.
    with pytest.raises(ExprError) as info:
        parse_expr("ints * 2").evaluate({"inst": 3})
    assert info.value.hint == "did you mean 'inst'?"
    with pytest.raises(ExprError) as info:
        parse_expr("in.channels").evaluate({"width": 3})
    assert "input of a block" in info.value.hint
