"""``cadenza bench edge``: its nginx configuration, and one short real run."""

import argparse
import shutil
import subprocess
from pathlib import Path

from bench.edge import measure, nginx_config


def test_nginx_is_a_caching_proxy_with_the_stated_settings(tmp_path: Path):
    config = nginx_config(tmp_path, 8001, 8002, 2)
    for line in (
        "worker_processes 2;",
        "sendfile on;",
        "tcp_nopush off;",
        "proxy_cache segments;",
        "proxy_cache_key $scheme$proxy_host$uri;",
        "proxy_cache_lock on;",
        "listen 127.0.0.1:8001;",
        "server 127.0.0.1:8002;",
    ):
        assert line in config
    if shutil.which("nginx"):
        (tmp_path / "nginx.conf").write_text(config)
        checked = subprocess.run(
            ["nginx", "-t", "-p", str(tmp_path), "-c", "nginx.conf", "-e", "/dev/stderr"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert checked.returncode == 0, checked.stderr


def test_a_short_run_measures_both_sides(tmp_path: Path):
    args = argparse.Namespace(
        runs=1, seconds=1.0, connections=8, segment_kb=16, segments=4, delay=0.2, workers=2
    )
    report = measure(tmp_path, args)
    for side in ("cadenza", "nginx"):
        for hot in ("hot", "players"):
            assert report[hot][side]["requests_per_s"] > 0
            assert report[hot][side]["errors"] == 0
        assert report["cold"][side]["origin_fetches"] == 1
        assert report["cold"][side]["incomplete"] == 0
    assert report["targets"]["met"]["cold_one_fetch"]
    assert report["players"]["replays"] == 0  # players' requests differ: each one is parsed
