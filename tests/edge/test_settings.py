"""Edge settings: the shipped region files, strict keys, token keys from the environment."""

from pathlib import Path

import pytest

from cadenza.errors import ConfigError
from cadenza.settings import parse_token_keys
from edge.settings import load_settings, parse_settings

CONFIGS = Path(__file__).parents[2] / "configs"


@pytest.mark.parametrize("region", ["eu-west", "us-east"])
def test_the_shipped_region_files_load(region: str):
    settings = load_settings(CONFIGS / f"edge-{region}.toml", environ={})
    assert settings.region == region
    assert settings.policy == "s3fifo" and not settings.allow_unsigned
    assert -90 <= settings.latitude <= 90 and -180 <= settings.longitude <= 180


def test_environment_then_flags_win():
    settings = load_settings(
        CONFIGS / "edge-eu-west.toml",
        environ={"CADENZA_TOKEN_KEYS": "k1:0123456789abcdef, k2:fedcba9876543210"},
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
    assert settings.region == "eu-west"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"regoin": "x"}, "unknown key 'regoin'"),
        ({"memory_bytes": 0}, "must be positive"),
        ({"allow_unsigned": "yes"}, "must be bool"),
        ({"token_keys": {"k1": 5}}, "maps key ids to secret strings"),
    ],
)
def test_bad_settings_name_the_problem(table, message):
    with pytest.raises(ConfigError, match=message):
        parse_settings(table, "edge.toml")


@pytest.mark.parametrize("text", ["k1", "k1:short", ":0123456789abcdef"])
def test_bad_token_keys(text):
    with pytest.raises(ConfigError, match="KID:SECRET"):
        parse_token_keys(text, "env")
