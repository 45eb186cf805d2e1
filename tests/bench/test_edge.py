"""``cadenza bench edge``: its parsing of wrk, its nginx configuration, and one short real run."""

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.edge import measure, nginx_config, parse_wrk, segment_paths, wrk_script

WRK_OUTPUT = """\
Running 4s test @ http://127.0.0.1:40001
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.81ms    1.62ms  21.05ms   80.07%
    Req/Sec     6.55k   412.33     7.48k    70.00%
  Latency Distribution
     50%    4.60ms
     75%    5.41ms
     90%    6.67ms
     99%  850.00us
  52107 requests in 4.00s, 5.97GB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  13026.51
Transfer/sec:      1.49GB
"""


def test_wrk_output_is_read_with_its_units_and_errors():
    result = parse_wrk(WRK_OUTPUT)
    assert result.requests_per_s == 13026.51
    assert (result.p50_ms, result.p99_ms) == (4.6, 0.85)
    assert result.errors == 7


def test_wrk_output_without_figures_is_refused():
    with pytest.raises(ValueError, match="Requests/sec"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_nginx_is_a_caching_proxy_with_the_stated_settings(tmp_path: Path):
    config = nginx_config(tmp_path, 8001, 8002, 2)
    for line in (
        "worker_processes 2;",
        "sendfile on;",
        "tcp_nopush off;",
        "proxy_cache segments;",
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


def test_the_wrk_script_cycles_over_every_path():
    paths = segment_paths("0123456789abcdef", 3)
    assert paths[0] == "/tracks/0123456789abcdef/v0/aac_160/seg_00001.m4s"
    script = wrk_script(paths)
    assert all(f'"{p}"' in script for p in paths)
    assert "request = function()" in script


def test_a_short_run_measures_both_sides(tmp_path: Path):
    args = argparse.Namespace(
        runs=1, seconds=1.0, connections=8, segment_kb=16, segments=4, delay=0.2, workers=2
    )
    report = measure(tmp_path, args)
    for side in ("cadenza", "nginx"):
        assert report["hot"][side]["requests_per_s"] > 0
        assert report["hot"][side]["errors"] == 0
        assert report["cold"][side]["origin_fetches"] == 1
        assert report["cold"][side]["incomplete"] == 0
    assert report["targets"]["met"]["cold_one_fetch"]
