"""The filesystem backend's own promises, beyond the shared suite in test_storage.py: temp
files and foreign names are not keys, digests follow replaced files, folders are not objects."""

import os
import time
from pathlib import Path

import pytest

from cadenza.fsio import TEMP_PREFIX, write_atomic
from origin.errors import ObjectNotFound, StorageError
from origin.storage import ObjectInfo
from origin.storage_fs import FileStorage
from tests.origin.conftest import DATA, _chunks, _files, _read_all, _sha


async def test_list_ignores_temp_files_and_foreign_names(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    await storage.put("tracks/t/seg", _chunks(DATA))
    for name in [f"{TEMP_PREFIX}abc", f"tracks/t/{TEMP_PREFIX}123", "tracks/.hidden/x", "a b"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"junk")
    assert await storage.list("") == ["tracks/t/seg"]
    assert await storage.list("tracks/t/") == ["tracks/t/seg"]


async def test_stale_temp_files_are_found_by_age_and_removed(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    await storage.put("tracks/t/seg", _chunks(DATA))
    old, new = tmp_path / f"tracks/t/{TEMP_PREFIX}old", tmp_path / f"{TEMP_PREFIX}new"
    for path in (old, new):
        path.write_bytes(b"partial")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert await storage.stale_temp_files(3600) == [f"tracks/t/{TEMP_PREFIX}old"]
    await storage.remove_temp_file(f"tracks/t/{TEMP_PREFIX}old")
    assert not old.exists() and new.exists()
    for name in ("tracks/t/seg", f"../{TEMP_PREFIX}x"):
        with pytest.raises(ValueError, match="not a temp file"):
            await storage.remove_temp_file(name)
    assert (tmp_path / "tracks/t/seg").exists()


async def test_stat_digest_follows_a_replaced_file(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    await storage.put("seg", _chunks(b"aaaa"))
    assert (await storage.stat("seg")) == ObjectInfo("seg", 4, _sha(b"aaaa"))
    write_atomic(tmp_path / "seg", b"bbbb")  # same size, new file: the cached digest is stale
    assert (await storage.stat("seg")) == ObjectInfo("seg", 4, _sha(b"bbbb"))
    assert (await FileStorage(tmp_path).stat("seg")) == ObjectInfo("seg", 4, _sha(b"bbbb"))


async def test_a_folder_is_not_an_object(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    await storage.put("a/b", _chunks(DATA))
    assert await storage.stat("a") is None
    with pytest.raises(ObjectNotFound):
        await _read_all(storage, "a")
    await storage.delete("a")
    with pytest.raises(StorageError, match="'a/b/c'"):
        await storage.put("a/b/c", _chunks(DATA))
    with pytest.raises(StorageError, match="'a'"):
        await storage.put("a", _chunks(DATA))
    assert _files(tmp_path) == ["a/b"]
