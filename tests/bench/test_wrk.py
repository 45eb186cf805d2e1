"""wrk as the benchmarks run it: the figures read from its output, its scripts."""

import asyncio
import shutil
import time
from pathlib import Path

import pytest
from aiohttp import web

from bench.edge import segment_paths
from bench.wrk import cycling_script, parse_wrk, player_script, run_wrk
from edge.cmcd import from_request, next_objects
from tests.loopback import serve

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


def test_the_wrk_script_cycles_over_every_path():
    paths = segment_paths("0123456789abcdef", 3)
    assert paths[0] == "/tracks/0123456789abcdef/v0/aac_160/seg_00001.m4s"
    script = cycling_script(paths)
    assert all(f'"{p}"' in script for p in paths)
    assert "request = function()" in script


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is Debian's package")
async def test_the_player_script_sends_cmcd_that_differs_in_every_request(tmp_path: Path):
    """Real wrk against a server that keeps what it was asked: every request is a path of the
    list with CMCD data that the edge reads, and no two requests are the same."""
    paths = segment_paths("0123456789abcdef", 3)
    asked: list[tuple[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        asked.append((request.path, request.query_string))
        cmcd = from_request(request.query, request.headers)
        nexts = next_objects(cmcd, request.path)
        assert (cmcd["cid"], cmcd["ot"], cmcd["br"]) == ("0123456789abcdef", "a", 160)
        assert str(cmcd["sid"]).startswith("bench-") and isinstance(cmcd["bl"], int)
        assert nexts == [paths[(paths.index(request.path) + 1) % len(paths)]]
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/tracks/{tail:.+}", record)
    runner, url = await serve(app)
    script = tmp_path / "players.lua"
    script.write_text(player_script(paths, "0123456789abcdef", 160))
    try:
        started = time.monotonic()
        result = await asyncio.to_thread(run_wrk, url, script, 4, 1.0)
    finally:
        await asyncio.wait_for(runner.cleanup(), 10)
    assert time.monotonic() - started < 30
    assert result.errors == 0 and len(asked) > 100
    assert {path for path, _ in asked} == set(paths)
    assert len(set(asked)) == len(asked)
