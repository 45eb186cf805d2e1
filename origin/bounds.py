"""Bounds on what clients send the origin's API: JSON bodies and numbers in query strings.

Pure. Every parser here raises ValueError with a message a client can act on, so a handler
answers 400 and never lets a hostile input become a 500, a hang or a spinning loop.
"""

import json
import math
from typing import Any

MAX_JSON_BYTES = 8 << 20  # the manifest of an hour-long track is well under 1 MiB
MAX_JSON_DEPTH = 32
MAX_NUMBER_CHARS = 40  # digits, sign, point and exponent of one JSON number
MAX_QUERY_DIGITS = 20
MAX_SEQ = (1 << 63) - 1  # SQLite's largest integer


def parse_json(data: bytes) -> Any:
    """A UTF-8 JSON document no deeper than MAX_JSON_DEPTH, with finite, bounded numbers."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the body must be JSON in UTF-8") from None
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"the body is not JSON ({e.msg} at character {e.pos})") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"a JSON number has more than {MAX_NUMBER_CHARS} characters")
    return int(text)


def _float(text: str) -> float:
    value = float(text) if len(text) <= MAX_NUMBER_CHARS else math.inf
    if not math.isfinite(value):
        raise ValueError("a JSON number is too large or too long")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if level > MAX_JSON_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def query_int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]."""
    if value is None:
        return default
    text = value.strip()
    digits = text.removeprefix("-")
    if not digits.isascii() or not digits.isdigit() or len(digits) > MAX_QUERY_DIGITS:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, not {value[:40]!r}")
    number = int(text)
    if not low <= number <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, not {number}")
    return number


def query_seconds(value: str | None, name: str, default: float, high: float) -> float:
    """A duration query parameter: a finite number of seconds, brought within [0, high]."""
    if value is None:
        return default
    try:
        number = float(value) if len(value) <= MAX_QUERY_DIGITS else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number of seconds, not {value[:40]!r}")
    return min(max(number, 0.0), high)
