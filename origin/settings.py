"""The origin's settings: ``configs/origin.toml``, then environment variables, then flags."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cadenza.errors import ConfigError
from cadenza.settings import check_keys, parse_listen, read_toml, typed
from origin.storage import StorageConfig

SECONDS = 1
MIB = 1 << 20
DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_DATA_DIR = Path("data/origin")
DEFAULT_MASTER_MAX_AGE = 10 * SECONDS
DEFAULT_MAX_OBJECT_BYTES = 64 * MIB
MAX_LONG_POLL = 60 * SECONDS
ENV_OPERATOR_KEY = "CADENZA_OPERATOR_KEY"
DEFAULT_HEAD_TIMEOUT = 10.0 * SECONDS
DEFAULT_KEEPALIVE_TIMEOUT = 75.0 * SECONDS


@dataclass(frozen=True)
class OriginSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = DEFAULT_DATA_DIR
    master_max_age: int = DEFAULT_MASTER_MAX_AGE
    max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES
    operator_key: str | None = None
    storage: StorageConfig = field(default_factory=StorageConfig)
    # Every client connection: the whole request head within head_timeout, and closed after
    # keepalive_timeout without a request.
    head_timeout: float = DEFAULT_HEAD_TIMEOUT
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "catalog.sqlite3"

    def with_data_dir(self, data_dir: Path) -> "OriginSettings":
        storage = self.storage
        if storage.backend == "filesystem":
            storage = replace(storage, root=data_dir / "objects")
        return replace(self, data_dir=data_dir, storage=storage)


_TOP = {
    "listen",
    "data_dir",
    "master_max_age_seconds",
    "max_object_bytes",
    "operator_key",
    "storage",
    "head_timeout_seconds",
    "keepalive_timeout_seconds",
}
_STORAGE = {
    "backend", "bucket", "prefix", "endpoint_url", "region", "access_key_id", "secret_access_key",
}  # fmt: skip


def parse_settings(table: Mapping[str, Any], where: str) -> OriginSettings:
    check_keys(table, _TOP, where)
    host, port = parse_listen(typed(table, "listen", str, where, DEFAULT_LISTEN), where)
    data_dir = Path(typed(table, "data_dir", str, where, str(DEFAULT_DATA_DIR)))
    settings = OriginSettings(
        host=host,
        port=port,
        master_max_age=typed(table, "master_max_age_seconds", int, where, DEFAULT_MASTER_MAX_AGE),
        max_object_bytes=typed(table, "max_object_bytes", int, where, DEFAULT_MAX_OBJECT_BYTES),
        operator_key=typed(table, "operator_key", str, where, "") or None,
        storage=_parse_storage(table.get("storage", {}), f"{where}: [storage]"),
        head_timeout=typed(table, "head_timeout_seconds", float, where, DEFAULT_HEAD_TIMEOUT),
        keepalive_timeout=typed(
            table, "keepalive_timeout_seconds", float, where, DEFAULT_KEEPALIVE_TIMEOUT
        ),
    ).with_data_dir(data_dir)
    if settings.master_max_age < 0 or settings.max_object_bytes <= 0:
        raise ConfigError(f"{where}: master_max_age_seconds and max_object_bytes must be positive")
    if min(settings.head_timeout, settings.keepalive_timeout) <= 0:
        raise ConfigError(
            f"{where}: head_timeout_seconds and keepalive_timeout_seconds must be positive"
        )
    return settings


def _parse_storage(table: Any, where: str) -> StorageConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    check_keys(table, _STORAGE, where)
    backend = typed(table, "backend", str, where, "filesystem")
    if backend not in {"filesystem", "s3"}:
        raise ConfigError(f"{where}: backend must be 'filesystem' or 's3', not {backend!r}")
    if backend == "s3" and not table.get("bucket"):
        raise ConfigError(f"{where}: the s3 backend needs a bucket")

    def optional(key: str) -> str | None:
        return typed(table, key, str, where, "") or None

    return StorageConfig(
        backend=backend,
        bucket=typed(table, "bucket", str, where, ""),
        prefix=typed(table, "prefix", str, where, ""),
        endpoint_url=optional("endpoint_url"),
        region=typed(table, "region", str, where, "us-east-1"),
        access_key_id=optional("access_key_id"),
        secret_access_key=optional("secret_access_key"),
    )


def load_settings(
    config: Path | None,
    *,
    listen: str | None = None,
    data_dir: Path | None = None,
    environ: Mapping[str, str] = os.environ,
) -> OriginSettings:
    """Settings from the file (or defaults), then the environment, then the flags."""
    settings = parse_settings(read_toml(config), str(config)) if config else parse_settings({}, "")
    if key := environ.get(ENV_OPERATOR_KEY):
        settings = replace(settings, operator_key=key)
    if listen is not None:
        host, port = parse_listen(listen, "--listen")
        settings = replace(settings, host=host, port=port)
    if data_dir is not None:
        settings = settings.with_data_dir(data_dir)
    return settings
