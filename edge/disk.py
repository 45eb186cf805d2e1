"""The disk tier: objects that fell out of memory, kept across restarts (diskcache).

diskcache is synchronous (SQLite plus files), so every call runs in a worker thread; a hit is
promoted to the memory tier by the caller. Bodies are stored with what is needed to serve them.
"""

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import diskcache

from edge.freshness import CacheControl, Stored
from edge.memory import Entry


class DiskTier:
    def __init__(self, folder: Path, size_limit: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.cache = diskcache.Cache(
            str(folder), size_limit=size_limit, eviction_policy="least-recently-used"
        )

    async def get(self, key: str) -> Entry | None:
        record = await asyncio.to_thread(self.cache.get, key)
        return _entry(record) if isinstance(record, dict) else None

    async def has(self, key: str) -> bool:
        return await asyncio.to_thread(self.cache.__contains__, key)

    async def put(self, key: str, entry: Entry) -> None:
        await asyncio.to_thread(self.cache.set, key, _record(entry))

    async def remove_prefix(self, prefix: str) -> int:
        def purge() -> int:
            gone = [k for k in self.cache.iterkeys() if isinstance(k, str) and k.startswith(prefix)]
            for key in gone:
                self.cache.delete(key)
            return len(gone)

        return await asyncio.to_thread(purge)

    def volume(self) -> int:
        return int(self.cache.volume())

    def __len__(self) -> int:
        return len(self.cache)

    def close(self) -> None:
        self.cache.close()


def _record(entry: Entry) -> dict[str, Any]:
    stored = entry.stored
    return {
        "body": entry.body,
        "headers": entry.headers,
        "etag": entry.etag,
        "lifetime": stored.lifetime,
        "age_at_response": stored.age_at_response,
        "response_time": stored.response_time,
        "cc": dataclasses.asdict(stored.cc),
    }


def _entry(record: dict[str, Any]) -> Entry:
    stored = Stored(
        record["lifetime"],
        record["age_at_response"],
        record["response_time"],
        CacheControl(**record["cc"]),
    )
    return Entry(record["body"], record["headers"], stored, record["etag"])
