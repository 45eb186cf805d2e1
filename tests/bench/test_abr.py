"""The ABR benchmark runs on a small folder of traces and reports every rule against the optimum."""

import argparse
import json
import shutil

import pytest

from bench import abr
from cadenza.errors import ConfigError, InputError
from tests.player.test_traces import shared_traces

REAL = ("report.2010-09-14_2303CEST.json", "report.2011-01-29_1800CET.json")


@pytest.fixture
def traces(tmp_path):
    folder = tmp_path / "3g"
    folder.mkdir()
    for name in REAL:
        shutil.copy(shared_traces("3g") / name, folder / name)
    outage = [
        {"duration_ms": 20_000, "bandwidth_kbps": 900, "latency_ms": 80},
        {"duration_ms": 40_000, "bandwidth_kbps": 0, "latency_ms": 80},
    ]
    (folder / "outage.json").write_text(json.dumps(outage))
    return tmp_path


def bench(capsys, *argv):
    parser = argparse.ArgumentParser(prog="cadenza bench")
    abr.add_parser(parser.add_subparsers())
    args = parser.parse_args(["abr", *argv])
    code = args.run(args)
    return code, capsys.readouterr().out


def test_the_report_gives_every_rule_against_the_optimum_with_the_targets(traces, capsys):
    code, out = bench(capsys, "--traces", str(traces), "--segments", "50", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["traces"]["count"] == 3 and "Riiser" in report["traces"]["source"]
    assert report["session"]["segments"] == 50
    assert report["session"]["bitrates_kbps"] == [48.0, 96.0, 160.0, 256.0]
    assert set(report["rules"]) == {"throughput", "bola", "cadenza"}
    assert report["default"] == "cadenza"
    for run in report["per_trace"]:
        assert all(rule["qoe"] <= run["optimum"] + 0.1 for rule in run["rules"].values())
    outage = next(run for run in report["per_trace"] if run["trace"] == "outage")
    assert outage["optimum"] < 0  # a 40 s outage in every minute cannot be played through
    for rule in report["rules"].values():
        assert rule["shared_traces"] == 2
        assert 0 < rule["mean_optimum_share"] <= 1
        assert rule["total_stall_s"] >= 0 and rule["mean_switches"] >= 0
    assert report["rules"]["cadenza"]["step_recovery_s"] <= 10
    targets = report["targets"]
    assert set(targets) == {"optimum_share", "beats_baselines", "stall_vs_bola", "step_recovery"}
    share = targets["optimum_share"]
    assert share["met"] == (share["value"] >= 0.9)
    assert targets["step_recovery"]["met"]


def test_the_text_report_has_a_row_per_rule_and_says_whether_each_target_is_met(traces, capsys):
    code, out = bench(capsys, "--traces", str(traces), "--segments", "12")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("3 traces from ") and "12 segments" in lines[0]
    assert "UMass-LIDS" in lines[1]
    assert [line.split()[0] for line in lines[3:7]] == ["throughput", "bola", "cadenza*", "optimum"]
    marks = [line for line in lines if line.startswith("  ")]
    assert len(marks) == 4 and all(line.endswith((": met", ": MISSED")) for line in marks)


def test_bad_flags_and_missing_traces_are_reported_without_work(tmp_path, capsys):
    with pytest.raises(ConfigError, match="--segments"):
        bench(capsys, "--segments", "0")
    with pytest.raises(InputError, match="no such folder") as error:
        bench(capsys, "--traces", str(tmp_path))
    assert str(tmp_path / "3g") in str(error.value)


def test_a_session_has_the_asked_number_of_six_second_segments():
    assert abr.session(100).durations_s == (6.0,) * 100
    assert abr.session(7).durations_s == (6.0,) * 7
    assert abr.share(50.0, 100.0) == 0.5 and abr.share(-5.0, -1.0) is None
