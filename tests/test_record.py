"""netspec.record against its oracle, the standard library's dataclasses: the same class written
both ways must construct, compare, hash, print, copy and refuse mutation alike."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netspec.record import FrozenInstanceError, asdict, factory, fields, record, replace

VALUES = st.one_of(st.integers(-3, 3), st.text(max_size=2), st.none(), st.tuples(st.integers(0, 2)))


@st.composite
def class_shapes(draw):
    """Field names, how many trailing fields have defaults, and whether the class is frozen."""
    n = draw(st.integers(0, 5))
    names = [f"f{i}" for i in range(n)]
    n_defaults = draw(st.integers(0, n))
    defaults = {name: draw(VALUES) for name in names[n - n_defaults :]}
    return names, defaults, draw(st.booleans())


def make_pair(names, defaults, frozen):
    """The same class as a dataclass and as a record (both named Point)."""

    def body():
        ns = {"__annotations__": dict.fromkeys(names, "object"), "__module__": __name__, **defaults}
        return type("Point", (), ns)

    return dataclasses.dataclass(frozen=frozen, slots=True)(body()), record(frozen=frozen)(body())


def outcome(fn):
    """A call's value, or the type of the exception it raised."""
    try:
        return ("ok", fn())
    except Exception as exc:  # the exception type is the result compared
        return ("raised", type(exc))


@settings(max_examples=150, deadline=None)
@given(shape=class_shapes(), data=st.data())
def test_record_behaves_as_the_equivalent_dataclass(shape, data):
    names, defaults, frozen = shape
    dc, rc = make_pair(names, defaults, frozen)
    n_pos = data.draw(st.integers(0, len(names) + 1))
    args = data.draw(st.lists(VALUES, min_size=n_pos, max_size=n_pos))
    kw_names = data.draw(st.lists(st.sampled_from([*names, "zz"]), unique=True) if names else st.just([]))
    kwargs = {k: data.draw(VALUES) for k in kw_names}

    made_dc = outcome(lambda: dc(*args, **kwargs))
    made_rc = outcome(lambda: rc(*args, **kwargs))
    assert made_dc[0] == made_rc[0], (made_dc, made_rc)
    if made_dc[0] == "raised":
        assert made_rc[1] is TypeError
        return
    a, b = made_dc[1], made_rc[1]
    assert [getattr(b, n) for n in names] == [getattr(a, n) for n in names]
    assert fields(b) == tuple(f.name for f in dataclasses.fields(a))
    assert repr(b) == repr(a)
    assert asdict(b) == dataclasses.asdict(a)
    assert (b == rc(*[getattr(b, n) for n in names])) is True
    assert (b == a) is False  # another class, even with the same fields
    assert outcome(lambda: hash(b))[0] == outcome(lambda: hash(a))[0]
    if frozen and outcome(lambda: hash(a))[0] == "ok":
        assert hash(b) == hash(rc(*[getattr(b, n) for n in names]))
    if names:
        new = data.draw(VALUES)
        assert getattr(replace(b, **{names[0]: new}), names[0]) == new
        assert outcome(lambda: setattr(b, names[0], new))[0] == outcome(lambda: setattr(a, names[0], new))[0]
    for clone in (copy.copy(b), copy.deepcopy(b)):
        assert clone == b and clone is not b


@record
class Loc:
    file: str = "<spec>"
    line: int = 0


@record
class Thing:
    """A docstring, a property, a method using zero-argument super(), a post-init check."""

    name: str
    tags: tuple = ()
    loc: Loc = factory(Loc)

    def __post_init__(self):
        if not self.name:
            raise ValueError("empty name")

    @property
    def title(self) -> str:
        return self.name.title()

    def __str__(self) -> str:
        return "thing " + super().__str__()


@record
class Child(Thing):
    extra: int = 1


@record(frozen=False)
class Builder:
    items: list = factory(list)


def test_frozen_records_refuse_mutation_and_keep_their_slots():
    t = Thing("a")
    with pytest.raises(FrozenInstanceError):
        t.name = "b"
    with pytest.raises(FrozenInstanceError):
        del t.name
    with pytest.raises(AttributeError):
        object.__setattr__(t, "not_a_field", 1)  # slotted: no __dict__ to put it in
    assert isinstance(FrozenInstanceError(), AttributeError)


def test_factories_post_init_properties_and_super():
    a, b = Thing("a"), Thing("a")
    assert a.loc == Loc() and a.loc is not b.loc  # made fresh for each instance
    assert a.title == "A" and str(a).startswith("thing Thing(")
    with pytest.raises(ValueError, match="empty name"):
        Thing("")
    with pytest.raises(ValueError, match="empty name"):
        replace(a, name="")  # replace runs __post_init__ again, as dataclasses.replace does
    assert Thing.__doc__.startswith("A docstring")


def test_inherited_fields_come_first_and_the_subclass_is_still_a_subclass():
    with pytest.raises(ValueError, match="empty name"):
        Child("")  # the base's __post_init__ runs, as in dataclasses
    c = Child("c", extra=5)
    assert fields(c) == ("name", "tags", "loc", "extra")
    assert isinstance(c, Thing) and c != Thing("c")
    assert repr(c) == "Child(name='c', tags=(), loc=Loc(file='<spec>', line=0), extra=5)"
    assert pickle.loads(pickle.dumps(c)) == c


def test_mutable_records_are_unhashable_and_assignable():
    b = Builder()
    b.items.append(1)
    b.items = [2]
    assert b == Builder([2]) and Builder().items == []
    with pytest.raises(TypeError):
        hash(b)


def test_class_definition_mistakes_are_refused():
    with pytest.raises(TypeError, match="without a default follows"):
        record(type("Bad", (), {"__annotations__": {"a": "int", "b": "int"}, "a": 1}))
    with pytest.raises(ValueError, match="mutable default"):
        record(type("Bad", (), {"__annotations__": {"a": "list"}, "a": []}))
    with pytest.raises(TypeError, match="frozen and mutable"):
        record(frozen=False)(type("Bad", (Loc,), {"__annotations__": {"x": "int"}}))
    with pytest.raises(TypeError, match="not a record"):
        fields(object())
