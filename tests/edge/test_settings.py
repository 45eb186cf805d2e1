"""Edge settings: the shipped files, the fleet file's part, strict keys, every layer checked."""

from pathlib import Path

import pytest

from cadenza.errors import ConfigError
from cadenza.settings import parse_token_keys
from edge.settings import EdgeSettings, load_settings, parse_settings, require_runnable

CONFIGS = Path(__file__).parents[2] / "configs"
FLEET = CONFIGS / "fleet.toml"


def test_the_shipped_file_loads_with_the_defaults_that_help_shows():
    settings = load_settings(CONFIGS / "edge.toml", environ={})
    assert settings.policy == "music" and not settings.allow_unsigned
    assert (settings.host, settings.port) == ("127.0.0.1", 8081)
    assert settings.stale_grace == EdgeSettings().stale_grace == 0


@pytest.mark.parametrize(
    ("edge_id", "region", "place", "port"),
    [
        ("eu-west-1", "eu-west", (48.86, 2.35), 8081),
        ("eu-west-2", "eu-west", (50.11, 8.68), 8082),
        ("us-east-1", "us-east", (38.90, -77.04), 8083),
    ],
)
def test_each_edge_of_the_shipped_fleet_reads_its_part(edge_id, region, place, port):
    settings = load_settings(fleet=FLEET, edge_id=edge_id, environ={})
    assert (settings.id, settings.region, (settings.latitude, settings.longitude)) == (
        edge_id,
        region,
        place,
    )
    assert settings.port == port and settings.locator == "http://127.0.0.1:8070"
    assert settings.cache_dir == Path(f"data/edge-{edge_id}")
    assert settings.memory_bytes == 256 << 20  # from configs/edge.toml, named by the fleet file


def test_environment_then_flags_win_over_files():
    settings = load_settings(
        fleet=FLEET,
        edge_id="eu-west-1",
        environ={
            "CADENZA_TOKEN_KEYS": "k1:0123456789abcdef, k2:fedcba9876543210",
            "CADENZA_EDGE_MEMORY_BYTES": "1048576",
            "CADENZA_EDGE_REGION": "eu-south",
        },
        listen="127.0.0.1:9999",
        origin="http://127.0.0.1:1",
        allow_unsigned=True,
        region=None,
    )
    assert settings.token_keys == {"k1": b"0123456789abcdef", "k2": b"fedcba9876543210"}
    assert (settings.port, settings.origin, settings.allow_unsigned) == (
        9999,
        "http://127.0.0.1:1",
        True,
    )
    assert (settings.memory_bytes, settings.region) == (1 << 20, "eu-south")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"regoin": "x"}, "unknown key 'regoin'"),
        ({"memory_bytes": 0}, "must be positive"),
        ({"allow_unsigned": "yes"}, "must be bool"),
        ({"token_keys": {"k1": 5}}, "maps key ids to secret strings"),
        ({"token_keys": {"k1": "short"}}, "16\\+ chars"),
        ({"policy": "lfu"}, "must be one of 'lru', 's3fifo', 'wtinylfu', 'music'"),
        ({"latitude": 91.0}, "must be -90..90"),
        ({"listen": "nowhere"}, "HOST:PORT"),
    ],
)
def test_bad_settings_name_the_problem(table, message):
    with pytest.raises(ConfigError, match=message):
        parse_settings(table, "edge.toml")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CADENZA_TOKEN_KEYS": "k1:short"}, "environment: token_keys: token keys"),
        ({"CADENZA_EDGE_WORKERS": "two"}, "environment: workers must be int"),
        ({"CADENZA_EDGE_WORKERS": "0"}, "environment: key 'workers' must be positive"),
        ({"CADENZA_EDGE_ALLOW_UNSIGNED": "maybe"}, "must be bool"),
        ({"CADENZA_EDGE_POLICY": "lfu"}, "must be one of"),
    ],
)
def test_the_environment_is_checked_like_the_file(environ, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=environ)


def test_flags_are_checked_and_the_fleet_needs_an_id():
    with pytest.raises(ConfigError, match="command line: key 'memory_bytes' must be positive"):
        load_settings(environ={}, memory_bytes="-1")
    with pytest.raises(ConfigError, match="--id \\(one of eu-west-1, eu-west-2, us-east-1\\)"):
        load_settings(fleet=FLEET, environ={})
    with pytest.raises(ConfigError, match="no edge 'mars-1'"):
        load_settings(fleet=FLEET, edge_id="mars-1", environ={})
    with pytest.raises(ConfigError, match="give --fleet"):
        load_settings(edge_id="eu-west-1", environ={})


def test_an_edge_without_token_keys_must_be_told_to_serve_unsigned():
    with pytest.raises(ConfigError, match=r"no token keys.*--allow-unsigned"):
        require_runnable(EdgeSettings())
    require_runnable(EdgeSettings(allow_unsigned=True))
    require_runnable(EdgeSettings(token_keys={"k1": b"0123456789abcdef"}))


@pytest.mark.parametrize("text", ["k1", "k1:short", ":0123456789abcdef"])
def test_bad_token_keys(text):
    with pytest.raises(ConfigError, match="KID:SECRET"):
        parse_token_keys(text, "env")


def test_origins_and_parents_are_lists_from_any_layer():
    toml = parse_settings(
        {"origin": ["http://o1:8080", "http://o2:8080/"], "parents": ["http://p1:8081"]}, "e.toml"
    )
    assert toml.origins == ("http://o1:8080", "http://o2:8080")
    assert toml.parents == ("http://p1:8081",)
    assert EdgeSettings().parents == () and EdgeSettings().origins == ("http://127.0.0.1:8080",)
    text = load_settings(
        environ={"CADENZA_EDGE_PARENTS": "http://p1:8081, http://p2:8081"},
        origin="http://o1:8080,http://o2:8080",
    )
    assert text.origins == ("http://o1:8080", "http://o2:8080")
    assert text.parents == ("http://p1:8081", "http://p2:8081")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"origin": []}, "origin: name at least one URL"),
        ({"origin": "http://o1,ftp://o2"}, "'ftp://o2' is not an http"),
        ({"parents": ["http://p:1", "http://p:1"]}, "parents: 'http://p:1' is named twice"),
        ({"upstream_down_seconds": -1}, "must be 0 or more"),
    ],
)
def test_bad_upstream_lists_name_the_key_and_the_url(table, message):
    with pytest.raises(ConfigError, match=message):
        parse_settings(table, "edge.toml")
