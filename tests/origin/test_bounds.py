"""Bounds on JSON bodies and query numbers: any input is a value or a ValueError, never more."""

import contextlib
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from origin.bounds import (
    MAX_JSON_DEPTH,
    MAX_QUERY_DIGITS,
    MAX_SEQ,
    parse_json,
    query_int,
    query_seconds,
)

_SCALARS = st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.text(max_size=20)
_FINITE = st.floats(allow_nan=False, allow_infinity=False)
_JSON = st.recursive(
    _SCALARS | _FINITE,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=30,
)


@given(_JSON)
def test_ordinary_json_round_trips(value: Any):
    assert parse_json(json.dumps(value).encode()) == value


@given(st.binary(max_size=200))
def test_any_bytes_are_json_or_a_value_error(data: bytes):
    with contextlib.suppress(ValueError):
        parse_json(data)


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_depth_is_bounded():
    assert parse_json(_nested(MAX_JSON_DEPTH)) is not None
    for depth in (MAX_JSON_DEPTH + 1, 100_000):
        with pytest.raises(ValueError, match="nested deeper"):
            parse_json(_nested(depth))


@pytest.mark.parametrize(
    "text", [b"1" * 5000, b"1e999", b"-1e999", b"NaN", b"Infinity", b"0." + b"1" * 100]
)
def test_numbers_are_bounded_and_finite(text: bytes):
    with pytest.raises(ValueError):
        parse_json(b'{"n": ' + text + b"}")


def test_not_utf8_is_refused():
    with pytest.raises(ValueError, match="UTF-8"):
        parse_json('{"a": "é"}'.encode("latin-1"))


@given(st.text(max_size=30))
def test_query_int_is_in_range_or_a_value_error(text: str):
    try:
        value = query_int(text, "after", 0, 0, MAX_SEQ)
    except ValueError as e:
        assert "after" in str(e)
        return
    assert 0 <= value <= MAX_SEQ


def test_query_int_limits():
    assert query_int(None, "after", 7, 0, 10) == 7
    assert query_int(" 10 ", "after", 0, 0, 10) == 10
    for bad in ("11", "-1", "1" * (MAX_QUERY_DIGITS + 1), "٣", "0x10", ""):
        with pytest.raises(ValueError):
            query_int(bad, "after", 0, 0, 10)


@given(st.text(max_size=30))
def test_query_seconds_are_finite_and_within_bounds(text: str):
    try:
        value = query_seconds(text, "timeout", 0, 60)
    except ValueError:
        return
    assert math.isfinite(value) and 0 <= value <= 60


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1" * 400, "soon"])
def test_query_seconds_refuse_what_is_not_a_finite_number(bad: str):
    with pytest.raises(ValueError, match="timeout"):
        query_seconds(bad, "timeout", 0, 60)
