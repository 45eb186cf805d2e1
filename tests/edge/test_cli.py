"""``cadenza edge`` as a process: it starts, answers its status, and stops on SIGTERM."""

import json
import signal
import urllib.request
from pathlib import Path

from tests.processes import cadenza, start_service

CONFIG = Path(__file__).parents[2] / "configs" / "edge-eu-west.toml"


def test_the_edge_starts_reports_status_and_stops_on_sigterm(tmp_path: Path):
    edge = start_service(
        "edge", "--config", CONFIG, "--listen", "127.0.0.1:0", "--origin", "http://127.0.0.1:9",
        "--allow-unsigned", "--cache-dir", tmp_path / "cache",
    )  # fmt: skip
    try:
        assert edge.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{edge.url}/status", timeout=10) as response:
            status = json.loads(response.read())
        assert (status["region"], status["healthy"]) == ("eu-west", True)
        assert (status["latitude"], status["longitude"]) == (48.86, 2.35)
    finally:
        assert edge.stop(signal.SIGTERM) == 0


def test_help_explains_the_edge():
    result = cadenza("edge", "--help")
    assert result.returncode == 0
    for text in ("--origin", "--allow-unsigned", "--region", "/status", "CADENZA_TOKEN_KEYS"):
        assert text in result.stdout
