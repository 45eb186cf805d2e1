"""The S3 backend's own promises, beyond the shared suite in test_storage.py: keys live under
the bucket prefix with their digest, prefixes are separate, a missing bucket is refused."""

from dataclasses import replace
from pathlib import Path

import pytest

from cadenza.errors import ConfigError
from origin.storage import ObjectInfo, StorageConfig, open_storage
from tests.origin.conftest import (
    DATA,
    PREFIX,
    _chunks,
    _create_bucket,
    _raw_s3,
    _read_all,
    _s3_config,
    _sha,
)


@pytest.fixture
async def s3_config(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> StorageConfig:
    config = _s3_config(moto_endpoint, monkeypatch, tmp_path)
    await _create_bucket(config)
    return config


async def test_s3_objects_live_under_the_prefix_with_their_digest(s3_config: StorageConfig) -> None:
    storage = await open_storage(s3_config)
    try:
        await storage.put("tracks/t/seg", _chunks(DATA))
        async with _raw_s3(s3_config) as s3:
            await s3.put_object(Bucket=s3_config.bucket, Key="elsewhere/x", Body=b"x")
            await s3.put_object(Bucket=s3_config.bucket, Key=f"{PREFIX}bad key", Body=b"x")
            await s3.put_object(Bucket=s3_config.bucket, Key=f"{PREFIX}foreign", Body=DATA)
            listed = await s3.list_objects_v2(Bucket=s3_config.bucket, Prefix=PREFIX)
            head = await s3.head_object(Bucket=s3_config.bucket, Key=f"{PREFIX}tracks/t/seg")
        assert f"{PREFIX}tracks/t/seg" in [item["Key"] for item in listed["Contents"]]
        assert head["Metadata"] == {"sha256": _sha(DATA)}
        assert await storage.list("") == ["foreign", "tracks/t/seg"]
        # stored by another tool, without the digest in its metadata
        assert await storage.stat("foreign") == ObjectInfo("foreign", len(DATA), _sha(DATA))
    finally:
        await storage.close()


async def test_s3_prefixes_are_separate_stores(s3_config: StorageConfig) -> None:
    first = await open_storage(s3_config)
    second = await open_storage(replace(s3_config, prefix="other"))  # the same as "other/"
    try:
        await first.put("k", _chunks(b"first"))
        await second.put("k", _chunks(b"second"))
        assert await _read_all(first, "k") == b"first"
        assert await first.list("") == await second.list("") == ["k"]
    finally:
        await first.close()
        await second.close()


async def test_s3_missing_bucket_is_a_config_error(s3_config: StorageConfig) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        await open_storage(replace(s3_config, bucket="no-such-bucket"))
