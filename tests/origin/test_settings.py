"""Origin settings: the shipped file, strict keys, then environment, then flags."""

from pathlib import Path

import pytest

from cadenza.errors import ConfigError
from cadenza.settings import parse_listen
from origin.settings import OriginSettings, load_settings, parse_settings

CONFIG = Path(__file__).parents[2] / "configs" / "origin.toml"


def test_the_shipped_file_gives_the_defaults():
    settings = load_settings(CONFIG, environ={})
    assert settings == OriginSettings().with_data_dir(Path("data/origin"))
    assert settings.storage.backend == "filesystem"
    assert settings.storage.root == Path("data/origin/objects")
    assert settings.catalog_path == Path("data/origin/catalog.sqlite3")
    assert settings.operator_key is None


def test_environment_then_flags_win(tmp_path: Path):
    settings = load_settings(
        CONFIG,
        listen="[::1]:9000",
        data_dir=tmp_path,
        environ={"CADENZA_OPERATOR_KEY": "secret"},
    )
    assert (settings.host, settings.port) == ("::1", 9000)
    assert settings.storage.root == tmp_path / "objects"
    assert settings.operator_key == "secret"


def test_s3_settings():
    table = {
        "storage": {"backend": "s3", "bucket": "b", "prefix": "p/", "endpoint_url": "http://x"}
    }
    storage = parse_settings(table, "f").storage
    assert (storage.backend, storage.bucket, storage.prefix, storage.endpoint_url) == (
        "s3",
        "b",
        "p/",
        "http://x",
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"listen": "8080"}, "must be HOST:PORT"),
        ({"listen": "h:99999"}, "must be HOST:PORT"),
        ({"lisen": "h:1"}, "unknown key 'lisen'"),
        ({"storage": {"backend": "ftp"}}, "backend must be"),
        ({"storage": {"backend": "s3"}}, "needs a bucket"),
        ({"storage": {"bucket": "b", "secret": "x"}}, "unknown key 'secret'"),
        ({"max_object_bytes": 0}, "must be positive"),
        ({"master_max_age_seconds": "10"}, "must be int"),
    ],
)
def test_bad_settings_name_the_problem(table, message):
    with pytest.raises(ConfigError, match=message):
        parse_settings(table, "origin.toml")


def test_listen_accepts_any_port_zero():
    assert parse_listen("127.0.0.1:0", "x") == ("127.0.0.1", 0)
    assert parse_listen(":8080", "x") == ("0.0.0.0", 8080)


def test_the_catalog_is_sqlite_in_the_data_folder_unless_a_postgresql_url_is_given(tmp_path):
    settings = load_settings(None, data_dir=tmp_path, environ={})
    assert settings.catalog is None
    assert settings.catalog_location == tmp_path / "catalog.sqlite3"
    url = "postgresql://cadenza@db.internal/catalog"
    from_env = load_settings(None, environ={"CADENZA_ORIGIN_CATALOG": url})
    assert from_env.catalog_location == url
    assert parse_settings({"catalog": "postgres://h/c"}, "f").catalog_location == "postgres://h/c"


def test_a_catalog_that_is_not_a_postgresql_url_is_refused_without_echoing_it():
    with pytest.raises(ConfigError, match="postgresql://") as e:
        parse_settings({"catalog": "mysql://u:pw-secret@h/c"}, "origin.toml")
    assert "pw-secret" not in str(e.value)
