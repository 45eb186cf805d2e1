"""Where a client is: a position, the region that serves it and its territory.

Sources are tried in order, each filling what the ones before it left unknown: trusted query
parameters (``lat``, ``lon``, ``territory``), the coverage-zone table of the configuration
(longest prefix wins), a MaxMind-format GeoIP database, then the configured default. The
position and the region come from the first source that has a position; a source without a
region of its own gets the one whose centre is nearest. Pure but for ``GeoIPDatabase``, whose
constructor opens the database file.
"""

import ipaddress
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import maxminddb

from cadenza.errors import ConfigError, InputError
from cadenza.settings import check_keys, typed

EARTH_RADIUS_KM = 6371.0088  # the IUGG mean radius

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NUMBER = re.compile(r"[+-]?([0-9]{1,3}(\.[0-9]{0,12})?|\.[0-9]{1,12})")
_TERRITORY = re.compile(r"[A-Z]{2}")
_ZONE_KEYS = {"cidr", "region", "latitude", "longitude", "territory"}


class LocationError(InputError, ValueError):
    """A query parameter that does not say where the client is; ``parameter`` names it."""

    status = 400

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"query parameter {parameter!r}: {message}")
        self.parameter = parameter


@dataclass(frozen=True)
class Location:
    """Where a client is; ``region`` and ``territory`` are None when no source knew them."""

    lat: float
    lon: float
    region: str | None = None
    territory: str | None = None

    def __post_init__(self) -> None:
        if not (-90 <= self.lat <= 90 and -180 <= self.lon <= 180):
            raise ValueError(f"({self.lat!r}, {self.lon!r}) is not a latitude and longitude")
        if self.territory is not None and not _TERRITORY.fullmatch(self.territory):
            raise ValueError(f"territory {self.territory!r} is not an ISO alpha-2 code")


@dataclass(frozen=True)
class Hint:
    """What one source knows about a client; any part may be unknown."""

    lat: float | None = None
    lon: float | None = None
    region: str | None = None
    territory: str | None = None


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance by the haversine formula, accurate at every distance."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((phi2 - phi1) / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def nearest_region(
    lat: float, lon: float, centres: Mapping[str, tuple[float, float]]
) -> str | None:
    """The region whose centre is nearest, ties to the first name in order; None without any.

    Pass ``Centres`` to ask many times: it keeps what does not change between clients.
    """
    if not isinstance(centres, Centres):
        centres = Centres(centres)
    return centres.nearest(lat, lon)


class Centres(Mapping[str, tuple[float, float]]):
    """Region centres, (latitude, longitude) by name, each also as a unit vector: the nearest
    is the one of least chord, which orders as the great-circle distance does, so a client's
    region costs a dot product per region rather than a haversine."""

    def __init__(self, centres: Mapping[str, tuple[float, float]]) -> None:
        self._centres = {name: centres[name] for name in sorted(centres)}
        self._vectors = [(name, *unit_vector(*place)) for name, place in self._centres.items()]

    def nearest(self, lat: float, lon: float) -> str | None:
        cx, cy, cz = unit_vector(lat, lon)
        best, found = -2.0, None
        for name, x, y, z in self._vectors:
            closeness = x * cx + y * cy + z * cz  # the cosine of the angle: larger is nearer
            if closeness > best:
                best, found = closeness, name
        return found

    def __getitem__(self, name: str) -> tuple[float, float]:
        return self._centres[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._centres)

    def __len__(self) -> int:
        return len(self._centres)


def unit_vector(lat: float, lon: float) -> tuple[float, float, float]:
    """A place as a point of the unit sphere (x towards 0° 0°, z towards the north pole)."""
    phi, lam = math.radians(lat), math.radians(lon)
    cos_phi = math.cos(phi)
    return cos_phi * math.cos(lam), cos_phi * math.sin(lam), math.sin(phi)


def query_hint(query: Mapping[str, str]) -> Hint:
    """The trusted ``lat``, ``lon`` and ``territory`` parameters; LocationError if malformed.

    ``lat`` and ``lon`` come together or not at all; ``territory`` may come alone.
    """
    lat, lon = query.get("lat"), query.get("lon")
    if (lat is None) != (lon is None):
        missing = "lon" if lon is None else "lat"
        raise LocationError(missing, "lat and lon must be given together")
    territory = query.get("territory")
    if territory is not None and not _TERRITORY.fullmatch(territory):
        raise LocationError("territory", f"{territory[:20]!r} is not an ISO code like 'SE'")
    return Hint(
        lat=None if lat is None else _coordinate("lat", lat, 90),
        lon=None if lon is None else _coordinate("lon", lon, 180),
        territory=territory,
    )


def _coordinate(name: str, text: str, limit: int) -> float:
    if not _NUMBER.fullmatch(text):
        raise LocationError(name, f"{text[:20]!r} is not a decimal number of degrees")
    value = float(text)
    if not -limit <= value <= limit:
        raise LocationError(name, f"{value} is outside [-{limit}, {limit}] degrees")
    return value


def resolve(
    hints: Iterable[Hint], default: Location, centres: Mapping[str, tuple[float, float]]
) -> Location:
    """Merge hints, best source first, over ``default``; see the module docstring.

    Stops reading ``hints`` once it has a position and a territory, so that a lazy iterable
    consults no source it does not need.
    """
    position: Hint | None = None
    territory: str | None = None
    for hint in hints:
        if position is None and hint.lat is not None and hint.lon is not None:
            position = hint
        territory = territory or hint.territory
        if position is not None and territory is not None:
            break
    if position is None or position.lat is None or position.lon is None:
        return Location(default.lat, default.lon, default.region, territory or default.territory)
    region = position.region or nearest_region(position.lat, position.lon, centres)
    return Location(position.lat, position.lon, region, territory or default.territory)


def parse_address(text: str | None) -> IPAddress | None:
    """A client address as a peer reports it; IPv4-mapped IPv6 becomes IPv4; None if not IP."""
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class CoverageZone:
    network: IPNetwork
    region: str
    lat: float
    lon: float
    territory: str | None = None

    def __post_init__(self) -> None:
        Location(self.lat, self.lon, self.region, self.territory)  # the same checks

    @property
    def hint(self) -> Hint:
        return Hint(self.lat, self.lon, self.region, self.territory)


class CoverageZones:
    """Longest-prefix match over IPv4 and IPv6 networks.

    One hash table per prefix length, tried from the longest: a lookup costs one mask and one
    dictionary probe per prefix length in use, however many zones there are.
    """

    def __init__(self, zones: Sequence[CoverageZone]) -> None:
        self._tables: dict[tuple[int, int], dict[int, CoverageZone]] = {}
        for zone in zones:
            net = zone.network
            table = self._tables.setdefault((net.version, net.prefixlen), {})
            if int(net.network_address) in table:
                raise ValueError(f"coverage zone {net} is listed twice")
            table[int(net.network_address)] = zone
        self._order: dict[int, list[tuple[int, dict[int, CoverageZone]]]] = {4: [], 6: []}
        for (version, length), table in sorted(self._tables.items(), key=lambda i: -i[0][1]):
            bits = 32 if version == 4 else 128
            mask = ((1 << length) - 1) << (bits - length)
            self._order[version].append((mask, table))

    def __len__(self) -> int:
        return sum(len(table) for table in self._tables.values())

    def lookup(self, address: IPAddress) -> CoverageZone | None:
        value = int(address)
        for mask, table in self._order[address.version]:
            zone = table.get(value & mask)
            if zone is not None:
                return zone
        return None

    @classmethod
    def from_config(cls, entries: Sequence[Mapping[str, Any]], where: str) -> Self:
        """Zones from settings: tables of cidr, region, latitude, longitude, territory."""
        zones = []
        for i, entry in enumerate(entries):
            place = f"{where}: coverage zone {i + 1}"
            if not isinstance(entry, Mapping):
                raise ConfigError(f"{place}: must be a table of {', '.join(sorted(_ZONE_KEYS))}")
            zones.append(_zone(entry, place))
        try:
            return cls(zones)
        except ValueError as e:
            raise ConfigError(f"{where}: {e}") from None


def _zone(entry: Mapping[str, Any], place: str) -> CoverageZone:
    check_keys(entry, _ZONE_KEYS, place)
    cidr = typed(entry, "cidr", str, place)
    try:
        network = ipaddress.ip_network(cidr)
    except ValueError as e:
        raise ConfigError(f"{place}: cidr {cidr!r} is not a network ({e})") from None
    territory = entry.get("territory")
    try:
        return CoverageZone(
            network=network,
            region=typed(entry, "region", str, place),
            lat=typed(entry, "latitude", float, place),
            lon=typed(entry, "longitude", float, place),
            territory=None if territory is None else typed(entry, "territory", str, place),
        )
    except ValueError as e:
        raise ConfigError(f"{place}: {e}") from None


class GeoIPDatabase:
    """A MaxMind DB (GeoLite2/GeoIP2 City or Country, or any database of that shape).

    The constructor opens (memory-maps) the file; lookups read ``location.latitude``,
    ``location.longitude`` and ``country.iso_code`` and never fail on odd records.
    """

    def __init__(self, path: Path) -> None:
        try:
            self._reader = maxminddb.open_database(str(path))
        except (OSError, maxminddb.InvalidDatabaseError, ValueError) as e:
            raise ConfigError(f"{path}: cannot open the GeoIP database ({e})") from None
        self.path = path

    def close(self) -> None:
        self._reader.close()

    def lookup(self, address: IPAddress) -> Hint | None:
        try:
            record = self._reader.get(address)
        except (ValueError, maxminddb.InvalidDatabaseError):
            return None  # an IPv6 address in an IPv4 database, or a damaged entry
        if not isinstance(record, dict):
            return None
        lat = _number(_field(record, "location", "latitude"), 90)
        lon = _number(_field(record, "location", "longitude"), 180)
        code = _field(record, "country", "iso_code")
        territory = code if isinstance(code, str) and _TERRITORY.fullmatch(code) else None
        if lat is None or lon is None:
            lat = lon = None
        if lat is None and territory is None:
            return None
        return Hint(lat=lat, lon=lon, territory=territory)


def locate(
    query: Mapping[str, str],
    address: str | None,
    *,
    default: Location,
    centres: Mapping[str, tuple[float, float]],
    zones: CoverageZones | None = None,
    geoip: GeoIPDatabase | None = None,
) -> Location:
    """Where the client at ``address`` (as the peer reports it) asking with ``query`` is.

    LocationError if a query parameter is malformed; an address that is not IP is skipped.
    """
    return resolve(_hints(query, address, zones, geoip), default, centres)


def _hints(
    query: Mapping[str, str],
    address: str | None,
    zones: CoverageZones | None,
    geoip: GeoIPDatabase | None,
) -> Iterator[Hint]:
    yield query_hint(query)
    ip = parse_address(address)
    if ip is None:
        return
    zone = zones.lookup(ip) if zones is not None else None
    if zone is not None:
        yield zone.hint
    hint = geoip.lookup(ip) if geoip is not None else None
    if hint is not None:
        yield hint


def _field(record: Mapping[str, Any], table: str, key: str) -> object:
    inner = record.get(table)
    return inner.get(key) if isinstance(inner, dict) else None


def _number(value: object, limit: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if -limit <= value <= limit else None
