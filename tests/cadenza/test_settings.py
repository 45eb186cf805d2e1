"""Strict settings: a bad file, an unknown key or a wrong type is a ConfigError naming it."""

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadenza.errors import CadenzaError, ConfigError
from cadenza.settings import (
    ENV_TOKEN_KEYS,
    Layer,
    add_flags,
    check_keys,
    environment,
    flags,
    load,
    one_of,
    positive,
    read_toml,
    setting,
    typed,
)

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


@dataclass(frozen=True)
class Part:
    name: str
    weight: float = setting(1.0, check=positive)


@dataclass(frozen=True)
class Service:
    host: str = "127.0.0.1"
    port: int = 1
    region: str = setting("here", help="where it is")
    workers: int = setting(2, check=positive, help="processes")
    timeout: float = setting(2.0, key="timeout_seconds", check=positive)
    verbose: bool = False
    cache: Path | None = None
    mode: str = setting("a", check=one_of("a", "b"))
    part: tuple[Part, ...] = ()
    token_keys: Mapping[str, bytes] = setting(factory=dict, env=ENV_TOKEN_KEYS, secret=True)
    worker: int = setting(0, internal=True)


def test_layers_win_in_order_and_each_is_checked_where_it_is():
    file = Layer({"region": "file", "workers": 3, "part": [{"name": "p", "weight": 2}]}, "f.toml")
    environ = {
        "CADENZA_X_REGION": "env", "CADENZA_X_WORKERS": "4",
        ENV_TOKEN_KEYS: "k1:sixteen-chars-secret",
    }  # fmt: skip
    env = environment(Service, "CADENZA_X_", environ)
    cli = Layer({"listen": "[::1]:8081", "timeout_seconds": "0.5", "verbose": "true"}, "cli", True)
    s = load(Service, [file, env, cli])
    assert (s.host, s.port, s.region, s.workers, s.timeout, s.verbose) == (
        "::1", 8081, "env", 4, 0.5, True,
    )  # fmt: skip
    assert s.part == (Part("p", 2.0),) and s.token_keys == {"k1": b"sixteen-chars-secret"}
    assert load(Service, []) == Service()


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (Layer({"worker": 1}, "f.toml"), "f.toml: unknown key 'worker'"),
        (Layer({"workers": 0}, "f.toml"), "f.toml: key 'workers' must be positive, got 0"),
        (Layer({"workers": "3"}, "f.toml"), "f.toml: key 'workers' must be int"),
        (Layer({"workers": "three"}, "environment", True), "environment: workers must be int"),
        (Layer({"timeout_seconds": "nan"}, "cli", True), "must be a finite number"),
        (Layer({"verbose": "perhaps"}, "cli", True), "cli: verbose must be bool"),
        (Layer({"mode": "c"}, "f.toml"), "must be one of 'a', 'b'"),
        (Layer({"part": [{"weight": 1}]}, "f.toml"), "f.toml: part 1: missing required key"),
        (Layer({"part": {"name": "x"}}, "f.toml"), r"part entries are \[\[part\]\] tables"),
        (Layer({"token_keys": {"k1": "short"}}, "f.toml"), "16\\+ chars"),
        (Layer({"token_keys": "k1:short"}, "environment", True), "16\\+ chars"),
        (Layer({"listen": "nowhere"}, "cli", True), "HOST:PORT"),
    ],
)
def test_every_layer_names_its_mistakes(layer, message):
    with pytest.raises(ConfigError, match=message):
        load(Service, [layer])


def test_a_secret_is_never_echoed_in_an_error():
    @dataclass(frozen=True)
    class Keyed:
        key: str = setting("", check=lambda v: "is too short" if len(v) < 30 else None,
                           secret=True)  # fmt: skip

    with pytest.raises(ConfigError) as info:
        load(Keyed, [Layer({"key": "hunter2-secret"}, "f.toml")])
    assert "hunter2" not in str(info.value) and "too short" in str(info.value)


def test_flags_show_the_dataclass_defaults_and_parse_like_the_environment():
    parser = argparse.ArgumentParser()
    add_flags(parser, Service, ["listen", "region", "workers", "verbose", "cache"])
    text = parser.format_help()
    assert "default 127.0.0.1:1" in text and "where it is (default here)" in text
    args = parser.parse_args(["--workers", "5", "--verbose", "--cache", "/tmp/c"])
    s = load(Service, [flags(args, ["listen", "region", "workers", "verbose", "cache"])])
    assert (s.workers, s.verbose, s.cache, s.region) == (5, True, Path("/tmp/c"), "here")
    with pytest.raises(ConfigError, match="command line: key 'workers' must be positive"):
        load(Service, [flags(parser.parse_args(["--workers", "-1"]), ["workers"])])


@given(st.integers(1, 10**9), st.floats(1e-3, 1e6, allow_nan=False), st.booleans())
def test_text_and_typed_values_load_alike(workers, timeout, verbose):
    typed_layer = Layer({"workers": workers, "timeout_seconds": timeout, "verbose": verbose}, "f")
    text_layer = Layer(
        {"workers": str(workers), "timeout_seconds": repr(timeout), "verbose": str(verbose)},
        "environment",
        True,
    )
    assert load(Service, [typed_layer]) == load(Service, [text_layer])
