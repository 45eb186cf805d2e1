"""The memory tier: hot objects kept as bytes, so a hit touches neither disk nor a thread.

The eviction policy (``edge.policy``) decides what stays within the byte budget; this tier
holds the bodies and what is needed to serve them (status, header lines, freshness). A response
with Vary is stored under a secondary key (``edge.vary``); the tier remembers which fields each
primary key varies on and which variants it holds, so that one invalidation removes them all.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from edge.fields import Lines, combined, end_to_end, updated, without
from edge.freshness import (
    Stored,
    current_age,
    freshness_lifetime,
    parse_cache_control,
    targeted_cache_control,
)
from edge.policy import Policy

# Computed per answer by the edge itself, or never stored (RFC 9111 3.1).
_NOT_STORED = ("age", "content-length", "accept-ranges", "x-cache")


@dataclass(frozen=True)
class Entry:
    body: bytes
    headers: Lines  # the origin's end-to-end header lines, in order, repeated names kept
    stored: Stored
    etag: str | None
    status: int = 200
    last_modified: str | None = None
    fields: dict[str, str] = field(default_factory=dict, compare=False)  # combined, lower-case
    rendered: dict[str, bytes] = field(default_factory=dict, compare=False)  # answer heads, memo


def new_entry(
    status: int, body: bytes, lines: Lines, request_time: float, response_time: float
) -> Entry:
    """What to keep of a response received at ``response_time`` to a request sent earlier."""
    fields = combined(lines)
    # A cache that heeds CDN-Cache-Control ignores Cache-Control when it is there (RFC 9213).
    targeted = targeted_cache_control(fields.get("cdn-cache-control"))
    cc = parse_cache_control(targeted if targeted is not None else fields.get("cache-control"))
    kept = without(end_to_end(lines), (*_NOT_STORED, *cc.private_fields))
    stored = Stored(
        lifetime=freshness_lifetime(cc, fields, status, response_time),
        age_at_response=current_age(fields, request_time, response_time, response_time),
        response_time=response_time,
        cc=cc,
    )
    return make_entry(status, body, kept, stored)


def refreshed(stale: Entry, lines: Lines, request_time: float, response_time: float) -> Entry:
    """``stale`` freshened by the header fields of a 304, or of a HEAD's 200 that validates it
    (RFC 9111 4.3.4 and 4.3.5)."""
    merged = updated(stale.headers, lines)
    return new_entry(stale.status, stale.body, merged, request_time, response_time)


def make_entry(status: int, body: bytes, headers: Lines, stored: Stored) -> Entry:
    fields = combined(headers)
    return Entry(
        body, headers, stored, fields.get("etag"), status, fields.get("last-modified"), fields
    )


class MemoryTier:
    def __init__(self, policy: Policy, on_evict: Callable[[str], None] = lambda key: None) -> None:
        self.policy = policy
        self.entries: dict[str, Entry] = {}
        self.on_evict = on_evict
        self.varies: dict[str, tuple[str, ...]] = {}  # primary key -> the fields it varies on
        self.variants: dict[str, set[str]] = {}  # primary key -> secondary keys held

    def get(self, key: str) -> Entry | None:
        """The entry, counting the lookup (hit or miss: frequency-based policies need both)."""
        self.policy.get(key)
        return self.entries.get(key)

    def peek(self, key: str) -> Entry | None:
        """The entry without counting an access (for readahead and revalidation)."""
        return self.entries.get(key)

    def put(self, key: str, entry: Entry, primary: str | None = None) -> bool:
        """Store ``entry``; False when the policy declined it. ``primary``: ``key`` is a variant."""
        self.remove(key)
        evicted = self.policy.admit(key, len(entry.body))
        for gone in evicted:
            if gone != key:
                self._forget(gone)
                self.on_evict(gone)
        if key not in self.policy:
            return False
        self.entries[key] = entry
        if primary is not None and primary != key:
            self.variants.setdefault(primary, set()).add(key)
        return True

    def remove(self, key: str) -> None:
        self.policy.remove(key)
        self._forget(key)

    def _forget(self, key: str) -> None:
        self.entries.pop(key, None)
        primary = key.split("\x00", 1)[0]
        if primary != key and primary in self.variants:
            self.variants[primary].discard(key)
            if not self.variants[primary]:
                del self.variants[primary]

    def invalidate(self, primary: str) -> None:
        """Remove ``primary`` and every variant of it (RFC 9111 4.4)."""
        for key in (primary, *self.variants.pop(primary, ())):
            self.remove(key)
        self.varies.pop(primary, None)

    def remove_prefix(self, prefix: str) -> int:
        """Purge every object under ``prefix`` (a takedown); returns how many were held."""
        gone = [k for k in self.entries if k.startswith(prefix)]
        for key in gone:
            self.remove(key)
        return len(gone)

    @property
    def bytes(self) -> int:
        return self.policy.used

    def __len__(self) -> int:
        return len(self.entries)
