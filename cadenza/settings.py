"""Strict TOML settings: every key is known, every value has the expected type.

A typo in a settings file is an error naming the key and the file, never silently ignored.
"""

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cadenza.errors import ConfigError


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
