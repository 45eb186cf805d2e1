"""The encode benchmark: its reference command is valid HLS and its report has every figure."""

import json
import subprocess
import sys
from pathlib import Path

import m3u8

from bench.catalog import MasterSpec, write_master
from bench.encode import reference_command
from encoder.ladder import DEFAULT_LADDER


def test_the_reference_command_writes_the_same_ladder(tmp_path: Path):
    master = write_master(tmp_path / "m.wav", MasterSpec(8, seed=1))
    subprocess.run(reference_command(master, DEFAULT_LADDER, tmp_path / "ref"), check=True)
    variants = m3u8.load(str(tmp_path / "ref" / "master.m3u8")).playlists
    assert len(variants) == len(DEFAULT_LADDER.rungs)
    for i in range(len(DEFAULT_LADDER.rungs)):
        assert (tmp_path / "ref" / str(i) / f"init_{i}.mp4").is_file()


def test_the_report_gives_both_sides_ratio_utilisation_and_loudness_cost():
    result = subprocess.run(
        [sys.executable, "-m", "cadenza", "bench", "encode", "--tracks", "2",
         "--min-seconds", "3", "--max-seconds", "4", "--runs", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["median_wall_seconds"]) == {"reference", "cadenza", "no_loudness"}
    assert all(v > 0 for v in report["median_wall_seconds"].values())
    assert report["ratio"] > 0 and 0 < report["utilisation"] <= 1.5
    assert set(report["targets"]) == {"ratio", "utilisation", "loudness_extra"}
    assert report["catalog"] == {"tracks": 2, "audio_seconds": report["catalog"]["audio_seconds"]}
