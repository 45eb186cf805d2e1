"""The origin's object store: the interface and what its backends (storage_fs, storage_s3) share.
Every backend keeps one rule: an object is visible under its key only once it is complete."""

import asyncio
import builtins
import hashlib
import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cadenza.errors import ConfigError
from origin.errors import InvalidKey, ObjectTooLarge

CHUNK_SIZE = 64 * 1024  # the largest chunk read() yields
MAX_KEY_LENGTH = 1024
MAX_KEY_SEGMENTS = 16

# A segment never starts with '.', so keys cannot be '.', '..' or hidden temporary files.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


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
    # The backends import this module, so they are imported here, once one is needed.
    if config.backend == "filesystem":
        from origin.storage_fs import FileStorage

        try:
            await asyncio.to_thread(config.root.mkdir, parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot use {config.root} as the object store: {e}") from e
        return FileStorage(config.root)
    if config.backend == "s3":
        from origin.storage_s3 import S3Storage

        return await S3Storage.open(config)
    raise ConfigError(f"unknown storage backend {config.backend!r}: use 'filesystem' or 's3'")
