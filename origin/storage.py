"""The origin's object store: the interface its backends (storage_fs, storage_s3) implement.
Every backend keeps one rule: an object is visible under its key only once it is complete and
checked, so a failed or mismatched put never changes what a key holds."""

import asyncio
import builtins
from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol

from cadenza.errors import ConfigError
from origin.objects import (
    CHUNK_SIZE,
    MAX_KEY_LENGTH,
    MAX_KEY_SEGMENTS,
    Expected,
    ObjectInfo,
    StorageConfig,
    validate_key,
)
from origin.storage_fs import FileStorage

__all__ = [
    "CHUNK_SIZE",
    "MAX_KEY_LENGTH",
    "MAX_KEY_SEGMENTS",
    "Expected",
    "ObjectInfo",
    "Storage",
    "StorageConfig",
    "open_storage",
    "validate_key",
]


class Storage(Protocol):
    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int | None = None,
        expect: Expected | None = None,
    ) -> ObjectInfo:
        """Store the chunks under ``key``, replacing any object there, all or nothing.

        The bytes are written aside and take the key only once complete and, with ``expect``,
        only if they match it (ContentMismatch otherwise): a failed put leaves the key as it was.
        """

    async def stat(self, key: str) -> ObjectInfo | None: ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes [start, end) in chunks of at most CHUNK_SIZE; ObjectNotFound on first iteration."""
        ...

    async def delete(self, key: str) -> None: ...

    async def list(self, prefix: str) -> builtins.list[str]:
        """The sorted keys that start with ``prefix`` (a plain string prefix, not a folder)."""
        ...

    async def stale_temp_files(self, older_than: float) -> builtins.list[str]:
        """Leftovers of puts killed mid-way, last modified more than ``older_than`` s ago."""
        ...

    async def remove_temp_file(self, name: str) -> None: ...

    async def close(self) -> None: ...


async def open_storage(config: StorageConfig) -> Storage:
    """The backend that ``config`` names, ready to use; close() it when done."""
    if config.backend == "filesystem":
        try:
            await asyncio.to_thread(config.root.mkdir, parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot use {config.root} as the object store: {e}") from e
        return FileStorage(config.root)
    if config.backend == "s3":
        from origin.storage_s3 import S3Storage  # only an S3 origin needs aiobotocore

        return await S3Storage.open(config)
    raise ConfigError(f"unknown storage backend {config.backend!r}: use 'filesystem' or 's3'")
