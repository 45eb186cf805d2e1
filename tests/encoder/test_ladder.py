"""The ladder file: every mistake is a ConfigError naming the file, the rung and the key."""

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadenza.errors import ConfigError
from encoder.errors import LadderError
from encoder.ladder import DEFAULT_LADDER, Ladder, Rung, load_ladder, parse_ladder

LADDER_TOML = Path(__file__).resolve().parents[2] / "configs" / "ladder.toml"
WHERE = "ladder.toml"


def _table(*rungs: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {
        **top,
        "rung": list(rungs or [{"name": "aac_128", "codec": "aac", "bitrate_kbps": 128}]),
    }


def _error(table: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_ladder(table, WHERE)
    return str(info.value)


def test_configs_ladder_toml_is_exactly_the_default() -> None:
    ladder = load_ladder(LADDER_TOML)
    assert ladder == DEFAULT_LADDER
    assert [r.name for r in ladder.rungs] == ["aac_256", "aac_160", "aac_96", "aac_48"]
    # The version id hashes the fingerprint: with or without --ladder the ids must agree.
    assert ladder.fingerprint() == DEFAULT_LADDER.fingerprint()


def test_no_file_gives_the_default() -> None:
    assert load_ladder(None) is DEFAULT_LADDER


def test_defaults_for_omitted_top_level_keys() -> None:
    ladder = parse_ladder(_table(), WHERE)
    assert ladder == Ladder((Rung("aac_128", "aac", 128),), 48000, 6.0, 7200.0)
    assert isinstance(ladder.segment_seconds, float)
    assert isinstance(ladder.max_duration_seconds, float)


def test_disabled_rungs_are_dropped_and_order_is_kept() -> None:
    table = _table(
        {"name": "aac_256", "codec": "aac", "bitrate_kbps": 256},
        {"name": "opus_128", "codec": "opus", "bitrate_kbps": 128, "enabled": False},
        {"name": "flac", "codec": "flac", "enabled": True},
        {"name": "aac_48", "codec": "aac", "bitrate_kbps": 48},
    )
    ladder = parse_ladder(table, WHERE)
    assert ladder.rungs == (
        Rung("aac_256", "aac", 256),
        Rung("flac", "flac", None),
        Rung("aac_48", "aac", 48),
    )


def test_rung_codec_strings_and_encoders() -> None:
    table = _table(
        {"name": "a", "codec": "aac", "bitrate_kbps": 96},
        {"name": "o", "codec": "opus", "bitrate_kbps": 96},
        {"name": "f", "codec": "flac"},
    )
    rungs = parse_ladder(table, WHERE).rungs
    assert [(r.codec_string, r.encoder) for r in rungs] == [
        ("mp4a.40.2", "aac"),
        ("opus", "libopus"),
        ("fLaC", "flac"),
    ]


@pytest.mark.parametrize(
    ("top", "rung", "fragments"),
    [
        ({"segment_second": 6}, {}, ["unknown key 'segment_second'", "segment_seconds"]),
        ({}, {"bitrate": 128}, ["rung 1: unknown key 'bitrate'", "bitrate_kbps"]),
        ({"sample_rate": 32000}, {}, ["sample_rate must be one of [44100, 48000]"]),
        ({"sample_rate": "48000"}, {}, ["key 'sample_rate' must be int, got str '48000'"]),
        ({"sample_rate": 48000.0}, {}, ["key 'sample_rate' must be int, got float 48000.0"]),
        ({"segment_seconds": 0.5}, {}, ["segment_seconds must be between 1 and 20"]),
        ({"segment_seconds": 20.5}, {}, ["segment_seconds must be between 1 and 20"]),
        ({"segment_seconds": True}, {}, ["key 'segment_seconds' must be float, got bool True"]),
        ({"max_duration_seconds": 0}, {}, ["max_duration_seconds must be positive"]),
        ({"max_duration_seconds": -1.5}, {}, ["max_duration_seconds must be positive"]),
        ({}, {"name": "AAC_128"}, ["rung 1: name 'AAC_128' must be lowercase"]),
        ({}, {"name": "_aac"}, ["rung 1: name '_aac' must be lowercase"]),
        ({}, {"name": "aac-128"}, ["rung 1: name 'aac-128' must be lowercase"]),
        ({}, {"name": "a" * 33}, ["must be lowercase"]),
        ({}, {"name": 128}, ["rung 1: key 'name' must be str, got int 128"]),
        ({}, {"codec": "mp3"}, ["rung 1: codec 'mp3' is not one of ['aac', 'flac', 'opus']"]),
        ({"sample_rate": 44100}, {"codec": "opus"}, ["rung 1: opus needs sample_rate = 48000"]),
        ({}, {"bitrate_kbps": 5}, ["rung 1: bitrate_kbps must be between 6 and 512"]),
        ({}, {"bitrate_kbps": 513}, ["rung 1: bitrate_kbps must be between 6 and 512"]),
        ({}, {"bitrate_kbps": 128.0}, ["rung 1: key 'bitrate_kbps' must be int, got float"]),
        ({}, {"bitrate_kbps": True}, ["rung 1: key 'bitrate_kbps' must be int, got bool"]),
        ({}, {"codec": "flac"}, ["rung 1: flac is lossless; remove bitrate_kbps"]),
        ({}, {"enabled": "no"}, ["rung 1: key 'enabled' must be bool, got str 'no'"]),
        ({}, {"enabled": 0}, ["rung 1: key 'enabled' must be bool, got int 0"]),
    ],
)
def test_invalid_values_name_the_key(
    top: dict[str, Any], rung: dict[str, Any], fragments: list[str]
) -> None:
    base = {"name": "aac_128", "codec": "aac", "bitrate_kbps": 128}
    message = _error(_table({**base, **rung}, **top))
    assert message.startswith(f"{WHERE}: ")
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("missing", ["name", "codec", "bitrate_kbps"])
def test_missing_rung_key_is_named(missing: str) -> None:
    rung = {"name": "aac_128", "codec": "aac", "bitrate_kbps": 128}
    del rung[missing]
    assert _error(_table(rung)) == f"{WHERE}: rung 1: missing required key {missing!r}"


def test_error_names_the_rung_by_position() -> None:
    table = _table(
        {"name": "aac_256", "codec": "aac", "bitrate_kbps": 256},
        {"name": "aac_2000", "codec": "aac", "bitrate_kbps": 2000},
    )
    assert _error(table) == f"{WHERE}: rung 2: bitrate_kbps must be between 6 and 512"


@pytest.mark.parametrize("rungs", [None, [], {"name": "aac_128"}])
def test_no_rungs(rungs: Any) -> None:
    table: dict[str, Any] = {} if rungs is None else {"rung": rungs}
    assert _error(table) == f"{WHERE}: define at least one [[rung]]"


def test_rung_must_be_a_table() -> None:
    assert _error({"rung": ["aac_128"]}) == f"{WHERE}: rung 1: must be a table"


def test_every_rung_disabled() -> None:
    table = _table({"name": "flac", "codec": "flac", "enabled": False})
    assert "every rung is disabled" in _error(table)


def test_duplicate_names() -> None:
    rung = {"name": "aac_128", "codec": "aac", "bitrate_kbps": 128}
    assert "rung names must be unique, got ['aac_128', 'aac_128']" in _error(_table(rung, rung))


def test_duplicate_name_of_a_disabled_rung_is_allowed() -> None:
    enabled = {"name": "aac_128", "codec": "aac", "bitrate_kbps": 128}
    disabled = {**enabled, "enabled": False}
    assert parse_ladder(_table(enabled, disabled), WHERE).rungs == (Rung("aac_128", "aac", 128),)


@pytest.mark.parametrize(
    ("top", "rung"),
    [
        ({"segment_seconds": 1}, {}),
        ({"segment_seconds": 20}, {}),
        ({}, {"bitrate_kbps": 6}),
        ({}, {"bitrate_kbps": 512}),
        ({}, {"name": "a" * 32}),
        ({}, {"name": "0"}),
        ({"sample_rate": 44100}, {}),
    ],
)
def test_boundary_values_are_accepted(top: dict[str, Any], rung: dict[str, Any]) -> None:
    base = {"name": "aac_128", "codec": "aac", "bitrate_kbps": 128}
    ladder = parse_ladder(_table({**base, **rung}, **top), WHERE)
    assert ladder.rungs == (Rung(**{**base, **rung}),)
    assert ladder.segment_seconds == top.get("segment_seconds", 6.0)
    assert ladder.sample_rate == top.get("sample_rate", 48000)


def test_ladder_error_is_a_config_error() -> None:
    with pytest.raises(LadderError) as info:
        parse_ladder(_table({"name": "a", "codec": "mp3", "bitrate_kbps": 128}), WHERE)
    assert isinstance(info.value, ConfigError)
    assert info.value.exit_code == 2


def test_load_ladder_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "my ladder.toml"
    path.write_text('sample_rate = 48000\nsegmentseconds = 4\n[[rung]]\nname = "a"\n')
    with pytest.raises(ConfigError, match="unknown key 'segmentseconds'") as info:
        load_ladder(path)
    assert str(info.value).startswith(f"{path}: ")
    with pytest.raises(ConfigError, match="settings file not found") as info:
        load_ladder(tmp_path / "absent.toml")
    assert str(tmp_path / "absent.toml") in str(info.value)


def test_load_ladder_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "ladder.toml"
    path.write_text(
        "sample_rate = 44100\nsegment_seconds = 4\nmax_duration_seconds = 600\n"
        '[[rung]]\nname = "hi"\ncodec = "aac"\nbitrate_kbps = 192\n'
        '[[rung]]\nname = "lossless"\ncodec = "flac"\n'
    )
    assert load_ladder(path) == Ladder(
        (Rung("hi", "aac", 192), Rung("lossless", "flac", None)), 44100, 4.0, 600.0
    )


# Fingerprints


def test_fingerprint_is_canonical_json_of_the_ladder() -> None:
    fingerprint = DEFAULT_LADDER.fingerprint()
    assert " " not in fingerprint
    assert json.loads(fingerprint) == {
        "rungs": [
            {"bitrate_kbps": 256, "codec": "aac", "name": "aac_256"},
            {"bitrate_kbps": 160, "codec": "aac", "name": "aac_160"},
            {"bitrate_kbps": 96, "codec": "aac", "name": "aac_96"},
            {"bitrate_kbps": 48, "codec": "aac", "name": "aac_48"},
        ],
        "sample_rate": 48000,
        "segment_seconds": 6.0,
    }


def test_fingerprint_ignores_how_numbers_are_spelled() -> None:
    as_ints = parse_ladder(_table(segment_seconds=6, max_duration_seconds=7200), WHERE)
    as_floats = parse_ladder(_table(segment_seconds=6.0, max_duration_seconds=7200.0), WHERE)
    omitted = parse_ladder(_table(), WHERE)
    assert as_ints.fingerprint() == as_floats.fingerprint() == omitted.fingerprint()


def test_disabled_rungs_do_not_change_the_fingerprint() -> None:
    plain = parse_ladder(_table(), WHERE)
    extra = {"name": "flac", "codec": "flac", "enabled": False}
    with_disabled = parse_ladder(_table(*_table()["rung"], extra), WHERE)
    assert with_disabled.fingerprint() == plain.fingerprint()


@pytest.mark.parametrize(
    "changed",
    [
        Ladder(DEFAULT_LADDER.rungs, sample_rate=44100),
        Ladder(DEFAULT_LADDER.rungs, segment_seconds=4.0),
        Ladder(DEFAULT_LADDER.rungs[:3]),
        Ladder(DEFAULT_LADDER.rungs[::-1]),
        Ladder((Rung("aac_256", "aac", 320), *DEFAULT_LADDER.rungs[1:])),
        Ladder((Rung("aac_256", "opus", 256), *DEFAULT_LADDER.rungs[1:])),
        Ladder((*DEFAULT_LADDER.rungs, Rung("flac", "flac", None))),
    ],
)
def test_fingerprint_changes_with_what_is_encoded(changed: Ladder) -> None:
    assert changed.fingerprint() != DEFAULT_LADDER.fingerprint()


_NAMES = st.from_regex(r"[a-z0-9][a-z0-9_]{0,31}", fullmatch=True)


@st.composite
def _ladder_tables(draw: st.DrawFn) -> dict[str, Any]:
    rungs = []
    for name in draw(st.lists(_NAMES, min_size=1, max_size=5, unique=True)):
        codec = draw(st.sampled_from(["aac", "opus", "flac"]))
        rung: dict[str, Any] = {"name": name, "codec": codec}
        if codec != "flac":
            rung["bitrate_kbps"] = draw(st.integers(6, 512))
        rungs.append(rung)
    uses_opus = any(r["codec"] == "opus" for r in rungs)
    table: dict[str, Any] = {"rung": rungs}
    table["sample_rate"] = 48000 if uses_opus else draw(st.sampled_from([44100, 48000]))
    table["segment_seconds"] = draw(st.integers(1, 20) | st.floats(1.0, 20.0))
    table["max_duration_seconds"] = draw(st.integers(1, 10**6) | st.floats(0.5, 1e6))
    return table


@given(_ladder_tables())
def test_valid_tables_parse_to_what_they_say(table: dict[str, Any]) -> None:
    ladder = parse_ladder(table, WHERE)
    assert ladder.rungs == tuple(
        Rung(r["name"], r["codec"], r.get("bitrate_kbps")) for r in table["rung"]
    )
    assert ladder.sample_rate == table["sample_rate"]
    assert ladder.segment_seconds == table["segment_seconds"]
    assert ladder.max_duration_seconds == table["max_duration_seconds"]
    assert parse_ladder(table, WHERE).fingerprint() == ladder.fingerprint()


def _respelled(table: dict[str, Any]) -> dict[str, Any]:
    """The same table with every integral float written as an int and every int as a float."""

    def respell(value: Any) -> Any:
        if isinstance(value, int):
            return float(value)
        return int(value) if value.is_integer() else value

    keys = ("segment_seconds", "max_duration_seconds")
    return {**table, **{key: respell(table[key]) for key in keys}}


@given(_ladder_tables(), _ladder_tables())
def test_fingerprints_are_equal_exactly_when_ladders_are(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    a, b = parse_ladder(first, WHERE), parse_ladder(second, WHERE)
    respelled = parse_ladder(_respelled(first), WHERE)
    assert respelled == a
    assert respelled.fingerprint() == a.fingerprint()
    # The duration limit decides what is accepted, not what is encoded.
    same_recipe = replace(a, max_duration_seconds=b.max_duration_seconds) == b
    assert (a.fingerprint() == b.fingerprint()) == same_recipe
