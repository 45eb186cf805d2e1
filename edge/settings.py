"""The edge's settings: ``configs/edge.toml``, its part of the fleet file, environment
variables (``CADENZA_EDGE_<KEY>``, ``CADENZA_TOKEN_KEYS``), then flags."""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cadenza.errors import ConfigError
from cadenza.fleet import load_fleet
from cadenza.settings import (
    ENV_TOKEN_KEYS,
    Layer,
    file_layers,
    load,
    load_service,
    non_negative,
    one_of,
    positive,
    setting,
)
from cadenza.upstreams import DOWN_SECONDS, parse_urls, split_urls
from edge.policy import DEFAULT_POLICY, POLICIES

SECONDS = 1.0
MIB = 1 << 20
ENV_PREFIX = "CADENZA_EDGE_"


def _latitude(value: float) -> str | None:
    return None if -90 <= value <= 90 else "must be -90..90"


def _longitude(value: float) -> str | None:
    return None if -180 <= value <= 180 else "must be -180..180"


@dataclass(frozen=True)
class EdgeSettings:
    host: str = "127.0.0.1"
    port: int = 8081
    id: str = setting("", help="this edge's id in the fleet, shown in /status")
    # One origin URL or several (replicas), in order of preference: a list, or comma-separated.
    origin: str = setting(
        "http://127.0.0.1:8080",
        parse=parse_urls,
        help="the origin's URL, or its replicas' in order of preference",
        metavar="URL[,URL...]",
    )
    # Parent edges asked for misses before the origin, one per object by rendezvous hashing.
    parent: str = setting(
        "",
        key="parents",
        parse=lambda raw, where: parse_urls(raw, where, allow_empty=True),
        help="parent edges to fetch misses from before the origin",
        metavar="URL[,URL...]",
    )
    # An upstream that failed (connection, 5xx, timeout) is asked last for this long.
    upstream_down: float = setting(DOWN_SECONDS, key="upstream_down_seconds", check=non_negative)
    # At start, the origin must take a connection within this; else exit 2 (0: not checked).
    origin_wait: float = setting(10 * SECONDS, key="origin_wait_seconds", check=non_negative)
    region: str = setting("local", help="the region this edge serves", metavar="NAME")
    latitude: float = setting(0.0, check=_latitude)
    longitude: float = setting(0.0, check=_longitude)
    # Egress the operator allows; the status reports load against it.
    capacity_bps: float = setting(1e9, check=positive)
    memory_bytes: int = setting(256 * MIB, check=positive)
    disk_bytes: int = setting(4096 * MIB, check=positive)
    # The hottest memory objects are also kept as in-memory files, at most this many bytes, so
    # the lean lane sends them with sendfile rather than copying them per hit (0: always copy).
    sendfile_bytes: int = setting(64 * MIB, check=non_negative)
    cache_dir: Path = setting(
        Path("data/edge"), help="the disk tier, kept across restarts", metavar="DIR"
    )
    policy: str = setting(DEFAULT_POLICY, check=one_of(*POLICIES))
    first_byte_timeout: float = setting(
        2 * SECONDS, key="first_byte_timeout_seconds", check=positive
    )
    fetch_timeout: float = setting(30 * SECONDS, key="fetch_timeout_seconds", check=positive)
    # An upstream body that stalls longer is cut.
    between_bytes_timeout: float = setting(
        10 * SECONDS, key="between_bytes_timeout_seconds", check=positive
    )
    # Stale copies served on upstream errors beyond what stale-if-error allows (like nginx's
    # proxy_cache_use_stale): none by default.
    stale_grace: float = setting(0 * SECONDS, key="stale_grace_seconds", check=non_negative)
    # A /tracks/ 404 or 410 without freshness of its own is cached this long.
    negative_ttl: float = setting(10 * SECONDS, key="negative_ttl_seconds", check=non_negative)
    max_object_bytes: int = setting(64 * MIB, check=positive)  # larger: relayed, not stored
    # Every client connection: the whole request head within head_timeout, and closed after
    # keepalive_timeout without a request.
    head_timeout: float = setting(10 * SECONDS, key="head_timeout_seconds", check=positive)
    keepalive_timeout: float = setting(
        75 * SECONDS, key="keepalive_timeout_seconds", check=positive
    )
    readahead_seconds: float = setting(20 * SECONDS, check=non_negative)
    allow_unsigned: bool = setting(False, help="serve without path tokens: labs and benchmarks")
    # Cache any path of any HTTP/1.1 origin by RFC 9111; music features stay on /tracks/.
    generic: bool = setting(
        False, help="cache any path of the origin as an RFC 9111 shared cache, not only /tracks/"
    )
    locator: str = setting("", help="the locator's URL, for the region's hot list", metavar="URL")
    preposition_interval: float = setting(
        60 * SECONDS, key="preposition_interval_seconds", check=non_negative
    )  # 0: no pre-positioning
    preposition_tracks: int = setting(20, check=non_negative)
    preposition_seconds: float = setting(12 * SECONDS, check=non_negative)
    workers: int = setting(
        factory=lambda: os.cpu_count() or 1,
        check=positive,
        help="processes sharing the port (default: one per core)",
        metavar="N",
    )
    token_keys: Mapping[str, bytes] = setting(factory=dict, env=ENV_TOKEN_KEYS, secret=True)
    # Set per worker process by the command, not by configuration (see edge.peers).
    peer_folder: str = setting("", internal=True)
    worker: int = setting(0, internal=True)
    # This edge's name in Via when it has no id; the command picks one for all its workers.
    pseudonym: str = setting("", internal=True)

    @property
    def origins(self) -> tuple[str, ...]:
        return split_urls(self.origin)

    @property
    def parents(self) -> tuple[str, ...]:
        return split_urls(self.parent)


def parse_settings(table: Mapping[str, Any], where: str) -> EdgeSettings:
    return load(EdgeSettings, [Layer(table, where)])


def load_settings(
    config: Path | None = None,
    *,
    fleet: Path | None = None,
    edge_id: str | None = None,
    environ: Mapping[str, str] = os.environ,
    **flags: Any,
) -> EdgeSettings:
    """Settings from the file (or defaults), the fleet file's part for ``edge_id``, then the
    environment, then non-None flags."""
    fleet_layers = []
    if fleet is not None:
        members = load_fleet(fleet)
        if edge_id is None:
            ids = ", ".join(e.id for e in members.edges)
            raise ConfigError(f"--fleet {fleet}: say which edge this is with --id (one of {ids})")
        member = members.edge(edge_id)
        config = config or member.config
        fleet_layers = [
            Layer({"id": edge_id, **members.edge_table(edge_id)}, f"{fleet}: edge {edge_id}")
        ]
    elif edge_id is not None:
        raise ConfigError("--id names an edge of a fleet file: give --fleet FILE too")
    return load_service(
        EdgeSettings, ENV_PREFIX, file_layers(config) + fleet_layers, environ, flags
    )


def require_runnable(settings: EdgeSettings) -> None:
    """Refuse settings that would start an edge unable to serve anyone."""
    if not settings.token_keys and not settings.allow_unsigned:
        raise ConfigError(
            "the edge checks playback tokens but has no token keys: set "
            f'{ENV_TOKEN_KEYS}="kid:secret" (the locator\'s keys) or [token_keys] in the '
            "config; for labs without tokens, --allow-unsigned"
        )
