"""``cadenza play`` as a process, against a real deployment on loopback."""

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.catalog import MasterSpec, write_master
from bench.deploy import Deployment, deploy
from tests.processes import cadenza


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, str]]:
    root = tmp_path_factory.mktemp("cli")
    master = write_master(root / "one.flac", MasterSpec(8, seed=31, tags={"title": "One"}))
    with deploy(root / "deployment") as deployment:
        (track,) = deployment.ingest([master])
        assert track["status"] == "ok", track
        yield deployment, track["track_id"]


@pytest.fixture(autouse=True)
def _own_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plays keep media in the user's cache folder by default, and look in the user's offline
    store: here, the test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))  # the offline store


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_help_explains_the_play_and_its_exit_codes():
    done = cadenza("play", "--help")
    assert done.returncode == 0
    for words in ("steering", "CMCD", "fail over", "--trace", "--speed", "-14 LUFS", "Exit status"):
        assert words in done.stdout, words


def test_a_play_prints_one_json_summary(fleet):
    deployment, track = fleet
    done = cadenza(
        "play", track, "--locator", deployment.locator.url, "--territory", "FR",
        "--lat", "48.85", "--lon", "2.35", "--abr", "bola", "--speed", "20", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["status"] == "ok" and doc["track_id"] == track and doc["rule"] == "bola"
    assert doc["stalls"] == 0 and doc["startup_s"] > 0
    assert [s["index"] for s in doc["segments"]] == [0, 1]
    assert sum(doc["edge_share"].values()) == pytest.approx(1.0)
    assert doc["pathways"][0] in doc["edge_share"]


def test_a_play_prints_a_readable_summary_over_a_trace(fleet, tmp_path):
    deployment, track = fleet
    trace = tmp_path / "link.json"
    trace.write_text(json.dumps([{"duration_ms": 5000, "bandwidth_kbps": 1000, "latency_ms": 40}]))
    done = cadenza(
        "play", track, "--locator", deployment.locator.url, "--trace", trace, "--speed", "20"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"track     {track}")
    assert "stalls" in done.stdout and "loudness" in done.stdout


def test_a_second_play_reads_media_from_the_local_cache(fleet, tmp_path):
    deployment, track = fleet
    cache = tmp_path / "cache"
    play = ("play", track, "--locator", deployment.locator.url, "--territory", "FR",
            "--speed", "20", "--json", "--cache-dir", cache)  # fmt: skip
    first = cadenza(*play)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["local_hits"] == 0
    kept = [p for p in cache.rglob("*") if p.is_file()]
    assert kept and all(f"tracks/{track}/v" in p.as_posix() for p in kept)
    second = cadenza(*play)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["local_hits"] >= 2  # a media playlist, its init, ...
    assert cadenza(*play, "--no-cache").returncode == 0
    assert not (tmp_path / "user-cache").exists() and not (tmp_path / "user-data").exists()


def test_a_play_that_cannot_start_exits_1(fleet):
    deployment, _ = fleet
    done = cadenza("play", "ffffffffffffffff", "--locator", deployment.locator.url, "--json")
    assert done.returncode == 1
    doc = json.loads(done.stdout)
    assert doc["status"] == "failed" and "404" in doc["error"]
    done = cadenza("play", "ffffffffffffffff", "--locator", f"http://127.0.0.1:{_closed_port()}")
    assert done.returncode == 1 and "cannot reach the locator" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lat", "48.8"], "--lon"),
        (["--trace", "missing.json"], "missing.json"),
        (["--speed", "0"], "speed"),
        (["--abr", "psychic"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2(args, message):
    done = cadenza("play", "0123456789abcdef", "--locator", "http://127.0.0.1:1", *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
