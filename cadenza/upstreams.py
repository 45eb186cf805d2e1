"""Choosing whom to ask: lists of upstream URLs, their health, the parent an object belongs
to, and the Via chain that keeps requests from going round in circles. Pure: the clock is
passed in, nothing here opens a socket.

An upstream that refused a connection, answered 5xx or timed out is *down* for a while
(``Health``); the others are asked first, the down ones only when nothing else is left, so a
dead replica costs one failed attempt per ``down_seconds``, not one per request. Parents are
ranked per object key by rendezvous hashing (highest random weight): every child with the same
parents ranks them alike, so an object is fetched from the origin once per parent tier, and
removing a parent moves only the objects it ranked first.
"""

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cadenza.errors import ConfigError

MAX_UPSTREAMS = 32
DOWN_SECONDS = 10.0


def parse_urls(raw: Any, where: str, *, allow_empty: bool = False) -> str:
    """A list of base URLs as a TOML array or one comma-separated string, checked and written
    back as ``URL,URL`` (no trailing slashes), in the order given."""
    if isinstance(raw, str):
        items = [i.strip() for i in raw.split(",")]
        items = [] if items == [""] else items
    elif isinstance(raw, list | tuple) and all(isinstance(i, str) for i in raw):
        items = [i.strip() for i in raw]
    else:
        raise ConfigError(f"{where} must be a URL, or several as a list or comma-separated")
    if not items and not allow_empty:
        raise ConfigError(f"{where}: name at least one URL")
    if len(items) > MAX_UPSTREAMS:
        raise ConfigError(f"{where}: at most {MAX_UPSTREAMS} URLs, got {len(items)}")
    urls = []
    for item in items:
        url = item.rstrip("/")
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number in range
        except ValueError:
            parts = parts._replace(netloc="")
        if parts.scheme not in ("http", "https") or not parts.hostname or "," in url:
            raise ConfigError(f"{where}: {item!r} is not an http(s)://HOST[:PORT] URL")
        if url in urls:
            raise ConfigError(f"{where}: {url!r} is named twice")
        urls.append(url)
    return ",".join(urls)


def split_urls(text: str) -> tuple[str, ...]:
    """The URLs of a list that ``parse_urls`` wrote."""
    return tuple(u for u in text.split(",") if u)


def weight(key: str, upstream: str) -> int:
    """The rendezvous weight of ``upstream`` for ``key``: stable across processes and hosts."""
    digest = hashlib.blake2b(f"{upstream}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rendezvous(key: str, upstreams: Iterable[str]) -> list[str]:
    """``upstreams`` ranked for ``key``, the one to ask first first (ties by name)."""
    return sorted(upstreams, key=lambda u: (-weight(key, u), u))


@dataclass
class Health:
    """A passive view of upstreams: which failed lately, and so are asked last."""

    down_seconds: float = DOWN_SECONDS
    down_until: dict[str, float] = field(default_factory=dict)

    def failed(self, upstream: str, now: float) -> bool:
        """Mark ``upstream`` down; True when it was up (the moment to log once)."""
        was_up = self.is_up(upstream, now)
        self.down_until[upstream] = now + self.down_seconds
        return was_up

    def succeeded(self, upstream: str) -> bool:
        """Mark ``upstream`` up; True when it had been marked down."""
        return self.down_until.pop(upstream, None) is not None

    def is_up(self, upstream: str, now: float) -> bool:
        return self.down_until.get(upstream, 0.0) <= now

    def ordered(self, upstreams: Sequence[str], now: float) -> list[str]:
        """``upstreams`` in their order of preference, those that are down moved to the end."""
        up = [u for u in upstreams if self.is_up(u, now)]
        return up + [u for u in upstreams if not self.is_up(u, now)]


# RFC 9110 7.6.3: Via = #( received-protocol RWS received-by [ RWS comment ] )
MAX_VIA_ENTRIES = 16
_COMMENT = re.compile(r"\([^()]*\)")


def via_names(value: str | None) -> list[str]:
    """The received-by names of a Via field value, in order (comments left out)."""
    if not value:
        return []
    for _ in range(4):  # comments nest; deeper ones are no Via any proxy writes
        value = _COMMENT.sub("", value)
    names = []
    for entry in value.split(","):
        words = entry.split()
        if len(words) >= 2:
            names.append(words[1])
    return names


def passed_through(value: str | None, name: str) -> bool:
    """Whether a request with this Via already went through ``name``, or through more hops
    than any sane hierarchy has (a loop through names this edge does not know)."""
    names = via_names(value)
    return name in names or len(names) >= MAX_VIA_ENTRIES


def via_after(value: str | None, name: str) -> str:
    """The Via to send upstream: the request's own, then this hop."""
    hop = f"1.1 {name}"
    return f"{value}, {hop}" if value else hop
