"""Secondary cache keys (RFC 9111 4.1): a response with Vary is reused only for requests whose
named header fields match those of the request that produced it.

Pure. Values are compared after the normalisation RFC 9111 4.1 allows (lists joined with ", ",
white space around members folded, names case-insensitive); ``Vary: *`` never matches.
"""

from collections.abc import Mapping

from edge.fields import split_list

STAR = ("*",)


def vary_names(value: str | None) -> tuple[str, ...]:
    """The request fields a response varies on, lower-case, sorted; STAR for ``*``."""
    names = sorted({n.lower() for n in split_list(value or "")})
    return STAR if "*" in names else tuple(names)


def selecting(names: tuple[str, ...], request: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The request's values of ``names`` (``request`` maps lower-case names to combined values)."""
    return tuple((name, _normal(request.get(name))) for name in names)


def _normal(value: str | None) -> str:
    return "\x00" if value is None else ", ".join(split_list(value))


def secondary_key(primary: str, names: tuple[str, ...], request: Mapping[str, str]) -> str:
    """The key of the variant of ``primary`` that this request selects."""
    if not names:
        return primary
    return primary + "\x00" + "\x00".join(f"{n}={v}" for n, v in selecting(names, request))
