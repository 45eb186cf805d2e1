"""The locator's settings: edges, keys, geo sources; unknown keys and bad values refused."""

from pathlib import Path

import pytest

from cadenza.errors import ConfigError
from locator.settings import load_settings, parse_settings

CONFIG = Path(__file__).parents[2] / "configs" / "locator.toml"
FLEET = Path(__file__).parents[2] / "configs" / "fleet.toml"
ENV = {"CADENZA_TOKEN_KEYS": "k1:a-secret-of-sixteen-chars"}


def test_the_shipped_config_loads_with_keys_from_the_environment():
    settings = load_settings(fleet=FLEET, environ=ENV, listen="127.0.0.1:0")
    assert [e.id for e in settings.edges] == ["eu-west-1", "eu-west-2", "us-east-1"]
    assert [e.url for e in settings.edges][1] == "http://127.0.0.1:8082"
    assert (settings.edges[1].latitude, settings.edges[1].longitude) == (50.11, 8.68)
    assert settings.origin == "http://127.0.0.1:8080"
    assert settings.signer == ("k1", b"a-secret-of-sixteen-chars")
    assert settings.default_location.territory == "FR"
    assert settings.coverage_zones is not None and len(settings.coverage_zones) == 1
    assert (settings.port, settings.fail_open, settings.load_factor) == (0, False, 1.25)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"edges": []}, "unknown key"),
        ({"edge": [{"id": "a", "region": "r", "url": "http://x"}]}, "required key 'latitude'"),
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
        load_settings(fleet=FLEET, environ={})
    empty = tmp_path / "locator.toml"
    empty.write_text('listen = "127.0.0.1:0"\n')
    with pytest.raises(ConfigError, match=r"\[\[edge\]\]"):
        load_settings(empty, environ=ENV)
    with pytest.raises(ConfigError, match="signing_key"):
        load_settings(fleet=FLEET, environ=ENV, signing_key="k9")
    with pytest.raises(ConfigError, match="token keys are KID:SECRET pairs"):
        load_settings(fleet=FLEET, environ={"CADENZA_TOKEN_KEYS": "k1:short"})


def test_edges_are_written_once(tmp_path: Path):
    twice = tmp_path / "locator.toml"
    twice.write_text(
        '[[edge]]\nid = "a"\nregion = "r"\nurl = "http://h:1"\nlatitude = 0\nlongitude = 0\n'
    )
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(FLEET.read_text().replace("configs/locator.toml", str(twice)))
    with pytest.raises(ConfigError, match="the edges come from the fleet file"):
        load_settings(fleet=fleet, environ=ENV)


def test_origin_replicas_in_order_from_the_command_line_or_the_environment():
    flagged = load_settings(fleet=FLEET, environ=ENV, origin="http://o1:8080, http://o2:8080/")
    assert flagged.origins == ("http://o1:8080", "http://o2:8080")
    env = {**ENV, "CADENZA_LOCATOR_ORIGIN": "http://o2:8080,http://o1:8080"}
    assert load_settings(fleet=FLEET, environ=env).origins == ("http://o2:8080", "http://o1:8080")
    with pytest.raises(ConfigError, match="origin: 'o1' is not an http"):
        load_settings(fleet=FLEET, environ=ENV, origin="o1")


def test_the_play_log_is_a_sqlite_file_by_default_or_redis_from_the_environment():
    assert load_settings(fleet=FLEET, environ=ENV).plays_log.startswith("sqlite:///")
    env = {**ENV, "CADENZA_LOCATOR_PLAYS_LOG": "redis://10.0.0.5:6379/0"}
    assert load_settings(fleet=FLEET, environ=env).plays_log == "redis://10.0.0.5:6379/0"
    env = {**ENV, "CADENZA_LOCATOR_PLAYS_LOG": "plays.db"}
    with pytest.raises(ConfigError, match=r"plays_log .plays.db. .*sqlite:///PATH"):
        load_settings(fleet=FLEET, environ=env)
