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
from player.traces import DEFAULT_TRACES, Period, Trace


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


def trace(*kbps: float) -> Trace:
    return Trace("t", tuple(Period(2.0, k, 0.1) for k in kbps))


def test_traces_under_200_kbits_on_average_are_left_out():
    kept, slow = trace(1000, 100), trace(300, 50)  # 550 and 175 kbit/s on average
    assert loadgen.usable([kept, slow]) == [kept]
    assert loadgen.mean_kbps(slow) == 175


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
        got = loadgen.collect(generators, deadline)
    finally:
        loadgen.stop(generators)
    assert (got.errors, got.failures) == ([], []), got.errors
    assert len({g.process.pid for g in generators}) == 2 and got.cpu_s > 0
    assert {region for _, region, _ in got.plays} == {"eu-west", "us-east"}
    for started, _, qoe in got.plays:
        assert started < deadline and qoe.track_id == track
        assert 1 <= len(qoe.segments) <= 2  # every play skips after one or two segments
    # Each player's next track starts from what it fetched during the last one's buffer.
    assert sum(qoe.local_hits >= 3 for _, _, qoe in got.plays) >= len(got.plays) - 4
    assert sorted(p.name for p in (tmp_path / "players").iterdir()) == [
        "players-0.log", "players-1.log", "plays-0.json", "plays-1.json",
    ]  # fmt: skip


def test_a_closer_deadline_ends_the_players_sooner(fleet: tuple[Deployment, str], tmp_path: Path):
    deployment, track = fleet
    far = time.time() + 600
    job = loadgen.Job(deployment.locator.url, (track,), 0, 2, far, 0.9, 1.0, 8.0, "cadenza", 3,
                      "", ramp_s=0.5)  # fmt: skip
    generators = loadgen.start([job], tmp_path)
    try:
        closer = time.time() + 8
        loadgen.end_early(generators, closer)
        got = loadgen.collect(generators, closer)  # would wait past the far deadline otherwise
    finally:
        loadgen.stop(generators)
    assert got.plays and all(started < closer for started, _, _ in got.plays)


def test_the_players_time_runs_from_when_their_process_is_ready(
    fleet: tuple[Deployment, str], tmp_path: Path
):
    """A process loads for a while before it can play; with ``duration`` the players' time
    starts once it can, and ``wait_ready`` tells when that is."""
    deployment, track = fleet
    far = time.time() + 600
    job = loadgen.Job(deployment.locator.url, (track,), 0, 2, far, 0.9, 1.0, 8.0, "cadenza", 3,
                      "", ramp_s=0.5, duration=4.0)  # fmt: skip
    generators = loadgen.start([job], tmp_path)
    try:
        loadgen.wait_ready(generators)
        ready = time.time()
        assert (tmp_path / "plays-0.ready").exists() and generators[0].process.poll() is None
        got = loadgen.collect(generators, ready + job.duration)
    finally:
        loadgen.stop(generators)
    assert got.plays and got.failures == []
    assert all(started < ready + job.duration for started, _, _ in got.plays)
    assert max(started for started, _, _ in got.plays) > ready  # they played after it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["players-0.log", "plays-0.json"]


def test_a_generator_that_fails_is_named_with_what_it_said(tmp_path: Path):
    job = loadgen.Job("http://127.0.0.1:1", ("x",), 0, 1, time.time() + 1, 0.9, 0.0, 1.0,
                      "no-such-rule", 1, "")  # fmt: skip
    generators = loadgen.start([job], tmp_path)
    try:
        with pytest.raises(loadgen.ServiceFailed, match="no-such-rule"):
            loadgen.collect(generators, job.deadline)
    finally:
        loadgen.stop(generators)
