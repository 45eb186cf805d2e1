"""``cadenza ingest`` as users run it: a real process, its output, exit codes and signals."""

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.catalog import MasterSpec, write_master
from encoder.pipeline import STAGING
from tests.conftest import Masters
from tests.processes import cadenza


def test_json_output_for_a_batch_with_a_failure(masters: Masters, tmp_path: Path):
    result = cadenza("ingest", masters.album[0], masters.missing, "--out", tmp_path, "--json")
    assert result.returncode == 1, result.stderr
    tracks = json.loads(result.stdout)["tracks"]
    assert [t["status"] for t in tracks] == ["ok", "failed"]
    ok, failed = tracks
    assert ok["source"] == str(masters.album[0])
    assert len(ok["track_id"]) == 16 and ok["error"] is None
    assert ok["loudness"]["integrated_lufs"] < 0
    assert [r["name"] for r in ok["rungs"]] == ["aac_256", "aac_160", "aac_96", "aac_48"]
    assert failed["track_id"] is None and "no such file" in failed["error"]


def test_summary_table_and_exit_code_zero(masters: Masters, tmp_path: Path):
    result = cadenza("ingest", masters.album[1], "--out", tmp_path, "--jobs", "1")
    assert result.returncode == 0, result.stderr
    assert "LUFS" in result.stdout
    assert "1 inputs: 1 ok (0 unchanged), 0 failed" in result.stdout
    again = cadenza("ingest", masters.album[1], "--out", tmp_path)
    assert "1 ok (1 unchanged)" in again.stdout


def test_failures_are_listed_one_line_each(masters: Masters, tmp_path: Path):
    result = cadenza("ingest", masters.empty, masters.text_as_wav, "--out", tmp_path)
    assert result.returncode == 1
    failures = [line for line in result.stdout.splitlines() if line.startswith("failed ")]
    assert failures == [
        f"failed {masters.empty}: the file is empty (0 bytes); export it again as WAV, FLAC, "
        "AIFF, MP3 or M4A",
        f"failed {masters.text_as_wav}: not a readable audio file (Invalid data found when "
        "processing input); export it again as WAV, FLAC, AIFF, MP3 or M4A",
    ]


CUT_FORMATS = ("wav", "aiff", "flac", "mp3")


@pytest.fixture(scope="module")
def cut_masters(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    """Masters of 8 s cut in half as by a failed copy, one per format, and an intact one."""
    root = tmp_path_factory.mktemp("cut")
    cut = []
    for seed, extension in enumerate(CUT_FORMATS, start=21):
        whole = write_master(root / f"whole.{extension}", MasterSpec(8, seed=seed))
        data = whole.read_bytes()
        half = root / f"half.{extension}"
        half.write_bytes(data[: len(data) // 2])
        whole.unlink()
        cut.append(half)
    return cut, write_master(root / "intact.wav", MasterSpec(8, seed=20))


def test_a_master_cut_short_fails_alone_saying_what_to_do(
    cut_masters: tuple[list[Path], Path], tmp_path: Path
):
    cut, intact = cut_masters
    result = cadenza("ingest", *cut, intact, "--out", tmp_path, "--json", "--jobs", "2")
    assert result.returncode == 1, result.stderr
    tracks = {Path(t["source"]).name: t for t in json.loads(result.stdout)["tracks"]}
    assert tracks["intact.wav"]["status"] == "ok"
    assert tracks["intact.wav"]["duration"] == pytest.approx(8, abs=0.01)
    for path in cut:
        error = tracks[path.name]["error"]
        assert tracks[path.name]["status"] == "failed"
        assert error.startswith("truncated") and error.endswith("re-export or re-copy the master")
    # PCM masters are refused before encoding: their header and size tell how much is missing.
    for name in ("half.wav", "half.aiff"):
        assert (
            "header declares 8.00 s of audio but the file holds only 4.00 s"
            in (tracks[name]["error"])
        )
    assert [p.name for p in (tmp_path / "tracks").iterdir()] == [tracks["intact.wav"]["track_id"]]
    # The summary names each file on its own line.
    again = cadenza("ingest", *cut, intact, "--out", tmp_path)
    failures = [line for line in again.stdout.splitlines() if line.startswith("failed ")]
    assert [line.split(": ", 1)[0] for line in failures] == [f"failed {p}" for p in cut]
    assert "5 inputs: 1 ok (1 unchanged), 4 failed" in again.stdout


def test_published_files_are_world_readable_whatever_the_umask(
    cut_masters: tuple[list[Path], Path], tmp_path: Path
):
    site = tmp_path / "www" / "site"
    _, intact = cut_masters
    _ingest_with_umask_077(intact, site)
    created = [tmp_path / "www", *(tmp_path / "www").rglob("*")]
    names = {p.name for p in created}
    assert {"master.m3u8", "metadata.json", "index.m3u8", "init.mp4", "seg_00000.m4s"} <= names
    assert _not_public(created) == {}
    # What an earlier release published private is made public when the track is ingested again.
    track = next((site / "tracks").iterdir())
    for path in track.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)
    _ingest_with_umask_077(intact, site)
    assert _not_public(list(track.rglob("*"))) == {}


def _ingest_with_umask_077(master: Path, out: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cadenza", "ingest", str(master), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        umask=0o077,
    )
    assert result.returncode == 0, result.stderr


def _not_public(paths: list[Path]) -> dict[str, str]:
    modes = {str(p): stat.S_IMODE(p.stat().st_mode) for p in paths}
    return {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (0o755 if Path(name).is_dir() else 0o644)
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "x.wav"], "--out"),
        (["ingest", "x.wav", "--out", "o", "--jobs", "0"], "--jobs"),
        (["ingest", "--out", "o"], "PATH"),
        (["nosuchcommand"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str):
    result = cadenza(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_bad_ladder_file_is_a_usage_error_naming_the_key(masters: Masters, tmp_path: Path):
    ladder = tmp_path / "ladder.toml"
    ladder.write_text('[[rung]]\nname = "aac_64"\ncodec = "aac"\nbitrate = 64\n')
    result = cadenza("ingest", masters.album[0], "--out", tmp_path / "out", "--ladder", ladder)
    assert result.returncode == 2
    assert str(ladder) in result.stderr and "'bitrate'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
    missing = cadenza("ingest", masters.album[0], "--out", tmp_path, "--ladder", tmp_path / "no")
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_an_output_that_is_a_file_is_a_usage_error(masters: Masters, tmp_path: Path):
    not_a_folder = tmp_path / "out.txt"
    not_a_folder.write_text("x")
    result = cadenza("ingest", masters.album[0], "--out", not_a_folder)
    assert result.returncode == 2
    assert f"--out {not_a_folder} is a file" in result.stderr


def test_a_custom_ladder_is_used(masters: Masters, tmp_path: Path):
    ladder = tmp_path / "ladder.toml"
    ladder.write_text('[[rung]]\nname = "aac_64"\ncodec = "aac"\nbitrate_kbps = 64\n')
    result = cadenza("ingest", masters.album[0], "--out", tmp_path, "--ladder", ladder, "--json")
    assert result.returncode == 0, result.stderr
    assert [r["name"] for r in json.loads(result.stdout)["tracks"][0]["rungs"]] == ["aac_64"]


def test_help_explains_the_command():
    result = cadenza("ingest", "--help")
    assert result.returncode == 0
    for text in ("--out", "--ladder", "--jobs", "--json", "master.m3u8", "exit codes"):
        assert text in result.stdout


def _ffmpeg_writing_to(folder: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"ffmpeg\0") and str(folder).encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _start_ingest(master: Path, out: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cadenza", "ingest", str(master), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(lambda: any((out / STAGING).rglob("*.m4s")), 60, "the first segment")
    return proc


@pytest.fixture
def long_master(tmp_path: Path) -> Path:
    return write_master(tmp_path / "long.flac", MasterSpec(150, seed=8))


def test_ctrl_c_leaves_nothing_and_exits_130(long_master: Path, tmp_path: Path):
    out = tmp_path / "out"
    proc = _start_ingest(long_master, out)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "interrupted" in stderr
    assert list(out.rglob("*")) == []
    assert _ffmpeg_writing_to(out) == []


def test_a_killed_ingest_publishes_nothing_and_the_next_run_cleans_up(
    long_master: Path, tmp_path: Path
):
    out = tmp_path / "out"
    proc = _start_ingest(long_master, out)
    proc.kill()
    proc.communicate(timeout=30)
    _wait_for(lambda: not _ffmpeg_writing_to(out), 10, "ffmpeg to die with its parent")
    assert not (out / "tracks").exists()
    rerun = cadenza("ingest", long_master, "--out", out, "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["tracks"][0]["status"] == "ok"
    assert not (out / STAGING).exists()
    assert os.listdir(out) == ["tracks"]
