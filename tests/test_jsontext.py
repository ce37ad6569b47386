"""netspec.jsontext: the same JSON as json.dumps, laid out for reading."""

import json

from hypothesis import given
from hypothesis import strategies as st

from netspec.jsontext import dumps

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=30,
)


@given(JSON, st.integers(0, 4))
def test_round_trips_to_the_same_value(value, levels):
    assert json.loads(dumps(value, levels)) == value


def test_rows_of_a_list_one_per_line_and_scalar_lists_inline():
    data = {"name": "x", "shape": [1, 2], "layers": [{"a": 1, "b": [3]}, {"a": 2, "b": []}], "empty": {}}
    assert dumps(data).splitlines() == [
        "{",
        '  "name": "x",',
        '  "shape": [1, 2],',
        '  "layers": [',
        '    {"a": 1, "b": [3]},',
        '    {"a": 2, "b": []}',
        "  ],",
        '  "empty": {}',
        "}",
    ]


def test_non_string_keys_follow_json():
    value = {"k": {1: [2], None: {"x": 1}, 2.5: []}}
    assert json.loads(dumps(value)) == json.loads(json.dumps(value))
