"""The locator's settings: ``configs/locator.toml``, then environment variables, then flags."""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from cadenza.errors import ConfigError
from cadenza.fleet import load_fleet
from cadenza.licences import DEFAULT_DAYS
from cadenza.settings import (
    ENV_TOKEN_KEYS,
    Layer,
    at_least,
    check_keys,
    file_layers,
    load,
    load_service,
    non_negative,
    positive,
    setting,
    typed,
)
from cadenza.upstreams import DOWN_SECONDS, parse_urls, split_urls
from locator.decision import EdgeView
from locator.geo import Centres, CoverageZones, Location
from plays.log import check_url

SECONDS = 1.0
HOUR = 3600 * SECONDS
DAY = 24 * HOUR
DEFAULT_PLAYS_LOG = "sqlite:///data/locator/plays.sqlite3"
DEFAULT_LOCATION = Location(0.0, 0.0, None, None)  # nowhere known: rights fail closed


def _url(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a URL string, got {value!r}")
    return value.rstrip("/")


def _plays_log(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a URL string, got {value!r}")
    return check_url(value, where)


def _latitude(value: float) -> str | None:
    return None if -90 <= value <= 90 else "must be -90..90"


def _longitude(value: float) -> str | None:
    return None if -180 <= value <= 180 else "must be -180..180"


@dataclass(frozen=True)
class EdgeConfig:
    id: str
    region: str
    url: str = setting(parse=_url)
    latitude: float = setting(check=_latitude)
    longitude: float = setting(check=_longitude)
    capacity_bps: float = setting(1e9, check=positive)

    def view(self) -> EdgeView:
        """The edge as the decision sees it before its first status poll."""
        return EdgeView(
            self.id, self.region, self.url, self.latitude, self.longitude, self.capacity_bps
        )


def _default_location(raw: Any, where: str) -> Location:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} is a table")
    check_keys(raw, _DEFAULT_KEYS, where)
    try:
        return Location(
            typed(raw, "latitude", float, where, 0.0),
            typed(raw, "longitude", float, where, 0.0),
            typed(raw, "region", str, where) if "region" in raw else None,
            typed(raw, "territory", str, where) if "territory" in raw else None,
        )
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None


def _zones(raw: Any, where: str) -> CoverageZones | None:
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: coverage zones are [[coverage_zone]] tables")
    return CoverageZones.from_config(raw, where) if raw else None


@dataclass(frozen=True)
class LocatorSettings:
    host: str = "127.0.0.1"
    port: int = 8070
    # How players reach the locator (steering URIs); default: as asked.
    public_url: str = setting("", parse=_url, metavar="URL")
    # One origin URL or several (replicas), in order of preference: a list, or comma-separated.
    origin: str = setting(
        "http://127.0.0.1:8080",
        parse=parse_urls,
        help="the origin's catalog URL, or its replicas' in order of preference",
        metavar="URL[,URL...]",
    )
    # A replica that failed (connection, 5xx, timeout) is asked last for this long.
    origin_down: float = setting(DOWN_SECONDS, key="origin_down_seconds", check=non_negative)
    # At start, the origin must take a connection within this; else exit 2 (0: not checked).
    origin_wait: float = setting(10 * SECONDS, key="origin_wait_seconds", check=non_negative)
    edges: tuple[EdgeConfig, ...] = setting((), key="edge")
    token_keys: Mapping[str, bytes] = setting(factory=dict, env=ENV_TOKEN_KEYS, secret=True)
    signing_key: str = ""  # the kid that signs new tokens; default: the first key
    token_ttl: float = setting(6 * HOUR, key="token_ttl_seconds", check=positive)
    rights_ttl: float = setting(30 * SECONDS, key="rights_ttl_seconds", check=non_negative)
    fail_open: bool = False  # rights when the client's territory is unknown
    # Who listens (see locator.listeners): a header that a trusted front end sets, and in labs
    # ?listener= on the play URL; plays are anonymous otherwise.
    listener_header: str = setting("", help="header a trusted front end sets to the listener id")
    listener_query: bool = setting(False, help="labs: take the listener id from ?listener=")
    # Play events (POST /v1/plays, locator.plays): the log they go to, sqlite:///PATH (one
    # file that every worker appends to) or redis://HOST:PORT/DB (see plays.log); how long
    # after its token expires a play may still be reported; the consumers' results file, which
    # GET /v1/history/LISTENER and /v1/hot read (unset: no history, /v1/hot counts its plays).
    plays_log: str = setting(
        DEFAULT_PLAYS_LOG, parse=_plays_log, help="the play-event log's URL", metavar="URL"
    )
    plays_report_window: float = setting(7 * DAY, key="plays_report_window_seconds", check=positive)
    plays_results: Path | None = setting(
        None, help="the play consumers' results file", metavar="FILE"
    )
    # Offline licences (locator.licences) end this many days after they are issued or renewed.
    licence_days: float = setting(
        float(DEFAULT_DAYS), check=positive, help="offline licence lifetime in days"
    )
    poll_interval: float = setting(0.5 * SECONDS, key="poll_interval_seconds", check=positive)
    poll_timeout: float = setting(0.4 * SECONDS, key="poll_timeout_seconds", check=positive)
    # Whole seconds, as the manifest's TTL says.
    steering_ttl: int = setting(5, key="steering_ttl_seconds", check=at_least(1))
    load_factor: float = setting(1.25, check=at_least(1))
    # Edges per play: primary, one in its region, the nearest elsewhere.
    pathways: int = setting(3, check=at_least(1))
    default_location: Location = setting(DEFAULT_LOCATION, parse=_default_location)
    coverage_zones: CoverageZones | None = setting(None, key="coverage_zone", parse=_zones)
    geoip_database: Path | None = None
    hot_half_life: float = setting(1 * HOUR, key="hot_half_life_seconds", check=positive)
    # Every client connection: the whole request head within head_timeout, and closed after
    # keepalive_timeout without a request.
    head_timeout: float = setting(10 * SECONDS, key="head_timeout_seconds", check=positive)
    keepalive_timeout: float = setting(
        75 * SECONDS, key="keepalive_timeout_seconds", check=positive
    )

    workers: int = setting(
        factory=lambda: os.cpu_count() or 1,
        check=positive,
        help="processes sharing the port (default: one per core)",
        metavar="N",
    )

    @property
    def origins(self) -> tuple[str, ...]:
        return split_urls(self.origin)

    @cached_property
    def region_centres(self) -> Centres:
        """Where each region is (its last configured edge), to place clients in a region."""
        return Centres({e.region: (e.latitude, e.longitude) for e in self.edges})

    @property
    def signer(self) -> tuple[str, bytes]:
        kid = self.signing_key or next(iter(self.token_keys))
        return kid, self.token_keys[kid]


_DEFAULT_KEYS = {"region", "latitude", "longitude", "territory"}
ENV_PREFIX = "CADENZA_LOCATOR_"


def parse_settings(table: Mapping[str, Any], where: str) -> LocatorSettings:
    return _checked(load(LocatorSettings, [Layer(table, where)]))


def _checked(settings: LocatorSettings) -> LocatorSettings:
    ids = [e.id for e in settings.edges]
    if len(set(ids)) != len(ids):
        raise ConfigError("edge ids must be unique")
    return settings


def load_settings(
    config: Path | None = None,
    *,
    fleet: Path | None = None,
    environ: Mapping[str, str] = os.environ,
    **flags: Any,
) -> LocatorSettings:
    """Settings from the file (or defaults), the fleet file's part, then the environment, then
    non-None flags."""
    if fleet is None:
        files = file_layers(config)
    else:
        members = load_fleet(fleet)
        config = config or members.locator.config
        files = file_layers(config)
        if config is not None and "edge" in files[0].table:
            raise ConfigError(
                f"{config}: the edges come from the fleet file {fleet}; remove the [[edge]] "
                "tables here so that they are written once"
            )
        files.append(Layer(members.locator_table(), f"{fleet}: locator"))
    settings = _checked(load_service(LocatorSettings, ENV_PREFIX, files, environ, flags))
    if not settings.token_keys:
        raise ConfigError(
            f"the locator signs playback tokens: set [token_keys] in the config or "
            f'{ENV_TOKEN_KEYS}="kid:secret" (the same keys as the edges)'
        )
    if settings.signing_key and settings.signing_key not in settings.token_keys:
        raise ConfigError(f"signing_key {settings.signing_key!r} is not one of the token keys")
    if not settings.edges:
        raise ConfigError(
            "the locator needs at least one edge: --fleet FILE, or [[edge]] tables in its config"
        )
    return settings
