"""The disk tier: objects that fell out of memory, kept across restarts (diskcache).

diskcache is synchronous (SQLite plus files), so its calls run in a worker thread; a hit is
promoted to the memory tier by the caller. Bodies are stored with what is needed to serve them.
Concurrent reads of one key share one lookup: a stampede of misses queues one job in the small
thread pool, not one per waiter ahead of the fetch they all wait for. Before that, whether the
key is there at all is asked in the event loop: one indexed SQLite query (about 10 us, and in
WAL mode never behind a writer), so that a cold miss starts its fetch without waiting for a
thread and for the event loop's next turn, which a burst of new connections makes long.
"""

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import diskcache

from edge.freshness import CacheControl, Stored
from edge.memory import Entry, MemoryTier, make_entry

FORMAT = 2  # of the stored records; others are misses


class DiskTier:
    def __init__(self, folder: Path, size_limit: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.cache = diskcache.Cache(
            str(folder), size_limit=size_limit, eviction_policy="least-recently-used"
        )
        self._reading: dict[str, asyncio.Future[Entry | None]] = {}

    async def get(self, key: str) -> Entry | None:
        reading = self._reading.get(key)
        if reading is None:
            if key not in self.cache:  # the index alone, at once: a miss needs no thread
                return None
            reading = asyncio.ensure_future(self._read(key))
            self._reading[key] = reading
            reading.add_done_callback(lambda done: self._forget(key, done))
        # A waiter that gives up (its client left) does not cancel the others' read.
        return await asyncio.shield(reading)

    async def promote(self, key: str, memory: MemoryTier) -> Entry | None:
        """What the disk holds under ``key``, put in ``memory`` (stale copies too: the fetcher
        revalidates them). A copy that a fill stored in memory while the disk was read is the
        newer one and is returned instead: its fill is over, so a miss now would fetch (or
        revalidate) the object a second time. If that fill stored variants (Vary), the disk's
        copy is outdated and None is returned: the caller selects a variant."""
        entry = await self.get(key)
        if key in memory.varies:
            return None
        current = memory.peek(key)
        if current is not None:
            return current
        if entry is not None:
            memory.put(key, entry)
        return entry

    async def _read(self, key: str) -> Entry | None:
        record = await asyncio.to_thread(self.cache.get, key)
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            return None  # written by an older edge: a miss, refetched and rewritten
        return _entry(record)

    def _forget(self, key: str, done: "asyncio.Future[Entry | None]") -> None:
        if self._reading.get(key) is done:
            del self._reading[key]
        if not done.cancelled():
            done.exception()  # retrieved: a failed read is each waiter's own error

    async def remove(self, key: str) -> None:
        await asyncio.to_thread(self.cache.delete, key)

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
        "format": FORMAT,
        "body": entry.body,
        "status": entry.status,
        "headers": entry.headers,
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
    return make_entry(record["status"], record["body"], tuple(record["headers"]), stored)
