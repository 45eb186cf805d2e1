"""``cadenza bench locator``: one short run measures every figure it reports."""

import argparse
from pathlib import Path

from bench.locator import fleet_views, measure, pure_decisions_per_second, render


def test_the_benchmark_fleet_has_fifty_edges_in_ten_regions():
    views = fleet_views()
    assert len(views) == 50 and len({v.region for v in views}) == 10
    assert pure_decisions_per_second(200, seed=1) > 0


def test_a_short_run_measures_throughput_latency_and_failover(tmp_path: Path):
    args = argparse.Namespace(runs=1, seconds=1.0, connections=8, rate=200)
    report = measure(tmp_path, args)
    assert report["setup"]["edges"] == 53
    assert report["http"]["requests_per_s"] > 0 and report["http"]["errors"] == 0
    assert report["fixed_rate"]["failures"] == 0
    assert len(report["failover_s"]["runs"]) == 3
    assert 0 < report["failover_s"]["max"] < 30
    text = render(report)
    assert "failover after kill -9" in text and "pure decision" in text
