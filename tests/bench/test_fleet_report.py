"""The fleet report: Markdown with every figure, JSON, and PNG plots."""

import json
from pathlib import Path

from bench.fleet_report import tier_rows, write_report, write_scaling, write_tiers

FIGURES = {
    "players": 2, "plays": 5, "failed_plays": 1, "elapsed_s": 10.0, "played_media_s": 60.0,
    "startup_p50_s": 0.8, "startup_p95_s": 1.9, "stall_ratio": 0.0125, "average_kbps": 201.0,
    "edge_hit_ratio": 0.93, "origin_offload": 0.88, "segment_ms_p50": 120.0,
    "segment_ms_p95": 300.0, "segment_ms_p99": 900.0, "segments_per_edge": {"a": 6, "b": 4},
    "edge_load_max_over_mean": 1.2,
}  # fmt: skip
SUMMARY = {
    "plan": {"players": 2, "seconds": 10, "tracks": 2, "zipf": 0.9, "skip": 0.3, "speed": 4,
             "rule": "cadenza", "seed": 1},
    "catalog": ["0123456789abcdef"], "elapsed_s": 10.0, "errors": ["player 1: refused"],
    "plays": [{"startup_s": 0.8, "average_kbps": 201.0}],
    "samples": [{"t": 0, "edges": {"a": {"hits": 1, "misses": 1}}, "origin_bytes": 0},
                {"t": 1, "edges": {"a": {"hits": 9, "misses": 1}}, "origin_bytes": 1e6}],
    "figures": FIGURES, "traces": "traces: example attribution",
}  # fmt: skip


def test_the_report_names_every_figure_and_draws_the_plots(tmp_path: Path):
    paths = write_report(tmp_path, SUMMARY)
    assert [p.name for p in paths] == [
        "report.md", "report.json", "hit_ratio.png", "origin_egress.png", "qoe.png",
        "edge_load.png",
    ]  # fmt: skip
    text = (tmp_path / "report.md").read_text()
    for expected in (
        "| edge hit ratio | 93.0% |",
        "| stall ratio | 1.25% |",
        "| startup p50 / p95 | 0.80 s / 1.90 s |",
        "a 6, b 4 segments",
        "traces: example attribution",
        "- player 1: refused",
        "![qoe](qoe.png)",
    ):
        assert expected in text
    assert json.loads((tmp_path / "report.json").read_text())["figures"] == FIGURES
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths[2:])


STEP_FIGURES = {
    **FIGURES, "origin_requests_per_play": 2.5, "fleet_cpu_s": 12.0,
    "cpu_s_per_played_hour": 30.0, "generators": 2,
    "preposition": {"objects_warmed": 10, "objects_used": 7, "objects_wasted": 2,
                    "bytes_warmed": 1_500_000},
}  # fmt: skip


def test_a_step_report_adds_the_step_figures(tmp_path: Path):
    write_report(tmp_path, {**SUMMARY, "figures": STEP_FIGURES})
    text = (tmp_path / "report.md").read_text()
    assert "| origin requests per play | 2.50 |" in text
    assert "| fleet CPU per hour played | 30.0 s (12.0 s in all) |" in text
    assert "| pre-positioned (used, wasted) | 10 objects, 1.5 MB (7, 2) |" in text


def test_the_scaling_report_puts_the_steps_side_by_side(tmp_path: Path):
    steps = [
        {"plan": {**SUMMARY["plan"], "players": n, "warmup": 20}, "figures": STEP_FIGURES,
         "plays": [], "samples": []}
        for n in (10, 100)
    ]  # fmt: skip
    summary = {
        "machine": {"cores": 2, "cpu": "Some CPU", "load_average": [0.5, 0.4, 0.3]},
        "catalog": ["a", "b"], "ingest_s": 12.0, "steps": steps, "traces": "example traces",
    }  # fmt: skip
    paths = write_scaling(tmp_path, summary)
    assert [p.name for p in paths] == ["report.md", "report.json", "scaling.png"]
    text = (tmp_path / "report.md").read_text()
    for expected in (
        "Machine: 2 cores, Some CPU; load average 0.5",
        "| players | 10 | 100 |",
        "| stall ratio | 1.25% | 1.25% |",
        "| origin offload | 88.0% | 88.0% |",
        "| fleet CPU s per hour played | 30.0 | 30.0 |",
        "![scaling](scaling.png)",
        "[100 players](players-100/report.md)",
    ):
        assert expected in text
    top = json.loads((tmp_path / "report.json").read_text())
    assert top["steps"][1] == {"plan": steps[1]["plan"], "figures": STEP_FIGURES}
    assert paths[2].read_bytes().startswith(b"\x89PNG")


def _fleet(edges: int, parents: int, requests: float, mb: float) -> dict:
    figures = {**STEP_FIGURES, "origin_requests_per_played_hour": requests,
               "origin_mb_per_played_hour": mb, "origin_object_requests": int(requests / 10),
               "origin_revalidations": 3}  # fmt: skip
    name = f"edges-{edges}" + (f"-parents-{parents}" if parents else "")
    return {
        "machine": {"cores": 2, "cpu": "Some CPU", "load_average": [0.5, 0.4, 0.3]},
        "tier": {"edges": edges, "parents": parents, "name": name},
        "catalog": ["a", "b"], "ingest_s": 12.0, "traces": "example traces",
        "steps": [{"plan": {**SUMMARY["plan"], "players": 100, "warmup": 0},
                   "figures": figures, "plays": [], "samples": []}],
    }  # fmt: skip


def test_the_tier_rows_say_how_many_times_fewer_origin_requests_the_parents_cause():
    rows = tier_rows([_fleet(3, 0, 600, 30), _fleet(3, 1, 300, 12), _fleet(9, 0, 1200, 50),
                      _fleet(9, 1, 300, 12.5)])  # fmt: skip
    assert [(r["edges"], r["parents"], r["fewer_requests"], r["fewer_bytes"]) for r in rows] == [
        (3, 0, None, None), (3, 1, 2.0, 2.5), (9, 0, None, None), (9, 1, 4.0, 4.0)
    ]  # fmt: skip
    assert tier_rows([_fleet(3, 1, 0, 0)])[0]["fewer_requests"] is None  # nothing to compare


def test_the_tier_report_sets_the_fleets_side_by_side(tmp_path: Path):
    paths = write_tiers(tmp_path, [_fleet(9, 0, 1200, 50), _fleet(9, 1, 300, 12.5)])
    assert [p.name for p in paths] == ["report.md", "report.json"]
    text = (tmp_path / "report.md").read_text()
    assert "## 100 players" in text
    assert "| 9 | 0 | 1200 | 120 (3) | 50.0 | 1.25% |" in text
    assert text.count("| 4.00x | 4.00x |") == 1
    assert "[edges-9-parents-1](edges-9-parents-1/report.md)" in text
    top = json.loads((tmp_path / "report.json").read_text())
    assert [r["fewer_requests"] for r in top["rows"]] == [None, 4.0]
