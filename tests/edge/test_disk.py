"""The disk tier round-trips entries, survives reopening, purges by prefix and promotes its
reads to memory."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from edge.disk import DiskTier
from edge.freshness import CacheControl, Stored
from edge.memory import MemoryTier, make_entry
from edge.policy import make_policy

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

    def __contains__(self, key):
        return key in self.cache

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
        # Once done, the next read looks again; a key the disk does not hold needs no read.
        assert await disk.get("tracks/a/v/seg_00000.m4s") == ENTRY
        assert await disk.get("tracks/a/v/seg_00001.m4s") is None
        assert counting.gets == 2
    finally:
        disk.close()


class CountingExecutor(ThreadPoolExecutor):
    """The event loop's default executor, counting the jobs that reach a thread."""

    jobs = 0

    def submit(self, *args, **kwargs):
        self.jobs += 1
        return super().submit(*args, **kwargs)


async def test_a_key_the_disk_does_not_hold_is_a_miss_without_a_thread(tmp_path: Path):
    """A cold miss starts its fetch at once: no job waits in the thread pool, and no turn of
    the event loop (long while a burst of connections arrives) for its answer."""
    disk = DiskTier(tmp_path, 1 << 30)
    executor = CountingExecutor(max_workers=1)
    asyncio.get_running_loop().set_default_executor(executor)
    try:
        await disk.put(KEY, ENTRY)
        executor.jobs = 0
        missing = asyncio.ensure_future(disk.get("tracks/a/v/seg_00001.m4s"))
        assert missing.done() is False
        await asyncio.sleep(0)  # one step of the coroutine: a miss is decided in it
        assert missing.done() and missing.result() is None
        assert executor.jobs == 0
        assert await disk.get(KEY) == ENTRY and executor.jobs == 1
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


class HeldCache:
    """diskcache's Cache, whose reads wait until ``release`` is set (they run in a thread)."""

    def __init__(self, cache):
        self.cache = cache
        self.reading = threading.Event()
        self.release = threading.Event()

    def get(self, key):
        self.reading.set()
        assert self.release.wait(10.0), "the test never released the read"
        return self.cache.get(key)

    def __contains__(self, key):
        return key in self.cache

    def __getattr__(self, name):
        return getattr(self.cache, name)


async def _promote_while(disk: DiskTier, memory: MemoryTier, key: str, meanwhile) -> object:
    """``disk.promote(key, memory)``, with ``meanwhile()`` run while the disk is read."""
    held = HeldCache(disk.cache)
    disk.cache = held
    promoting = asyncio.ensure_future(disk.promote(key, memory))
    assert await asyncio.to_thread(held.reading.wait, 10.0)
    meanwhile()
    held.release.set()
    return await asyncio.wait_for(promoting, 10.0)


KEY = "tracks/a/v/seg_00000.m4s"
NEWER = make_entry(200, b"newer", (("ETag", '"n"'),), ENTRY.stored)


async def test_a_read_is_promoted_to_memory_unless_a_fill_stored_a_newer_copy_meanwhile(
    tmp_path: Path,
):
    disk = DiskTier(tmp_path, 1 << 30)
    try:
        await disk.put(KEY, ENTRY)
        memory = MemoryTier(make_policy("lru", 1 << 20))
        assert await disk.promote(KEY, memory) == ENTRY
        assert memory.peek(KEY) == ENTRY
        memory.remove(KEY)
        got = await _promote_while(disk, memory, KEY, lambda: memory.put(KEY, NEWER))
        assert got == NEWER and memory.peek(KEY) == NEWER
    finally:
        disk.close()


async def test_a_read_is_not_promoted_when_a_fill_stored_variants_meanwhile(tmp_path: Path):
    disk = DiskTier(tmp_path, 1 << 30)
    try:
        await disk.put(KEY, ENTRY)
        memory = MemoryTier(make_policy("lru", 1 << 20))
        variant = KEY + "\x00accept-language=fr"

        def store_variants() -> None:
            memory.varies[KEY] = ("accept-language",)
            memory.put(variant, NEWER, KEY)

        assert await _promote_while(disk, memory, KEY, store_variants) is None
        assert memory.peek(KEY) is None  # the outdated copy takes no room
        assert memory.peek(variant) == NEWER and len(memory) == 1
    finally:
        disk.close()
