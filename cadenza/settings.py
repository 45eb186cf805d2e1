"""Strict TOML settings: every key is known, every value has the expected type.

A typo in a settings file is an error naming the key and the file, never silently ignored.
"""

import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cadenza.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    Settings = TypeVar("Settings", bound=DataclassInstance)
else:
    Settings = TypeVar("Settings")

ENV_TOKEN_KEYS = "CADENZA_TOKEN_KEYS"  # "kid1:secret1,kid2:secret2", shared by edges and locator


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: settings file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e}); fix the syntax and retry") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read settings file ({e.strerror})") from None


def check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r}; allowed keys are {', '.join(sorted(allowed))}"
        )


def typed(table: Mapping[str, Any], key: str, kind: type, where: str, default: Any = None) -> Any:
    """The value of ``key`` checked against ``kind`` (ints are accepted where floats are)."""
    if key not in table:
        if default is None:
            raise ConfigError(f"{where}: missing required key {key!r}")
        return default
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(
            f"{where}: key {key!r} must be {kind.__name__}, got {type(value).__name__} {value!r}"
        )
    return value


def parse_listen(text: str, where: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{where}: listen address {text!r} must be HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def parse_token_keys(text: str, where: str) -> dict[str, bytes]:
    keys = {}
    for item in filter(None, (i.strip() for i in text.split(","))):
        kid, sep, secret = item.partition(":")
        if not sep or not kid or len(secret) < 16:
            raise ConfigError(f"{where}: token keys are KID:SECRET pairs, secrets of 16+ chars")
        keys[kid] = secret.encode()
    return keys


def override(settings: Settings, environ: Mapping[str, str], flags: dict[str, Any]) -> Settings:
    """``settings`` (with ``host``, ``port`` and ``token_keys``) after the environment's token
    keys, then the flags that were given (not None); ``listen`` sets host and port."""
    if text := environ.get(ENV_TOKEN_KEYS):
        settings = replace(settings, token_keys=parse_token_keys(text, ENV_TOKEN_KEYS))
    flags = dict(flags)
    listen = flags.pop("listen", None)
    if listen is not None:
        host, port = parse_listen(listen, "--listen")
        settings = replace(settings, host=host, port=port)
    return replace(settings, **{k: v for k, v in flags.items() if v is not None})
