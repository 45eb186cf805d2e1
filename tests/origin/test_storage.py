"""One suite for every storage backend: a real directory and a real S3 API (moto on loopback).

The tests only use the Storage interface, except that on disk they also look for stray temporary
files. Each backend's own promises are checked in test_storage_fs.py and test_storage_s3.py.
"""

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadenza.errors import ConfigError
from origin.errors import ContentMismatch, InvalidKey, ObjectNotFound, ObjectTooLarge
from origin.storage import (
    CHUNK_SIZE,
    MAX_KEY_LENGTH,
    MAX_KEY_SEGMENTS,
    Expected,
    ObjectInfo,
    Storage,
    StorageConfig,
    open_storage,
    validate_key,
)
from tests.origin.conftest import (
    DATA,
    _chunks,
    _create_bucket,
    _files,
    _read_all,
    _s3_config,
    _sha,
)

MiB = 1024 * 1024


async def _failing(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    raise RuntimeError("the upload broke")


@pytest.fixture(params=["filesystem", "s3"])
def config(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> StorageConfig:
    if request.param == "filesystem":
        return StorageConfig(root=tmp_path / "objects")
    return _s3_config(request.getfixturevalue("moto_endpoint"), monkeypatch, tmp_path)


@pytest.fixture
async def storage(config: StorageConfig) -> AsyncIterator[Storage]:
    if config.backend == "s3":
        await _create_bucket(config)
    store = await open_storage(config)
    yield store
    await store.close()


async def _assert_only(storage: Storage, config: StorageConfig, *keys: str) -> None:
    """Exactly ``keys`` are stored: nothing partial, and on disk no temporary file either."""
    assert await storage.list("") == sorted(keys)
    if config.backend == "filesystem":
        assert _files(config.root) == sorted(keys)


# --- the interface, on every backend ------------------------------------------------------------


async def test_put_streams_size_and_sha256_and_reads_back(storage: Storage) -> None:
    parts = [b"", DATA[:1], DATA[1:70], b"", DATA[70:]]
    info = await storage.put("tracks/t1/v1/seg_00001.m4s", _chunks(*parts))
    assert info == ObjectInfo("tracks/t1/v1/seg_00001.m4s", len(DATA), _sha(DATA))
    assert await storage.stat(info.key) == info
    assert await _read_all(storage, info.key) == DATA


async def test_empty_object(storage: Storage) -> None:
    info = await storage.put("empty", _chunks())
    assert info == ObjectInfo("empty", 0, _sha(b""))
    assert await storage.stat("empty") == info
    assert await _read_all(storage, "empty") == b""
    assert await _read_all(storage, "empty", 0, 0) == b""


async def test_missing_object(storage: Storage) -> None:
    assert await storage.stat("nothing/here") is None
    reader = storage.read("nothing/here")  # raises only when iterated
    with pytest.raises(ObjectNotFound):
        await anext(reader)
    with pytest.raises(ObjectNotFound):
        await _read_all(storage, "nothing/here", 5, 5)
    assert ObjectNotFound.status == 404


async def test_put_replaces_an_object(storage: Storage, config: StorageConfig) -> None:
    await storage.put("master.m3u8", _chunks(b"old content, longer than the new one"))
    info = await storage.put("master.m3u8", _chunks(b"new"))
    assert info == ObjectInfo("master.m3u8", 3, _sha(b"new"))
    assert await storage.stat("master.m3u8") == info
    assert await _read_all(storage, "master.m3u8") == b"new"
    await _assert_only(storage, config, "master.m3u8")


async def test_concurrent_puts_leave_one_complete_object(storage: Storage) -> None:
    bodies = [bytes([i]) * (50_000 + i) for i in range(6)]
    await asyncio.gather(*(storage.put("hot", _chunks(b[:25_000], b[25_000:])) for b in bodies))
    stored = await _read_all(storage, "hot")
    assert stored in bodies
    assert await storage.stat("hot") == ObjectInfo("hot", len(stored), _sha(stored))


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, None, DATA),
        (10, 20, DATA[10:20]),
        (10, None, DATA[10:]),
        (0, 1, DATA[:1]),
        (99, None, DATA[99:]),
        (42, 42, b""),
        (0, 0, b""),
        (90, 1000, DATA[90:]),
        (100, None, b""),
        (150, None, b""),
        (150, 160, b""),
    ],
)
async def test_range_reads(storage: Storage, start: int, end: int | None, expected: bytes) -> None:
    await storage.put("seg", _chunks(DATA))
    assert await _read_all(storage, "seg", start, end) == expected


@pytest.mark.parametrize(("start", "end"), [(-1, None), (10, 9), (-5, -1)])
async def test_bad_ranges_are_refused(storage: Storage, start: int, end: int | None) -> None:
    await storage.put("seg", _chunks(DATA))
    with pytest.raises(ValueError, match="byte range"):
        storage.read("seg", start, end)


async def test_large_object_streams_in_small_chunks(storage: Storage) -> None:
    data = random.Random(7).randbytes(5 * MiB)
    parts = [data[i : i + 300_000] for i in range(0, len(data), 300_000)]
    info = await storage.put("big", _chunks(*parts))
    assert info == ObjectInfo("big", len(data), _sha(data))

    chunks = [chunk async for chunk in storage.read("big")]
    assert max(len(c) for c in chunks) <= CHUNK_SIZE
    assert len(chunks) >= len(data) // CHUNK_SIZE
    assert b"".join(chunks) == data

    middle = [chunk async for chunk in storage.read("big", 65_000, 3 * MiB + 7)]
    assert max(len(c) for c in middle) <= CHUNK_SIZE
    assert b"".join(middle) == data[65_000 : 3 * MiB + 7]


async def test_failed_put_leaves_nothing(storage: Storage, config: StorageConfig) -> None:
    with pytest.raises(RuntimeError, match="upload broke"):
        await storage.put("a/b", _failing(DATA, DATA))
    assert await storage.stat("a/b") is None
    await _assert_only(storage, config)


async def test_failed_put_keeps_the_previous_object(
    storage: Storage, config: StorageConfig
) -> None:
    await storage.put("a/b", _chunks(b"old"))
    with pytest.raises(RuntimeError, match="upload broke"):
        await storage.put("a/b", _failing(DATA))
    assert await _read_all(storage, "a/b") == b"old"
    await _assert_only(storage, config, "a/b")


@pytest.mark.parametrize(
    "sent", [b"", b"ol", b"olD", b"old!", b"old" + b"x" * 100_000], ids=["0", "2", "3", "4", "big"]
)
async def test_a_put_that_is_not_what_it_promised_keeps_the_key(
    storage: Storage, config: StorageConfig, sent: bytes
) -> None:
    promise = Expected(3, _sha(b"old"))
    with pytest.raises(ContentMismatch, match="nothing was stored"):
        await storage.put("new", _chunks(sent), expect=promise)
    await storage.put("a/b", _chunks(b"old"), expect=promise)
    with pytest.raises(ContentMismatch):
        await storage.put("a/b", _chunks(sent), expect=promise)
    assert await _read_all(storage, "a/b") == b"old"
    assert await storage.stat("a/b") == ObjectInfo("a/b", 3, _sha(b"old"))
    await _assert_only(storage, config, "a/b")


async def test_nothing_is_stale_in_a_fresh_store(storage: Storage) -> None:
    await storage.put("a/b", _chunks(DATA))
    assert await storage.stale_temp_files(0.0) == []


async def test_cancelled_put_leaves_nothing(storage: Storage, config: StorageConfig) -> None:
    asked_for_more = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield DATA
        asked_for_more.set()  # the first chunk has been taken and written
        await asyncio.Event().wait()  # the upload stalls until the put is cancelled
        yield DATA

    put = asyncio.create_task(storage.put("a/b", stalled()))
    async with asyncio.timeout(5):
        await asked_for_more.wait()
    put.cancel()
    with pytest.raises(asyncio.CancelledError):
        await put
    assert await storage.stat("a/b") is None
    await _assert_only(storage, config)


async def _steps_to_finish(put: "asyncio.Task[ObjectInfo]") -> int:
    """How many event loop iterations ``put`` takes to finish."""
    steps = 0
    async with asyncio.timeout(10):
        while not put.done():
            await asyncio.sleep(0)
            steps += 1
    await put
    return steps


async def test_put_cancelled_at_any_point_is_all_or_nothing(
    storage: Storage, config: StorageConfig
) -> None:
    """Cancel after more and more loop iterations, across a whole put: whatever the put was doing
    (waiting on the uploader, writing in a thread, renaming), the key holds all or nothing."""
    data = random.Random(3).randbytes(200_000)
    parts = [data[i : i + 20_000] for i in range(0, len(data), 20_000)]
    whole = await _steps_to_finish(asyncio.create_task(storage.put("whole", _chunks(*parts))))
    outcomes = set()
    for steps in range(0, whole + whole // 10 + 1, max(1, whole // 40)):
        key = f"k{steps}"
        put = asyncio.create_task(storage.put(key, _chunks(*parts)))
        for _ in range(steps):
            await asyncio.sleep(0)
        put.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await put
        info = await storage.stat(key)
        outcomes.add(info is not None)
        if info is not None:
            assert info == ObjectInfo(key, len(data), _sha(data))
            assert await _read_all(storage, key) == data
    stored = await storage.list("")
    await _assert_only(storage, config, *stored)
    assert False in outcomes  # cancelled before it started


async def test_too_large_stores_nothing(storage: Storage, config: StorageConfig) -> None:
    with pytest.raises(ObjectTooLarge, match="100 bytes"):
        await storage.put("seg", _chunks(DATA[:60], DATA[:41]), max_bytes=100)
    await _assert_only(storage, config)
    info = await storage.put("seg", _chunks(DATA[:60], DATA[:40]), max_bytes=100)
    assert info.size == 100
    with pytest.raises(ObjectTooLarge):
        await storage.put("seg", _chunks(b"x" * 101), max_bytes=100)
    assert await storage.stat("seg") == info
    await _assert_only(storage, config, "seg")
    assert ObjectTooLarge.status == 413


async def test_list_by_prefix_is_sorted(storage: Storage) -> None:
    keys = ["tracks/b/1", "tracks/a/2", "tracks/ab/1", "tracks/a/1", "labels/x", "tracksheet"]
    for key in random.Random(1).sample(keys, len(keys)):
        await storage.put(key, _chunks(b"."))
    assert await storage.list("") == sorted(keys)
    assert await storage.list("tracks/") == sorted(k for k in keys if k.startswith("tracks/"))
    assert await storage.list("tracks/a/") == ["tracks/a/1", "tracks/a/2"]
    assert await storage.list("tracks/a") == ["tracks/a/1", "tracks/a/2", "tracks/ab/1"]
    assert await storage.list("track") == sorted(k for k in keys if k.startswith("track"))
    assert await storage.list("tracks/a/1") == ["tracks/a/1"]
    assert await storage.list("nothing/") == []
    assert await storage.list("../") == []
    assert await storage.list("/tracks") == []


async def test_delete_is_idempotent(storage: Storage, config: StorageConfig) -> None:
    await storage.put("a/b", _chunks(DATA))
    await storage.put("a/c", _chunks(DATA))
    await storage.delete("a/b")
    await storage.delete("a/b")
    await storage.delete("never/stored")
    assert await storage.stat("a/b") is None
    await _assert_only(storage, config, "a/c")


KEY_EDGES = [
    "a",
    "0",
    "A/b-c_d.e/F.G-",
    "x" * 128,
    "/".join(f"s{i}" for i in range(MAX_KEY_SEGMENTS)),
    "/".join(["y" * 127] * 8),  # 1023 characters
    "a..b/c.",
]


async def test_unusual_valid_keys_round_trip(storage: Storage) -> None:
    for key in KEY_EDGES:
        await storage.put(key, _chunks(key.encode()))
    assert await storage.list("") == sorted(KEY_EDGES)
    for key in KEY_EDGES:
        assert await _read_all(storage, key) == key.encode()


BAD_KEYS = ["", "../x", "a/../b", "/abs", "a//b", "a/", "a\\b", "a\x00b", "%2e%2e/x", ".tmp-x"]
CALLS: dict[str, Callable[[Storage, str], Awaitable[object]]] = {
    "put": lambda storage, key: storage.put(key, _chunks(DATA)),
    "stat": lambda storage, key: storage.stat(key),
    "read": _read_all,
    "delete": lambda storage, key: storage.delete(key),
}


@pytest.mark.parametrize("method", CALLS)
async def test_every_method_validates_keys(
    storage: Storage, config: StorageConfig, method: str
) -> None:
    for key in BAD_KEYS:
        with pytest.raises(InvalidKey):
            await CALLS[method](storage, key)
    await _assert_only(storage, config)


# --- key validation (pure) ----------------------------------------------------------------------

SEGMENTS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", fullmatch=True)
KEYS = st.lists(SEGMENTS, min_size=1, max_size=MAX_KEY_SEGMENTS).map("/".join)
BAD_SEGMENTS = ["..", ".", "", ".hidden", "x" * 129, "%2e%2e", "-a", "_a"]
# Only ASCII letters and digits: not an accented letter, an Arabic-Indic digit or a fullwidth A.
BAD_CHARACTERS = ["\\", "\x00", "\x1f", "\x7f", "\n", " ", "%", ":", "é", "٣", "\uff21", "*"]


@given(KEYS)
def test_valid_keys_are_accepted(key: str) -> None:
    if len(key) <= MAX_KEY_LENGTH:
        assert validate_key(key) == key
    else:
        with pytest.raises(InvalidKey):
            validate_key(key)


@given(st.lists(SEGMENTS, min_size=1, max_size=8), st.data())
def test_a_bad_segment_anywhere_is_refused(segments: list[str], data: st.DataObject) -> None:
    bad = data.draw(st.sampled_from(BAD_SEGMENTS))
    segments.insert(data.draw(st.integers(0, len(segments))), bad)
    with pytest.raises(InvalidKey):
        validate_key("/".join(segments))


@given(KEYS, st.data())
def test_a_bad_character_anywhere_is_refused(key: str, data: st.DataObject) -> None:
    where = data.draw(st.integers(0, len(key)))
    bad = data.draw(st.sampled_from(BAD_CHARACTERS))
    with pytest.raises(InvalidKey):
        validate_key(key[:where] + bad + key[where:])


@given(KEYS)
def test_absolute_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidKey):
        validate_key("/" + key)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_accepted_keys_stay_inside_the_root(text: str) -> None:
    try:
        key = validate_key(text)
    except InvalidKey:
        return
    path = PurePosixPath(key)
    assert key.isascii()
    assert not path.is_absolute()
    assert path.as_posix() == key == os.path.normpath(key)
    assert not {".", ".."} & set(path.parts)


def test_key_limits() -> None:
    assert validate_key("/".join(["a"] * MAX_KEY_SEGMENTS))
    with pytest.raises(InvalidKey, match="17 segments"):
        validate_key("/".join(["a"] * (MAX_KEY_SEGMENTS + 1)))
    with pytest.raises(InvalidKey, match="1025 characters"):
        validate_key("/".join(["y" * 127] * 8) + "yy")
    assert InvalidKey.status == 400


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (StorageConfig(backend="ftp"), "unknown storage backend 'ftp'"),
        (StorageConfig(backend="s3"), "needs a bucket"),
        (StorageConfig(backend="s3", bucket="b", prefix="/x"), "must not start with '/'"),
        (StorageConfig(backend="s3", bucket="b", access_key_id="k"), "both"),
    ],
)
async def test_bad_configs_are_refused(config: StorageConfig, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        await open_storage(config)


async def test_filesystem_root_is_created(tmp_path: Path) -> None:
    storage = await open_storage(StorageConfig(root=tmp_path / "new" / "objects"))
    assert (tmp_path / "new" / "objects").is_dir()
    await storage.close()
