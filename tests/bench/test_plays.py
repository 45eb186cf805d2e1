"""``cadenza bench plays`` end to end, briefly: every figure is there and the table reads."""

import json

from bench.plays import render
from tests.processes import cadenza


def test_a_short_run_reports_intake_and_lag_for_both_engines_and_the_reference():
    done = cadenza(
        "bench", "plays", "--runs", "1", "--seconds", "1", "--connections", "2", "--batch", "20",
        "--json", timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rows = report["medians"]
    assert rows["bare"]["events_per_s"] > 0
    for engine in ("sqlite", "redis"):
        assert rows[engine]["events_per_s"] > 0 and rows[engine]["errors"] == 0
        assert rows[engine]["lag_max"] >= rows[engine]["lag_at_end"] >= 0
        assert rows[engine]["consumers_per_s"] > 0 and rows[engine]["with_consumers_per_s"] > 0
    table = render(report)
    assert "embedded SQLite" in table and "Redis" in table and "bare handler" in table


def test_bad_options_exit_2():
    done = cadenza("bench", "plays", "--batch", "501")
    assert done.returncode == 2 and "--batch" in done.stderr
