"""The rendition ladder: which rungs every track is encoded to, read from ``configs/ladder.toml``.

Pure: parsing and validation only. The embedded default equals ``configs/ladder.toml``.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cadenza.settings import check_keys, read_toml, typed
from encoder.errors import LadderError

# RFC 6381 codec strings for the CODECS attribute, and the ffmpeg encoder for each codec.
CODEC_STRINGS = {"aac": "mp4a.40.2", "opus": "opus", "flac": "fLaC"}
FFMPEG_ENCODERS = {"aac": "aac", "opus": "libopus", "flac": "flac"}
LOSSY = {"aac", "opus"}
RUNG_NAME = re.compile(r"[a-z0-9][a-z0-9_]{0,31}")
SAMPLE_RATES = {44100, 48000}


@dataclass(frozen=True)
class Rung:
    """One rendition: a codec at a target bitrate (None for lossless)."""

    name: str
    codec: str
    bitrate_kbps: int | None

    @property
    def codec_string(self) -> str:
        return CODEC_STRINGS[self.codec]

    @property
    def encoder(self) -> str:
        return FFMPEG_ENCODERS[self.codec]


@dataclass(frozen=True)
class Ladder:
    rungs: tuple[Rung, ...]
    sample_rate: int = 48000
    segment_seconds: float = 6.0
    max_duration_seconds: float = 2 * 60 * 60.0

    def fingerprint(self) -> str:
        """A canonical text of everything that changes the encoded bytes (not the limits)."""
        recipe = asdict(self)
        del recipe["max_duration_seconds"]
        return json.dumps(recipe, sort_keys=True, separators=(",", ":"))


DEFAULT_LADDER = Ladder(
    rungs=(
        Rung("aac_256", "aac", 256),
        Rung("aac_160", "aac", 160),
        Rung("aac_96", "aac", 96),
        Rung("aac_48", "aac", 48),
    )
)

_TOP_KEYS = {"sample_rate", "segment_seconds", "max_duration_seconds", "rung"}
_RUNG_KEYS = {"name", "codec", "bitrate_kbps", "enabled"}


def parse_ladder(table: Mapping[str, Any], where: str) -> Ladder:
    check_keys(table, _TOP_KEYS, where)
    sample_rate = typed(table, "sample_rate", int, where, DEFAULT_LADDER.sample_rate)
    if sample_rate not in SAMPLE_RATES:
        raise LadderError(f"{where}: sample_rate must be one of {sorted(SAMPLE_RATES)}")
    segment_seconds = typed(table, "segment_seconds", float, where, DEFAULT_LADDER.segment_seconds)
    if not 1.0 <= segment_seconds <= 20.0:
        raise LadderError(f"{where}: segment_seconds must be between 1 and 20")
    max_duration = typed(
        table, "max_duration_seconds", float, where, DEFAULT_LADDER.max_duration_seconds
    )
    if max_duration <= 0:
        raise LadderError(f"{where}: max_duration_seconds must be positive")
    raw_rungs = table.get("rung", [])
    if not isinstance(raw_rungs, list) or not raw_rungs:
        raise LadderError(f"{where}: define at least one [[rung]]")
    rungs = tuple(
        rung
        for i, raw in enumerate(raw_rungs)
        if (rung := _parse_rung(raw, f"{where}: rung {i + 1}", sample_rate)) is not None
    )
    if not rungs:
        raise LadderError(f"{where}: every rung is disabled; enable at least one")
    names = [r.name for r in rungs]
    if len(set(names)) != len(names):
        raise LadderError(f"{where}: rung names must be unique, got {names}")
    return Ladder(rungs, sample_rate, segment_seconds, max_duration)


def _parse_rung(raw: Any, where: str, sample_rate: int) -> Rung | None:
    if not isinstance(raw, dict):
        raise LadderError(f"{where}: must be a table")
    check_keys(raw, _RUNG_KEYS, where)
    enabled = typed(raw, "enabled", bool, where, True)
    name = typed(raw, "name", str, where)
    if not RUNG_NAME.fullmatch(name):
        raise LadderError(f"{where}: name {name!r} must be lowercase letters, digits and '_'")
    codec = typed(raw, "codec", str, where)
    if codec not in CODEC_STRINGS:
        raise LadderError(f"{where}: codec {codec!r} is not one of {sorted(CODEC_STRINGS)}")
    if codec == "opus" and sample_rate != 48000:
        raise LadderError(f"{where}: opus needs sample_rate = 48000")
    bitrate = raw.get("bitrate_kbps")
    if codec in LOSSY:
        bitrate = typed(raw, "bitrate_kbps", int, where)
        if not 6 <= bitrate <= 512:
            raise LadderError(f"{where}: bitrate_kbps must be between 6 and 512")
    elif bitrate is not None:
        raise LadderError(f"{where}: {codec} is lossless; remove bitrate_kbps")
    return Rung(name, codec, bitrate) if enabled else None


def load_ladder(path: Path | None) -> Ladder:
    """The ladder from ``path``, or the embedded default when no file is given."""
    if path is None:
        return DEFAULT_LADDER
    return parse_ladder(read_toml(path), str(path))
