"""The S3 backend of origin.storage (AWS, moto, minio), apart so only it needs aiobotocore.
A put is buffered and sent as one PUT, which S3 makes atomic: a failed put sends nothing."""

import builtins
import contextlib
import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from cadenza.errors import ConfigError
from origin.errors import ObjectNotFound, StorageError
from origin.objects import (
    CHUNK_SIZE,
    Expected,
    Meter,
    ObjectInfo,
    StorageConfig,
    check_range,
    is_key,
    validate_key,
)


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
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int | None = None,
        expect: Expected | None = None,
    ) -> ObjectInfo:
        name = self._name(key)
        meter = Meter(key, max_bytes, expect)
        body = bytearray()  # the side copy: nothing reaches the bucket before it is checked
        async for chunk in chunks:
            meter.add(chunk)
            body += chunk
        info = meter.verified()
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
        check_range(start, end)
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
        return sorted(k for k in keys if is_key(k))

    async def stale_temp_files(self, older_than: float) -> builtins.list[str]:
        return []  # puts are buffered in memory and sent as one atomic PUT: no leftovers

    async def remove_temp_file(self, name: str) -> None:
        raise ValueError(f"{name!r} is not a temp file of this store (S3 keeps none)")

    async def close(self) -> None:
        await self._exits.aclose()


def _last(end: int | None) -> str:
    return "" if end is None else str(end - 1)
