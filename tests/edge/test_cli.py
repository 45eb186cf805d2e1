"""``cadenza edge`` as a process: it starts, answers its status, and stops on SIGTERM."""

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

CONFIG = Path(__file__).parents[2] / "configs" / "edge-eu-west.toml"


def test_the_edge_starts_reports_status_and_stops_on_sigterm(tmp_path: Path):
    process = subprocess.Popen(
        [sys.executable, "-m", "cadenza", "edge", "--config", str(CONFIG),
         "--listen", "127.0.0.1:0", "--origin", "http://127.0.0.1:9", "--allow-unsigned",
         "--cache-dir", str(tmp_path / "cache")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "cadenza edge listening on http://127.0.0.1:" in line, line
        url = line.rsplit(" ", 1)[-1].strip()
        with urllib.request.urlopen(f"{url}/status", timeout=10) as response:
            status = json.loads(response.read())
        assert (status["region"], status["healthy"]) == ("eu-west", True)
        assert (status["latitude"], status["longitude"]) == (48.86, 2.35)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()


def test_help_explains_the_edge():
    result = subprocess.run(
        [sys.executable, "-m", "cadenza", "edge", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    for text in ("--origin", "--allow-unsigned", "--region", "/status", "CADENZA_TOKEN_KEYS"):
        assert text in result.stdout
