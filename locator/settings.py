"""The locator's settings: ``configs/locator.toml``, then environment variables, then flags."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from cadenza.errors import ConfigError
from cadenza.settings import ENV_TOKEN_KEYS, check_keys, override, parse_listen, read_toml, typed
from locator.decision import EdgeView
from locator.geo import Centres, CoverageZones, Location

SECONDS = 1.0
HOUR = 3600 * SECONDS
DEFAULT_LOCATION = Location(0.0, 0.0, None, None)  # nowhere known: rights fail closed


@dataclass(frozen=True)
class EdgeConfig:
    id: str
    region: str
    url: str
    latitude: float
    longitude: float
    capacity_bps: float

    def view(self) -> EdgeView:
        """The edge as the decision sees it before its first status poll."""
        return EdgeView(
            self.id, self.region, self.url, self.latitude, self.longitude, self.capacity_bps
        )


@dataclass(frozen=True)
class LocatorSettings:
    host: str = "127.0.0.1"
    port: int = 8070
    public_url: str = ""  # how players reach the locator (steering URIs); default: as asked
    origin: str = "http://127.0.0.1:8080"
    edges: tuple[EdgeConfig, ...] = ()
    token_keys: Mapping[str, bytes] = field(default_factory=dict)
    signing_key: str = ""  # the kid that signs new tokens; default: the first key
    token_ttl: float = 6 * HOUR
    rights_ttl: float = 30 * SECONDS
    fail_open: bool = False  # rights when the client's territory is unknown
    poll_interval: float = 0.5 * SECONDS
    poll_timeout: float = 0.4 * SECONDS
    steering_ttl: int = 5  # whole seconds, as the manifest's TTL says
    load_factor: float = 1.25
    pathways: int = 3  # edges per play: primary, one in its region, the nearest elsewhere
    default_location: Location = DEFAULT_LOCATION
    coverage_zones: CoverageZones | None = None
    geoip_database: Path | None = None
    hot_half_life: float = 1 * HOUR
    # Every client connection: the whole request head within head_timeout, and closed after
    # keepalive_timeout without a request.
    head_timeout: float = 10 * SECONDS
    keepalive_timeout: float = 75 * SECONDS
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)  # processes on one port

    @cached_property
    def region_centres(self) -> Centres:
        """Where each region is (its last configured edge), to place clients in a region."""
        return Centres({e.region: (e.latitude, e.longitude) for e in self.edges})

    @property
    def signer(self) -> tuple[str, bytes]:
        kid = self.signing_key or next(iter(self.token_keys))
        return kid, self.token_keys[kid]


_KEYS = {
    "listen", "public_url", "origin", "edge", "token_keys", "signing_key", "token_ttl_seconds",
    "rights_ttl_seconds", "fail_open", "poll_interval_seconds", "poll_timeout_seconds",
    "steering_ttl_seconds", "load_factor", "pathways", "default_location", "coverage_zone",
    "geoip_database", "hot_half_life_seconds", "head_timeout_seconds", "keepalive_timeout_seconds",
    "workers",
}  # fmt: skip
_EDGE_KEYS = {"id", "region", "url", "latitude", "longitude", "capacity_bps"}
_DEFAULT_KEYS = {"region", "latitude", "longitude", "territory"}


def parse_settings(table: Mapping[str, Any], where: str) -> LocatorSettings:
    check_keys(table, _KEYS, where)
    d = LocatorSettings()
    host, port = parse_listen(typed(table, "listen", str, where, f"{d.host}:{d.port}"), where)
    raw_keys = table.get("token_keys", {})
    if not isinstance(raw_keys, dict) or not all(isinstance(v, str) for v in raw_keys.values()):
        raise ConfigError(f"{where}: [token_keys] maps key ids to secret strings")
    zones = table.get("coverage_zone", [])
    if not isinstance(zones, list):
        raise ConfigError(f"{where}: coverage zones are [[coverage_zone]] tables")
    geoip = typed(table, "geoip_database", str, where, "")
    settings = LocatorSettings(
        host=host,
        port=port,
        public_url=typed(table, "public_url", str, where, "").rstrip("/"),
        origin=typed(table, "origin", str, where, d.origin),
        edges=_edges(table.get("edge", []), where),
        token_keys={kid: secret.encode() for kid, secret in raw_keys.items()},
        signing_key=typed(table, "signing_key", str, where, ""),
        token_ttl=typed(table, "token_ttl_seconds", float, where, d.token_ttl),
        rights_ttl=typed(table, "rights_ttl_seconds", float, where, d.rights_ttl),
        fail_open=typed(table, "fail_open", bool, where, d.fail_open),
        poll_interval=typed(table, "poll_interval_seconds", float, where, d.poll_interval),
        poll_timeout=typed(table, "poll_timeout_seconds", float, where, d.poll_timeout),
        steering_ttl=typed(table, "steering_ttl_seconds", int, where, d.steering_ttl),
        load_factor=typed(table, "load_factor", float, where, d.load_factor),
        pathways=typed(table, "pathways", int, where, d.pathways),
        default_location=_default_location(table.get("default_location", {}), where),
        coverage_zones=CoverageZones.from_config(zones, where) if zones else None,
        geoip_database=Path(geoip) if geoip else None,
        hot_half_life=typed(table, "hot_half_life_seconds", float, where, d.hot_half_life),
        head_timeout=typed(table, "head_timeout_seconds", float, where, d.head_timeout),
        keepalive_timeout=typed(
            table, "keepalive_timeout_seconds", float, where, d.keepalive_timeout
        ),
        workers=typed(table, "workers", int, where, d.workers),
    )
    if (
        min(settings.token_ttl, settings.poll_interval, settings.poll_timeout) <= 0
        or min(settings.head_timeout, settings.keepalive_timeout) <= 0
    ):
        raise ConfigError(
            f"{where}: token_ttl, poll_interval, poll_timeout and the connection "
            "timeouts must be positive"
        )
    if settings.steering_ttl < 1 or settings.load_factor < 1 or settings.pathways < 1:
        raise ConfigError(
            f"{where}: steering_ttl_seconds, load_factor and pathways must be at least 1"
        )
    return settings


def _edges(raw: Any, where: str) -> tuple[EdgeConfig, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: edges are [[edge]] tables")
    edges = []
    for n, entry in enumerate(raw, 1):
        place = f"{where}: edge {n}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{place}: an [[edge]] table, please")
        check_keys(entry, _EDGE_KEYS, place)
        missing = sorted(_EDGE_KEYS - {"capacity_bps"} - set(entry))
        if missing:
            raise ConfigError(f"{place}: missing {', '.join(missing)}")
        edges.append(
            EdgeConfig(
                id=typed(entry, "id", str, place),
                region=typed(entry, "region", str, place),
                url=typed(entry, "url", str, place).rstrip("/"),
                latitude=typed(entry, "latitude", float, place),
                longitude=typed(entry, "longitude", float, place),
                capacity_bps=typed(entry, "capacity_bps", float, place, 1e9),
            )
        )
    ids = [e.id for e in edges]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{where}: edge ids must be unique")
    return tuple(edges)


def _default_location(raw: Any, where: str) -> Location:
    place = f"{where}: [default_location]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{place} is a table")
    check_keys(raw, _DEFAULT_KEYS, place)
    try:
        return Location(
            typed(raw, "latitude", float, place, 0.0),
            typed(raw, "longitude", float, place, 0.0),
            typed(raw, "region", str, place) if "region" in raw else None,
            typed(raw, "territory", str, place) if "territory" in raw else None,
        )
    except ValueError as e:
        raise ConfigError(f"{place}: {e}") from None


def load_settings(
    config: Path | None, *, environ: Mapping[str, str] = os.environ, **flags: Any
) -> LocatorSettings:
    """Settings from the file (or defaults), then the environment, then non-None flags."""
    settings = parse_settings(read_toml(config), str(config)) if config else parse_settings({}, "")
    settings = override(settings, environ, flags)
    if not settings.token_keys:
        raise ConfigError(
            f"the locator signs playback tokens: set [token_keys] in the config or "
            f'{ENV_TOKEN_KEYS}="kid:secret" (the same keys as the edges)'
        )
    if settings.signing_key and settings.signing_key not in settings.token_keys:
        raise ConfigError(f"signing_key {settings.signing_key!r} is not one of the token keys")
    if not settings.edges:
        raise ConfigError("the locator needs at least one [[edge]] in its config")
    if settings.workers < 1:
        raise ConfigError(f"workers must be at least 1, not {settings.workers}")
    return settings
