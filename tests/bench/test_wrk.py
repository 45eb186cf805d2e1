"""wrk as the benchmarks run it: the figures read from its output, the cycling script."""

import pytest

from bench.edge import segment_paths
from bench.wrk import cycling_script, parse_wrk

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
