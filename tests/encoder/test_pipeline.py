"""One master encoded end to end with real ffmpeg, checked with standard tools."""

import asyncio
import json
import os
from pathlib import Path

import m3u8
import pytest

from bench.catalog import MasterSpec, write_master
from cadenza import layout
from encoder.ladder import DEFAULT_LADDER, Ladder, Rung
from encoder.pipeline import STAGING, encode_track, remove_stale_staging
from tests.checks import check_published, probe_stream
from tests.conftest import Batch, Masters


def _track(batch: Batch, path: Path):
    outcome = batch.outcomes[path]
    assert outcome.ok, outcome.error
    return outcome.track


def test_every_valid_master_meets_the_published_contract(masters: Masters, batch: Batch):
    for path in masters.valid:
        track = _track(batch, path)
        metadata = check_published(batch.out, track.track_id)
        assert metadata["version"] == track.version
        assert [r["name"] for r in metadata["rungs"]] == [r.name for r in DEFAULT_LADDER.rungs]
        for name, entry in metadata["files"].items():
            file = batch.out / "tracks" / track.track_id / track.version / name
            assert file.stat().st_size == entry["size"]


def test_renditions_are_stereo_48k_whatever_the_master(masters: Masters, batch: Batch):
    for path in (masters.mono_mp3, masters.surround, masters.album[0]):
        track = _track(batch, path)
        init = batch.out / "tracks" / track.track_id / track.version / "aac_96" / "init.mp4"
        stream = probe_stream(init)
        assert (stream["codec_name"], stream["channels"], stream["sample_rate"]) == (
            "aac",
            2,
            "48000",
        )


def test_mono_is_upmixed_at_unity_gain(masters: Masters, batch: Batch):
    track = _track(batch, masters.mono_mp3)
    # The generated master is mixed near -18 LUFS; a -3 dB pan law would put it near -21.
    assert track.loudness is not None and track.loudness.integrated_lufs > -20


def test_cover_art_is_a_file_never_a_stream(masters: Masters, batch: Batch):
    for path, extension in ((masters.album[0], "png"), (masters.mp3_cover, "jpg")):
        track = _track(batch, path)
        version = batch.out / "tracks" / track.track_id / track.version
        metadata = json.loads((version / "metadata.json").read_text())
        assert metadata["cover"] == f"cover.{extension}"
        assert (version / f"cover.{extension}").stat().st_size > 0
        assert probe_stream(version / f"cover.{extension}")["codec_type"] == "video"


def test_tags_and_loudness_reach_the_metadata(masters: Masters, batch: Batch):
    track = _track(batch, masters.album[0])
    version = batch.out / "tracks" / track.track_id / track.version
    metadata = json.loads((version / "metadata.json").read_text())
    assert metadata["tags"]["title"] == "Étude No. 1"
    assert metadata["tags"]["track_number"] == 1
    assert metadata["tags"]["isrc"] == "XXC072600001"
    loudness = metadata["loudness"]
    assert -40 < loudness["integrated_lufs"] < -5
    assert loudness["true_peak_dbtp"] < 0
    master = m3u8.load(str(batch.out / "tracks" / track.track_id / "master.m3u8"))
    values = {d.data_id: d.value for d in master.session_data}
    assert values["org.cadenza.loudness.integrated-lufs"] == f"{loudness['integrated_lufs']:.1f}"


def test_digital_silence_is_published_with_no_loudness_figure(masters: Masters, batch: Batch):
    track = _track(batch, masters.silence)
    assert track.loudness is not None and track.loudness.silent
    assert track.loudness.true_peak_dbtp is None
    master = (batch.out / "tracks" / track.track_id / "master.m3u8").read_text()
    assert 'integrated-lufs",VALUE="-inf"' in master


async def test_reingesting_an_unchanged_master_is_a_no_op(masters: Masters, batch: Batch):
    first = _track(batch, masters.aiff)
    version = batch.out / "tracks" / first.track_id / first.version
    before = {p: p.stat().st_mtime_ns for p in version.rglob("*")}
    again = await encode_track(masters.aiff, DEFAULT_LADDER, batch.out)
    assert again.reused
    assert (again.track_id, again.version) == (first.track_id, first.version)
    assert {p: p.stat().st_mtime_ns for p in version.rglob("*")} == before


async def test_a_changed_master_is_a_new_version_and_the_old_one_stays(tmp_path: Path):
    tags = {"title": "Song", "artist": "Band", "ISRC": "GB-AYE-06-01498"}
    master = write_master(tmp_path / "song.wav", MasterSpec(7, seed=1, tags=tags))
    first = await encode_track(master, DEFAULT_LADDER, tmp_path / "out")
    write_master(master, MasterSpec(7, seed=2, tags=tags))
    second = await encode_track(master, DEFAULT_LADDER, tmp_path / "out")
    assert second.track_id == first.track_id
    assert second.version != first.version
    track_dir = tmp_path / "out" / "tracks" / first.track_id
    assert (track_dir / first.version / "metadata.json").is_file()
    assert f"{second.version}/aac_256/index.m3u8" in (track_dir / "master.m3u8").read_text()


async def test_encoding_is_deterministic(tmp_path: Path):
    master = write_master(tmp_path / "m.flac", MasterSpec(7, seed=5))
    one = await encode_track(master, DEFAULT_LADDER, tmp_path / "one")
    two = await encode_track(master, DEFAULT_LADDER, tmp_path / "two")
    assert one.version == two.version
    files = [
        p.relative_to(tmp_path / "one")
        for p in sorted((tmp_path / "one").rglob("*"))
        if p.is_file()
    ]
    for rel in files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes()


async def test_opus_and_flac_rungs_stay_within_one_frame_of_the_aac_boundaries(tmp_path: Path):
    ladder = Ladder(
        rungs=(*DEFAULT_LADDER.rungs[:2], Rung("opus_128", "opus", 128), Rung("flac", "flac", None))
    )
    master = write_master(tmp_path / "m.wav", MasterSpec(20, seed=9))
    track = await encode_track(master, ladder, tmp_path / "out")
    check_published(tmp_path / "out", track.track_id)
    version = tmp_path / "out" / "tracks" / track.track_id / track.version
    codecs = {r.name: r.codecs for r in track.rungs}
    assert codecs == {
        "aac_256": "mp4a.40.2",
        "aac_160": "mp4a.40.2",
        "opus_128": "opus",
        "flac": "fLaC",
    }
    boundaries = {}
    for name in codecs:
        media = m3u8.load(str(version / name / "index.m3u8"))
        total, edges = 0.0, []
        for segment in media.segments:
            total += segment.duration
            edges.append(total)
        boundaries[name] = edges
    aac_frame = 1024 / 48000
    for name in ("opus_128", "flac"):
        assert len(boundaries[name]) == len(boundaries["aac_256"])
        for edge, aac_edge in zip(boundaries[name][:-1], boundaries["aac_256"][:-1], strict=True):
            assert abs(edge - aac_edge) <= aac_frame


def _ffmpeg_children() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == os.getpid() and name == "ffmpeg":
            found.append(int(entry.name))
    return found


async def test_cancelling_mid_encode_stops_ffmpeg_and_leaves_nothing(tmp_path: Path):
    master = write_master(tmp_path / "long.flac", MasterSpec(120, seed=4))
    out = tmp_path / "out"
    progressed = asyncio.Event()
    task = asyncio.create_task(
        encode_track(master, DEFAULT_LADDER, out, lambda done, total: done > 0 and progressed.set())
    )
    await asyncio.wait_for(progressed.wait(), timeout=60)
    assert (out / STAGING).is_dir()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=30)
    assert _ffmpeg_children() == []
    assert list(out.rglob("*")) == []


def test_stale_staging_of_a_dead_process_is_removed(tmp_path: Path):
    dead_pid = 2**22 + 12345  # above the kernel's pid_max default, so never a live process
    stale = tmp_path / STAGING / f"abcd-v123-{dead_pid}-ffff"
    live = tmp_path / STAGING / f"abcd-v123-{os.getpid()}-eeee"
    for folder in (stale, live):
        (folder / "aac_256").mkdir(parents=True)
    remove_stale_staging(tmp_path)
    assert not stale.exists()
    assert live.exists()


def test_layout_names_match_what_the_encoder_writes(masters: Masters, batch: Batch):
    track = _track(batch, masters.album[1])
    assert layout.TRACK_ID.fullmatch(track.track_id)
    assert layout.VERSION.fullmatch(track.version)
    rung = batch.out / layout.version_prefix(track.track_id, track.version) / "aac_48"
    assert sorted(p.name for p in rung.iterdir())[:3] == ["index.m3u8", "init.mp4", "seg_00000.m4s"]
