"""``cadenza bench fleet``: its figures from plays and samples, and one short real run."""

import argparse
import json
from pathlib import Path

from bench.fleet import FleetPlan, figures, run
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


def test_a_short_run_writes_the_report(tmp_path: Path):
    args = argparse.Namespace(
        players=3, seconds=8.0, tracks=2, zipf=0.9, skip=0.3, speed=4.0, memory_mb=32,
        policy="s3fifo", edge_workers=1, preposition_tracks=20, abr="cadenza",
        traces=DEFAULT_TRACES, out=tmp_path / "report", seed=1, json=True,
    )  # fmt: skip
    assert run(args) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    f = report["figures"]
    assert f["plays"] >= 3 and f["failed_plays"] == 0
    assert 0 < f["edge_hit_ratio"] <= 1 and f["average_kbps"] > 0
    for name in ("report.md", "hit_ratio.png", "origin_egress.png", "qoe.png", "edge_load.png"):
        data = (tmp_path / "report" / name).read_bytes()
        assert (
            data.startswith(b"\x89PNG") if name.endswith(".png") else b"| edge hit ratio |" in data
        )
