"""A batch of masters: every valid one published, every bad one failing alone, in one line."""

from pathlib import Path

import pytest

from encoder.batch import collect_sources, ingest
from encoder.ladder import DEFAULT_LADDER
from tests.conftest import Batch, Masters, Recorder


def test_every_valid_master_is_published_despite_the_bad_ones(masters: Masters, batch: Batch):
    for path in masters.valid:
        outcome = batch.outcomes[path]
        assert outcome.ok, f"{path}: {outcome.error}"
        assert (batch.out / "tracks" / outcome.track.track_id / "master.m3u8").is_file()


@pytest.mark.parametrize(
    ("which", "reason"),
    [
        ("truncated", "truncated or damaged"),
        ("text_as_wav", "not a readable audio file"),
        ("empty", "empty (0 bytes)"),
        ("missing", "no such file or folder"),
        ("no_audio_folder", "no audio files in this folder"),
    ],
)
def test_each_bad_input_fails_with_one_clear_line(
    masters: Masters, batch: Batch, which: str, reason: str
):
    outcome = batch.outcomes[getattr(masters, which)]
    assert not outcome.ok
    assert reason in outcome.error
    assert "\n" not in outcome.error
    # Every message says what to do about it.
    assert any(word in outcome.error for word in ("export", "check the path"))


def test_the_batch_reports_every_input_once_and_leaves_no_staging(masters: Masters, batch: Batch):
    assert len(batch.recorder.outcomes) == len(batch.outcomes)
    assert set(batch.outcomes) >= set(masters.valid) | set(masters.invalid)
    assert not (batch.out / ".cadenza-staging").exists()
    published = {p.name for p in (batch.out / "tracks").iterdir()}
    assert published == {o.track.track_id for o in batch.outcomes.values() if o.ok}


def test_collect_sources_walks_folders_skips_hidden_and_deduplicates(tmp_path: Path):
    album = tmp_path / "album"
    (album / "disc 2").mkdir(parents=True)
    (album / ".hidden").mkdir()
    for name in ("b.FLAC", "a.wav", "cover.jpg", ".a.wav", "disc 2/c.mp3", ".hidden/d.wav"):
        (album / name).write_bytes(b"x")
    sources = collect_sources([album, album / "a.wav", tmp_path / "nope"])
    assert [s.path.relative_to(tmp_path).as_posix() for s in sources] == [
        "album/a.wav",
        "album/b.FLAC",
        "album/disc 2/c.mp3",
        "nope",
    ]
    assert [s.error is None for s in sources] == [True, True, True, False]


def test_a_named_file_is_probed_whatever_its_extension(tmp_path: Path):
    odd = tmp_path / "master.audio"
    odd.write_bytes(b"x")
    assert [s.path for s in collect_sources([odd])] == [odd]


async def test_two_masters_of_one_recording_in_a_batch_publish_once(
    masters: Masters, tmp_path: Path
):
    original = masters.album[1]
    copy = tmp_path / "copy of track 2.flac"
    copy.write_bytes(original.read_bytes())
    recorder = Recorder()
    outcomes = await ingest(
        collect_sources([original, copy]), DEFAULT_LADDER, tmp_path / "out", 2, recorder
    )
    assert [o.ok for o in outcomes].count(True) == 1
    failed = next(o for o in outcomes if not o.ok)
    assert "same recording" in failed.error
    assert len(list((tmp_path / "out" / "tracks").iterdir())) == 1
