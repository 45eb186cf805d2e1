"""The edge's settings: ``configs/edge-*.toml``, then environment variables, then flags."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cadenza.errors import ConfigError
from cadenza.settings import check_keys, override, parse_listen, read_toml, typed

SECONDS = 1.0
MIB = 1 << 20


@dataclass(frozen=True)
class EdgeSettings:
    host: str = "127.0.0.1"
    port: int = 8081
    origin: str = "http://127.0.0.1:8080"
    region: str = "local"
    latitude: float = 0.0
    longitude: float = 0.0
    capacity_bps: float = 1e9  # egress the operator allows; the status reports load against it
    memory_bytes: int = 256 * MIB
    disk_bytes: int = 4096 * MIB
    cache_dir: Path = Path("data/edge")
    policy: str = "s3fifo"
    first_byte_timeout: float = 2 * SECONDS
    fetch_timeout: float = 30 * SECONDS
    between_bytes_timeout: float = 10 * SECONDS  # an upstream body that stalls longer is cut
    # Stale copies served on upstream errors beyond what stale-if-error allows (like nginx's
    # proxy_cache_use_stale): none by default.
    stale_grace: float = 0 * SECONDS
    negative_ttl: float = 10 * SECONDS  # a /tracks/ 404 or 410 without freshness of its own
    max_object_bytes: int = 64 * MIB  # larger answers are relayed, not stored
    # Every client connection: the whole request head within head_timeout, and closed after
    # keepalive_timeout without a request.
    head_timeout: float = 10 * SECONDS
    keepalive_timeout: float = 75 * SECONDS
    readahead_seconds: float = 20 * SECONDS
    allow_unsigned: bool = False
    # Cache any path of any HTTP/1.1 origin by RFC 9111; music features stay on /tracks/.
    generic: bool = False
    locator: str = ""  # where the hot list comes from; without one, the edge's own counts
    preposition_interval: float = 60 * SECONDS  # 0: no pre-positioning
    preposition_tracks: int = 20
    preposition_seconds: float = 12 * SECONDS  # of every rung of every hot track
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    token_keys: Mapping[str, bytes] = field(default_factory=dict)
    # Set per worker process by the command, not by configuration (see edge.peers).
    peer_folder: str = ""
    worker: int = 0


_KEYS = {
    "listen", "origin", "region", "latitude", "longitude", "capacity_bps", "memory_bytes",
    "disk_bytes",
    "cache_dir", "policy", "first_byte_timeout_seconds", "fetch_timeout_seconds",
    "stale_grace_seconds", "between_bytes_timeout_seconds", "negative_ttl_seconds",
    "max_object_bytes", "head_timeout_seconds", "keepalive_timeout_seconds",
    "readahead_seconds", "allow_unsigned", "workers", "token_keys",
    "generic", "locator", "preposition_interval_seconds", "preposition_tracks",
    "preposition_seconds",
}  # fmt: skip


def parse_settings(table: Mapping[str, Any], where: str) -> EdgeSettings:
    check_keys(table, _KEYS, where)
    d = EdgeSettings()
    host, port = parse_listen(typed(table, "listen", str, where, f"{d.host}:{d.port}"), where)
    raw_keys = table.get("token_keys", {})
    if not isinstance(raw_keys, dict) or not all(isinstance(v, str) for v in raw_keys.values()):
        raise ConfigError(f"{where}: [token_keys] maps key ids to secret strings")
    settings = EdgeSettings(
        host=host,
        port=port,
        origin=typed(table, "origin", str, where, d.origin),
        region=typed(table, "region", str, where, d.region),
        latitude=typed(table, "latitude", float, where, d.latitude),
        longitude=typed(table, "longitude", float, where, d.longitude),
        capacity_bps=typed(table, "capacity_bps", float, where, d.capacity_bps),
        memory_bytes=typed(table, "memory_bytes", int, where, d.memory_bytes),
        disk_bytes=typed(table, "disk_bytes", int, where, d.disk_bytes),
        cache_dir=Path(typed(table, "cache_dir", str, where, str(d.cache_dir))),
        policy=typed(table, "policy", str, where, d.policy),
        first_byte_timeout=typed(
            table, "first_byte_timeout_seconds", float, where, d.first_byte_timeout
        ),
        fetch_timeout=typed(table, "fetch_timeout_seconds", float, where, d.fetch_timeout),
        stale_grace=typed(table, "stale_grace_seconds", float, where, d.stale_grace),
        between_bytes_timeout=typed(
            table, "between_bytes_timeout_seconds", float, where, d.between_bytes_timeout
        ),
        negative_ttl=typed(table, "negative_ttl_seconds", float, where, d.negative_ttl),
        max_object_bytes=typed(table, "max_object_bytes", int, where, d.max_object_bytes),
        head_timeout=typed(table, "head_timeout_seconds", float, where, d.head_timeout),
        keepalive_timeout=typed(
            table, "keepalive_timeout_seconds", float, where, d.keepalive_timeout
        ),
        readahead_seconds=typed(table, "readahead_seconds", float, where, d.readahead_seconds),
        allow_unsigned=typed(table, "allow_unsigned", bool, where, False),
        generic=typed(table, "generic", bool, where, False),
        locator=typed(table, "locator", str, where, d.locator),
        preposition_interval=typed(
            table, "preposition_interval_seconds", float, where, d.preposition_interval
        ),
        preposition_tracks=typed(table, "preposition_tracks", int, where, d.preposition_tracks),
        preposition_seconds=typed(
            table, "preposition_seconds", float, where, d.preposition_seconds
        ),
        workers=typed(table, "workers", int, where, d.workers),
        token_keys={kid: secret.encode() for kid, secret in raw_keys.items()},
    )
    if (
        min(settings.memory_bytes, settings.disk_bytes, settings.workers) <= 0
        or settings.max_object_bytes <= 0
        or min(settings.first_byte_timeout, settings.head_timeout, settings.keepalive_timeout) <= 0
        or min(settings.preposition_interval, settings.preposition_tracks) < 0
    ):
        raise ConfigError(
            f"{where}: memory_bytes, disk_bytes, workers and timeouts must be positive"
        )
    return settings


def load_settings(
    config: Path | None,
    *,
    environ: Mapping[str, str] = os.environ,
    **flags: Any,
) -> EdgeSettings:
    """Settings from the file (or defaults), then the environment, then non-None flags."""
    settings = parse_settings(read_toml(config), str(config)) if config else parse_settings({}, "")
    return override(settings, environ, flags)
