"""The filesystem backend of origin.storage: objects as files at ``root/key``.
A put writes a hidden temp file, checks and fsyncs it, then renames it into place: never a
partial or unchecked object under a key."""

import asyncio
import builtins
import contextlib
import hashlib
import os
import secrets
import stat as stat_mode
import time
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Callable
from io import BufferedReader, BufferedWriter
from pathlib import Path, PurePosixPath
from typing import ParamSpec, TypeVar

from cadenza.fsio import TEMP_PREFIX, fsync_dir
from origin.errors import ObjectNotFound, StorageError
from origin.objects import (
    CHUNK_SIZE,
    Expected,
    Meter,
    ObjectInfo,
    check_range,
    is_key,
    validate_key,
)

DIGEST_CACHE_SIZE = 100_000  # sha256 values the filesystem backend keeps for stat()

P = ParamSpec("P")
T = TypeVar("T")


async def _settled(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking file operation in a thread. When the caller is cancelled meanwhile, the
    operation still finishes before the cancellation goes on, so cleanup never races it."""
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved: the cancellation is what the caller hears about
        raise


_Stamp = tuple[int, int, int]  # size, mtime_ns, inode: a new object gets a new inode


def _stamp(st: os.stat_result) -> _Stamp:
    return st.st_size, st.st_mtime_ns, st.st_ino


class _TempFile:
    """The hidden file a put writes before renaming it into place. Its methods block."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temp = path.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        self._file: BufferedWriter | None = None

    def create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.temp, "xb")  # noqa: SIM115 (closed by commit or discard)

    def write(self, chunk: bytes) -> None:
        assert self._file is not None
        self._file.write(chunk)

    def commit(self) -> _Stamp:
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        stamp = _stamp(os.fstat(self._file.fileno()))  # rename keeps size, mtime and inode
        self._file.close()
        os.replace(self.temp, self.path)
        fsync_dir(self.path.parent)
        return stamp

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            if self._file is not None:
                self._file.close()
            self.temp.unlink(missing_ok=True)


class _OpenObject:
    """An object file opened for reading. Its methods block."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BufferedReader | None = None

    def open(self, start: int) -> int:
        """Open, seek to ``start`` and return the object's size."""
        self._file = open(self.path, "rb")  # noqa: SIM115 (closed by close)
        self._file.seek(start)
        return os.fstat(self._file.fileno()).st_size

    def read(self, size: int) -> bytes:
        assert self._file is not None
        return self._file.read(size)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _digest(path: Path) -> tuple[_Stamp, str]:
    with open(path, "rb") as f:
        stamp = _stamp(os.fstat(f.fileno()))
        return stamp, hashlib.file_digest(f, "sha256").hexdigest()


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return  # no object under this key
    fsync_dir(path.parent)


def _walk(folder: Path, root: Path) -> builtins.list[str]:
    """Every key stored under ``folder``; hidden entries (temporary files) are not keys."""
    keys: builtins.list[str] = []
    for parent, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        base = Path(parent).relative_to(root)
        keys.extend((base / name).as_posix() for name in files if not name.startswith("."))
    return keys


_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


class FileStorage:
    """Objects as files at ``root/key``. A put writes a hidden ``.tmp-`` file in the object's
    folder, fsyncs it and renames it into place, so a crash leaves at worst a hidden temp file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # Objects are immutable once written, so a digest stays valid while the stamp matches.
        self._digests: OrderedDict[str, tuple[_Stamp, str]] = OrderedDict()

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def _remember(self, key: str, stamp: _Stamp, sha256: str) -> None:
        self._digests[key] = (stamp, sha256)
        self._digests.move_to_end(key)
        if len(self._digests) > DIGEST_CACHE_SIZE:
            self._digests.popitem(last=False)

    def _failure(self, action: str, key: str, error: OSError) -> StorageError:
        return StorageError(f"could not {action} object {key!r} under {self.root}: {error}")

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int | None = None,
        expect: Expected | None = None,
    ) -> ObjectInfo:
        """Store ``chunks`` under ``key``. A put cancelled during its final rename may still have
        stored the complete, checked object, never a partial one."""
        temp = _TempFile(self._path(key))
        meter = Meter(key, max_bytes, expect)
        try:
            await _settled(temp.create)
            async for chunk in chunks:
                meter.add(chunk)
                await _settled(temp.write, chunk)
            info = meter.verified()  # before the rename: a mismatch never reaches the key
            stamp = await _settled(temp.commit)
        except BaseException as e:
            # Not in a thread: this must run even while the task is being cancelled, and
            # _settled guarantees that no thread still uses the file.
            temp.discard()
            if isinstance(e, OSError):
                raise self._failure("store", key, e) from e
            raise
        self._remember(key, stamp, info.sha256)
        return info

    async def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = await asyncio.to_thread(os.stat, path)
            if not stat_mode.S_ISREG(st.st_mode):
                return None
            stamp = _stamp(st)
            known = self._digests.get(key)
            if known is not None and known[0] == stamp:
                self._digests.move_to_end(key)
                return ObjectInfo(key, stamp[0], known[1])
            stamp, sha256 = await asyncio.to_thread(_digest, path)
        except _MISSING:
            return None
        except OSError as e:
            raise self._failure("stat", key, e) from e
        self._remember(key, stamp, sha256)
        return ObjectInfo(key, stamp[0], sha256)

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self._path(key)
        check_range(start, end)
        return self._read(key, _OpenObject(path), start, end)

    async def _read(
        self, key: str, obj: _OpenObject, start: int, end: int | None
    ) -> AsyncIterator[bytes]:
        try:
            try:
                size = await _settled(obj.open, start)
            except _MISSING as e:
                raise ObjectNotFound(f"no object {key!r} under {self.root}") from e
            position, stop = start, size if end is None else min(end, size)
            while position < stop:
                chunk = await _settled(obj.read, min(CHUNK_SIZE, stop - position))
                if not chunk:
                    break
                position += len(chunk)
                yield chunk
        except OSError as e:
            raise self._failure("read", key, e) from e
        finally:
            obj.close()  # a read-only close does no I/O worth a thread

    async def delete(self, key: str) -> None:
        path = self._path(key)
        self._digests.pop(key, None)
        try:
            await asyncio.to_thread(_unlink, path)
        except OSError as e:
            raise self._failure("delete", key, e) from e

    async def list(self, prefix: str) -> builtins.list[str]:
        folder, _, _ = prefix.rpartition("/")
        if folder and not is_key(folder):
            return []  # no key can start with this prefix
        try:
            keys = await asyncio.to_thread(_walk, self.root / folder, self.root)
        except OSError as e:
            raise StorageError(f"could not list {prefix!r} under {self.root}: {e}") from e
        return sorted(k for k in keys if k.startswith(prefix) and is_key(k))

    async def stale_temp_files(self, older_than: float) -> builtins.list[str]:
        cutoff = time.time() - older_than
        try:
            return await asyncio.to_thread(_temp_files, self.root, cutoff)
        except OSError as e:
            raise StorageError(f"could not look for temp files under {self.root}: {e}") from e

    async def remove_temp_file(self, name: str) -> None:
        path = self.root / name
        if not path.name.startswith(TEMP_PREFIX) or ".." in PurePosixPath(name).parts:
            raise ValueError(f"{name!r} is not a temp file of this store")
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except OSError as e:
            raise self._failure("remove temp file", name, e) from e

    async def close(self) -> None:
        return None


def _temp_files(root: Path, cutoff: float) -> builtins.list[str]:
    """Temp files under ``root`` last changed before ``cutoff``, relative to ``root``."""
    found: builtins.list[str] = []
    for parent, _dirs, files in os.walk(root):
        for name in files:
            if not name.startswith(TEMP_PREFIX):
                continue
            path = Path(parent) / name
            with contextlib.suppress(FileNotFoundError):  # a put just renamed or removed it
                if path.stat().st_mtime < cutoff:
                    found.append(path.relative_to(root).as_posix())
    return sorted(found)
