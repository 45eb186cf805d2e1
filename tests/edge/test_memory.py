"""The memory tier keeps bodies within the policy's byte budget and purges by prefix."""

from edge.freshness import CacheControl, Stored
from edge.memory import Entry, MemoryTier, make_entry
from edge.policy import make_policy


def entry(size: int) -> Entry:
    return make_entry(
        200, b"x" * size, (("ETag", '"e"'),), Stored(60, 0, 0, CacheControl(max_age=60))
    )


def test_eviction_keeps_bytes_within_budget_and_reports_each_eviction():
    evicted = []
    tier = MemoryTier(make_policy("lru", 300), on_evict=evicted.append)
    for name in ("a", "b", "c"):
        assert tier.put(name, entry(100))
    tier.get("a")  # a is now the most recent
    assert tier.put("d", entry(100))
    assert tier.peek("b") is None and tier.peek("a") is not None
    assert tier.bytes == 300 and len(tier) == 3 and evicted == ["b"]


def test_an_object_larger_than_the_budget_is_declined():
    tier = MemoryTier(make_policy("s3fifo", 100))
    assert not tier.put("big", entry(101))
    assert tier.peek("big") is None and tier.bytes == 0


def test_remove_prefix_purges_one_track():
    tier = MemoryTier(make_policy("lru", 10_000))
    for key in ("tracks/a/v/1", "tracks/a/v/2", "tracks/ab/v/1", "tracks/b/v/1"):
        tier.put(key, entry(10))
    assert tier.remove_prefix("tracks/a/") == 2
    assert sorted(tier.entries) == ["tracks/ab/v/1", "tracks/b/v/1"]
    assert tier.bytes == 20
