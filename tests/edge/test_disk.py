"""The disk tier round-trips entries, survives reopening and purges by prefix."""

import asyncio
from pathlib import Path

from edge.disk import DiskTier
from edge.freshness import CacheControl, Stored
from edge.memory import make_entry

ENTRY = make_entry(
    200,
    b"\x00\x01" * 40_000,
    (("ETag", '"e"'), ("Cache-Control", "public, max-age=60, immutable"), ("Link", "<a>"),
     ("Link", "<b>")),
    Stored(60.0, 1.5, 1000.0, CacheControl(public=True, immutable=True, max_age=60)),
)  # fmt: skip


async def test_entries_round_trip_and_survive_reopening(tmp_path: Path):
    disk = DiskTier(tmp_path, 1 << 30)
    await disk.put("tracks/a/v/seg_00000.m4s", ENTRY)
    disk.close()
    reopened = DiskTier(tmp_path, 1 << 30)
    try:
        assert await reopened.get("tracks/a/v/seg_00000.m4s") == ENTRY
        assert await reopened.get("tracks/a/v/seg_00001.m4s") is None
        assert len(reopened) == 1 and reopened.volume() >= len(ENTRY.body)
    finally:
        reopened.close()


async def test_remove_prefix(tmp_path: Path):
    disk = DiskTier(tmp_path, 1 << 30)
    try:
        for key in ("tracks/a/v/1", "tracks/a/v/2", "tracks/ab/v/1"):
            await disk.put(key, ENTRY)
        assert await disk.remove_prefix("tracks/a/") == 2
        assert await disk.get("tracks/ab/v/1") == ENTRY
        assert len(disk) == 1
    finally:
        disk.close()


class CountingCache:
    """diskcache's Cache, counting the reads that reach it."""

    def __init__(self, cache):
        self.cache = cache
        self.gets = 0

    def get(self, key):
        self.gets += 1
        return self.cache.get(key)

    def __getattr__(self, name):
        return getattr(self.cache, name)


async def test_concurrent_reads_of_one_key_share_one_lookup(tmp_path: Path):
    disk = DiskTier(tmp_path, 1 << 30)
    try:
        await disk.put("tracks/a/v/seg_00000.m4s", ENTRY)
        counting = CountingCache(disk.cache)
        disk.cache = counting
        many = [disk.get("tracks/a/v/seg_00000.m4s") for _ in range(64)]
        assert await asyncio.gather(*many) == [ENTRY] * 64
        assert counting.gets == 1
        # Once done, the next read looks again; another key has its own lookup.
        assert await disk.get("tracks/a/v/seg_00000.m4s") == ENTRY
        assert await disk.get("tracks/a/v/seg_00001.m4s") is None
        assert counting.gets == 3
    finally:
        disk.close()


async def test_a_waiter_that_gives_up_leaves_the_read_to_the_others(tmp_path: Path):
    disk = DiskTier(tmp_path, 1 << 30)
    try:
        await disk.put("tracks/a/v/seg_00000.m4s", ENTRY)
        first = asyncio.ensure_future(disk.get("tracks/a/v/seg_00000.m4s"))
        second = asyncio.ensure_future(disk.get("tracks/a/v/seg_00000.m4s"))
        await asyncio.sleep(0)
        first.cancel()
        assert await second == ENTRY
        assert first.cancelled()
    finally:
        disk.close()
