"""The filesystem backend's own promises, beyond the shared suite in test_storage.py: temp
files and foreign names are not keys, digests follow replaced files, folders are not objects."""

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
