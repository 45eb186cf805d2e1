"""wrk (Debian's package) as the load generator of the HTTP benchmarks: a script that cycles
over request paths, one run, and its figures read from what wrk prints."""

import posixpath
import re
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.processes import ServiceFailed

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int

    def to_json(self) -> dict[str, float]:
        return asdict(self)


def parse_wrk(text: str) -> WrkResult:
    """Requests/s, p50 and p99 (ms), and failed requests from ``wrk --latency`` output."""

    def latency(percent: str) -> float:
        found = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        if found is None:
            raise ValueError(f"wrk printed no {percent}% latency")
        return float(found.group(1)) * _UNITS[found.group(2)]

    rate = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if rate is None:
        raise ValueError("wrk printed no Requests/sec")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", text))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return WrkResult(float(rate.group(1)), latency("50"), latency("99"), errors)


def cycling_script(paths: Sequence[str]) -> str:
    """A wrk Lua script whose connections request ``paths`` in turn, from a random start."""
    listed = ", ".join(f'"{p}"' for p in paths)
    return f"""\
local paths = {{{listed}}}
local i = math.random(#paths)
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def player_script(paths: Sequence[str], track: str, kbps: int) -> str:
    """A wrk Lua script like ``cycling_script`` whose every request carries CMCD data as a
    player sends it (``player.cmcd``): its session per wrk thread, its buffer length and
    measured throughput, which change with every request, and the next segment (``nor``), so
    that no two requests of a run are the same bytes."""
    listed = ", ".join(f'"{p}"' for p in paths)
    nexts = ", ".join(f'"{posixpath.basename(p)}"' for p in [*paths[1:], paths[0]])
    return f"""\
local paths = {{{listed}}}
local nexts = {{{nexts}}}
local i = math.random(#paths)
local n = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("sid", "bench-" .. threads)
end
local function escape(text)
  return (text:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end
request = function()
  i = i % #paths + 1
  n = n + 1
  local bl = (n % 301) * 100
  local mtp = 1000 + 100 * math.floor(n / 301)
  local cmcd = "bl=" .. bl .. ",br={kbps},cid=\\"{track}\\",mtp=" .. mtp .. ",nor=\\""
    .. nexts[i] .. "\\",ot=a,sid=\\"" .. sid .. "\\""
  return wrk.format("GET", paths[i] .. "?CMCD=" .. escape(cmcd))
end
"""


def run_wrk(base: str, script: Path, connections: int, seconds: float) -> WrkResult:
    """One run of wrk (two threads) against ``base`` with ``script``."""
    threads = max(1, min(2, connections))
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency",
        "-s", str(script), base,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise ServiceFailed(f"wrk failed: {done.stderr.strip()}")
    return parse_wrk(done.stdout)
