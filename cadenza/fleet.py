"""The fleet file: one TOML that names every service of a deployment and where it is.

    [[origin]]   id, url, listen, config, data_dir
    [locator]    url, listen, config
    [[edge]]     id, region, url, latitude, longitude, capacity_bps, listen, config, cache_dir,
                 workers, parents (ids of other edges), role ("edge" or "parent")

Each service reads its own part (``cadenza edge --fleet FILE --id eu-west-1``) and the rest of
the fleet from the same file, so an edge's region and place are written once, for the edge and
for the locator alike. ``config`` names the service's own settings file for everything the
fleet file does not say (cache sizes, timeouts); the fleet file wins over it, the environment
and flags win over both. Relative paths are relative to the working directory, as in every
Cadenza settings file. Pure: parsing and validation only.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cadenza.errors import ConfigError
from cadenza.http import host_port
from cadenza.settings import check_keys, read_toml, typed

_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_ORIGIN_KEYS = {"id", "url", "listen", "config", "data_dir"}
_LOCATOR_KEYS = {"url", "listen", "config"}
_EDGE_KEYS = {
    "id", "region", "url", "latitude", "longitude", "capacity_bps", "listen", "config",
    "cache_dir", "workers", "parents", "role",
}  # fmt: skip
ROLES = ("edge", "parent")


@dataclass(frozen=True)
class OriginMember:
    id: str
    url: str
    listen: str  # HOST:PORT; by default the host and port of ``url``
    config: Path | None = None
    data_dir: Path | None = None


@dataclass(frozen=True)
class LocatorMember:
    url: str
    listen: str
    config: Path | None = None


@dataclass(frozen=True)
class EdgeMember:
    id: str
    region: str
    url: str
    latitude: float
    longitude: float
    capacity_bps: float
    listen: str
    config: Path | None = None
    cache_dir: Path | None = None
    workers: int | None = None
    parents: tuple[str, ...] = ()  # ids of other edges, in the order given
    role: str = "edge"  # "parent": serves other edges only, never players

    @property
    def serves_players(self) -> bool:
        return self.role != "parent"


@dataclass(frozen=True)
class Fleet:
    path: Path
    origins: tuple[OriginMember, ...]
    locator: LocatorMember
    edges: tuple[EdgeMember, ...]

    @property
    def origin_urls(self) -> list[str]:
        """Every origin, in the order named: services fail over from one to the next."""
        return [o.url for o in self.origins]

    @property
    def regions(self) -> tuple[str, ...]:
        """Every region with an edge, in the order the file names them."""
        return tuple(dict.fromkeys(e.region for e in self.edges))

    def edge(self, edge_id: str) -> EdgeMember:
        for member in self.edges:
            if member.id == edge_id:
                return member
        known = ", ".join(e.id for e in self.edges)
        raise ConfigError(f"{self.path}: no edge {edge_id!r}; the edges are {known}")

    def origin(self, origin_id: str | None = None) -> OriginMember:
        if origin_id is None:
            return self.origins[0]
        for member in self.origins:
            if member.id == origin_id:
                return member
        known = ", ".join(o.id for o in self.origins)
        raise ConfigError(f"{self.path}: no origin {origin_id!r}; the origins are {known}")

    def edge_table(self, edge_id: str) -> dict[str, Any]:
        """The edge's settings that the fleet file gives, as keys of the edge's settings file."""
        e = self.edge(edge_id)
        table: dict[str, Any] = {
            "listen": e.listen, "origin": self.origin_urls, "locator": self.locator.url,
            "region": e.region, "latitude": e.latitude, "longitude": e.longitude,
            "capacity_bps": e.capacity_bps,
        }  # fmt: skip
        if e.cache_dir is not None:
            table["cache_dir"] = str(e.cache_dir)
        if e.workers is not None:
            table["workers"] = e.workers
        if e.parents:
            table["parents"] = [self.edge(p).url for p in e.parents]
        return table

    def locator_table(self) -> dict[str, Any]:
        """The locator's settings that the fleet file gives (its edges among them)."""
        keys = ("id", "region", "url", "latitude", "longitude", "capacity_bps")
        edges = [{k: getattr(e, k) for k in keys} for e in self.edges if e.serves_players]
        return {"listen": self.locator.listen, "origin": self.origin_urls, "edge": edges}

    def origin_table(self, origin_id: str | None = None) -> dict[str, Any]:
        o = self.origin(origin_id)
        table: dict[str, Any] = {"listen": o.listen}
        if o.data_dir is not None:
            table["data_dir"] = str(o.data_dir)
        return table


def load_fleet(path: Path) -> Fleet:
    return parse_fleet(read_toml(path), path)


def parse_fleet(table: Mapping[str, Any], path: Path) -> Fleet:
    where = str(path)
    check_keys(table, {"origin", "locator", "edge"}, where)
    origins = tuple(
        _origin(entry, f"{where}: origin {n}")
        for n, entry in enumerate(_tables(table, "origin", where), 1)
    )
    if not origins:
        raise ConfigError(f"{where}: name at least one [[origin]] with its url")
    raw_locator = table.get("locator")
    if not isinstance(raw_locator, dict):
        raise ConfigError(f"{where}: name the locator in a [locator] table with its url")
    locator = _locator(raw_locator, f"{where}: [locator]")
    edges = tuple(
        _edge(entry, f"{where}: edge {n}")
        for n, entry in enumerate(_tables(table, "edge", where), 1)
    )
    if not edges:
        raise ConfigError(f"{where}: name at least one [[edge]]")
    _unique([o.id for o in origins], "origin ids", where)
    _unique([e.id for e in edges], "edge ids", where)
    _check_parents(edges, where)
    if not any(e.serves_players for e in edges):
        raise ConfigError(f'{where}: every edge has role = "parent"; players need at least one')
    listens = [o.listen for o in origins] + [locator.listen] + [e.listen for e in edges]
    _unique([x for x in listens if not x.endswith(":0")], "listen addresses", where)
    return Fleet(path, origins, locator, edges)


def _tables(table: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    raw = table.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise ConfigError(f"{where}: {key}s are [[{key}]] tables")
    return raw


def _origin(t: Mapping[str, Any], where: str) -> OriginMember:
    check_keys(t, _ORIGIN_KEYS, where)
    url = _url(t, where)
    return OriginMember(
        id=_id(typed(t, "id", str, where, "origin"), where),
        url=url,
        listen=typed(t, "listen", str, where, host_port(url)),
        config=_path(t, "config", where),
        data_dir=_path(t, "data_dir", where),
    )


def _locator(t: Mapping[str, Any], where: str) -> LocatorMember:
    check_keys(t, _LOCATOR_KEYS, where)
    url = _url(t, where)
    return LocatorMember(
        url=url,
        listen=typed(t, "listen", str, where, host_port(url)),
        config=_path(t, "config", where),
    )


def _edge(t: Mapping[str, Any], where: str) -> EdgeMember:
    check_keys(t, _EDGE_KEYS, where)
    url = _url(t, where)
    latitude = typed(t, "latitude", float, where)
    longitude = typed(t, "longitude", float, where)
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise ConfigError(f"{where}: latitude is -90..90 and longitude -180..180")
    capacity = typed(t, "capacity_bps", float, where, 1e9)
    workers = typed(t, "workers", int, where, 0) or None
    if capacity <= 0 or (workers is not None and workers < 0):
        raise ConfigError(f"{where}: capacity_bps and workers must be positive")
    return EdgeMember(
        id=_id(typed(t, "id", str, where), where),
        region=_id(typed(t, "region", str, where), where),
        url=url,
        latitude=latitude,
        longitude=longitude,
        capacity_bps=capacity,
        listen=typed(t, "listen", str, where, host_port(url)),
        config=_path(t, "config", where),
        cache_dir=_path(t, "cache_dir", where),
        workers=workers,
        parents=_parents(t, where),
        role=_role(t, where),
    )


def _parents(t: Mapping[str, Any], where: str) -> tuple[str, ...]:
    raw = t.get("parents", [])
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise ConfigError(f'{where}: parents is a list of edge ids, e.g. ["eu-parent-1"]')
    _unique(raw, "parents", where)
    return tuple(raw)


def _role(t: Mapping[str, Any], where: str) -> str:
    role: str = typed(t, "role", str, where, "edge")
    if role not in ROLES:
        raise ConfigError(
            f"{where}: role must be one of {', '.join(map(repr, ROLES))}, not {role!r}"
        )
    return role


def _check_parents(edges: tuple[EdgeMember, ...], where: str) -> None:
    """Every parent named is an edge of the file, and no edge is its own parent, directly or
    through others (a request would go round until a timeout; edges refuse it, see Via)."""
    by_id = {e.id: e for e in edges}
    for e in edges:
        for p in e.parents:
            if p not in by_id:
                known = ", ".join(by_id)
                raise ConfigError(f"{where}: edge {e.id!r} names parent {p!r}, which is no edge "
                                  f"of this file (the edges are {known})")  # fmt: skip
            if p == e.id:
                raise ConfigError(f"{where}: edge {e.id!r} names itself as its parent")
    done: set[str] = set()  # edges from which no cycle can be reached
    for e in edges:  # depth first, each edge finished once
        if e.id in done:
            continue
        path = [e.id]
        stack = [iter(e.parents)]
        while stack:
            up = next(stack[-1], None)
            if up is None:
                done.add(path.pop())
                stack.pop()
            elif up in path:
                cycle = " -> ".join([*path[path.index(up) :], up])
                raise ConfigError(f"{where}: parents form a cycle: {cycle}")
            elif up not in done:
                path.append(up)
                stack.append(iter(by_id[up].parents))


def _url(t: Mapping[str, Any], where: str) -> str:
    url: str = typed(t, "url", str, where).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.path:
        raise ConfigError(f"{where}: url {url!r} must be http(s)://HOST[:PORT] without a path")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise ConfigError(f"{where}: url {url!r} has a bad port") from None
    return url


def _path(t: Mapping[str, Any], key: str, where: str) -> Path | None:
    value = typed(t, key, str, where, "")
    return Path(value) if value else None


def _id(value: str, where: str) -> str:
    if not _ID.fullmatch(value):
        raise ConfigError(
            f"{where}: {value!r} is not a valid id: lowercase letters, digits, '.', '_' and '-'"
        )
    return value


def _unique(values: list[str], what: str, where: str) -> None:
    seen = set()
    for v in values:
        if v in seen:
            raise ConfigError(f"{where}: {what} must be unique; {v!r} appears twice")
        seen.add(v)
