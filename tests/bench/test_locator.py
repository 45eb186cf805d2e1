"""``cadenza bench locator``: one short run measures every figure it reports."""

import argparse
from pathlib import Path

from bench.locator import fleet_views, measure, pure_decisions_per_second, render
from cadenza.cli import build_parser
from locator.settings import LocatorSettings


def test_the_benchmark_fleet_has_fifty_edges_in_ten_regions():
    views = fleet_views()
    assert len(views) == 50 and len({v.region for v in views}) == 10
    assert pure_decisions_per_second(200, seed=1) > 0


def test_a_short_run_measures_throughput_latency_and_failover(tmp_path: Path):
    args = argparse.Namespace(runs=1, seconds=1.0, connections=8, rate=200, workers=2)
    report = measure(tmp_path, args)
    assert report["setup"]["edges"] == 53 and report["setup"]["workers"] == 2
    assert report["http"]["requests_per_s"] > 0 and report["http"]["errors"] == 0
    assert report["fixed_rate"]["failures"] == 0
    bare = report["bare"]
    assert bare["http"]["requests_per_s"] > 0 and bare["http"]["errors"] == 0
    assert bare["fixed_rate"]["failures"] == 0 and report["share_of_bare"] > 0
    assert len(report["failover_s"]["runs"]) == 3
    assert 0 < report["failover_s"]["max"] < 30
    assert len(report["machine"]["load_before"]) == 3
    text = render(report)
    assert "failover after kill -9" in text and "pure decision" in text
    assert "locator / bare" in text and "load average" in text and "2 worker(s)" in text


def test_the_bench_runs_the_locator_s_default_workers():
    args = build_parser().parse_args(["bench", "locator"])
    assert args.workers == LocatorSettings().workers
