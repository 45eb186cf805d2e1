"""The origin's object store: one small async interface, a filesystem backend and an S3 backend.

The rule every backend keeps: an object is visible under its key only once it is complete, so a
failed, oversized or cancelled put leaves nothing behind and a reader never sees part of an object.
"""

import asyncio
import builtins
import contextlib
import hashlib
import os
import re
import secrets
import stat as stat_mode
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from io import BufferedReader, BufferedWriter
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from cadenza.errors import ConfigError
from cadenza.fsio import TEMP_PREFIX, fsync_dir
from origin.errors import InvalidKey, ObjectNotFound, ObjectTooLarge, StorageError

CHUNK_SIZE = 64 * 1024  # the largest chunk read() yields
MAX_KEY_LENGTH = 1024
MAX_KEY_SEGMENTS = 16
DIGEST_CACHE_SIZE = 100_000  # sha256 values the filesystem backend keeps for stat()

# A segment never starts with '.', so keys cannot be '.', '..' or hidden temporary files.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str  # lowercase hex of the content


@dataclass(frozen=True)
class StorageConfig:
    backend: str = "filesystem"  # or "s3"
    root: Path = Path("data/objects")  # filesystem backend
    bucket: str = ""  # s3
    prefix: str = ""  # s3, a folder prepended to every key (no leading slash)
    endpoint_url: str | None = None  # s3, e.g. http://127.0.0.1:PORT for moto/minio
    region: str = "us-east-1"
    access_key_id: str | None = None  # None: the usual AWS_* environment variables / config
    secret_access_key: str | None = None


class Storage(Protocol):
    async def put(
        self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int | None = None
    ) -> ObjectInfo:
        """Store the chunks under ``key``, replacing any object there, all or nothing."""

    async def stat(self, key: str) -> ObjectInfo | None: ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes [start, end) in chunks of at most CHUNK_SIZE; ObjectNotFound on first iteration."""
        ...

    async def delete(self, key: str) -> None: ...

    async def list(self, prefix: str) -> builtins.list[str]:
        """The sorted keys that start with ``prefix`` (a plain string prefix, not a folder)."""
        ...

    async def close(self) -> None: ...


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative POSIX path, else raise InvalidKey saying why."""
    rule = (
        f"a key is 1 to {MAX_KEY_SEGMENTS} '/'-separated segments of at most 128 letters, digits,"
        f" '.', '_' or '-', each starting with a letter or digit; {MAX_KEY_LENGTH} characters at"
        " most"
    )
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"invalid object key of {len(key)} characters: {rule}")
    segments = key.split("/")
    if len(segments) > MAX_KEY_SEGMENTS:
        raise InvalidKey(f"invalid object key {key!r} of {len(segments)} segments: {rule}")
    for segment in segments:
        if not _SEGMENT.fullmatch(segment):
            raise InvalidKey(f"invalid object key {key!r}, segment {segment!r}: {rule}")
    return key


def _is_key(name: str) -> bool:
    try:
        validate_key(name)
    except InvalidKey:
        return False
    return True


def _check_range(start: int, end: int | None) -> None:
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"invalid byte range [{start}, {end}): need 0 <= start <= end")


class _Meter:
    """Counts and hashes a put's bytes as they stream by, and enforces its byte limit."""

    def __init__(self, key: str, max_bytes: int | None) -> None:
        self.key = key
        self.max_bytes = max_bytes
        self.size = 0
        self._sha256 = hashlib.sha256()

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise ObjectTooLarge(
                f"object {self.key!r} is larger than its limit of {self.max_bytes} bytes;"
                " nothing was stored"
            )
        self._sha256.update(chunk)

    def info(self) -> ObjectInfo:
        return ObjectInfo(self.key, self.size, self._sha256.hexdigest())


async def open_storage(config: StorageConfig) -> Storage:
    """The backend that ``config`` names, ready to use; close() it when done."""
    if config.backend == "filesystem":
        try:
            await asyncio.to_thread(config.root.mkdir, parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot use {config.root} as the object store: {e}") from e
        return FileStorage(config.root)
    if config.backend == "s3":
        return await S3Storage.open(config)
    raise ConfigError(f"unknown storage backend {config.backend!r}: use 'filesystem' or 's3'")


# --- filesystem ----------------------------------------------------------------------------------


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
        self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int | None = None
    ) -> ObjectInfo:
        """Store ``chunks`` under ``key``. A put cancelled during its final rename may still have
        stored the complete object, never a partial one."""
        temp = _TempFile(self._path(key))
        meter = _Meter(key, max_bytes)
        try:
            await _settled(temp.create)
            async for chunk in chunks:
                meter.add(chunk)
                await _settled(temp.write, chunk)
            stamp = await _settled(temp.commit)
        except BaseException as e:
            # Not in a thread: this must run even while the task is being cancelled, and
            # _settled guarantees that no thread still uses the file.
            temp.discard()
            if isinstance(e, OSError):
                raise self._failure("store", key, e) from e
            raise
        info = meter.info()
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
        _check_range(start, end)
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
        if folder and not _is_key(folder):
            return []  # no key can start with this prefix
        try:
            keys = await asyncio.to_thread(_walk, self.root / folder, self.root)
        except OSError as e:
            raise StorageError(f"could not list {prefix!r} under {self.root}: {e}") from e
        return sorted(k for k in keys if k.startswith(prefix) and _is_key(k))

    async def close(self) -> None:
        return None


# --- S3 ------------------------------------------------------------------------------------------


def _s3_status(error: ClientError) -> tuple[int, str]:
    response: dict[str, Any] = error.response
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    return status, str(response.get("Error", {}).get("Code", ""))


def _s3_prefix(prefix: str) -> str:
    if prefix.startswith("/"):
        raise ConfigError(f"storage prefix {prefix!r} must not start with '/'")
    return f"{prefix.rstrip('/')}/" if prefix.strip("/") else ""


class S3Storage:
    """Objects in an S3 bucket (or moto, minio) under ``prefix``, one aiobotocore client each.

    put buffers the object in memory (segments are a few hundred KB) so that a failed or oversized
    put sends nothing; S3 makes the single PUT atomic. The sha256 travels as object metadata.
    """

    _STREAM_ERRORS = (BotoCoreError, ClientError, aiohttp.ClientError)

    def __init__(
        self, client: Any, bucket: str, prefix: str, exits: contextlib.AsyncExitStack
    ) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix
        self._exits = exits

    @classmethod
    async def open(cls, config: StorageConfig) -> "S3Storage":
        if not config.bucket:
            raise ConfigError("the s3 storage backend needs a bucket: set the storage bucket")
        if (config.access_key_id is None) != (config.secret_access_key is None):
            raise ConfigError("set both the s3 access key id and secret access key, or neither")
        prefix = _s3_prefix(config.prefix)
        options = AioConfig(
            s3={"addressing_style": "path"} if config.endpoint_url else None,
            connect_timeout=10,
            read_timeout=30,
            retries={"mode": "standard", "max_attempts": 3},
        )
        exits = contextlib.AsyncExitStack()
        client = await exits.enter_async_context(
            get_session().create_client(
                "s3",
                region_name=config.region,
                endpoint_url=config.endpoint_url,
                aws_access_key_id=config.access_key_id,
                aws_secret_access_key=config.secret_access_key,
                config=options,
            )
        )
        storage = cls(client, config.bucket, prefix, exits)
        try:
            await storage._check_bucket(config.endpoint_url or "AWS")
        except BaseException:
            await exits.aclose()
            raise
        return storage

    async def _check_bucket(self, endpoint: str) -> None:
        where = f"bucket {self.bucket!r} at {endpoint}"
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except ClientError as e:
            status, _ = _s3_status(e)
            if status == 404:
                raise ConfigError(f"{where} does not exist: create it or fix the bucket") from e
            if status == 403:
                raise ConfigError(f"{where} refused access: check the credentials") from e
            raise StorageError(f"cannot reach {where}: {e}") from e
        except BotoCoreError as e:
            raise StorageError(f"cannot reach {where}: {e}") from e

    def _name(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _failure(self, action: str, key: str, error: Exception) -> StorageError:
        return StorageError(
            f"could not {action} object {key!r} in s3://{self.bucket}/{self.prefix}: {error}"
        )

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int | None = None
    ) -> ObjectInfo:
        name = self._name(key)
        meter = _Meter(key, max_bytes)
        body = bytearray()
        async for chunk in chunks:
            meter.add(chunk)
            body += chunk
        info = meter.info()
        try:
            await self._client.put_object(
                Bucket=self.bucket, Key=name, Body=bytes(body), Metadata={"sha256": info.sha256}
            )
        except (BotoCoreError, ClientError) as e:
            raise self._failure("store", key, e) from e
        return info

    async def _head(self, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = await self._client.head_object(
                Bucket=self.bucket, Key=self._name(key)
            )
        except ClientError as e:
            if _s3_status(e)[0] == 404:
                return None
            raise self._failure("stat", key, e) from e
        except BotoCoreError as e:
            raise self._failure("stat", key, e) from e
        return head

    async def stat(self, key: str) -> ObjectInfo | None:
        head = await self._head(key)
        if head is None:
            return None
        sha256 = head.get("Metadata", {}).get("sha256")
        if sha256 is None:  # stored by another tool: hash it once per call
            digest = hashlib.sha256()
            async for chunk in self.read(key):
                digest.update(chunk)
            sha256 = digest.hexdigest()
        return ObjectInfo(key, int(head["ContentLength"]), str(sha256))

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        name = self._name(key)
        _check_range(start, end)
        return self._read(key, name, start, end)

    async def _read(self, key: str, name: str, start: int, end: int | None) -> AsyncIterator[bytes]:
        if end == start:  # an HTTP range cannot be empty; still report a missing object
            if await self._head(key) is None:
                raise ObjectNotFound(f"no object {key!r} in s3://{self.bucket}/{self.prefix}")
            return
        ranged = {} if start == 0 and end is None else {"Range": f"bytes={start}-{_last(end)}"}
        try:
            response = await self._client.get_object(Bucket=self.bucket, Key=name, **ranged)
        except ClientError as e:
            status, code = _s3_status(e)
            if status == 404:
                raise ObjectNotFound(
                    f"no object {key!r} in s3://{self.bucket}/{self.prefix}"
                ) from e
            if code == "InvalidRange":
                return  # start is at or past the end of the object
            raise self._failure("read", key, e) from e
        except BotoCoreError as e:
            raise self._failure("read", key, e) from e
        try:
            async with response["Body"] as body:
                async for chunk in body.iter_chunks(CHUNK_SIZE):
                    yield chunk
        except self._STREAM_ERRORS as e:
            raise self._failure("read", key, e) from e

    async def delete(self, key: str) -> None:
        try:
            await self._client.delete_object(Bucket=self.bucket, Key=self._name(key))
        except (BotoCoreError, ClientError) as e:
            raise self._failure("delete", key, e) from e

    async def list(self, prefix: str) -> builtins.list[str]:
        keys: builtins.list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                keys.extend(item["Key"][len(self.prefix) :] for item in page.get("Contents", []))
        except (BotoCoreError, ClientError) as e:
            raise StorageError(
                f"could not list {prefix!r} in s3://{self.bucket}/{self.prefix}: {e}"
            ) from e
        return sorted(k for k in keys if _is_key(k))

    async def close(self) -> None:
        await self._exits.aclose()


def _last(end: int | None) -> str:
    return "" if end is None else str(end - 1)
