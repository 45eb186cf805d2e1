"""The load generator: how players are split over processes, and a real run of two of them."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench import loadgen
from bench.catalog import MasterSpec, write_master
from bench.deploy import Deployment, EdgeOptions, deploy
from player.traces import DEFAULT_TRACES


def test_one_process_per_250_players_at_most_one_per_core():
    assert loadgen.generators(10, available=2) == 1
    assert loadgen.generators(251, available=2) == 2
    assert loadgen.generators(1000, available=2) == 2
    assert loadgen.generators(1000, available=8) == 4
    assert loadgen.generators(1, available=1) == 1


@given(st.integers(1, 2000), st.integers(1, 16))
def test_the_split_covers_every_player_once_in_near_equal_parts(players, parts):
    spans = loadgen.split(players, parts)
    assert len(spans) == min(parts, players)
    numbers = [n for first, count in spans for n in range(first, first + count)]
    assert numbers == list(range(players))
    sizes = [count for _, count in spans]
    assert max(sizes) - min(sizes) <= 1


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, str]]:
    root = tmp_path_factory.mktemp("loadgen")
    master = write_master(root / "one.flac", MasterSpec(13, seed=31, tags={"title": "One"}))
    with deploy(root / "deployment", options=EdgeOptions(memory_bytes=16 << 20)) as deployment:
        tracks = deployment.ingest([master], jobs=1)
        assert [t["status"] for t in tracks] == ["ok"], tracks
        yield deployment, tracks[0]["track_id"]


def test_two_processes_play_their_own_players_and_report_every_play(
    fleet: tuple[Deployment, str], tmp_path: Path
):
    deployment, track = fleet
    deadline = time.time() + 10  # the processes start (imports) before their players do
    jobs = [
        loadgen.Job(
            deployment.locator.url, (track,), first, count, deadline, zipf=0.9, skip=1.0,
            speed=8.0, rule="cadenza", seed=3, traces=str(DEFAULT_TRACES / "3g"),
        )
        for first, count in loadgen.split(4, 2)
    ]  # fmt: skip
    generators = loadgen.start(jobs, tmp_path / "players")
    try:
        plays, errors, failed = loadgen.collect(generators, deadline)
    finally:
        loadgen.stop(generators)
    assert (errors, failed) == ([], 0)
    assert len({g.process.pid for g in generators}) == 2
    assert {region for _, region, _ in plays} == {"eu-west", "us-east"}
    for started, _, qoe in plays:
        assert started < deadline and qoe.track_id == track
        assert 1 <= len(qoe.segments) <= 2  # every play skips after one or two segments
    assert sorted(p.name for p in (tmp_path / "players").iterdir()) == [
        "players-0.log", "players-1.log", "plays-0.json", "plays-1.json",
    ]  # fmt: skip


def test_a_generator_that_fails_is_named_with_what_it_said(tmp_path: Path):
    job = loadgen.Job("http://127.0.0.1:1", ("x",), 0, 1, time.time() + 1, 0.9, 0.0, 1.0,
                      "no-such-rule", 1, "")  # fmt: skip
    generators = loadgen.start([job], tmp_path)
    try:
        with pytest.raises(loadgen.ServiceFailed, match="no-such-rule"):
            loadgen.collect(generators, job.deadline)
    finally:
        loadgen.stop(generators)
