"""``cadenza bench locator``: decisions per second, latency under load, and failover time.

One locator (its default workers, or --workers) with 50 configured edges (stand-ins that answer
``/status``) in ten regions plus three lone edges in regions of their own, each its own process
so that it can be killed:

1. The pure decision (``locator.decision.choose_edges``) in this process: decisions per second.
2. ``GET /v1/locate`` over HTTP with wrk: decisions per second and latency percentiles.
3. ``GET /v1/locate`` at a fixed 1,000 requests per second (an open-loop client that times each
   request from when it was due, so queueing counts): latency percentiles.
4. Failover: a play from next to a lone edge, then ``kill -9`` of that edge; the time until the
   steering manifest of the play no longer names it. Apache Traffic Control's documented
   health path (polling, then the router's next refresh) takes up to about 6 s.

Steps 2 and 3 also run, in turn with the locator's, against a bare aiohttp handler of the same
request (``bench.bare``: an answer of the same size, the same workers, served the same way), so
that the locator's figures read as a share of what the stack allows on this machine; the load
average before and after says how busy the machine was.

Targets: >= 5,000 decisions/s over HTTP and >= 20,000/s for the pure decision, p99 <= 10 ms at
1,000 requests/s, failover <= 2 s.
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

from bench import processes
from bench.wrk import cycling_script, run_wrk
from cadenza.errors import ConfigError
from locator.decision import EdgeView, choose_edges
from locator.geo import Location
from locator.settings import LocatorSettings

REGIONS = {  # ten regions of five edges each
    "eu-west": (48.86, 2.35), "eu-north": (59.33, 18.07), "eu-south": (41.9, 12.5),
    "us-east": (38.9, -77.04), "us-west": (37.77, -122.42), "us-central": (41.88, -87.63),
    "sa-east": (-23.55, -46.63), "ap-northeast": (35.68, 139.69), "ap-south": (19.08, 72.88),
    "ap-southeast": (-33.87, 151.21),
}  # fmt: skip
LONE = {"af-south": (-33.92, 18.42), "me-central": (25.2, 55.27), "ap-east": (22.32, 114.17)}
PER_REGION = 5
TARGETS = {"http_rps": 5000, "pure_rps": 20000, "p99_ms_at_1000": 10.0, "failover_s": 2.0}
ATC_FAILOVER_S = 6.0
CLIENT_CONNECTIONS = 32  # of the fixed-rate client: at most this many requests under way


def add_parser(benches: Any) -> None:
    parser = benches.add_parser(
        "locator",
        help="the locator's decisions per second, latency at 1,000 req/s, failover time",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--seconds", type=float, default=6.0, help="per wrk run (default 6)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--rate", type=int, default=1000, help="fixed request rate (1000/s)")
    parser.add_argument(
        "--workers",
        type=int,
        default=LocatorSettings().workers,
        help="processes of the locator and of the bare handler (default: the locator's, "
        "one per core)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if min(args.runs, args.connections, args.rate, args.workers) < 1 or args.seconds <= 0:
        raise ConfigError("--runs, --connections, --rate, --workers and --seconds must be positive")
    if shutil.which("wrk") is None:
        raise ConfigError("cadenza bench locator needs wrk: run 'make setup' as root")
    with tempfile.TemporaryDirectory(prefix="cadenza-bench-locator-") as scratch:
        report = measure(Path(scratch), args)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


def fleet_views() -> list[EdgeView]:
    views = []
    for region, (lat, lon) in REGIONS.items():
        for n in range(PER_REGION):
            views.append(EdgeView(f"{region}-{n}", region, "", lat + n * 0.3, lon + n * 0.3, 1e9))
    return views


def pure_decisions_per_second(count: int, seed: int) -> float:
    rng = random.Random(seed)
    views = fleet_views()
    clients = [Location(rng.uniform(-60, 60), rng.uniform(-180, 180)) for _ in range(500)]
    tracks = [f"{rng.getrandbits(64):016x}" for _ in range(1000)]
    assigned: dict[str, int] = {}
    started = time.perf_counter()
    for i in range(count):
        choose_edges(views, clients[i % 500], tracks[i % 1000], assigned)
    return count / (time.perf_counter() - started)


def measure(scratch: Path, args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    pure = [pure_decisions_per_second(20000, seed) for seed in range(args.runs)]
    stub = [sys.executable, "-m"]
    services = []
    workers = str(args.workers)
    try:
        origin = processes.start([*stub, "bench.stub_origin"])
        services.append(origin)
        many = processes.start([*stub, "bench.stub_edge", "--count", str(50)])
        services.append(many)
        lone = {region: processes.start([*stub, "bench.stub_edge"]) for region in LONE}
        services.extend(lone.values())
        config = scratch / "locator.toml"
        config.write_text(_config(origin.url, many.url.split(","), lone))
        env = {**os.environ, "CADENZA_TOKEN_KEYS": "k1:bench-locator-secret-0123456789"}
        locator = processes.start_cadenza(
            "locator", "--config", config, "--workers", workers, env=env
        )
        services.append(locator)
        bare = processes.start([*stub, "bench.bare", "--workers", workers])
        services.append(bare)
        asyncio.run(_until_up(locator.url, 50 + len(LONE)))
        script = scratch / "locate.lua"
        script.write_text(_wrk_script())
        http: dict[str, list[dict[str, float]]] = {"locator": [], "bare": []}
        fixed: dict[str, list[dict[str, float]]] = {"locator": [], "bare": []}
        targets = {"locator": locator.url, "bare": bare.url}
        for url in targets.values():
            _wrk(url, script, args.connections, 2.0)  # warm-up
        for _ in range(args.runs):  # in turn, so that a busy spell of the machine hits both
            for name, url in targets.items():
                http[name].append(_wrk(url, script, args.connections, args.seconds))
            for name, url in targets.items():
                fixed[name].append(uvloop.run(_fixed_rate(url, args.rate, 4.0)))
        failovers = [asyncio.run(_failover(locator.url, region, lone[region])) for region in LONE]
    finally:
        for service in reversed(services):
            service.stop()
    machine = {"cores": os.cpu_count() or 1, "load_before": load_before,
               "load_after": os.getloadavg()}  # fmt: skip
    return _summary(pure, http, fixed, failovers, machine, args)


def _config(origin: str, urls: list[str], lone: dict[str, processes.Service]) -> str:
    lines = [
        'listen = "127.0.0.1:0"',
        f'origin = "{origin}"',
        "poll_interval_seconds = 0.5",
        "poll_timeout_seconds = 0.4",
        "[default_location]",
        'region = "eu-west"',
        "latitude = 48.86",
        "longitude = 2.35",
        'territory = "FR"',
    ]
    for view, url in zip(fleet_views(), urls, strict=True):
        lines += _edge(view.id, view.region, url, view.lat, view.lon)
    for region, service in lone.items():
        lines += _edge(f"{region}-0", region, service.url, *LONE[region])
    return "\n".join(lines) + "\n"


def _edge(edge_id: str, region: str, url: str, lat: float, lon: float) -> list[str]:
    return [
        "[[edge]]",
        f'id = "{edge_id}"',
        f'region = "{region}"',
        f'url = "{url}"',
        f"latitude = {lat}",
        f"longitude = {lon}",
    ]


async def _until_up(url: str, count: int) -> None:
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as client:
        while time.monotonic() < deadline:
            async with client.get(f"{url}/v1/edges") as response:
                edges = (await response.json())["edges"]
            if sum(e["state"] == "up" for e in edges) == count:
                return
            await asyncio.sleep(0.1)
    raise processes.ServiceFailed("the locator never saw every edge up")


def _wrk_script() -> str:
    rng = random.Random(3)
    paths = [
        f"/v1/locate/{rng.getrandbits(64):016x}?lat={rng.uniform(-60, 60):.2f}"
        f"&lon={rng.uniform(-180, 180):.2f}&territory=FR"
        for _ in range(500)
    ]
    return cycling_script(paths)


def _wrk(base: str, script: Path, connections: int, seconds: float) -> dict[str, float]:
    return run_wrk(base, script, connections, seconds).to_json()


async def _fixed_rate(base: str, rate: int, seconds: float) -> dict[str, float]:
    """Open loop: request i is due at i / rate; its latency counts from then.

    A lean HTTP/1.1 client on keep-alive connections, so that the client's own time stays small
    beside the server's: a request waits for a free connection as it would for a server's.
    """
    rng = random.Random(5)
    count = int(rate * seconds)
    host, port = base.removeprefix("http://").rsplit(":", 1)
    requests = [
        f"GET /v1/locate/{rng.getrandbits(64):016x}?lat=10&lon=10 HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n\r\n".encode()
        for _ in range(count)
    ]
    due: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
    latencies: list[float] = []
    failures = 0

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal failures
        try:
            while True:
                when, request = await due.get()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = _content_length(head)
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - when)
                if not head.startswith(b"HTTP/1.1 200 "):
                    failures += 1
                due.task_done()
        finally:
            writer.close()

    clients: list[asyncio.Task[None]] = []
    try:
        # Connected before the first request is due, so that connecting is not timed.
        for _ in range(CLIENT_CONNECTIONS):
            pair = await asyncio.open_connection(host, int(port))
            clients.append(asyncio.create_task(connection(*pair)))
        start = time.perf_counter() + 0.2
        for i, request in enumerate(requests):
            when = start + i / rate
            await asyncio.sleep(max(0.0, when - time.perf_counter()))
            due.put_nowait((when, request))
        await asyncio.wait_for(due.join(), timeout=seconds + 30)
    finally:
        for client in clients:
            client.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
    ordered = sorted(latencies)
    return {
        "requests": count,
        "failures": failures,
        "p50_ms": ordered[len(ordered) // 2] * 1e3,
        "p99_ms": ordered[int(len(ordered) * 0.99)] * 1e3,
    }


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            return int(value)
    raise processes.ServiceFailed(f"an answer without Content-Length: {head[:200]!r}")


async def _failover(base: str, region: str, victim: processes.Service) -> float:
    lat, lon = LONE[region]
    async with aiohttp.ClientSession() as client:
        params = {"lat": str(lat), "lon": str(lon), "territory": "FR"}
        async with client.get(f"{base}/v1/play/{'f' * 16}", params=params) as response:
            text = await response.text()
            if response.status != 200:
                raise processes.ServiceFailed(f"play refused: {response.status} {text}")
        steer = text.split('SERVER-URI="', 1)[1].split('"', 1)[0]
        victim_id = f"{region}-0"

        async def priority() -> list[str]:
            async with client.get(steer) as response:
                found: list[str] = (await response.json())["PATHWAY-PRIORITY"]
                return found

        if (await priority())[0] != victim_id:
            raise processes.ServiceFailed(f"{victim_id} is not the primary of its own region")
        victim.stop(9)  # SIGKILL
        killed = time.perf_counter()
        while victim_id in await priority():
            if time.perf_counter() - killed > 30:
                raise processes.ServiceFailed(f"{victim_id} stayed in the manifest for 30 s")
            await asyncio.sleep(0.01)
        return time.perf_counter() - killed


def _summary(
    pure: list[float],
    http: dict[str, list[dict[str, float]]],
    fixed: dict[str, list[dict[str, float]]],
    failovers: list[float],
    machine: dict[str, Any],
    args: argparse.Namespace,
) -> dict[str, Any]:
    def med(rows: list[dict[str, float]], key: str) -> float:
        return float(statistics.median(r[key] for r in rows))

    def over_http(rows: list[dict[str, float]]) -> dict[str, Any]:
        return {"requests_per_s": med(rows, "requests_per_s"), "p50_ms": med(rows, "p50_ms"),
                "p99_ms": med(rows, "p99_ms"), "errors": sum(r["errors"] for r in rows),
                "runs": [r["requests_per_s"] for r in rows]}  # fmt: skip

    def at_rate(rows: list[dict[str, float]]) -> dict[str, Any]:
        return {"p50_ms": med(rows, "p50_ms"), "p99_ms": med(rows, "p99_ms"),
                "failures": sum(r["failures"] for r in rows),
                "runs": [r["p99_ms"] for r in rows]}  # fmt: skip

    report: dict[str, Any] = {
        "setup": {"edges": 50 + len(LONE), "runs": args.runs, "wrk_seconds": args.seconds,
                  "connections": args.connections, "rate": args.rate, "workers": args.workers},
        "machine": machine,
        "pure_decisions_per_s": statistics.median(pure),
        "http": over_http(http["locator"]),
        "fixed_rate": at_rate(fixed["locator"]),
        "bare": {"http": over_http(http["bare"]), "fixed_rate": at_rate(fixed["bare"])},
        "failover_s": {"median": statistics.median(failovers), "max": max(failovers),
                       "runs": failovers},
        "reference": {"atc_documented_failover_s": ATC_FAILOVER_S},
    }  # fmt: skip
    # Run by run, then the median: each locator run is set against the bare run beside it.
    shares = [
        mine["requests_per_s"] / theirs["requests_per_s"]
        for mine, theirs in zip(http["locator"], http["bare"], strict=True)
        if theirs["requests_per_s"] > 0
    ]
    report["share_of_bare"] = statistics.median(shares) if shares else 0.0
    report["targets"] = {
        **TARGETS,
        "met": {
            "http_rps": report["http"]["requests_per_s"] >= TARGETS["http_rps"],
            "pure_rps": report["pure_decisions_per_s"] >= TARGETS["pure_rps"],
            "p99_ms_at_1000": report["fixed_rate"]["p99_ms"] <= TARGETS["p99_ms_at_1000"],
            "failover_s": max(failovers) <= TARGETS["failover_s"],
        },
    }
    return report


def render(report: dict[str, Any]) -> str:
    s, met, machine = report["setup"], report["targets"]["met"], report["machine"]
    http, fixed, failover = report["http"], report["fixed_rate"], report["failover_s"]
    bare_http, bare_fixed = report["bare"]["http"], report["bare"]["fixed_rate"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    def loads(values: list[float]) -> str:
        return " ".join(f"{v:.2f}" for v in values)

    return "\n".join(
        [
            f"Locator with {s['edges']} configured edges, {s['workers']} worker(s); medians of "
            f"{s['runs']} runs",
            f"  machine: {machine['cores']} cores, load average {loads(machine['load_before'])} "
            f"before, {loads(machine['load_after'])} after (1, 5, 15 min)",
            f"  pure decision:        {report['pure_decisions_per_s']:>9,.0f} /s   "
            f"(target >= {TARGETS['pure_rps']:,}: {verdict(met['pure_rps'])})",
            f"  /v1/locate with wrk:  {http['requests_per_s']:>9,.0f} /s   p50 "
            f"{http['p50_ms']:.2f} ms, p99 {http['p99_ms']:.2f} ms, {s['connections']} "
            f"connections (target >= {TARGETS['http_rps']:,}/s: {verdict(met['http_rps'])})",
            f"  bare aiohttp handler: {bare_http['requests_per_s']:>9,.0f} /s   p50 "
            f"{bare_http['p50_ms']:.2f} ms, p99 {bare_http['p99_ms']:.2f} ms, the same request, "
            f"workers and serving",
            f"  locator / bare:       {report['share_of_bare']:>9.0%}      (median of the "
            f"runs' ratios; locator runs {_rates(http['runs'])}, bare {_rates(bare_http['runs'])})",
            f"  at {s['rate']:,} req/s:        p50 {fixed['p50_ms']:.2f} ms, p99 "
            f"{fixed['p99_ms']:.2f} ms (target p99 <= {TARGETS['p99_ms_at_1000']:g} ms: "
            f"{verdict(met['p99_ms_at_1000'])}), {fixed['failures']} failures; bare handler "
            f"p50 {bare_fixed['p50_ms']:.2f} ms, p99 {bare_fixed['p99_ms']:.2f} ms",
            f"  failover after kill -9: median {failover['median']:.2f} s, worst "
            f"{failover['max']:.2f} s of {len(failover['runs'])} (target <= "
            f"{TARGETS['failover_s']:g} s: {verdict(met['failover_s'])}; Apache Traffic "
            f"Control documents up to about {ATC_FAILOVER_S:g} s)",
        ]
    )


def _rates(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)
