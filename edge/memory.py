"""The memory tier: hot objects kept as bytes, so a hit touches neither disk nor a thread.

The eviction policy (``edge.policy``) decides what stays within the byte budget; this tier
holds the bodies and what is needed to serve them (headers, freshness, ETag).
"""

from collections.abc import Callable
from dataclasses import dataclass

from edge.freshness import Stored
from edge.policy import Policy


@dataclass(frozen=True)
class Entry:
    body: bytes
    headers: dict[str, str]  # the origin's end-to-end headers worth repeating
    stored: Stored
    etag: str | None


class MemoryTier:
    def __init__(self, policy: Policy, on_evict: Callable[[str], None] = lambda key: None) -> None:
        self.policy = policy
        self.entries: dict[str, Entry] = {}
        self.on_evict = on_evict

    def get(self, key: str) -> Entry | None:
        """The entry, counting the lookup (hit or miss: frequency-based policies need both)."""
        self.policy.get(key)
        return self.entries.get(key)

    def peek(self, key: str) -> Entry | None:
        """The entry without counting an access (for readahead and revalidation)."""
        return self.entries.get(key)

    def put(self, key: str, entry: Entry) -> bool:
        """Store ``entry``; False when the policy declined it."""
        self.remove(key)
        evicted = self.policy.admit(key, len(entry.body))
        for gone in evicted:
            if gone != key:
                self.entries.pop(gone, None)
                self.on_evict(gone)
        if key in self.policy:
            self.entries[key] = entry
            return True
        return False

    def remove(self, key: str) -> None:
        self.policy.remove(key)
        self.entries.pop(key, None)

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
