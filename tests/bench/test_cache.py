"""The cache benchmark runs end to end on a tiny trace and reports every figure."""

import json
import subprocess
import sys

from bench.cache import gap_closed
from edge.policy import DEFAULT_POLICY

NAMES = {"lru", "s3fifo", "wtinylfu", "music", "opt"}


def cadenza(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cadenza", "bench", "cache", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_report_gives_a_table_per_zipf_with_every_figure_at_every_size():
    result = cadenza(
        "--tracks", "100", "--requests", "10000", "--runs", "2", "--jobs", "2",
        "--zipf", "0.9", "0.7", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["default"] == DEFAULT_POLICY
    assert [table["trace"]["zipf"] for table in report["tables"]] == [0.7, 0.9]
    for table in report["tables"]:
        trace = table["trace"]
        assert trace["tracks"] == 100 and trace["seeds"] == [1, 2]
        assert 0 < trace["footprint_bytes"] <= trace["catalog_bytes"]
        assert [size["share"] for size in table["sizes"]] == [0.01, 0.05, 0.10]
        for size in table["sizes"]:
            assert set(size["miss_ratio"]) == set(size["waited_ratio"]) == NAMES
            assert set(size["byte_miss_ratio"]) == NAMES
            assert all(0 < v <= 1 for v in size["miss_ratio"].values())
            assert size["miss_ratio"]["opt"] < size["miss_ratio"]["lru"]
            for name in NAMES:  # readahead hides some misses, never adds any
                assert 0 < size["waited_ratio"][name] < size["miss_ratio"][name]
            assert set(size["gap_closed"]) == {"s3fifo", "wtinylfu", "music"}
    (target,) = report["targets"]["gap_closed"]  # only Zipf 0.8 and above have one
    assert target["zipf"] == 0.9 and target["policy"] == DEFAULT_POLICY
    assert target["value"] == report["tables"][1]["sizes"][-1]["gap_closed"][DEFAULT_POLICY]
    assert target["met"] == (target["value"] >= 0.6)


def test_the_text_report_prints_a_table_per_zipf_and_whether_each_target_is_met():
    result = cadenza("--tracks", "50", "--requests", "5000", "--runs", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("zipf 0.7:")] == ["zipf 0.7"]
    assert len([line for line in lines if line[:3] in ("1% ", "5% ", "10%")]) == 18  # 2 per size
    verdicts = [line for line in lines if "(target >= 60%" in line]
    assert [line.split(":")[0] for line in verdicts] == ["zipf 0.8", "zipf 0.9"]
    assert all(line.endswith(("met)", "MISSED)")) for line in verdicts)


def test_a_bad_flag_is_a_usage_error():
    for flags, name in ((("--runs", "0"), "--runs"), (("--zipf", "0.8", "-1"), "--zipf")):
        result = cadenza(*flags)
        assert result.returncode == 2
        assert name in result.stderr and "Traceback" not in result.stderr


def test_gap_closed_is_the_share_of_lru_excess_misses_avoided():
    assert gap_closed(0.6, 0.5, 0.4) == 0.5
    assert gap_closed(0.6, 0.6, 0.4) == 0.0
    assert gap_closed(0.4, 0.4, 0.4) is None
