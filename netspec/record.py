"""Record classes: the part of `dataclasses` netspec uses, without its start-up cost.

On Python 3.11, `@dataclass(frozen=True)` compiles six generated methods per class with `exec`
(0.6-0.9 ms a class) and `import dataclasses` imports inspect, ast and dis (~8 ms). netspec's
front end defines 30 such classes: a fifth of a whole `netspec summarize` process went to making
them. A record declares its fields the same way, as annotations with optional defaults, and gets
the same methods built from closures instead: no `exec`, no inspect.

    @record                      # frozen and slotted, like @dataclass(frozen=True, slots=True)
    class Location:
        file: str = "<spec>"
        line: int = 0

    @record(frozen=False)        # a mutable builder
    class Scope:
        table: dict = factory(dict)

What a record has, with dataclasses' semantics (tests/test_record.py holds the two to the same
behaviour): `__init__` taking fields positionally or by keyword, then `__post_init__` if defined;
`__eq__` between instances of the same class; `__hash__` when frozen (unhashable when not);
`__repr__`; `__slots__` of its own fields; frozen ones refuse `setattr`/`delattr`, also on copy
and pickle. Fields are inherited from record bases, in order. `replace`, `fields` and `asdict`
work as their dataclasses namesakes do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, overload

    from typing_extensions import dataclass_transform  # typing has it from 3.11; checkers only

    _T = TypeVar("_T")
    _C = TypeVar("_C", bound=type)

_FIELDS = "__record_fields__"


class FrozenInstanceError(AttributeError):
    """Assigning to (or deleting) a field of a frozen record."""


class _Factory:
    """A default made fresh for each instance, as `field(default_factory=...)`."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]):
        self.make = make


if TYPE_CHECKING:  # what type checkers read (PEP 681): records are frozen dataclasses to them

    def factory(make: Callable[[], _T]) -> _T: ...  # the field's type, as dataclasses.field is typed

    @overload
    @dataclass_transform(frozen_default=True)
    def record(cls: _C, /) -> _C: ...

    @overload
    def record(*, frozen: bool = True) -> Callable[[_C], _C]: ...

    def record(cls: type | None = None, /, *, frozen: bool = True) -> Any: ...

else:
    factory = _Factory


def _own_fields(cls: type) -> list[str]:
    # Annotations are strings under `from __future__ import annotations`; ClassVar ones are not fields.
    notes = cls.__dict__.get("__annotations__", {})  # noqa: RUF063  (inspect is what we avoid)
    return [n for n, t in notes.items() if "ClassVar" not in str(t)]


if not TYPE_CHECKING:  # the implementation; checkers read the overloads above

    def record(cls: type | None = None, /, *, frozen: bool = True):
        """Make `cls` a record (see the module docstring); usable bare or as `@record(frozen=False)`."""

        def wrap(cls: type) -> type:
            return _build(cls, frozen)

        return wrap if cls is None else wrap(cls)


def _build(cls: type, frozen: bool) -> type:
    inherited: list[str] = []
    defaults: dict[str, Any] = {}
    for base in reversed(cls.__mro__[1:]):
        if _FIELDS in base.__dict__:
            if base.__dict__["__record_frozen__"] != frozen:
                raise TypeError(f"{cls.__name__}: a record cannot mix frozen and mutable bases")
            inherited += [n for n in base.__dict__[_FIELDS] if n not in inherited]
            defaults.update(base.__dict__["__record_defaults__"])
    own = _own_fields(cls)
    ns = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
    for name in own:
        if name in ns:
            value = ns.pop(name)
            if type(value).__hash__ is None:  # dataclasses' test for a mutable default
                raise ValueError(
                    f"{cls.__name__}.{name}: a mutable default is shared; use factory({type(value).__name__})"
                )
            defaults[name] = value
        else:
            defaults.pop(name, None)  # a redeclared field without a default is required again
    names = tuple(inherited + [n for n in own if n not in inherited])
    first_default = next((i for i, n in enumerate(names) if n in defaults), len(names))
    late = [n for n in names[first_default:] if n not in defaults]
    if late:
        raise TypeError(f"{cls.__name__}: field {late[0]!r} without a default follows one with a default")

    ns["__qualname__"] = cls.__qualname__
    ns["__slots__"] = tuple(n for n in own if n not in inherited)
    ns[_FIELDS] = names
    ns["__record_defaults__"] = defaults
    ns["__record_frozen__"] = frozen
    ns["__init__"] = _init(cls.__qualname__, names, defaults, getattr(cls, "__post_init__", None))
    ns.setdefault("__repr__", _repr)
    ns.setdefault("__eq__", _eq)
    if "__hash__" not in cls.__dict__ or cls.__dict__["__hash__"] is None:
        ns["__hash__"] = _hash if frozen else None
    if frozen:
        ns["__setattr__"] = _refuse
        ns["__delattr__"] = _refuse
    ns["__getstate__"] = _getstate
    ns["__setstate__"] = _setstate
    ns["__match_args__"] = names
    new = type(cls)(cls.__name__, cls.__bases__, ns)
    for value in cls.__dict__.values():  # zero-argument super() must find the new class
        for fn in (value, getattr(value, "fget", None), getattr(value, "__func__", None)):
            code = getattr(fn, "__code__", None)
            closure = getattr(fn, "__closure__", None)
            if code is not None and closure is not None and "__class__" in code.co_freevars:
                closure[code.co_freevars.index("__class__")].cell_contents = new
    return new


def _init(qualname: str, names: tuple[str, ...], defaults: dict[str, Any], post: Any) -> Callable:
    count = len(names)
    setter = object.__setattr__

    def __init__(self, *args, **kwargs):
        if len(args) > count:
            raise TypeError(f"{qualname}() takes {count} field(s), {len(args)} given")
        for name, value in zip(names, args, strict=False):  # args may stop early
            setter(self, name, value)
        used = 0
        for name in names[len(args) :]:
            if name in kwargs:
                value = kwargs[name]
                used += 1
            elif name in defaults:
                value = defaults[name]
                if type(value) is _Factory:
                    value = value.make()
            else:
                raise TypeError(f"{qualname}() missing required field {name!r}")
            setter(self, name, value)
        if used != len(kwargs):
            extra = [k for k in kwargs if k not in names[len(args) :]]
            why = "given twice" if all(k in names for k in extra) else "unexpected"
            raise TypeError(f"{qualname}() got {why} field(s): {', '.join(extra)}")
        if post is not None:
            post(self)

    return __init__


def _values(obj: Any) -> tuple:
    return tuple(getattr(obj, n) for n in type(obj).__record_fields__)


def _repr(self) -> str:
    body = ", ".join(f"{n}={getattr(self, n)!r}" for n in type(self).__record_fields__)
    return f"{type(self).__qualname__}({body})"


def _eq(self, other) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self) -> int:
    return hash(_values(self))


def _refuse(self, name, value=None):
    raise FrozenInstanceError(f"cannot assign to field {name!r}: {type(self).__name__} is frozen")


def _getstate(self) -> tuple:
    return _values(self)


def _setstate(self, state: tuple) -> None:
    for name, value in zip(type(self).__record_fields__, state, strict=True):
        object.__setattr__(self, name, value)


def fields(obj: Any) -> tuple[str, ...]:
    """The field names of a record (class or instance), in order."""
    names = getattr(obj, _FIELDS, None)
    if names is None:
        raise TypeError(f"{obj!r} is not a record")
    return names


def replace(obj: Any, /, **changes: Any) -> Any:
    """A copy of `obj` with `changes` (its `__post_init__` runs again, as in dataclasses)."""
    return type(obj)(**{**{n: getattr(obj, n) for n in fields(obj)}, **changes})


def asdict(obj: Any) -> Any:
    """Records to dicts, recursively through lists, tuples and dicts (as dataclasses.asdict)."""
    if hasattr(type(obj), _FIELDS):
        return {n: asdict(getattr(obj, n)) for n in type(obj).__record_fields__}
    if isinstance(obj, (list, tuple)):
        return type(obj)(asdict(v) for v in obj)
    if isinstance(obj, dict):
        return {asdict(k): asdict(v) for k, v in obj.items()}
    return obj
