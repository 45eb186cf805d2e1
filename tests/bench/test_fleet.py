"""``cadenza bench fleet``: its figures from plays and samples, and one short real run."""

import argparse
import json
from pathlib import Path

import pytest

from bench.fleet import (
    FleetPlan,
    Tier,
    edge_counts,
    figures,
    player_counts,
    run,
    settled_share,
    step_figures,
    tiers,
)
from player.qoe import QoE, SegmentRecord
from player.traces import DEFAULT_TRACES

PLAN = FleetPlan(players=2, seconds=10, tracks=2, zipf=0.9, skip=0.3, speed=4, rule="cadenza",
                 seed=1)  # fmt: skip


def qoe(edge: str, startup: float, stall: float, kbps: float, nbytes: int) -> QoE:
    segments = tuple(
        SegmentRecord(i, 3, kbps, edge, nbytes // 4, 0.1 * (i + 1), 6.0, 6.0 * i) for i in range(4)
    )
    return QoE(
        track_id="0123456789abcdef", rule="cadenza", pathways=(edge,), duration_s=24.0,
        startup_s=startup, stalls=1 if stall else 0, stall_s=stall, longest_stall_s=stall,
        average_kbps=kbps, switches=0, bytes=nbytes, edge_share={edge: 1.0}, failovers=0,
        loudness_gain_db=0.0, segments=segments, failures=(),
    )  # fmt: skip


def sample(t: float, hits: int, misses: int, origin: float) -> dict:
    return {"t": t, "edges": {"a": {"hits": hits, "misses": misses, "egress_bps": 0.0}},
            "origin_bytes": origin}  # fmt: skip


def test_figures_combine_the_plays_and_the_counter_samples():
    plays = [("eu-west", qoe("a", 1.0, 0.0, 256, 800_000)),
             ("us-east", qoe("b", 3.0, 2.4, 96, 200_000))]  # fmt: skip
    samples = [sample(0, 10, 10, 5e6), sample(5, 100, 20, 5.25e6)]
    f = figures(plays, samples, ["player 1: refused"], PLAN, elapsed=10.0)
    assert (f["plays"], f["failed_plays"], f["played_media_s"]) == (2, 1, 48.0)
    assert f["stall_ratio"] == 0.05
    assert f["average_kbps"] == 176.0
    assert f["edge_hit_ratio"] == 0.9  # 90 hits, 10 misses between the samples
    assert f["origin_offload"] == 0.75  # 250 kB from the origin for 1 MB to players
    assert f["segments_per_edge"] == {"a": 4, "b": 4}
    assert f["edge_load_max_over_mean"] == 1.0
    assert f["startup_p50_s"] == 3.0 and f["segment_ms_p99"] == 400.0


def test_a_step_adds_origin_requests_per_play_cpu_per_hour_and_pre_positioning():
    plays = [("eu-west", qoe("a", 1.0, 0.0, 256, 800_000))] * 3  # 72 s of media
    before = {"origin_requests": 10.0, "origin_object_requests": 5.0, "origin_bytes": 1e6,
              "origin_revalidations": 1.0, "preposition_objects_warmed": 4.0}  # fmt: skip
    after = {"origin_requests": 16.0, "origin_object_requests": 9.0, "origin_bytes": 3e6,
             "origin_revalidations": 3.0, "preposition_objects_warmed": 9.0}  # fmt: skip
    f = step_figures(plays, before, after, cpu_s=2.0, generators=2)
    assert f["origin_requests_per_play"] == 2.0
    assert (f["origin_object_requests"], f["origin_revalidations"]) == (4, 2)
    assert f["origin_requests_per_played_hour"] == 200.0  # 4 in 72 s of audio
    assert f["origin_mb_per_played_hour"] == 100.0  # 2 MB in 72 s
    assert f["cpu_s_per_played_hour"] == 100.0  # 2 s for 72 s of audio
    assert f["preposition"] == {"objects_warmed": 5}
    assert f["generators"] == 2
    assert step_figures([], before, after, 0.0, 1)["origin_requests_per_play"] == 0.0


def test_the_origins_share_of_the_edges_bytes_over_a_window():
    assert settled_share([(100.0, 1000.0), (110.0, 1200.0)]) == 0.05
    assert settled_share([(100.0, 1000.0), (150.0, 1000.0)]) is None  # the edges served nothing
    assert settled_share([(100.0, 1000.0)]) is None


def test_player_counts_are_a_bounded_list():
    assert player_counts("10,100,1000") == (10, 100, 1000)
    assert player_counts("12") == (12,)
    for bad in ("", "ten", "0", "1001", "1,2,3,4,5,6,7", "5,-1"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"1000|whole numbers"):
            player_counts(bad)


def test_edge_counts_are_a_bounded_list():
    assert edge_counts("3,9") == (3, 9)
    for bad in ("", "three", "0", "13", "3,-1"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"12|whole numbers"):
            edge_counts(bad)


def test_a_tier_comparison_runs_each_edge_count_alone_and_then_with_its_parents():
    assert tiers((3, 9), 1) == [Tier(3, 0), Tier(3, 1), Tier(9, 0), Tier(9, 1)]
    assert tiers((3,), 0) == [Tier(3, 0)]
    assert [t.name for t in tiers((9,), 2)] == ["edges-9", "edges-9-parents-2"]


def test_a_short_run_of_two_steps_writes_the_reports(tmp_path: Path):
    args = argparse.Namespace(
        players=(2, 3), seconds=4.0, warmup=2.0, warmup_max=4.0, tracks=2, zipf=0.9, skip=0.3,
        speed=4.0, generators=0, memory_mb=32, policy="s3fifo", edge_workers=1,
        preposition_tracks=20, preposition_interval=2.0, abr="cadenza", traces=DEFAULT_TRACES,
        out=tmp_path / "report", seed=1, json=True, edges=(3,), parents=0,
    )  # fmt: skip
    assert run(args) == 0
    out = tmp_path / "report"
    top = json.loads((out / "report.json").read_text())
    assert [s["plan"]["players"] for s in top["steps"]] == [2, 3]
    assert top["machine"]["cores"] >= 1
    for step in top["steps"]:
        f = step["figures"]
        assert f["plays"] >= 1 and f["failed_plays"] == 0 and f["generators"] == 1
        assert 0 <= f["edge_hit_ratio"] <= 1 and f["average_kbps"] > 0
        assert f["fleet_cpu_s"] > 0 and f["origin_requests_per_play"] > 0
        assert f["warmup_s"] >= 2.0 and f["generators_cpu_s"] > 0
    # Two players of two tracks may well miss every time; more players share some objects.
    assert any(step["figures"]["edge_hit_ratio"] > 0 for step in top["steps"])
    assert b"| origin offload |" in (out / "report.md").read_bytes()
    assert (out / "scaling.png").read_bytes().startswith(b"\x89PNG")
    for name in ("report.md", "hit_ratio.png", "origin_egress.png", "qoe.png", "edge_load.png"):
        data = (out / "players-3" / name).read_bytes()
        assert (
            data.startswith(b"\x89PNG") if name.endswith(".png") else b"| edge hit ratio |" in data
        )


def test_a_tier_comparison_starts_each_fleet_cold_and_compares_them(tmp_path: Path):
    args = argparse.Namespace(
        players=(2,), seconds=4.0, warmup=None, warmup_max=None, tracks=2, zipf=0.9, skip=0.3,
        speed=4.0, generators=0, memory_mb=32, policy="s3fifo", edge_workers=1,
        preposition_tracks=0, preposition_interval=15.0, abr="cadenza", traces=DEFAULT_TRACES,
        out=tmp_path / "report", seed=1, json=True, edges=(2,), parents=1,
    )  # fmt: skip
    assert run(args) == 0
    out = tmp_path / "report"
    top = json.loads((out / "report.json").read_text())
    assert [(f["tier"]["edges"], f["tier"]["parents"]) for f in top["fleets"]] == [(2, 0), (2, 1)]
    alone, tiered = (r for r in top["rows"])
    for row in (alone, tiered):
        f = row["figures"]
        assert f["plays"] >= 1 and f["failed_plays"] == 0
        assert f["warmup_s"] < 2.0  # from cold: no warm-up unless asked for
        assert f["origin_object_requests"] > 0  # empty caches fetch from the origin
    assert alone["fewer_requests"] is None
    f_alone, f_tiered = alone["figures"], tiered["figures"]
    expected = round(
        f_alone["origin_requests_per_played_hour"] / f_tiered["origin_requests_per_played_hour"], 2
    )
    assert tiered["fewer_requests"] == expected
    text = (out / "report.md").read_text()
    assert "# Fleet benchmark: cache tiers" in text and "| 2 | 1 |" in text
    for fleet in ("edges-2", "edges-2-parents-1"):
        assert "| origin requests per hour played |" in (out / fleet / "report.md").read_text()
        assert (out / "deployment" / fleet / "cache-eu-west-1").is_dir()
    assert (out / "deployment" / "edges-2-parents-1" / "cache-parent-1").is_dir()
