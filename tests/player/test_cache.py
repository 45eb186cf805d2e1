"""The player's local cache: the LRU-by-size core, and its crash-safe shell on disk."""

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadenza.fsio import TEMP_PREFIX
from player.cache import Layers, LocalCache, SizeLru, object_key

VERSION = "tracks/0123456789abcdef/v0123456789ab"


def _key(n: int) -> str:
    return f"{VERSION}/aac_96/seg_{n:05d}.m4s"


@pytest.mark.parametrize(
    ("url", "key"),
    [
        (f"http://edge:8081/p/TOKEN-x_1/{VERSION}/aac_96/seg_00001.m4s?CMCD=a", _key(1)),
        (f"http://offline.invalid/{VERSION}/aac_96/index.m3u8", f"{VERSION}/aac_96/index.m3u8"),
        (f"https://edge/{VERSION}/init.mp4", f"{VERSION}/init.mp4"),
        ("http://edge/p/T/tracks/0123456789abcdef/master.m3u8", None),  # mutable
        (f"http://edge/p/T/{VERSION}/", None),
        (f"http://edge/p/T/{VERSION}/../../x", None),
        (f"http://edge/p/T/{VERSION}/.hidden", None),
        ("http://edge/p/T/tracks/NOT-A-TRACK/v0123456789ab/init.mp4", None),
        ("http://locator/v1/play/0123456789abcdef", None),
    ],
)
def test_keys_are_the_immutable_path_without_token_or_query(url, key):
    assert object_key(url) == key


def test_the_least_recently_used_go_first():
    lru = SizeLru(100)
    assert lru.add("a", 40) == [] and lru.add("b", 40) == []
    lru.touch("a")
    assert lru.add("c", 40) == ["b"]
    assert lru.keys() == ["a", "c"] and lru.total == 80
    assert lru.add("a", 70) == ["c"]  # replaced, and bigger
    assert lru.total == 70 and len(lru) == 1
    assert not lru.admits(101)
    with pytest.raises(ValueError, match="do not fit"):
        lru.add("huge", 101)


OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["add", "touch", "remove"]), st.integers(0, 9), st.integers(0, 60)),
    max_size=60,
)


@given(bound=st.integers(0, 150), operations=OPERATIONS)
def test_the_bound_always_holds_and_the_newest_stays(bound, operations):
    lru = SizeLru(bound)
    sizes: dict[str, int] = {}
    for op, n, size in operations:
        key = str(n)
        if op == "add" and lru.admits(size):
            evicted = lru.add(key, size)
            sizes[key] = size
            for old in evicted:
                assert old != key
                sizes.pop(old)
            assert lru.keys()[-1] == key  # the newest is never evicted
        elif op == "touch" and key in lru:
            lru.touch(key)
            assert lru.keys()[-1] == key
        elif op == "remove":
            lru.remove(key)
            sizes.pop(key, None)
        assert lru.total == sum(sizes.values()) <= bound
        assert set(lru.keys()) == set(sizes)


def test_objects_survive_a_restart_in_their_recency_order(tmp_path: Path):
    cache = LocalCache(tmp_path, max_bytes=300)
    for n in range(3):
        cache.put(_key(n), bytes([n]) * 100)
    assert cache.get(_key(0)) == bytes([0]) * 100  # now the most recent
    reopened = LocalCache(tmp_path, max_bytes=300)
    assert reopened.lru.keys() == [_key(1), _key(2), _key(0)]
    reopened.put(_key(3), b"3" * 100)
    assert reopened.get(_key(1)) is None and reopened.get(_key(0)) is not None
    assert not (tmp_path / "objects" / _key(1)).exists()
    assert (reopened.hits, reopened.misses) == (1, 1)


def test_a_lower_bound_evicts_on_open_and_oversized_objects_are_not_kept(tmp_path: Path):
    cache = LocalCache(tmp_path, max_bytes=1000)
    for n in range(5):
        cache.put(_key(n), b"x" * 200)
    smaller = LocalCache(tmp_path, max_bytes=450)
    assert smaller.lru.total <= 450 and len(smaller.lru) == 2
    files = [p for p in (tmp_path / "objects").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 450
    smaller.put(_key(9), b"y" * 451)
    assert smaller.get(_key(9)) is None


def test_a_half_written_object_is_never_read_and_is_swept(tmp_path: Path):
    cache = LocalCache(tmp_path)
    cache.put(_key(1), b"whole")
    folder = (tmp_path / "objects" / _key(1)).parent
    leftover = folder / f"{TEMP_PREFIX}crashed"
    leftover.write_bytes(b"half")  # what a writer killed before its rename leaves
    reopened = LocalCache(tmp_path)
    assert not leftover.exists()
    assert reopened.lru.keys() == [_key(1)] and reopened.get(_key(1)) == b"whole"


def test_an_object_deleted_by_another_player_is_a_miss(tmp_path: Path):
    cache = LocalCache(tmp_path)
    cache.put(_key(1), b"data")
    os.unlink(tmp_path / "objects" / _key(1))
    assert cache.get(_key(1)) is None and _key(1) not in cache.lru
    with pytest.raises(ValueError, match="immutable"):
        cache.put("tracks/0123456789abcdef/master.m3u8", b"#EXTM3U")


def test_layers_read_in_order_and_keep_in_the_last(tmp_path: Path):
    downloaded, recent = LocalCache(tmp_path / "a"), LocalCache(tmp_path / "b")
    downloaded.put(_key(1), b"downloaded")
    recent.put(_key(1), b"recent")
    recent.put(_key(2), b"recent 2")
    layers = Layers(downloaded, recent)
    assert layers.get(_key(1)) == b"downloaded" and layers.get(_key(2)) == b"recent 2"
    assert layers.get(_key(3)) is None
    layers.put(_key(3), b"fetched")
    assert recent.get(_key(3)) == b"fetched" and downloaded.get(_key(3)) is None
    with pytest.raises(ValueError, match="at least one"):
        Layers()
