"""Masters generated once per test session, and one batch ingest of all of them.

The batch mixes valid masters with every kind of bad input, so the tests also show that a bad
master never stops the rest of the batch.
"""

import asyncio
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

from bench.catalog import MasterSpec, write_album, write_master
from encoder.batch import Outcome, collect_sources, ingest
from encoder.ladder import DEFAULT_LADDER

# Examples are judged by what they assert, never by how long they take: on a shared machine, with
# test modules running side by side, a pause must not fail a property.
settings.register_profile("cadenza", deadline=None)
settings.load_profile("cadenza")

SECONDS = 13.0  # three segments of about 6 s


@dataclass(frozen=True)
class Masters:
    root: Path
    album: list[Path]  # tagged FLAC, the first with PNG cover art
    mp3_cover: Path  # JPEG cover art
    mono_mp3: Path  # mono, 22.05 kHz
    surround: Path  # 5.1 WAV
    silence: Path
    aiff: Path
    m4a_aac: Path
    m4a_alac: Path
    unicode: Path  # spaces and non-ASCII characters in the folder and file names
    truncated: Path
    text_as_wav: Path
    empty: Path
    missing: Path
    no_audio_folder: Path

    @property
    def valid(self) -> list[Path]:
        return [
            *self.album,
            self.mp3_cover,
            self.mono_mp3,
            self.surround,
            self.silence,
            self.aiff,
            self.m4a_aac,
            self.m4a_alac,
            self.unicode,
        ]

    @property
    def invalid(self) -> list[Path]:
        return [self.truncated, self.text_as_wav, self.empty, self.missing, self.no_audio_folder]


def _alac(source: Path, target: Path) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-c:a", "alac", str(target)],
        check=True,
    )
    return target


@pytest.fixture(scope="session")
def masters(tmp_path_factory: pytest.TempPathFactory) -> Masters:
    root = tmp_path_factory.mktemp("masters")
    album = write_album(root / "album", 2, SECONDS, SECONDS, seed=7)
    truncated = write_master(root / "bad" / "truncated.flac", MasterSpec(20, seed=3))
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 5])
    text_as_wav = root / "bad" / "notes.wav"
    text_as_wav.write_text("these are liner notes, not audio\n")
    empty = root / "bad" / "empty.wav"
    empty.touch()
    no_audio = root / "no audio"
    no_audio.mkdir()
    (no_audio / "readme.txt").write_text("no masters here\n")
    aiff = write_master(root / "formats" / "aiff.aiff", MasterSpec(SECONDS, seed=11))
    return Masters(
        root=root,
        album=album,
        mp3_cover=write_master(
            root / "formats" / "cover.mp3",
            MasterSpec(SECONDS, seed=12, cover=True, tags={"title": "Cover", "artist": "A"}),
        ),
        mono_mp3=write_master(
            root / "formats" / "mono.mp3",
            MasterSpec(SECONDS, seed=13, channels=1, sample_rate=22050),
        ),
        surround=write_master(
            root / "formats" / "surround.wav", MasterSpec(SECONDS, seed=14, channels=6)
        ),
        silence=write_master(root / "formats" / "silence.wav", MasterSpec(SECONDS, silent=True)),
        aiff=aiff,
        m4a_aac=write_master(root / "formats" / "aac.m4a", MasterSpec(SECONDS, seed=15)),
        m4a_alac=_alac(aiff, root / "formats" / "alac.m4a"),
        unicode=write_master(
            root / "Nöel & Zoë – live" / "01 Ça va — très bien.wav",  # noqa: RUF001
            MasterSpec(SECONDS, seed=16),
        ),
        truncated=truncated,
        text_as_wav=text_as_wav,
        empty=empty,
        missing=root / "does-not-exist.flac",
        no_audio_folder=no_audio,
    )


class Recorder:
    """A batch observer that keeps what it is told and checks that progress stays in range."""

    def __init__(self) -> None:
        self.started_sources: list[Path] = []
        self.outcomes: list[Outcome] = []

    def started(self, source: Path) -> None:
        self.started_sources.append(source)

    def progressed(self, source: Path, done: float, total: float) -> None:
        assert source in self.started_sources
        assert 0 <= done <= total

    def finished(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)


@dataclass(frozen=True)
class Batch:
    out: Path
    outcomes: dict[Path, Outcome]
    recorder: Recorder


@pytest.fixture(scope="session")
def batch(masters: Masters, tmp_path_factory: pytest.TempPathFactory) -> Batch:
    """Every master of the session, valid and invalid, ingested in one batch."""
    out = tmp_path_factory.mktemp("published")
    paths = [masters.album[0].parent, *masters.valid[2:], *masters.invalid]
    recorder = Recorder()
    outcomes = asyncio.run(ingest(collect_sources(paths), DEFAULT_LADDER, out, 2, recorder))
    return Batch(out, {o.source: o for o in outcomes}, recorder)
