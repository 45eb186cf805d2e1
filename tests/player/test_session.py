"""Plays against a real deployment on loopback: origin, three edges, locator, each a process.

The deployment is shared by the tests of this module; the last one kills an edge. Edges run
without their own readahead and pre-positioning, so what they warm is what the player's CMCD
``nor`` names.
"""

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from bench.catalog import MasterSpec, write_master
from bench.deploy import Deployment, EdgeOptions, deploy
from player.abr import CadenzaRule, DownloadSample
from player.qoe import SegmentRecord
from player.session import PlaybackFailed, play
from player.traces import load_trace

TIMEOUT_S = 30.0
EDGES = EdgeOptions(extra={"readahead_seconds": 0, "preposition_interval_seconds": 0})


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, str, str]]:
    root = tmp_path_factory.mktemp("plays")
    short = write_master(root / "short.flac", MasterSpec(13, seed=21, tags={"title": "S"}))
    long = write_master(root / "long.flac", MasterSpec(25, seed=22, tags={"title": "L"}))
    with deploy(root / "deployment", options=EDGES) as deployment:
        tracks = deployment.ingest([short, long], jobs=2)
        assert [t["status"] for t in tracks] == ["ok", "ok"], tracks
        yield deployment, tracks[0]["track_id"], tracks[1]["track_id"]


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _metric(url: str, name: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_play_on_a_clear_link_starts_never_stalls_and_stays_on_the_primary_edge(fleet):
    deployment, short, _ = fleet
    primary = _get_json(f"{deployment.locator.url}/v1/locate/{short}")["edges"][0]["id"]
    edge = deployment.edges[primary].url
    served_before = _metric(edge, "cadenza_edge_bytes_served_total")
    qoe = await play(short, deployment.locator.url, territory="FR", speed=20, timeout_s=TIMEOUT_S)
    assert qoe.pathways[0] == primary and len(qoe.pathways) == 3
    assert 0 < qoe.startup_s < 5
    assert qoe.stalls == 0 and qoe.stall_s == 0 and qoe.failovers == 0
    assert [s.index for s in qoe.segments] == [0, 1, 2]
    assert qoe.duration_s == pytest.approx(13, abs=0.1)
    assert qoe.edge_share == {primary: 1.0}
    assert {s.rung for s in qoe.segments} == {3}  # the top of four rungs
    # Every byte the player counted came from the primary edge, and nothing twice.
    assert _metric(edge, "cadenza_edge_bytes_served_total") - served_before == qoe.bytes
    assert qoe.loudness_gain_db != 0.0


async def test_the_edge_warms_the_next_segment_that_cmcd_names(fleet):
    deployment, _, long = fleet
    qoe = await play(long, deployment.locator.url, speed=20, timeout_s=TIMEOUT_S)
    edge = deployment.edges[qoe.pathways[0]].url
    # With its own readahead off, the edge prefetches only what the player's "nor" names.
    issued = _metric(edge, 'cadenza_edge_prefetches_total{outcome="issued"}')
    assert issued >= len(qoe.segments) - 1


async def test_a_slow_link_gets_lower_rungs_and_still_plays_through(fleet, tmp_path):
    deployment, short, _ = fleet
    trace = tmp_path / "slow.json"
    trace.write_text(json.dumps([{"duration_ms": 60_000, "bandwidth_kbps": 200, "latency_ms": 50}]))
    clear = await play(short, deployment.locator.url, speed=20, timeout_s=TIMEOUT_S)
    slow = await play(
        short, deployment.locator.url, trace=load_trace(trace), speed=10, timeout_s=TIMEOUT_S
    )
    assert [s.index for s in slow.segments] == [0, 1, 2]
    assert slow.average_kbps < clear.average_kbps
    assert slow.segments[-1].rung < clear.segments[-1].rung
    assert slow.startup_s > clear.startup_s
    # The first playlist's download tells the rule the link is slow before its first choice.
    assert slow.segments[0].rung < clear.segments[0].rung
    # 200 kbit/s, 50 ms latency: a segment takes at least its bytes at that rate.
    first = slow.segments[0]
    assert first.seconds >= first.nbytes * 8 / 200_000 + 0.05 - 0.01


async def test_the_rule_sees_each_downloads_latency_apart_on_a_shaped_link(fleet, tmp_path):
    deployment, short, _ = fleet
    trace = tmp_path / "fast.json"
    trace.write_text(
        json.dumps([{"duration_ms": 60_000, "bandwidth_kbps": 3000, "latency_ms": 100}])
    )
    seen: list[DownloadSample] = []

    class Watched(CadenzaRule):
        def observe(self, sample: DownloadSample) -> None:
            seen.append(sample)
            super().observe(sample)

    qoe = await play(
        short, deployment.locator.url, trace=load_trace(trace), speed=10, timeout_s=TIMEOUT_S,
        abr=Watched(),
    )  # fmt: skip
    assert [s.segment_s for s in seen] == [0.0, *(s.duration_s for s in qoe.segments)]
    # The head waits out the link's 100 ms; the bytes follow at 3 Mbit/s, so a playlist of a
    # few hundred bytes is nearly all latency and a segment mostly transfer.
    for sample in seen:
        assert 0.1 - 1e-6 <= sample.first_byte_s < 0.1 + 0.5
        assert sample.seconds >= 0.1 + sample.nbytes * 8 / 3_000_000 - 1e-6
    assert seen[0].first_byte_s > 0.8 * seen[0].seconds


async def test_a_listener_who_skips_plays_only_the_first_segments(fleet):
    deployment, short, _ = fleet
    qoe = await play(short, deployment.locator.url, speed=20, max_segments=1, timeout_s=TIMEOUT_S)
    assert [s.index for s in qoe.segments] == [0] and qoe.duration_s == pytest.approx(6, abs=0.1)


async def test_a_refused_play_fails_with_the_locators_reason(fleet):
    deployment, _, _ = fleet
    with pytest.raises(PlaybackFailed, match="404"):
        await play("ffffffffffffffff", deployment.locator.url, timeout_s=TIMEOUT_S)


async def test_when_the_serving_edge_dies_the_play_moves_on_and_finishes(fleet):
    """Last in this module: it kills an edge, the moment the second segment is in.

    The player asks for the third at once, before the locator can notice, so the request
    fails and the player fails over on its own; steering then keeps it away.
    """
    deployment, _, long = fleet
    killed: list[str] = []

    def on_segment(record: SegmentRecord) -> None:
        if record.index == 1:
            deployment.kill_edge(record.pathway)  # kill -9, and reaped: a few milliseconds
            killed.append(record.pathway)

    qoe = await play(
        long, deployment.locator.url, speed=8, timeout_s=TIMEOUT_S, on_segment=on_segment
    )
    (victim,) = killed
    assert [s.index for s in qoe.segments] == list(range(5))
    assert all(s.pathway != victim for s in qoe.segments[2:])
    assert qoe.failovers >= 1 and {f.pathway for f in qoe.failures} == {victim}
    assert qoe.longest_stall_s <= max(s.duration_s for s in qoe.segments)
