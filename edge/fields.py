r"""Splitting HTTP list fields (RFC 9110 5.6.1) on commas that are not inside quoted strings.

Inside a quoted string a backslash escapes the next character (a quoted-pair, RFC 9110 5.6.4),
so ``"a\",b"`` is one member.
"""

import re
from collections.abc import Iterable

_QUOTED_PAIR = re.compile(r"\\(.)", re.S)


def split_list(value: str) -> list[str]:
    """The non-empty, stripped members of a comma-separated field value."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in (p.strip() for p in parts) if p]


def unquote(text: str) -> str:
    """The content of a quoted string (its quotes already removed), quoted-pairs undone."""
    return _QUOTED_PAIR.sub(r"\1", text)


# A response's header lines in order, repeated names kept: what a cache stores and relays.
Lines = tuple[tuple[str, str], ...]

# Meaningful for one connection only (RFC 9110 7.6.1), plus the proxy's own authentication.
HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
        "upgrade", "proxy-authenticate", "proxy-authorization",
    }
)  # fmt: skip


def end_to_end(lines: Iterable[tuple[str, str]]) -> Lines:
    """``lines`` without hop-by-hop fields, nor those that Connection names."""
    lines = tuple(lines)
    named = {
        n.lower()
        for name, value in lines
        if name.lower() == "connection"
        for n in split_list(value)
    }
    return tuple((n, v) for n, v in lines if n.lower() not in HOP_BY_HOP and n.lower() not in named)


def combined(lines: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case name -> every line's value joined with ", " (RFC 9110 5.3)."""
    values: dict[str, list[str]] = {}
    for name, value in lines:
        values.setdefault(name.lower(), []).append(value)
    return {name: ", ".join(v) for name, v in values.items()}


def without(lines: Lines, names: Iterable[str]) -> Lines:
    drop = {n.lower() for n in names}
    return tuple((n, v) for n, v in lines if n.lower() not in drop)


# Never taken from a 304 or a HEAD response into the stored one (RFC 9111 3.2): they describe
# the body that the update does not carry.
_NOT_UPDATED = frozenset(
    {"content-length", "content-encoding", "content-range", "transfer-encoding"}
)


def updated(stored: Lines, newer: Lines) -> Lines:
    """The stored header lines, with every field that ``newer`` carries replaced by its lines."""
    incoming = [(n, v) for n, v in end_to_end(newer) if n.lower() not in _NOT_UPDATED]
    replaced = {n.lower() for n, _ in incoming}
    return tuple((n, v) for n, v in stored if n.lower() not in replaced) + tuple(incoming)
