"""A real Prometheus against a running fleet: every dashboard panel and every recording rule has
data, every alert evaluates, and a two-worker edge is counted whole.

One module-wide fleet (origin, two edges of two workers in two regions, locator) with one track
played through the locator's playlist from both edges; Prometheus scrapes it every second with
the scrape configuration `cadenza fleet prometheus-config` writes and the rules of
deploy/prometheus/.
"""

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.catalog import MasterSpec, write_master
from bench.deploy import DEFAULT_EDGES, Deployment, EdgeOptions, deploy
from bench.processes import free_port, stop_process
from cadenza.fleet import EdgeMember, Fleet, LocatorMember, OriginMember
from fleet.prometheus import prometheus_config

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus is not installed (Debian: apt-get install prometheus, as setup.sh does)",
)

ROOT = Path(__file__).parents[2]
RULES = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "cadenza.json"
EDGES = (DEFAULT_EDGES[0], DEFAULT_EDGES[2])  # eu-west-1 and us-east-1
IN_PARIS = "lat=48.85&lon=2.35&territory=FR"
REFUSED_REQUESTS = 40
READY_SECONDS = 30.0
DATA_SECONDS = 90.0
STOP_SECONDS = 15.0


@dataclass
class Monitored:
    deployment: Deployment
    prometheus: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant result of ``expr``; a query Prometheus refuses fails the test."""
        url = f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, body = _get(url)
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", (expr, answer)
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def rules(self) -> list[dict[str, Any]]:
        _, body = _get(f"{self.prometheus}/api/v1/rules")
        groups = json.loads(body)["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _as_fleet(deployment: Deployment) -> Fleet:
    """The fleet file that describes this deployment (its ports are chosen at start)."""

    def listen(url: str) -> str:
        return url.removeprefix("http://")

    edges = tuple(
        EdgeMember(s.id, s.region, u, s.latitude, s.longitude, 1e9, listen(u))
        for s in deployment.specs
        for u in [deployment.edges[s.id].url]
    )
    return Fleet(
        path=Path("fleet.toml"),
        origins=(OriginMember("origin-1", deployment.origin.url, listen(deployment.origin.url)),),
        locator=LocatorMember(deployment.locator.url, listen(deployment.locator.url)),
        edges=edges,
    )


def _play_everywhere(deployment: Deployment, track: str) -> None:
    """Every object of every variant of every pathway, twice: misses, then hits."""
    status, body = _get(f"{deployment.locator.url}/v1/play/{track}?{IN_PARIS}")
    assert status == 200, body
    variants = [line for line in body.decode().splitlines() if line and not line.startswith("#")]
    assert len(variants) >= 2
    for _ in range(2):
        for variant in variants:
            status, media = _get(variant)
            assert status == 200, variant
            text = media.decode()
            names = re.findall(r'URI="([^"]+)"', text)
            names += [line for line in text.splitlines() if line and not line.startswith("#")]
            for name in names:
                status, _ = _get(urllib.parse.urljoin(variant, name))
                assert status == 200, name
    # A play refused for an unknown track, so the refusals have a series too.
    assert _get(f"{deployment.locator.url}/v1/play/{'0' * 16}?{IN_PARIS}")[0] == 404


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitored]:
    root = tmp_path_factory.mktemp("monitored")
    master = write_master(root / "album" / "01.flac", MasterSpec(13, seed=7, tags={"title": "T"}))
    with deploy(root / "deployment", EDGES, EdgeOptions(workers=2)) as deployment:
        tracks = deployment.ingest([master])
        assert [t["status"] for t in tracks] == ["ok"], tracks
        _play_everywhere(deployment, tracks[0]["track_id"])
        rule_files = [str(RULES / "rules.yml"), str(RULES / "alerts.yml")]
        config = root / "prometheus.yml"
        config.write_text(
            prometheus_config(_as_fleet(deployment), scrape_seconds=1, rule_files=rule_files)
        )
        port = free_port()
        with (root / "prometheus.log").open("w") as log:
            process = subprocess.Popen(
                [
                    "prometheus", f"--config.file={config}",
                    f"--storage.tsdb.path={root / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
                ],
                stdout=log, stderr=subprocess.STDOUT, cwd=root,
            )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            _until_ready(url, process, root / "prometheus.log")
            yield Monitored(deployment, url)
        finally:
            stop_process(process)
    shutil.rmtree(root, ignore_errors=True)


def _until_ready(url: str, process: "subprocess.Popen[bytes]", log: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, f"prometheus exited: {log.read_text()[-2000:]}"
        try:
            if _get(f"{url}/-/ready")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"prometheus was not ready in {READY_SECONDS} s: {log.read_text()}")


def dashboard_expressions() -> list[str]:
    """Every query of every panel, with the dashboard's variables at their 'All' values."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    return [e.replace("$region", ".*") for e in exprs]


def _until_data(monitored: Monitored, exprs: list[str]) -> list[str]:
    """The expressions still without data when the deadline passes (none, once all have it)."""
    deadline = time.monotonic() + DATA_SECONDS
    waiting = list(exprs)
    while waiting and time.monotonic() < deadline:
        waiting = [e for e in waiting if not monitored.query(e)]
        if waiting:
            time.sleep(0.5)
    return waiting


def test_every_recording_rule_has_data(monitored: Monitored):
    recorded = sorted({r["name"] for r in monitored.rules() if r["type"] == "recording"})
    assert len(recorded) >= 15
    assert _until_data(monitored, recorded) == []


def test_every_dashboard_panel_has_data(monitored: Monitored):
    exprs = dashboard_expressions()
    assert len(exprs) >= 25
    assert _until_data(monitored, exprs) == []


def test_every_rule_and_alert_evaluates_without_error(monitored: Monitored):
    deadline = time.monotonic() + DATA_SECONDS
    while any(r["health"] == "unknown" for r in monitored.rules()):  # not evaluated yet
        assert time.monotonic() < deadline, "the rules were never evaluated"
        time.sleep(0.5)
    rules = monitored.rules()
    assert {r["name"] for r in rules if r["type"] == "alerting"} >= {
        "CadenzaEdgeDown", "CadenzaEventStreamStalled", "CadenzaOriginErrors",
    }  # fmt: skip
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
    for rule in rules:
        monitored.query(rule["query"])  # accepted by the query API too


def test_a_two_worker_edge_is_scraped_whole(monitored: Monitored):
    """Refused requests on fresh connections land on both workers; every scrape counts all."""
    edge = monitored.deployment.edges["us-east-1"].url
    for n in range(REFUSED_REQUESTS):
        status, _ = _get(f"{edge}/tracks/{n:016x}/v1/aac_96/seg_00000.m4s")  # no token
        assert status == 403
    series = 'cadenza_edge_requests_total{job="cadenza-edge", edge="us-east-1", status="403"}'
    # Four scrapes in a row that all saw every request: no scrape saw one worker alone.
    steady = (
        f"min_over_time({series}[5s]) == {REFUSED_REQUESTS} and count_over_time({series}[5s]) >= 4"
    )
    deadline = time.monotonic() + DATA_SECONDS
    while not monitored.query(steady):
        assert time.monotonic() < deadline, f"{series}: {monitored.query(series + '[5s]')}"
        time.sleep(0.5)
