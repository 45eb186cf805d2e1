"""Splitting HTTP list fields (RFC 9110 5.6.1) on commas that are not inside quoted strings."""


def split_list(value: str) -> list[str]:
    """The non-empty, stripped members of a comma-separated field value."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in (p.strip() for p in parts) if p]
