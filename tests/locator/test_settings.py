"""The locator's settings: edges, keys, geo sources; unknown keys and bad values refused."""

from pathlib import Path

import pytest

from cadenza.errors import ConfigError
from locator.settings import load_settings, parse_settings

CONFIG = Path(__file__).parents[2] / "configs" / "locator.toml"
ENV = {"CADENZA_TOKEN_KEYS": "k1:a-secret-of-sixteen-chars"}


def test_the_shipped_config_loads_with_keys_from_the_environment():
    settings = load_settings(CONFIG, environ=ENV, listen="127.0.0.1:0")
    assert [e.id for e in settings.edges] == ["eu-west-1", "eu-west-2", "us-east-1"]
    assert settings.signer == ("k1", b"a-secret-of-sixteen-chars")
    assert settings.default_location.territory == "FR"
    assert settings.coverage_zones is not None and len(settings.coverage_zones) == 1
    assert (settings.port, settings.fail_open, settings.load_factor) == (0, False, 1.25)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"edges": []}, "unknown key"),
        ({"edge": [{"id": "a", "region": "r", "url": "http://x"}]}, "missing latitude"),
        ({"edge": [{"id": "a", "region": "r", "url": "u", "latitude": 1.0, "longitude": 2.0,
                    "colour": "red"}]}, "unknown key"),
        ({"steering_ttl_seconds": 0}, "steering_ttl_seconds"),
        ({"pathways": 0}, "pathways"),
        ({"poll_interval_seconds": 0.0}, "positive"),
        ({"default_location": {"latitude": 91.0}}, "latitude"),
        ({"coverage_zone": [{"cidr": "10.0.0.0/33", "region": "r", "latitude": 0.0,
                             "longitude": 0.0}]}, "not a network"),
    ],
)  # fmt: skip
def test_bad_settings_are_named(table: dict, message: str):
    with pytest.raises(ConfigError, match=message):
        parse_settings(table, "locator.toml")


def test_a_locator_without_keys_or_edges_says_what_to_set(tmp_path: Path):
    with pytest.raises(ConfigError, match="CADENZA_TOKEN_KEYS"):
        load_settings(CONFIG, environ={})
    empty = tmp_path / "locator.toml"
    empty.write_text('listen = "127.0.0.1:0"\n')
    with pytest.raises(ConfigError, match=r"\[\[edge\]\]"):
        load_settings(empty, environ=ENV)
    with pytest.raises(ConfigError, match="signing_key"):
        load_settings(CONFIG, environ=ENV, signing_key="k9")
