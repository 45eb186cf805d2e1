"""Strict settings: every key is known, every value has the expected type.

A service's settings are one frozen dataclass. ``load`` builds it from layers, each winning over
the ones before: the dataclass defaults, the service's TOML file, its part of the fleet file,
the environment (``CADENZA_<SERVICE>_<KEY>``), then the command line. Keys, types and checks
come from the dataclass fields (``setting(...)``), so every layer is validated alike and an error
names the layer and the key: a typo in a settings file is never silently ignored.
"""

import argparse
import math
import tomllib
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, Union, get_args, get_origin, get_type_hints

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
    pairs = [i.strip().partition(":") for i in text.split(",") if i.strip()]
    if any(not sep for _, sep, _ in pairs):
        raise ConfigError(f"{where}: token keys are KID:SECRET pairs, secrets of 16+ chars")
    return token_keys({kid: secret for kid, _, secret in pairs}, where)


MIN_SECRET = 16


def token_keys(table: Mapping[str, Any], where: str) -> dict[str, bytes]:
    """Key ids and their secrets, from a TOML table or parsed text: one rule for both."""
    keys = {}
    for kid, secret in table.items():
        if not isinstance(secret, str):
            raise ConfigError(f"{where}: [token_keys] maps key ids to secret strings")
        if not kid or len(secret) < MIN_SECRET:
            raise ConfigError(
                f"{where}: token keys are KID:SECRET pairs, secrets of {MIN_SECRET}+ chars"
            )
        keys[kid] = secret.encode()
    return keys


# The typed loader.

Check = Callable[[Any], str | None]  # a problem with a value, or None when it is good


def positive(value: Any) -> str | None:
    return None if value > 0 else "must be positive"


def non_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def at_least(bound: float) -> Check:
    def check(value: Any) -> str | None:
        return None if value >= bound else f"must be at least {bound:g}"

    return check


def one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(map(repr, choices))}"

    return check


@dataclass(frozen=True)
class Spec:
    """How a settings field is read: its key in files, its flag and environment variable."""

    key: str = ""  # the TOML key; default: the field's name
    check: Check | None = None
    parse: Callable[[Any, str], Any] | None = None  # for values of types the loader lacks
    help: str = ""
    env: str = ""  # the environment variable; default: CADENZA_<SERVICE>_<KEY>
    internal: bool = False  # set by the program, never by configuration
    secret: bool = False  # never shown as a default in --help
    metavar: str = ""  # the flag's placeholder in --help; default: the key in capitals


def setting(
    default: Any = MISSING,
    *,
    factory: Callable[[], Any] | None = None,
    key: str = "",
    check: Check | None = None,
    parse: Callable[[Any, str], Any] | None = None,
    help: str = "",
    env: str = "",
    internal: bool = False,
    secret: bool = False,
    metavar: str = "",
) -> Any:
    """A dataclass field of a settings class with how it is configured (see ``Spec``)."""
    spec = {"cadenza": Spec(key, check, parse, help, env, internal, secret, metavar)}
    if factory is not None:
        return field(default_factory=factory, metadata=spec)
    return field(default=default, metadata=spec)


@dataclass(frozen=True)
class Layer:
    """One source of settings: a table of keys, where it came from, and whether its values are
    text (environment and flags) to be converted, or typed TOML values."""

    table: Mapping[str, Any]
    where: str
    text: bool = False


@dataclass(frozen=True)
class _Field:
    name: str
    key: str
    kind: Any
    spec: Spec
    required: bool


def _fields(cls: type) -> list[_Field]:
    hints = get_type_hints(cls)
    out = []
    for f in fields(cls):
        spec = f.metadata.get("cadenza", Spec())
        if spec.internal:
            continue
        required = f.default is MISSING and f.default_factory is MISSING
        out.append(_Field(f.name, spec.key or f.name, hints[f.name], spec, required))
    return out


def keys_of(cls: type) -> set[str]:
    """Every key a settings file of ``cls`` may hold (``listen`` for host and port)."""
    names = {f.key for f in _fields(cls)}
    if {"host", "port"} <= names:
        names = (names - {"host", "port"}) | {"listen"}
    return names


def load(cls: type[Settings], layers: Iterable[Layer]) -> Settings:
    """``cls`` from its defaults and then every layer in order, each value checked."""
    specs = _fields(cls)
    by_key = {f.key: f for f in specs}
    allowed = keys_of(cls)
    values: dict[str, Any] = {}
    where = "settings"
    for layer in layers:
        where = layer.where
        check_keys(layer.table, allowed, layer.where)
        for key, raw in layer.table.items():
            if raw is None:
                continue
            if key == "listen":
                text = raw if isinstance(raw, str) else None
                if text is None:
                    raise ConfigError(f"{layer.where}: key 'listen' must be str HOST:PORT")
                values["host"], values["port"] = parse_listen(text, f"{layer.where}: listen")
                continue
            f = by_key[key]
            values[f.name] = _value(f, raw, layer)
    missing = [f.key for f in specs if f.required and f.name not in values]
    if missing:
        raise ConfigError(f"{where}: missing required key {missing[0]!r}")
    return cls(**values)


def _value(f: _Field, raw: Any, layer: Layer) -> Any:
    where = layer.where
    if f.spec.parse is not None:
        value = f.spec.parse(raw, f"{where}: {f.key}")
    else:
        value = _convert(f.kind, raw, f.key, where, layer.text)
    if f.spec.check is not None and (problem := f.spec.check(value)):
        shown = "..." if f.spec.secret else repr(raw)
        raise ConfigError(f"{where}: key {f.key!r} {problem}, got {shown}")
    return value


def _convert(kind: Any, raw: Any, key: str, where: str, text: bool) -> Any:
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(kind) if a is not type(None)]
        if len(inner) == 1:
            if raw == "" or raw is None:
                return None
            return _convert(inner[0], raw, key, where, text)
    if origin in (Mapping, dict) and get_args(kind) == (str, bytes):
        if text:
            return parse_token_keys(str(raw), f"{where}: {key}")
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: [{key}] maps key ids to secret strings")
        return token_keys(raw, f"{where}: [{key}]")
    item = get_args(kind)[0] if origin is tuple else None
    if isinstance(item, type) and is_dataclass(item):
        if not isinstance(raw, list | tuple) or not all(isinstance(t, dict) for t in raw):
            raise ConfigError(f"{where}: {key} entries are [[{key}]] tables")
        return tuple(load(item, [Layer(t, f"{where}: {key} {n}")]) for n, t in enumerate(raw, 1))
    if kind is Path:
        if not isinstance(raw, str | Path):
            raise ConfigError(f"{where}: key {key!r} must be a path, got {raw!r}")
        return Path(raw)
    if kind in (str, int, float, bool):
        return _scalar(kind, raw, key, where, text)
    raise TypeError(f"settings field {key!r} of type {kind!r} needs a parse function")


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _scalar(kind: type, raw: Any, key: str, where: str, text: bool) -> Any:
    if text and isinstance(raw, str) and kind is not str:
        word = raw.strip().lower()
        try:
            if kind is bool:
                if word not in _TRUE | _FALSE:
                    raise ValueError
                return word in _TRUE
            value = kind(word)
        except ValueError:
            raise ConfigError(f"{where}: {key} must be {kind.__name__}, got {raw!r}") from None
        if kind is float and not math.isfinite(value):
            raise ConfigError(f"{where}: {key} must be a finite number, got {raw!r}")
        return value
    return typed({key: raw}, key, kind, where)


def environment(cls: type, prefix: str, environ: Mapping[str, str]) -> Layer:
    """The keys of ``cls`` set in ``environ``: ``PREFIX_KEY`` (``CADENZA_EDGE_ORIGIN``), or the
    variable a field names (``CADENZA_TOKEN_KEYS``, shared by services)."""
    names = {f.key: f.spec.env or f"{prefix}{f.key.upper()}" for f in _fields(cls) if _textual(f)}
    if "listen" in keys_of(cls):
        names = {k: v for k, v in names.items() if k not in ("host", "port")}
        names["listen"] = f"{prefix}LISTEN"
    return Layer(
        {key: environ[name] for key, name in names.items() if name in environ},
        "environment",
        text=True,
    )


def _textual(f: _Field) -> bool:
    """Whether a field can be given as one string (environment, command line)."""
    kind = f.kind
    if get_origin(kind) in (Union, types.UnionType):
        kind = next(a for a in get_args(kind) if a is not type(None))
    return kind in (str, int, float, bool, Path) or get_args(kind) == (str, bytes)


def add_flags(parser: argparse.ArgumentParser, cls: type, keys: Sequence[str]) -> None:
    """``--key`` options for ``keys`` of ``cls``, with the defaults ``--help`` shows taken from
    the dataclass itself, so they cannot disagree."""
    defaults = {f.name: f.default for f in fields(cls)}
    specs = {f.key: f for f in _fields(cls)}
    for key in keys:
        flag = "--" + key.replace("_", "-")
        if key == "listen":
            shown = f"{defaults['host']}:{defaults['port']}"
            help_text = f"HOST:PORT to listen on (default {shown}; port 0: any free port)"
            parser.add_argument(flag, metavar="HOST:PORT", help=help_text)
            continue
        f = specs[key]
        default = defaults.get(f.name, MISSING)
        help_text = f.spec.help
        if f.kind is bool:
            parser.add_argument(flag, action="store_const", const="true", help=help_text)
            continue
        if default is not MISSING and not f.spec.secret and default not in ("", None):
            help_text += f" (default {default})" if help_text else f"default {default}"
        parser.add_argument(flag, metavar=f.spec.metavar or key.upper(), help=help_text)


def flags(args: argparse.Namespace, keys: Sequence[str]) -> Layer:
    """The options of ``add_flags`` that were given, as the last layer."""
    given = {key: getattr(args, key) for key in keys if getattr(args, key, None) is not None}
    return Layer({k: str(v) for k, v in given.items()}, "command line", text=True)


def load_service(
    cls: type[Settings],
    prefix: str,
    files: Sequence[Layer],
    environ: Mapping[str, str],
    flags: Mapping[str, Any],
) -> Settings:
    """A service's settings: its files (its own, then its part of the fleet file), then the
    ``prefix`` variables of ``environ``, then the flags that were given."""
    command_line = Layer(flags, "command line", text=True)
    return load(cls, [*files, environment(cls, prefix, environ), command_line])


def file_layers(config: Path | None) -> list[Layer]:
    return [Layer(read_toml(config), str(config))] if config else []
