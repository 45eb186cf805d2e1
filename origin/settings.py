"""The origin's settings: ``configs/origin.toml``, its part of the fleet file, environment
variables (``CADENZA_ORIGIN_<KEY>``, ``CADENZA_OPERATOR_KEY``), then flags."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cadenza.errors import ConfigError
from cadenza.fleet import load_fleet
from cadenza.settings import (
    Layer,
    check_keys,
    file_layers,
    load,
    load_service,
    non_negative,
    positive,
    setting,
    typed,
)
from origin.database import POSTGRESQL_SCHEMES
from origin.storage import StorageConfig

SECONDS = 1
MIB = 1 << 20
DEFAULT_DATA_DIR = Path("data/origin")
DEFAULT_MASTER_MAX_AGE = 10 * SECONDS
DEFAULT_MAX_OBJECT_BYTES = 64 * MIB
MAX_LONG_POLL = 60 * SECONDS
ENV_OPERATOR_KEY = "CADENZA_OPERATOR_KEY"
DEFAULT_HEAD_TIMEOUT = 10.0 * SECONDS
DEFAULT_KEEPALIVE_TIMEOUT = 75.0 * SECONDS


def _catalog_url(value: Any) -> str | None:
    if value.startswith(POSTGRESQL_SCHEMES):
        return None
    return "must be a postgresql://USER@HOST/DATABASE URL (leave it out for SQLite)"


def _storage(raw: Any, where: str) -> StorageConfig:
    return _parse_storage(raw, f"{where.removesuffix(': storage')}: [storage]")


@dataclass(frozen=True)
class OriginSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = setting(
        DEFAULT_DATA_DIR, help="the catalog and filesystem objects", metavar="DIR"
    )
    # Cache-Control max-age of master playlists (the mutable object).
    master_max_age: int = setting(
        DEFAULT_MASTER_MAX_AGE, key="master_max_age_seconds", check=non_negative
    )
    max_object_bytes: int = setting(DEFAULT_MAX_OBJECT_BYTES, check=positive)
    # A PostgreSQL catalog that origin replicas share; None keeps catalog.sqlite3 in data_dir.
    catalog: str | None = setting(
        None,
        check=_catalog_url,
        secret=True,
        help="a PostgreSQL URL shared by origin replicas (default: SQLite in the data folder)",
        metavar="URL",
    )
    operator_key: str | None = setting(None, env=ENV_OPERATOR_KEY, secret=True)
    storage: StorageConfig = setting(factory=StorageConfig, parse=_storage)
    # Every client connection: the whole request head within head_timeout, and closed after
    # keepalive_timeout without a request.
    head_timeout: float = setting(DEFAULT_HEAD_TIMEOUT, key="head_timeout_seconds", check=positive)
    keepalive_timeout: float = setting(
        DEFAULT_KEEPALIVE_TIMEOUT, key="keepalive_timeout_seconds", check=positive
    )

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "catalog.sqlite3"

    @property
    def catalog_location(self) -> Path | str:
        """What ``Catalog.open`` takes: the PostgreSQL URL, or the SQLite file."""
        return self.catalog or self.catalog_path

    def with_data_dir(self, data_dir: Path) -> "OriginSettings":
        storage = self.storage
        if storage.backend == "filesystem":
            storage = replace(storage, root=data_dir / "objects")
        return replace(self, data_dir=data_dir, storage=storage)


_STORAGE = {
    "backend", "bucket", "prefix", "endpoint_url", "region", "access_key_id", "secret_access_key",
}  # fmt: skip
ENV_PREFIX = "CADENZA_ORIGIN_"


def parse_settings(table: Mapping[str, Any], where: str) -> OriginSettings:
    settings = load(OriginSettings, [Layer(table, where)])
    return settings.with_data_dir(settings.data_dir)


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
    config: Path | None = None,
    *,
    fleet: Path | None = None,
    origin_id: str | None = None,
    environ: Mapping[str, str] = os.environ,
    **flags: Any,
) -> OriginSettings:
    """Settings from the file (or defaults), the fleet file's part, then the environment, then
    non-None flags."""
    fleet_layers = []
    if fleet is not None:
        members = load_fleet(fleet)
        config = config or members.origin(origin_id).config
        where = f"{fleet}: origin {members.origin(origin_id).id}"
        fleet_layers = [Layer(members.origin_table(origin_id), where)]
    elif origin_id is not None:
        raise ConfigError("--id names an origin of a fleet file: give --fleet FILE too")
    files = file_layers(config) + fleet_layers
    settings = load_service(OriginSettings, ENV_PREFIX, files, environ, flags)
    return settings.with_data_dir(settings.data_dir)
