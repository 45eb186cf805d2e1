"""Strict settings: a bad file, an unknown key or a wrong type is a ConfigError naming it."""

from pathlib import Path
from typing import Any

import pytest

from cadenza.errors import CadenzaError, ConfigError
from cadenza.settings import check_keys, read_toml, typed

WHERE = "origin.toml: [cache]"


def test_read_toml(tmp_path: Path) -> None:
    path = tmp_path / "origin.toml"
    path.write_text('port = 8080\n\n[cache]\nmax_bytes = 1_000_000\npolicy = "lru"\n')
    assert read_toml(path) == {"port": 8080, "cache": {"max_bytes": 1_000_000, "policy": "lru"}}


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as info:
        read_toml(path)
    assert str(info.value) == f"{path}: settings file not found"


def test_bad_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('port = 8080\nname = "unterminated\n')
    with pytest.raises(ConfigError) as info:
        read_toml(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not valid TOML (")
    assert "line 2" in message
    assert message.endswith("; fix the syntax and retry")


def test_duplicate_key_is_bad_toml(tmp_path: Path) -> None:
    path = tmp_path / "twice.toml"
    path.write_text("port = 1\nport = 2\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_toml(path)


def test_unreadable_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        read_toml(tmp_path)
    assert str(info.value) == f"{tmp_path}: cannot read settings file (Is a directory)"


def test_config_error_is_a_cadenza_error_with_exit_code_2() -> None:
    assert issubclass(ConfigError, CadenzaError)
    assert ConfigError.exit_code == 2


def test_check_keys_names_the_unknown_key() -> None:
    with pytest.raises(ConfigError) as info:
        check_keys({"max_bytes": 1, "polcy": "lru"}, {"max_bytes", "policy"}, WHERE)
    assert str(info.value) == f"{WHERE}: unknown key 'polcy'; allowed keys are max_bytes, policy"


def test_check_keys_names_the_first_unknown_key_in_order() -> None:
    with pytest.raises(ConfigError, match="unknown key 'b_typo'"):
        check_keys({"z_typo": 1, "b_typo": 2, "a": 3}, {"a"}, WHERE)


@pytest.mark.parametrize("table", [{}, {"policy": "lru"}, {"max_bytes": 1, "policy": "lru"}])
def test_check_keys_accepts_known_keys(table: dict[str, Any]) -> None:
    check_keys(table, {"max_bytes", "policy"}, WHERE)  # raises on any unknown key


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (3, int, 3),
        (0, int, 0),
        (3, float, 3.0),
        (2.5, float, 2.5),
        ("lru", str, "lru"),
        ("", str, ""),
        (False, bool, False),
        ([1, 2], list, [1, 2]),
    ],
)
def test_typed_accepts(value: Any, kind: type, expected: Any) -> None:
    result = typed({"key": value}, "key", kind, WHERE)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "kind", "described"),
    [
        (True, int, "int, got bool True"),
        (False, float, "float, got bool False"),
        (1, bool, "bool, got int 1"),
        ("1", int, "int, got str '1'"),
        (1.5, int, "int, got float 1.5"),
        (8080, str, "str, got int 8080"),
    ],
)
def test_typed_rejects(value: Any, kind: type, described: str) -> None:
    with pytest.raises(ConfigError) as info:
        typed({"port": value}, "port", kind, WHERE)
    assert str(info.value) == f"{WHERE}: key 'port' must be {described}"


def test_typed_missing_required_key() -> None:
    with pytest.raises(ConfigError) as info:
        typed({"other": 1}, "port", int, WHERE)
    assert str(info.value) == f"{WHERE}: missing required key 'port'"


def test_typed_default_applies_only_when_missing() -> None:
    assert typed({}, "port", int, WHERE, 8080) == 8080
    assert typed({"port": 9090}, "port", int, WHERE, 8080) == 9090
    assert typed({}, "enabled", bool, WHERE, False) is False
    with pytest.raises(ConfigError, match="must be int"):
        typed({"port": "9090"}, "port", int, WHERE, 8080)


def test_overrides_come_from_the_environment_then_the_flags():
    from dataclasses import dataclass, field

    from cadenza.settings import ENV_TOKEN_KEYS, override

    @dataclass(frozen=True)
    class Service:
        host: str = "127.0.0.1"
        port: int = 1
        region: str = "here"
        token_keys: dict[str, bytes] = field(default_factory=dict)

    environ = {ENV_TOKEN_KEYS: "k1:sixteen-chars-secret, k2:another-long-secret"}
    flags = {"listen": "[::1]:8081", "region": None}
    settings = override(Service(), environ, flags)
    assert (settings.host, settings.port, settings.region) == ("::1", 8081, "here")
    assert settings.token_keys == {"k1": b"sixteen-chars-secret", "k2": b"another-long-secret"}
    assert flags == {"listen": "[::1]:8081", "region": None}  # the caller's flags untouched
    assert override(Service(), {}, {"region": "there"}).region == "there"
