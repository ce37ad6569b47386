"""Symbolic dims (ir/dims.py): canonical, so equal exactly when their texts are; exact for every
size; printed as Python reads them back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netspec.compiler import compile_text
from netspec.ir import dims
from netspec.ir import types as T

T_, U_ = dims.symbol("T"), dims.symbol("U")


@pytest.mark.parametrize(
    ("dim", "text"),
    [
        (T.add(T.add(T.add(T.add("T", -2), 1), -2), 1), "T-2"),  # two kernel-2 convs
        (T.add(T.add("T", -3), 1), "T-2"),  # one kernel-3 conv: the same text, so equal
        (T.floordiv_plus1(T.add("T", -8), 2), "(T-6)//2"),  # floor((T-8)/2)+1, one floor
        (T.floordiv_plus1(T.add("T", -1), 2, ceil=True), "(T+2)//2"),  # ceil(x/k) = (x+k-1)//k
        (dims.floordiv(dims.floordiv(T_, 2), 3), "T//6"),
        (dims.floordiv(dims.plus(dims.floordiv(T_, 2), 1), 2), "(T+2)//4"),
        (T.mul(["T", 4, "U"]), "4*T*U"),
        (dims.times(dims.floordiv(T_, 2), -1), "-(T//2)"),  # not (-T)//2
        (T.total(["T", 3, "T"]), "2*T+3"),
        (dims.smaller(dims.plus(T_, 3), dims.plus(T_, 1)), "T+1"),  # a constant difference decides
        (dims.smaller(T_, U_), "min(T, U)"),
        (dims.plus(T_, dims.times(T_, -1)), 0),  # no symbol left: an int
    ],
)
def test_canonical_forms(dim, text):
    assert dim == text and type(dim) is (int if isinstance(text, int) else dims.Sym)


_OPS = st.lists(
    st.tuples(st.sampled_from(["plus", "floordiv", "ceildiv", "times", "min", "plus_u"]), st.integers(-9, 9)),
    min_size=1,
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(ops=_OPS, t=st.integers(1, 400), u=st.integers(1, 400))
def test_every_chain_is_exact_and_reads_back(ops, t, u):
    """Whatever the chain of operations layers apply, the dim equals plain integer arithmetic at
    every size, and its text, read back by Python, gives the same number."""
    d, want = dims.symbol("T"), t
    for op, k in ops:
        kk = abs(k) % 5 + 1
        if op == "plus":
            d, want = dims.plus(d, k), want + k
        elif op == "floordiv":
            d, want = dims.floordiv(d, kk), want // kk
        elif op == "ceildiv":
            d, want = dims.ceildiv(d, kk), -(-want // kk)
        elif op == "times":
            d, want = dims.times(d, k), want * k
        elif op == "min":
            d, want = dims.smaller(d, dims.plus(U_, k)), min(want, u + k)
        else:
            d, want = dims.plus(d, U_), want + u
    env = {"T": t, "U": u}
    if isinstance(d, int):
        assert d == want
        return
    assert d.value(env) == want
    assert eval(str(d), {"__builtins__": {}, "min": min}, env) == want  # the text means what it says


def test_the_ops_floor_does_not_import_the_spec_floor():
    import ast
    from pathlib import Path

    import netspec.ops as ops

    for path in Path(ops.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level:
                assert not node.module.startswith("spec"), f"{path.name} imports ..{node.module}"


def test_a_summary_shows_canonical_lengths():
    text = """\
netspec: 1
inputs:
  x: {shape: [2, T]}
dims: {T: 40}
layers:
  - conv1d: {out_channels: 4, kernel_size: 8}
  - maxpool1d: {kernel_size: 2}
  - conv1d: {out_channels: 4, kernel_size: 3, stride: 2}
  - global_avgpool
"""
    res = compile_text(text)
    assert res.ok
    assert [la.out_type.shape[-1] for la in res.typed.layers[:3]] == ["T-7", "(T-7)//2", "(T-9)//4"]
    assert [c.macs for c in res.typed.layers[:1]] == [4 * 2 * 8 * 33]


def test_a_dim_survives_pickle_and_copy():
    import copy
    import pickle

    d = dims.floordiv(dims.plus(T_, -7), 2)
    for again in (pickle.loads(pickle.dumps(d)), copy.deepcopy(d), copy.copy(d)):
        assert again == d == "(T-7)//2" and again.poly == d.poly and again.value({"T": 20}) == 6
