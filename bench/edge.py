"""``cadenza bench edge``: Cadenza's edge next to nginx, in front of the same origin, in one run.

Three measurements, each repeated and reported as medians with Cadenza's figure over nginx's:

1. Hot hits: wrk with 64 connections requests 120 KB segments that both proxies hold already.
   nginx runs as a caching proxy (``proxy_cache``, ``sendfile on; tcp_nopush off``) with as many
   workers as the edge. Requests per second and latency percentiles.
2. Player hot hits: the same, with every request carrying CMCD data as players send it (their
   buffer length changes with every request), so that no two requests are the same bytes and the
   edge answers none from a replay (it reports how many it did). nginx keys its cache by path
   (``proxy_cache_key ... $uri``), as the edge does for segments. No target: this is what real
   players get, next to the figure of repeated requests above.
3. Cold stampede: 64 concurrent requests for one uncached segment while the origin answers after
   200 ms. How many fetches reached the origin, and the requests' median latency: nginx makes
   waiters poll every 500 ms (``proxy_cache_lock``), the edge streams the one fetch to all of them.

The origin is a stand-in (``bench.stub_origin``) so that only the proxies are measured. nginx and
wrk are Debian's packages (``make setup`` installs them).
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench import processes
from bench.wrk import WrkResult, cycling_script, player_script, run_wrk
from cadenza.errors import ConfigError

HOT_TARGET_RPS = 0.8  # Cadenza's requests/s over nginx's, at least
HOT_TARGET_P99 = 2.0  # Cadenza's p99 over nginx's, at most
COLD_TARGET_MEDIAN = 0.5  # Cadenza's median stampede latency over nginx's, at most
TRACK = "b0b0b0b0b0b0b0b0"
KBPS = 160  # the rung of the hot segments (``segment_paths``), as players state it in CMCD
START_SECONDS = 15.0


def add_parser(benches: Any) -> None:
    parser = benches.add_parser(
        "edge",
        help="the edge against nginx: hot hits with wrk, and a cold stampede",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=3, help="repetitions per side (default 3)")
    parser.add_argument("--seconds", type=float, default=8.0, help="per wrk run (default 8)")
    parser.add_argument("--connections", type=int, default=64, help="wrk and stampede (64)")
    parser.add_argument("--segment-kb", type=int, default=120, help="segment size (default 120)")
    parser.add_argument("--segments", type=int, default=32, help="hot objects (default 32)")
    parser.add_argument("--delay", type=float, default=0.2, help="stampede origin delay, s")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="edge and nginx workers"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class StampedeResult:
    origin_fetches: int
    median_ms: float
    max_ms: float
    complete: int


def nginx_scratch(directory: Path) -> tuple[str, str]:
    """What nginx needs to run from a scratch folder: a ``user`` line (as root, workers keep
    root's identity so that they can write there) and its temporary paths inside the folder."""
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return user, temp


def nginx_config(directory: Path, port: int, origin_port: int, workers: int) -> str:
    """A caching reverse proxy as an operator would run it for immutable segments."""
    user, temp = nginx_scratch(directory)
    return f"""\
{user}daemon off;
master_process on;
worker_processes {workers};
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush off;
    keepalive_requests 1000000;
{temp}
    proxy_cache_path {directory / "cache"} levels=1:2 keys_zone=segments:16m max_size=2g
                     inactive=1h use_temp_path=off;
    upstream origin {{ server 127.0.0.1:{origin_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location /tracks/ {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache segments;
            proxy_cache_key $scheme$proxy_host$uri;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 30s;
            proxy_cache_valid 200 1h;
            add_header X-Cache $upstream_cache_status;
        }}
    }}
}}
"""


def segment_paths(track: str, count: int, first: int = 1) -> list[str]:
    return [f"/tracks/{track}/v0/aac_160/seg_{n:05d}.m4s" for n in range(first, first + count)]


def run(args: argparse.Namespace) -> int:
    if min(args.runs, args.connections, args.segments, args.workers, args.segment_kb) < 1:
        raise ConfigError("--runs, --connections, --segments, --workers, --segment-kb: 1 or more")
    missing = [tool for tool in ("nginx", "wrk") if shutil.which(tool) is None]
    if missing:
        raise ConfigError(
            f"cadenza bench edge needs {' and '.join(missing)} (Debian packages): run "
            f"'make setup' as root or 'apt-get install {' '.join(missing)}'"
        )
    with tempfile.TemporaryDirectory(prefix="cadenza-bench-edge-") as scratch:
        report = measure(Path(scratch), args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


def measure(scratch: Path, args: argparse.Namespace) -> dict[str, Any]:
    size = args.segment_kb * 1024
    hot: dict[str, list[WrkResult]] = {"cadenza": [], "nginx": []}
    players: dict[str, list[WrkResult]] = {"cadenza": [], "nginx": []}
    with _fleet(scratch / "hot", size, 0.0, args.workers) as (origin, proxies):
        paths = segment_paths(TRACK, args.segments)
        for url in proxies.values():
            _warm(url, paths)
        script = scratch / "hot.lua"
        script.write_text(cycling_script(paths))
        player = scratch / "players.lua"
        player.write_text(player_script(paths, TRACK, KBPS))
        for url in proxies.values():  # connections and caches settle before measuring
            run_wrk(url, script, args.connections, 2.0)
        for _ in range(args.runs):
            for side, url in proxies.items():
                hot[side].append(run_wrk(url, script, args.connections, args.seconds))
        replays = _replays(proxies["cadenza"])
        for _ in range(args.runs):
            for side, url in proxies.items():
                players[side].append(run_wrk(url, player, args.connections, args.seconds))
        replays = _replays(proxies["cadenza"]) - replays
    cold: dict[str, list[StampedeResult]] = {"cadenza": [], "nginx": []}
    with _fleet(scratch / "cold", size, args.delay, args.workers) as (origin, proxies):
        for run_index in range(args.runs):
            for side, url in proxies.items():
                # A track of its own per run and side: readahead must not have warmed it.
                path = segment_paths(f"c{run_index:07d}{side[:8]:0>8}", 1)[0]
                cold[side].append(_stampede(origin, url, path, args.connections, size))
    return _summary(args, hot, players, replays, cold)


@contextmanager
def _fleet(
    directory: Path, size: int, delay: float, workers: int
) -> Iterator[tuple[processes.Service, dict[str, str]]]:
    directory.mkdir(parents=True)
    command = [sys.executable, "-m", "bench.stub_origin", "--size", str(size)]
    origin = processes.start([*command, "--delay", str(delay)])
    services = [origin]
    try:
        edge = processes.start_cadenza(
            "edge", "--listen", "127.0.0.1:0", "--origin", origin.url, "--allow-unsigned",
            "--workers", str(workers), "--cache-dir", directory / "edge", "--region", "bench",
        )  # fmt: skip
        services.append(edge)
        origin_port = int(origin.url.rsplit(":", 1)[1])
        with _nginx(directory / "nginx", origin_port, workers) as nginx:
            yield origin, {"cadenza": edge.url, "nginx": nginx}
    finally:
        for service in reversed(services):
            service.stop()


@contextmanager
def _nginx(directory: Path, origin_port: int, workers: int) -> Iterator[str]:
    directory.mkdir()
    port = processes.free_port()
    config = directory / "nginx.conf"
    config.write_text(nginx_config(directory, port, origin_port, workers))
    process = subprocess.Popen(
        ["nginx", "-p", str(directory), "-c", str(config), "-e", str(directory / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_port(port, process, directory / "error.log")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)  # fast shutdown of the master and its workers
        try:
            process.wait(timeout=processes.STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=processes.STOP_SECONDS)
        if process.stderr:
            process.stderr.close()


def _wait_for_port(port: int, process: "subprocess.Popen[str]", log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            detail = log.read_text() if log.exists() else ""
            raise processes.ServiceFailed(f"nginx exited at start: {detail.strip()[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise processes.ServiceFailed(f"nginx did not listen on 127.0.0.1:{port}")


def _replays(base: str) -> int:
    """The edge's answers replayed so far (``cadenza_edge_lane_replays_total``, all workers)."""

    async def read() -> str:
        timeout = aiohttp.ClientTimeout(total=START_SECONDS)
        async with (
            aiohttp.ClientSession(timeout=timeout) as client,
            client.get(base + "/metrics") as response,
        ):
            response.raise_for_status()
            return await response.text()

    for family in text_string_to_metric_families(asyncio.run(read())):
        if family.name == "cadenza_edge_lane_replays":
            return sum(
                int(sample.value) for sample in family.samples if sample.name.endswith("_total")
            )
    raise processes.ServiceFailed(f"{base}/metrics has no cadenza_edge_lane_replays")


def _warm(base: str, paths: Sequence[str]) -> None:
    """Fetch every path until the proxy answers it from its cache."""

    async def warm() -> None:
        async with aiohttp.ClientSession() as client:
            for path in paths:
                for _ in range(20):
                    async with client.get(base + path) as response:
                        await response.read()
                        if response.headers.get("X-Cache") == "HIT":
                            break
                    await asyncio.sleep(0.05)  # the proxy may still be storing it
                else:
                    raise processes.ServiceFailed(f"{base}{path} never became a cache hit")

    asyncio.run(warm())


def _stampede(
    origin: processes.Service, base: str, path: str, connections: int, size: int
) -> StampedeResult:
    async def one(client: aiohttp.ClientSession) -> tuple[float, bool]:
        started = time.perf_counter()
        async with client.get(base + path) as response:
            body = await response.read()
        return time.perf_counter() - started, response.status == 200 and len(body) == size

    async def all_at_once() -> tuple[list[tuple[float, bool]], int]:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as client:
            results = await asyncio.gather(*(one(client) for _ in range(connections)))
            async with client.get(origin.url + "/_stats") as response:
                fetches = (await response.json()).get(path, 0)
        return results, fetches

    results, fetches = asyncio.run(all_at_once())
    times = [seconds * 1e3 for seconds, _ in results]
    return StampedeResult(
        fetches, statistics.median(times), max(times), sum(ok for _, ok in results)
    )


def _summary(
    args: argparse.Namespace,
    hot: dict[str, list[WrkResult]],
    players: dict[str, list[WrkResult]],
    replays: int,
    cold: dict[str, list[StampedeResult]],
) -> dict[str, Any]:
    def med(results: Sequence[Any], name: str) -> float:
        return float(statistics.median(getattr(r, name) for r in results))

    def wrk_sides(measured: dict[str, list[WrkResult]]) -> dict[str, Any]:
        sides: dict[str, Any] = {
            side: {
                "requests_per_s": med(runs, "requests_per_s"),
                "p50_ms": med(runs, "p50_ms"),
                "p99_ms": med(runs, "p99_ms"),
                "errors": sum(r.errors for r in runs),
                "runs": [asdict(r) for r in runs],
            }
            for side, runs in measured.items()
        }
        c, n = sides["cadenza"], sides["nginx"]
        sides["rps_ratio"] = c["requests_per_s"] / n["requests_per_s"]
        sides["p99_ratio"] = c["p99_ms"] / n["p99_ms"]
        return sides

    hot_sides, player_sides = wrk_sides(hot), wrk_sides(players)
    cold_sides: dict[str, dict[str, Any]] = {
        side: {
            "origin_fetches": max(r.origin_fetches for r in runs),
            "median_ms": med(runs, "median_ms"),
            "max_ms": med(runs, "max_ms"),
            "incomplete": sum(args.connections - r.complete for r in runs),
            "runs": [asdict(r) for r in runs],
        }
        for side, runs in cold.items()
    }
    rps_ratio, p99_ratio = hot_sides["rps_ratio"], hot_sides["p99_ratio"]
    median_ratio = cold_sides["cadenza"]["median_ms"] / cold_sides["nginx"]["median_ms"]
    one_fetch = all(side["origin_fetches"] == 1 for side in cold_sides.values())
    return {
        "setup": {
            "runs": args.runs,
            "wrk_seconds": args.seconds,
            "connections": args.connections,
            "segment_bytes": args.segment_kb * 1024,
            "hot_segments": args.segments,
            "workers": args.workers,
            "origin_delay_s": args.delay,
            "cores": os.cpu_count(),
        },
        "hot": hot_sides,
        "players": {**player_sides, "replays": replays},
        "cold": {**cold_sides, "median_ratio": median_ratio},
        "targets": {
            "hot_rps_ratio_at_least": HOT_TARGET_RPS,
            "hot_p99_ratio_at_most": HOT_TARGET_P99,
            "cold_median_ratio_at_most": COLD_TARGET_MEDIAN,
            "met": {
                "hot_rps": rps_ratio >= HOT_TARGET_RPS,
                "hot_p99": p99_ratio <= HOT_TARGET_P99,
                "cold_one_fetch": one_fetch,
                "cold_median": median_ratio <= COLD_TARGET_MEDIAN,
            },
        },
    }


def print_report(report: dict[str, Any]) -> None:
    s, hot, cold, met = report["setup"], report["hot"], report["cold"], report["targets"]["met"]
    print(
        f"Hot hits: wrk, {s['connections']} connections, {s['hot_segments']} cached segments of "
        f"{s['segment_bytes'] // 1024} KB, {s['workers']} workers each; "
        f"medians of {s['runs']} runs of {s['wrk_seconds']:g} s"
    )
    _print_sides(hot, _WRK_COLUMNS)
    print(
        f"  Cadenza / nginx: requests/s {hot['rps_ratio']:.2f}x (target >= {HOT_TARGET_RPS}: "
        f"{_verdict(met['hot_rps'])}), p99 {hot['p99_ratio']:.2f}x (target <= {HOT_TARGET_P99}: "
        f"{_verdict(met['hot_p99'])})"
    )
    players = report["players"]
    print(
        "\nPlayer hot hits: the same, every request with its own CMCD data as players send it "
        f"(answers the edge replayed: {players['replays']})"
    )
    _print_sides(players, _WRK_COLUMNS)
    print(
        f"  Cadenza / nginx: requests/s {players['rps_ratio']:.2f}x, "
        f"p99 {players['p99_ratio']:.2f}x (no target)"
    )
    print(
        f"\nCold stampede: {s['connections']} concurrent requests for one uncached segment, "
        f"origin answering after {s['origin_delay_s'] * 1000:g} ms; medians of {s['runs']} runs"
    )
    _print_sides(cold, _COLD_COLUMNS)
    print(
        f"  one fetch each: {_verdict(met['cold_one_fetch'])}; Cadenza / nginx median "
        f"{cold['median_ratio']:.2f}x (target <= {COLD_TARGET_MEDIAN}: "
        f"{_verdict(met['cold_median'])})"
    )


# A table's columns: heading, field of each side's figures, width and number format.
_WRK_COLUMNS = (
    ("requests/s", "requests_per_s", 12, ",.0f"), ("p50 ms", "p50_ms", 10, ".2f"),
    ("p99 ms", "p99_ms", 10, ".2f"), ("errors", "errors", 8, ""),
)  # fmt: skip
_COLD_COLUMNS = (
    ("origin fetches", "origin_fetches", 16, ""), ("median ms", "median_ms", 11, ".1f"),
    ("max ms", "max_ms", 9, ".1f"), ("incomplete", "incomplete", 12, ""),
)  # fmt: skip


def _print_sides(sides: dict[str, Any], columns: Sequence[tuple[str, str, int, str]]) -> None:
    print(f"  {'':14}" + "".join(f"{title:>{width}}" for title, _, width, _ in columns))
    for side in ("cadenza", "nginx"):
        figures = sides[side]
        print(
            f"  {side:14}"
            + "".join(f"{figures[field]:>{width}{form}}" for _, field, width, form in columns)
        )


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"
