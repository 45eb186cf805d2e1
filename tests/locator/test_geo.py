"""Where a client is: query parameters, coverage zones, a real MaxMind DB, and the default."""

import ipaddress
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from cadenza.errors import ConfigError, InputError
from locator.geo import (
    EARTH_RADIUS_KM,
    Centres,
    CoverageZone,
    CoverageZones,
    GeoIPDatabase,
    Hint,
    Location,
    LocationError,
    distance_km,
    locate,
    nearest_region,
    parse_address,
    query_hint,
    resolve,
)

PARIS = (48.86, 2.35)
NEW_YORK = (40.71, -74.01)
CENTRES = {"eu-west": PARIS, "us-east": NEW_YORK}
DEFAULT = Location(50.0, 10.0, "eu-west", "DE")
ZONES = CoverageZones.from_config(
    [
        {
            "cidr": "10.0.0.0/8",
            "region": "us-east",
            "latitude": 40.0,
            "longitude": -75.0,
            "territory": "US",
        },
        {
            "cidr": "10.1.0.0/16",
            "region": "eu-west",
            "latitude": 48.0,
            "longitude": 2.0,
            "territory": "FR",
        },
        {"cidr": "10.1.2.0/24", "region": "eu-west", "latitude": 59.3, "longitude": 18.1},
        {"cidr": "2001:db8::/32", "region": "us-east", "latitude": 40.0, "longitude": -75.0},
        {"cidr": "2001:db8:1::/48", "region": "eu-west", "latitude": 48.0, "longitude": 2.0},
    ],
    "locator.toml",
)


def test_distance_km_known_values():
    assert distance_km(*PARIS, *PARIS) == 0.0
    assert distance_km(*PARIS, *NEW_YORK) == pytest.approx(5837, abs=5)
    assert distance_km(0, 0, 0, 180) == pytest.approx(math.pi * EARTH_RADIUS_KM)
    assert distance_km(90, 0, -90, 0) == pytest.approx(math.pi * EARTH_RADIUS_KM)


POINTS = st.tuples(st.floats(-90, 90), st.floats(-180, 180))


@settings(max_examples=300)
@given(POINTS, POINTS, POINTS)
def test_distance_km_is_a_metric_on_the_sphere(a, b, c):
    ab = distance_km(*a, *b)
    assert 0 <= ab <= math.pi * EARTH_RADIUS_KM + 1e-6
    assert ab == pytest.approx(distance_km(*b, *a), abs=1e-6)
    assert ab <= distance_km(*a, *c) + distance_km(*c, *b) + 1e-6


def test_nearest_region():
    assert nearest_region(51.5, -0.1, CENTRES) == "eu-west"
    assert nearest_region(42.4, -71.1, CENTRES) == "us-east"
    assert nearest_region(0, 0, {}) is None


PLACES = st.tuples(st.floats(-90, 90), st.floats(-180, 180))


@given(PLACES, st.dictionaries(st.sampled_from("abcdefgh"), PLACES, min_size=1))
def test_the_nearest_region_by_chord_is_the_nearest_by_great_circle(client, centres):
    centres_ = Centres(centres)
    found = centres_.nearest(*client)
    assert found is not None and dict(centres_) == centres
    nearest = min(distance_km(*client, *place) for place in centres.values())
    assert distance_km(*client, *centres[found]) <= nearest + 1e-3  # a metre: rounding


def test_query_hint_reads_and_validates_the_parameters():
    assert query_hint({}) == Hint()
    assert query_hint({"lat": "59.33", "lon": "-18.07", "territory": "SE"}) == Hint(
        59.33, -18.07, None, "SE"
    )
    assert query_hint({"territory": "SE"}) == Hint(territory="SE")
    assert query_hint({"lat": "-90", "lon": "180"}) == Hint(-90.0, 180.0)


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"lat": "10"}, "lon"),
        ({"lon": "10"}, "lat"),
        ({"lat": "90.5", "lon": "0"}, "lat"),
        ({"lat": "0", "lon": "-180.01"}, "lon"),
        ({"lat": "nan", "lon": "0"}, "lat"),
        ({"lat": "1e1", "lon": "0"}, "lat"),
        ({"lat": "", "lon": "0"}, "lat"),
        ({"lat": "0", "lon": "1_0"}, "lon"),
        ({"territory": "se"}, "territory"),
        ({"territory": "SWE"}, "territory"),
    ],
)
def test_a_bad_query_parameter_is_named(query, parameter):
    with pytest.raises(LocationError) as caught:
        query_hint(query)
    error = caught.value
    assert error.parameter == parameter and f"'{parameter}'" in str(error)
    assert isinstance(error, ValueError) and isinstance(error, InputError) and error.status == 400


def test_a_location_refuses_impossible_values():
    with pytest.raises(ValueError, match="not a latitude"):
        Location(91, 0)
    with pytest.raises(ValueError, match="ISO alpha-2"):
        Location(0, 0, territory="Sweden")


def test_parse_address():
    assert parse_address("10.1.2.3") == ipaddress.IPv4Address("10.1.2.3")
    assert parse_address("::ffff:10.1.2.3") == ipaddress.IPv4Address("10.1.2.3")
    assert parse_address("2001:db8::1") == ipaddress.IPv6Address("2001:db8::1")
    assert parse_address(None) is None and parse_address("") is None
    assert parse_address("/run/cadenza.sock") is None


def test_coverage_zones_match_the_longest_prefix():
    def region_of(address: str) -> str | None:
        zone = ZONES.lookup(ipaddress.ip_address(address))
        return None if zone is None else f"{zone.region}/{zone.network.prefixlen}"

    assert region_of("10.9.9.9") == "us-east/8"
    assert region_of("10.1.9.9") == "eu-west/16"
    assert region_of("10.1.2.9") == "eu-west/24"
    assert region_of("11.0.0.1") is None
    assert region_of("2001:db8:2::1") == "us-east/32"
    assert region_of("2001:db8:1::1") == "eu-west/48"
    assert region_of("2001:db9::1") is None
    assert len(ZONES) == 5


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"cidr": "10.0.0.0/8", "region": "a", "latitude": 1, "longitude": 2, "zone": 1},
            "unknown key",
        ),
        ({"cidr": "10.0.0.1/8", "region": "a", "latitude": 1, "longitude": 2}, "has host bits set"),
        ({"cidr": "10.0.0.0/33", "region": "a", "latitude": 1, "longitude": 2}, "not a network"),
        ({"cidr": "10.0.0.0/8", "latitude": 1, "longitude": 2}, "missing required key 'region'"),
        (
            {"cidr": "10.0.0.0/8", "region": "a", "latitude": "1", "longitude": 2},
            "'latitude' must be float",
        ),
        ({"cidr": "10.0.0.0/8", "region": "a", "latitude": 100, "longitude": 2}, "not a latitude"),
        (
            {"cidr": "10.0.0.0/8", "region": "a", "latitude": 1, "longitude": 2, "territory": "x"},
            "alpha-2",
        ),
        ("10.0.0.0/8", "must be a table"),
    ],
)
def test_a_bad_coverage_zone_is_a_config_error_naming_it(entry, message):
    with pytest.raises(ConfigError, match=message) as caught:
        CoverageZones.from_config([entry], "locator.toml")
    assert "locator.toml: coverage zone 1" in str(caught.value)


def test_a_zone_listed_twice_is_a_config_error():
    zone = {"cidr": "10.0.0.0/8", "region": "a", "latitude": 1, "longitude": 2}
    with pytest.raises(ConfigError, match=r"10\.0\.0\.0/8 is listed twice"):
        CoverageZones.from_config([zone, zone], "locator.toml")


@st.composite
def networks(draw):
    length = draw(st.integers(0, 12))
    address = draw(st.integers(0, 2**12 - 1)) << 20  # a small space, so that zones nest
    return ipaddress.IPv4Network((address, length), strict=False)


@settings(max_examples=200)
@given(st.lists(networks(), max_size=20, unique=True), st.integers(0, 2**32 - 1))
def test_lookup_is_the_longest_matching_network(nets, value):
    zones = CoverageZones([CoverageZone(net, f"r{i}", 0.0, 0.0) for i, net in enumerate(nets)])
    address = ipaddress.IPv4Address(value)
    matching = [net for net in nets if address in net]
    zone = zones.lookup(address)
    if not matching:
        assert zone is None
    else:
        assert zone is not None
        assert zone.network == max(matching, key=lambda net: net.prefixlen)


@pytest.fixture(scope="module")
def geoip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GeoIPDatabase]:
    """A tiny City-shaped MaxMind DB, written with mmdb-writer and read with maxminddb."""
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City")

    def city(lat: float, lon: float, country: str) -> dict[str, object]:
        return {"location": {"latitude": lat, "longitude": lon}, "country": {"iso_code": country}}

    writer.insert_network(IPSet(["81.0.0.0/8"]), city(*PARIS, "FR"))
    writer.insert_network(IPSet(["2a01::/16"]), city(59.33, 18.07, "SE"))
    writer.insert_network(IPSet(["100.0.0.0/8"]), {"country": {"iso_code": "US"}})
    writer.insert_network(IPSet(["101.0.0.0/8"]), {"location": {"latitude": "north"}})
    writer.insert_network(IPSet(["102.0.0.0/8"]), {"location": {"latitude": 95.0, "longitude": 0}})
    path = tmp_path_factory.mktemp("geoip") / "city.mmdb"
    writer.to_db_file(str(path))
    database = GeoIPDatabase(path)
    yield database
    database.close()


def test_geoip_reads_location_and_country(geoip: GeoIPDatabase):
    lookup = geoip.lookup
    assert lookup(ipaddress.ip_address("81.1.2.3")) == Hint(*PARIS, None, "FR")
    assert lookup(ipaddress.ip_address("2a01:e0a::1")) == Hint(59.33, 18.07, None, "SE")
    assert lookup(ipaddress.ip_address("100.1.1.1")) == Hint(territory="US")
    assert lookup(ipaddress.ip_address("101.1.1.1")) is None  # nothing usable in the record
    assert lookup(ipaddress.ip_address("102.1.1.1")) is None
    assert lookup(ipaddress.ip_address("8.8.8.8")) is None


def test_geoip_names_the_file_it_cannot_open(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"missing\.mmdb: cannot open the GeoIP database"):
        GeoIPDatabase(tmp_path / "missing.mmdb")
    (tmp_path / "text.mmdb").write_text("not a database\n")
    with pytest.raises(ConfigError, match=r"text\.mmdb: cannot open the GeoIP database"):
        GeoIPDatabase(tmp_path / "text.mmdb")


def _locate(query, address, geoip=None) -> Location:
    return locate(query, address, default=DEFAULT, centres=CENTRES, zones=ZONES, geoip=geoip)


def test_sources_are_tried_in_order(geoip: GeoIPDatabase):
    # Query parameters win; the region is the nearest centre, the territory the zone's.
    assert _locate({"lat": "42.36", "lon": "-71.06"}, "10.1.9.9", geoip) == Location(
        42.36, -71.06, "us-east", "FR"
    )
    # A coverage zone names its region, wherever its position is.
    assert _locate({}, "10.9.9.9", geoip) == Location(40.0, -75.0, "us-east", "US")
    # A zone without a territory leaves it to the GeoIP database, then to the default.
    assert _locate({}, "10.1.2.3", geoip) == Location(59.3, 18.1, "eu-west", "DE")
    assert _locate({}, "81.1.2.3", geoip) == Location(*PARIS, "eu-west", "FR")
    assert _locate({"territory": "NO"}, "2a01::1", geoip) == Location(59.33, 18.07, "eu-west", "NO")
    # A record with only a country keeps the default position.
    assert _locate({}, "100.1.1.1", geoip) == Location(50.0, 10.0, "eu-west", "US")
    assert _locate({}, "8.8.8.8", geoip) == DEFAULT
    assert _locate({}, None, geoip) == DEFAULT
    assert _locate({}, "81.1.2.3") == Location(50.0, 10.0, "eu-west", "DE")


def test_a_bad_query_fails_even_when_other_sources_know():
    with pytest.raises(LocationError, match="'lat'"):
        _locate({"lat": "north", "lon": "0"}, "10.9.9.9")


def test_resolve_reads_no_further_source_than_it_needs():
    def hints() -> Iterator[Hint]:
        yield Hint(lat=1.0, lon=2.0)
        yield Hint(territory="SE")
        raise AssertionError("a source was consulted after everything was known")

    assert resolve(hints(), DEFAULT, {}) == Location(1.0, 2.0, None, "SE")
