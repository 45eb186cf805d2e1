"""The ABR benchmark runs on a small folder of traces and reports every rule against the optimum."""

import argparse
import json
import shutil

import pytest

from bench import abr
from cadenza.errors import ConfigError, InputError
from player.abr import DEFAULT_MAX_BUFFER_S
from tests.player.test_traces import shared_traces

REAL = ("report.2010-09-14_2303CEST.json", "report.2011-01-29_1800CET.json")


@pytest.fixture
def traces(tmp_path):
    folder = tmp_path / "3g"
    folder.mkdir()
    for name in REAL:
        shutil.copy(shared_traces("3g") / name, folder / name)
    outage = [
        {"duration_ms": 10_000, "bandwidth_kbps": 200, "latency_ms": 80},
        {"duration_ms": 50_000, "bandwidth_kbps": 0, "latency_ms": 80},
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
    code, out = bench(
        capsys, "--traces", str(traces), "--segments", "40,60", "--jobs", "2", "--json"
    )
    assert code == 0
    report = json.loads(out)
    assert report["traces"]["count"] == 3 and "Riiser" in report["traces"]["source"]
    player = report["player"]
    assert player["bitrates_kbps"] == [48.0, 96.0, 160.0, 256.0]
    assert player["max_buffer_s"] == DEFAULT_MAX_BUFFER_S and player["probe_bytes"] > 0
    assert report["qoe"]["stall_per_s"] == 256.0
    assert report["default"] == "cadenza"
    assert set(report["lengths"]) == {"40", "60"}
    for segments, length in report["lengths"].items():
        assert length["sessions"] == 9 and length["segments"] == int(segments)  # 3 x 3 offsets
        assert set(length["rules"]) == {"throughput", "bola", "hlsjs", "robustmpc", "cadenza"}
        sessions = [s for t in length["per_trace"] for s in t["sessions"]]
        assert len(sessions) == 9 and len({s["session"] for s in sessions}) == 9
        for run in sessions:
            assert all(rule["qoe"] <= run["optimum"] + 0.1 for rule in run["rules"].values())
        outage = next(t for t in length["per_trace"] if t["trace"] == "outage")
        assert outage["optimum"] < 0  # 33 kbit/s on average: below every rung
        mean_optimum = sum(s["optimum"] for s in sessions) / 9
        assert length["optimum"]["mean_qoe"] == pytest.approx(mean_optimum, abs=0.1)
        for name, rule in length["rules"].items():
            mean_qoe = sum(s["rules"][name]["qoe"] for s in sessions) / 9
            expected = abr.share(mean_qoe, mean_optimum)  # None unless the optimum is positive
            assert rule["optimum_share"] == (expected and pytest.approx(expected, abs=1e-3))
            assert rule["total_stall_s"] >= 0 and rule["mean_switches"] >= 0
    assert report["lengths"]["40"]["rules"]["cadenza"]["step_recovery_s"] <= 10
    targets = report["targets"]
    assert targets["segments"] == 40
    assert set(targets) == {
        "segments",
        "optimum_share",
        "beats_baselines",
        "stall_vs_reference",
        "step_recovery",
    }
    share = targets["optimum_share"]
    assert share["met"] == (share["value"] is not None and share["value"] >= 0.9)
    assert targets["step_recovery"]["met"]


def test_one_process_plays_the_same_sessions_as_several(traces, capsys):
    _, one = bench(capsys, "--traces", str(traces), "--segments", "20", "--jobs", "1", "--json")
    _, two = bench(capsys, "--traces", str(traces), "--segments", "20", "--jobs", "2", "--json")
    assert json.loads(one)["lengths"] == json.loads(two)["lengths"]


def test_the_text_report_has_a_row_per_rule_and_says_whether_each_target_is_met(traces, capsys):
    code, out = bench(capsys, "--traces", str(traces), "--segments", "12", "--jobs", "1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("3 traces from ") and "3 starting points" in lines[0]
    assert "UMass-LIDS" in lines[1] and lines[2].startswith("QoE: ")
    assert lines[4] == "sessions of 12 segments (9 sessions)"
    rows = [line.split()[0] for line in lines[6:12]]
    assert rows == ["throughput", "bola", "hlsjs", "robustmpc", "cadenza*", "optimum"]
    marks = [line for line in lines if line.startswith("  ")]
    assert len(marks) == 4 and all(line.endswith((": met", ": MISSED")) for line in marks)


def test_bad_flags_and_missing_traces_are_reported_without_work(tmp_path, capsys):
    for bad in ("0", "40,x", ""):
        with pytest.raises(ConfigError, match="--segments"):
            bench(capsys, "--segments", bad)
    with pytest.raises(ConfigError, match="--jobs"):
        bench(capsys, "--jobs", "0")
    with pytest.raises(InputError, match="no such folder") as error:
        bench(capsys, "--traces", str(tmp_path))
    assert str(tmp_path / "3g") in str(error.value)


def test_a_session_is_tracks_of_six_second_segments_each_with_its_playlist_and_init():
    content = abr.session(100)
    assert content.durations_s == (6.0,) * 100
    starts = [i for i, extra in enumerate(content.extra_bytes) if extra]
    assert starts == [0, 40, 80]
    assert content.extra_bytes[0] == abr.PLAYLIST_BYTES + abr.INIT_BYTES
    assert abr.session(7).durations_s == (6.0,) * 7
    assert abr.share(50.0, 100.0) == 0.5 and abr.share(-5.0, -1.0) is None
