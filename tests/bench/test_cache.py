"""The cache benchmark runs end to end on a tiny trace and reports every figure."""

import json
import subprocess
import sys

from bench.cache import gap_closed

NAMES = {"lru", "s3fifo", "wtinylfu", "opt"}


def cadenza(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cadenza", "bench", "cache", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_report_gives_every_policy_and_opt_at_every_size_with_the_gap_closed():
    result = cadenza(
        "--tracks", "100", "--requests", "20000", "--runs", "2", "--jobs", "2", "--json"
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["trace"]["tracks"] == 100 and report["trace"]["seeds"] == [1, 2]
    assert 0 < report["trace"]["footprint_bytes"] <= report["trace"]["catalog_bytes"]
    assert [size["share"] for size in report["sizes"]] == [0.01, 0.05, 0.10]
    for size in report["sizes"]:
        assert set(size["miss_ratio"]) == set(size["byte_miss_ratio"]) == NAMES
        assert all(0 < v <= 1 for v in size["miss_ratio"].values())
        assert size["miss_ratio"]["opt"] < size["miss_ratio"]["lru"]
        assert set(size["gap_closed"]) == {"s3fifo", "wtinylfu"}
    target = report["targets"]["gap_closed"]
    assert target["policy"] == report["best"] in {"s3fifo", "wtinylfu"}
    assert target["value"] == report["sizes"][-1]["gap_closed"][report["best"]]
    assert target["met"] == (target["value"] >= 0.4)


def test_the_text_report_says_whether_the_target_is_met():
    result = cadenza("--tracks", "50", "--requests", "5000", "--runs", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("trace: 50 tracks")
    assert len([line for line in lines if line[:3] in ("1% ", "5% ", "10%")]) == 3
    assert "(target >= 40%: met)" in lines[-1] or "(target >= 40%: MISSED)" in lines[-1]


def test_a_bad_flag_is_a_usage_error():
    result = cadenza("--runs", "0")
    assert result.returncode == 2
    assert "--runs" in result.stderr and "Traceback" not in result.stderr


def test_gap_closed_is_the_share_of_lru_excess_misses_avoided():
    assert gap_closed(0.6, 0.5, 0.4) == 0.5
    assert gap_closed(0.6, 0.6, 0.4) == 0.0
    assert gap_closed(0.4, 0.4, 0.4) is None
