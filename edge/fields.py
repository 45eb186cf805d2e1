r"""Splitting HTTP list fields (RFC 9110 5.6.1) on commas that are not inside quoted strings.

Inside a quoted string a backslash escapes the next character (a quoted-pair, RFC 9110 5.6.4),
so ``"a\",b"`` is one member.
"""

import re

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
