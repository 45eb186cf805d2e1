"""deploy/grafana/cadenza.json: a dashboard Grafana imports, whose every query Prometheus parses.

That every query also has data on a running fleet is test_live_prometheus's part.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from fleet.prometheus import EDGE_JOB, LOCATOR_JOB, ORIGIN_JOB

ROOT = Path(__file__).parents[2]
DASHBOARD = json.loads((ROOT / "deploy" / "grafana" / "cadenza.json").read_text())
PANELS = [p for p in DASHBOARD["panels"] if p["type"] != "row"]
EXPRS = [t["expr"] for p in PANELS for t in p["targets"]]
RECORDED = {
    line.split(":", 1)[1].strip()
    for line in (ROOT / "deploy" / "prometheus" / "rules.yml").read_text().splitlines()
    if line.strip().startswith("- record:")
}


def test_a_current_schema_with_a_prometheus_datasource_variable():
    assert DASHBOARD["schemaVersion"] >= 39  # Grafana 11 and later
    assert DASHBOARD["uid"] == "cadenza-fleet" and DASHBOARD["id"] is None
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["region"]["allValue"] == ".*"
    assert EDGE_JOB in variables["region"]["definition"]


def test_every_panel_queries_the_chosen_datasource():
    assert PANELS
    for panel in PANELS:
        assert panel["title"] and panel["description"], panel["id"]
        assert panel["targets"], panel["title"]
        for target in [panel, *panel["targets"]]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_panels_have_unique_ids_and_fit_the_grid_without_overlapping():
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in DASHBOARD["panels"]:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, panel["title"]
        cells = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


def test_the_issue_s_figures_are_all_there():
    titles = " ".join(p["title"].lower() for p in PANELS)
    for figure in ("hit ratio", "egress", "offload", "latency", "edge health", "decisions",
                   "refused"):  # fmt: skip
        assert figure in titles, figure


def test_queries_select_the_generated_jobs_and_use_the_recording_rules():
    text = " ".join(EXPRS)
    assert all(job in text for job in (EDGE_JOB, ORIGIN_JOB, LOCATOR_JOB))
    used = {name for name in RECORDED if name in text}
    assert len(used) >= 10, sorted(RECORDED - used)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_parses_every_query(tmp_path):
    """Each query becomes a recording rule of a scratch file for promtool to check."""
    rules = ["groups:", "  - name: dashboard", "    rules:"]
    for n, expr in enumerate(EXPRS):
        rules += [f"      - record: dashboard:query_{n}", f"        expr: {json.dumps(expr)}"]
    scratch = tmp_path / "dashboard.yml"
    scratch.write_text("\n".join(rules).replace("$region", ".*") + "\n")
    done = subprocess.run(
        ["promtool", "check", "rules", str(scratch)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(EXPRS)} rules found" in done.stdout
