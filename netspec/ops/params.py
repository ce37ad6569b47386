"""Parameter kinds. Each kind knows its JSON Schema fragment, how to normalize a validated value
(ints to tuples of the right rank, integral floats to ints), and a few small valid values that the
registry-driven tests draw from. One definition feeds the schema, `netspec ops`, docs and tests.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from ..record import record

if TYPE_CHECKING:
    from typing import Any

INT_MAX = 2**31 - 1  # larger sizes are never real and would overflow torch's indexing


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


class ParamValueError(ValueError):
    """A value the JSON Schema cannot express as invalid (NaN, inf)."""


@record
class Kind(ABC):
    @abstractmethod
    def schema(self) -> dict[str, Any]:
        """The JSON Schema fragment of a value of this kind."""

    def normalize(self, value: Any) -> Any:
        return value

    def samples(self) -> tuple[Any, ...]:
        return ()

    def describe(self) -> str:
        return type(self).__name__.lower()


def _int_schema(lo: int | None, hi: int | None = INT_MAX) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "integer"}
    if lo is not None:
        s["minimum"] = lo
    if hi is not None:
        s["maximum"] = hi
    return s


@record
class Int(Kind):
    min: int | None = 1
    max: int | None = INT_MAX
    sample_values: tuple[int, ...] = (1, 2, 3, 4, 7)

    def schema(self) -> dict[str, Any]:
        return _int_schema(self.min, self.max)

    def normalize(self, value: Any) -> int:
        return int(value)

    def samples(self) -> tuple[int, ...]:
        return tuple(v for v in self.sample_values if (self.min is None or v >= self.min))

    def describe(self) -> str:
        if self.min is None:
            return "int"
        return f"int >= {self.min}"


@record
class Float(Kind):
    min: float | None = None
    max: float | None = None
    exclusive_max: bool = False
    sample_values: tuple[float, ...] = (0.0, 0.1, 0.5)

    def schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": "number"}
        if self.min is not None:
            s["minimum"] = self.min
        if self.max is not None:
            s["exclusiveMaximum" if self.exclusive_max else "maximum"] = self.max
        return s

    def normalize(self, value: Any) -> float:
        value = float(value)
        if not math.isfinite(value):
            raise ParamValueError(f"a finite number, not {value}")
        return value

    def samples(self) -> tuple[float, ...]:
        return self.sample_values

    def describe(self) -> str:
        lo = "" if self.min is None else f"{self.min} <= "
        hi = "" if self.max is None else (" < " if self.exclusive_max else " <= ") + str(self.max)
        return f"{lo}float{hi}" if lo or hi else "float"


@record
class Bool(Kind):
    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}

    def samples(self) -> tuple[bool, ...]:
        return (True, False)

    def describe(self) -> str:
        return "bool"


@record
class Enum(Kind):
    values: tuple[str, ...] = ()
    meanings: tuple[str, ...] = ()  # what each value means, in order: editors show it in completion and hover

    def schema(self) -> dict[str, Any]:
        return {"enum": list(self.values)}

    def samples(self) -> tuple[str, ...]:
        return self.values

    def describe(self) -> str:
        return " | ".join(str(v) for v in self.values)


@record
class Ints(Kind):
    """An int or a list of `rank` ints (one per spatial axis), normalized to a tuple."""

    rank: int = 1
    min: int = 1
    sample_values: tuple[int, ...] = (1, 2, 3)

    def schema(self) -> dict[str, Any]:
        item = _int_schema(self.min)
        return {
            "type": ["integer", "array"],
            **{k: v for k, v in item.items() if k != "type"},
            "items": item,
            "minItems": self.rank,
            "maxItems": self.rank,
        }

    def normalize(self, value: Any) -> tuple[int, ...]:
        if isinstance(value, list | tuple):
            return tuple(int(v) for v in value)  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]  (isinstance makes Any a list[Unknown]; the schema made the items ints)
        return (int(value),) * self.rank

    def samples(self) -> tuple[int, ...]:
        return tuple(v for v in self.sample_values if v >= self.min)

    def describe(self) -> str:
        return f"int >= {self.min} or list of {self.rank}" if self.rank > 1 else f"int >= {self.min}"


@record
class Padding(Kind):
    """PyTorch conv padding: int, per-axis list, 'same' or 'valid'."""

    rank: int = 1
    # what 'same' and 'valid' mean, for editors (as Enum.meanings)
    meanings: tuple[str, ...] = ("pad so the output has the input's size (stride 1 only)", "no padding, as 0")

    def schema(self) -> dict[str, Any]:
        item = _int_schema(0)
        return {
            "type": ["integer", "array", "string"],
            "minimum": 0,
            "maximum": INT_MAX,
            "items": item,
            "minItems": self.rank,
            "maxItems": self.rank,
            "if": {"type": "string"},
            "then": {"enum": ["same", "valid"]},
        }

    def normalize(self, value: Any) -> tuple[int, ...] | str:
        if value == "valid":
            return (0,) * self.rank
        if isinstance(value, str):
            return value
        return Ints(self.rank, 0).normalize(value)

    def samples(self) -> tuple[int | str, ...]:
        return (0, 1, 2, "same", "valid")

    def describe(self) -> str:
        return "int >= 0, list, 'same' or 'valid'"


@record
class IntList(Kind):
    """A list of ints (reshape targets, permutations)."""

    min_items: int = 1
    max_items: int | None = None
    item_min: int | None = None

    def schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": "array", "items": _int_schema(self.item_min, INT_MAX), "minItems": self.min_items}
        if self.max_items is not None:
            s["maxItems"] = self.max_items
        return s

    def normalize(self, value: Any) -> tuple[int, ...]:
        return tuple(int(v) for v in value)

    def describe(self) -> str:
        return "list of int"


@record
class OutputSize(Kind):
    """Adaptive pooling target: an int or a list with an int or null (keep) per axis."""

    rank: int = 1

    def schema(self) -> dict[str, Any]:
        item = {"type": ["integer", "null"], "minimum": 1, "maximum": INT_MAX}
        return {
            "type": ["integer", "array"],
            "minimum": 1,
            "maximum": INT_MAX,
            "items": item,
            "minItems": self.rank,
            "maxItems": self.rank,
        }

    def normalize(self, value: Any) -> tuple[int | None, ...]:
        if isinstance(value, list | tuple):
            return tuple(None if v is None else int(v) for v in value)  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]  (isinstance makes Any a list[Unknown]; the schema made the items int or null)
        return (int(value),) * self.rank

    def samples(self) -> tuple[int, ...]:
        return (1, 2, 3)

    def describe(self) -> str:
        return f"int >= 1 or list of {self.rank} (int or null)" if self.rank > 1 else "int >= 1"


@record
class Param:
    name: str
    kind: Kind
    default: Any = REQUIRED
    doc: str = ""
    inferred: bool = False  # filled in by shape inference; checked when the user writes it
    sample: bool = True  # include in random-parameter tests
    width: bool = False  # a layer width (channels, features): scale.width multiplies it

    @property
    def required(self) -> bool:
        return self.default is REQUIRED and not self.inferred

    @property
    def json_default(self) -> Any:
        """The default as JSON writes it (tuples as lists); None where there is none to write."""
        d = None if self.default is REQUIRED else self.default
        return list(d) if isinstance(d, tuple) else d  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]  (isinstance makes Any a tuple[Unknown, ...]; any value)

    def schema(self, examples: list[Any] | None = None) -> dict[str, Any]:
        """The value schema with its editor annotations (title, description, default, examples).
        Examples: the given valid values (the layer's registered examples), then the default and
        the kind's samples, up to three."""
        default = self.json_default
        s: dict[str, Any] = {"title": self.name, "description": f"{self.doc} (required)" if self.required else self.doc}
        if default is not None:
            s["default"] = default
        # Plain list work: this runs for every parameter of every layer type on each `check`.
        shown = list(examples) if examples else []
        if len(shown) < 3:
            more = self.kind.samples() if default is None else (default, *self.kind.samples())
            for v in more:
                if v not in shown:  # (True == 1 cannot mix here: a kind is all bools or all numbers)
                    shown.append(v)
        s["examples"] = [list(v) if isinstance(v, tuple) else v for v in shown[:3]]  # pyright: ignore[reportUnknownArgumentType]  (isinstance makes Any a tuple[Unknown, ...]; any values)
        s.update(self.kind.schema())
        return s


# A JSON Schema (ECMA-262) pattern: its `$` is the end of input. Python's re.search would also let
# it match before a final newline ("fc\n"), so netspec reads it with spec/fastschema.ecma_regex.
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


@record
class Accepts:
    """Inputs a layer takes: ranks per sample (without batch), dtype, and what the axes mean."""

    ranks: tuple[int, ...] | None = None  # None: any rank >= min_rank
    dtype: str = "float32"
    axes: str = ""  # e.g. "(C, H, W)", for messages
    min_rank: int = 1
    sample_dims: tuple[int, ...] = (1, 2, 3, 5, 8)

    def ok_rank(self, rank: int) -> bool:
        return rank in self.ranks if self.ranks is not None else rank >= self.min_rank
