"""``cadenza bench plays``: play events accepted per second by one locator process, and how far
the consumers fall behind under that load, with the embedded log and with Redis Streams.

A load-generator process (``python -m bench.plays``) posts batches of play events with valid
play tokens to ``POST /v1/plays`` over several connections for a few seconds, each event with
its own id, and counts the events accepted (202). The locator runs one worker process. The
load runs twice: first with the locator alone (its intake); then the history, streams and
popularity consumers start, each its own process, and work through what the first load
appended (their rate); then the load runs again with them on the same cores, and the benchmark
samples their lag (events appended that a consumer group has not acknowledged) every
``SAMPLE_S``, then times how long they take to catch up once the load stops.

The reference, measured in the same run with the same load: a bare aiohttp handler of the
same POST (``bench.bare``: one worker, it parses the batch and answers 202, checking and
logging nothing), so the locator's figure reads as a share of what the stack allows here.
Each figure is the median of ``--runs`` runs; engines take turns within a run.
"""

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

from bench import processes
from cadenza.errors import ConfigError
from cadenza.tokens import TokenClaims, sign
from plays.log import open_log

TRACK = "0123456789abcdef"
VERSION = "v0123456789ab"
KID, SECRET = "k1", "bench-plays-secret-0123456789"
GROUPS = ("history", "streams", "popularity")
SAMPLE_S = 0.25
DRAIN_S = 300.0  # the consumers must catch up within this, or the run fails
ENGINES = ("sqlite", "redis")
ENGINE_FIGURES = (
    "events_per_s", "errors", "consumers_per_s", "with_consumers_per_s", "lag_max",
    "lag_at_end", "catch_up_s",
)  # fmt: skip


def add_parser(benches: Any) -> None:
    parser = benches.add_parser(
        "plays",
        help="play events accepted per second by one locator process, and the consumers' lag",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="of load per run (5)")
    parser.add_argument("--connections", type=int, default=8, help="of the load (8)")
    parser.add_argument("--batch", type=int, default=100, help="events per POST (100)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if min(args.runs, args.connections, args.batch) < 1 or args.seconds <= 0:
        raise ConfigError("--runs, --connections, --batch and --seconds must be positive")
    if not 1 <= args.batch <= 500:
        raise ConfigError("--batch is 1 to 500 (a batch's bound)")
    with tempfile.TemporaryDirectory(prefix="cadenza-bench-plays-") as scratch:
        report = measure(Path(scratch), args)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


def measure(scratch: Path, args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    figures: dict[str, list[dict[str, float]]] = {"bare": [], **{e: [] for e in ENGINES}}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENZA_")}
    env["CADENZA_TOKEN_KEYS"] = f"{KID}:{SECRET}"
    stub = [sys.executable, "-m"]
    with ExitStack() as running:
        origin = _service(running, [*stub, "bench.stub_origin"])
        edge = _service(running, [*stub, "bench.stub_edge"])
        bare = _service(running, [*stub, "bench.bare", "--workers", "1"])
        redis_url = running.enter_context(processes.redis_server(scratch / "redis"))
        for n in range(args.runs):
            figures["bare"].append(_load(bare.url, args))
            for engine in ENGINES:
                folder = scratch / f"run-{n}-{engine}"
                folder.mkdir()
                log_url = (
                    f"sqlite:///{folder / 'plays.sqlite3'}" if engine == "sqlite"
                    else f"{redis_url}?stream=plays-{n}&maxlen=10000000"
                )  # fmt: skip
                figures[engine].append(
                    _engine_run(folder, log_url, origin.url, edge.url, env, args)
                )
    machine = {"cores": os.cpu_count() or 1, "load_before": load_before,
               "load_after": os.getloadavg()}  # fmt: skip
    return _summary(figures, machine, args)


def _service(running: ExitStack, command: list[str]) -> processes.Service:
    service = processes.start(command)
    running.callback(service.stop)
    return service


def _engine_run(
    folder: Path, log_url: str, origin: str, edge: str, env: dict[str, str], args: Any
) -> dict[str, float]:
    config = folder / "locator.toml"
    config.write_text(_config(origin, edge, log_url, folder / "results.sqlite3"))
    with ExitStack() as running:
        locator = processes.start_cadenza("locator", "--config", config, "--workers", "1", env=env)
        running.callback(locator.stop)
        alone = _load(locator.url, args)
        for group in GROUPS:
            running.enter_context(_consumer(group, log_url, folder, origin, env))
        backlog_s = uvloop.run(_caught_up(log_url))  # the first load's events, from a standstill
        load = _start_load(locator.url, args)
        lags = uvloop.run(_lag_under(load, log_url))
        consumed = _load_result(load)
        return {
            "events_per_s": alone["events_per_s"], "errors": alone["errors"] + consumed["errors"],
            "consumers_per_s": alone["events"] / backlog_s,
            "with_consumers_per_s": consumed["events_per_s"], **lags,
        }  # fmt: skip


@contextmanager
def _consumer(
    kind: str, log_url: str, folder: Path, origin: str, env: dict[str, str]
) -> Iterator[None]:
    command = [sys.executable, "-P", "-m", "cadenza", "plays", "consume", kind, "--log", log_url,
               "--db", str(folder / "results.sqlite3"), "--origin", origin]  # fmt: skip
    log = (folder / f"{kind}.log").open("wb")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, env=env, text=True)
    try:
        assert process.stdout is not None
        if "reading" not in process.stdout.readline():  # up: its start-up is not timed
            raise processes.ServiceFailed(f"the {kind} consumer did not start: see {log.name}")
        yield
    finally:
        processes.stop_process(process)
        if process.stdout is not None:
            process.stdout.close()
        log.close()


async def _lag_under(load: "subprocess.Popen[str]", log_url: str) -> dict[str, float]:
    """The largest lag of any consumer group while the load runs, and the seconds they take to
    catch up after it."""
    log = await open_log(log_url)
    try:
        worst = 0
        while load.poll() is None:
            worst = max(worst, *[await log.lag(g) for g in GROUPS])
            await asyncio.sleep(SAMPLE_S)
        at_end = max([await log.lag(g) for g in GROUPS])
    finally:
        await log.close()
    return {
        "lag_max": float(max(worst, at_end)),
        "lag_at_end": float(at_end),
        "catch_up_s": await _caught_up(log_url),
    }


async def _caught_up(log_url: str) -> float:
    """Seconds until every consumer group has acknowledged everything in the log."""
    log = await open_log(log_url)
    started = time.monotonic()
    try:
        while max([await log.lag(g) for g in GROUPS]) > 0:
            if time.monotonic() - started > DRAIN_S:
                raise processes.ServiceFailed(f"the consumers did not catch up in {DRAIN_S} s")
            await asyncio.sleep(SAMPLE_S / 5)
        return time.monotonic() - started
    finally:
        await log.close()


def _load(url: str, args: Any) -> dict[str, float]:
    return _load_result(_start_load(url, args))


def _start_load(url: str, args: Any) -> "subprocess.Popen[str]":
    command = [sys.executable, "-m", "bench.plays", url, str(args.seconds),
               str(args.connections), str(args.batch)]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _load_result(load: "subprocess.Popen[str]") -> dict[str, float]:
    out, err = load.communicate(timeout=DRAIN_S)
    if load.returncode != 0:
        raise processes.ServiceFailed(f"the load generator failed: {err.strip()[-2000:]}")
    doc: dict[str, float] = json.loads(out)
    return doc


def _config(origin: str, edge: str, log_url: str, results: Path) -> str:
    return "\n".join([
        'listen = "127.0.0.1:0"', f'origin = "{origin}"', f'plays_log = "{log_url}"',
        f'plays_results = "{results}"',
        "[default_location]", 'region = "eu-west"', "latitude = 48.86", "longitude = 2.35",
        'territory = "FR"',
        "[[edge]]", 'id = "eu-west-1"', 'region = "eu-west"', f'url = "{edge}"',
        "latitude = 48.86", "longitude = 2.35",
    ]) + "\n"  # fmt: skip


def _summary(
    figures: dict[str, list[dict[str, float]]], machine: dict[str, Any], args: Any
) -> dict[str, Any]:
    def median(name: str, key: str) -> float:
        return statistics.median(f[key] for f in figures[name])

    bare = median("bare", "events_per_s")
    rows = {"bare": {"events_per_s": bare, "errors": median("bare", "errors")}}
    for engine in ENGINES:
        rows[engine] = {key: median(engine, key) for key in ENGINE_FIGURES}
        rows[engine]["share_of_bare"] = rows[engine]["events_per_s"] / bare if bare else 0.0
    return {
        "runs": args.runs, "seconds": args.seconds, "connections": args.connections,
        "batch": args.batch, "medians": rows, "all": figures, "machine": machine,
    }  # fmt: skip


def render(report: dict[str, Any]) -> str:
    rows = report["medians"]
    lines = [
        f"cadenza bench plays: medians of {report['runs']} runs of {report['seconds']:g} s, "
        f"{report['connections']} connections, {report['batch']} events per POST",
        "",
        f"{'':32}{'events/s':>10}{'of bare':>9}{'consumers':>11}{'both':>8}{'lag max':>9}"
        f"{'lag end':>9}{'catch-up':>10}",
        f"{'bare handler (no checks, no log)':32}{rows['bare']['events_per_s']:>10,.0f}"
        f"{'100%':>9}{'-':>11}{'-':>8}{'-':>9}{'-':>9}{'-':>10}",
    ]
    for engine, name in (("sqlite", "locator, embedded SQLite log"), ("redis", "locator, Redis")):
        r = rows[engine]
        lines.append(
            f"{name:32}{r['events_per_s']:>10,.0f}{r['share_of_bare']:>9.0%}"
            f"{r['consumers_per_s']:>11,.0f}{r['with_consumers_per_s']:>8,.0f}{r['lag_max']:>9,.0f}{r['lag_at_end']:>9,.0f}{r['catch_up_s']:>9.1f}s"
        )
    m = report["machine"]
    lines += [
        "",
        "events/s: accepted by one locator process (one worker), alone; consumers: events/s "
        "that the history,",
        "streams and popularity consumers (one process each, at once) work through a backlog "
        "of the first load;",
        "both: accepted while the consumers run on the same cores; lag: events appended that a "
        "consumer group has",
        "not acknowledged under that load (largest, at its end); catch-up: seconds until every "
        "group has.",
        f"machine: {m['cores']} cores, load average {m['load_before'][0]:.2f} before, "
        f"{m['load_after'][0]:.2f} after",
    ]
    return "\n".join(lines)


# -- the load generator: python -m bench.plays URL SECONDS CONNECTIONS BATCH --------------------


def _event_text(prefix: str, n: int, play_id: str, token: str) -> str:
    return (
        f'{{"id":"{prefix}{n:016x}","play_id":"{play_id}","kind":"progress",'
        f'"at":{time.time():.3f},"track_id":"{TRACK}","version":"{VERSION}",'
        f'"territory":"FR","edge":"eu-west-1","played_ms":{30_000 + n % 1000 * 1000},'
        f'"rung_kbps":160,"stalls":0,"offline":false,"credential":"{token}","listener":""}}'
    )


async def _post_load(url: str, seconds: float, connections: int, batch: int) -> dict[str, float]:
    token = sign(
        TokenClaims(f"/tracks/{TRACK}/", int(time.time()) + 3600, KID, "FR", "bench-listener"),
        SECRET.encode(),
    )
    accepted = errors = 0
    counter = 0
    prefix = secrets.token_hex(8)
    headers = {"Content-Type": "application/json"}

    async def connection(http: aiohttp.ClientSession, deadline: float) -> None:
        nonlocal accepted, errors, counter
        while time.monotonic() < deadline:
            play_id = secrets.token_hex(16)
            texts = []
            for _ in range(batch):
                counter += 1
                texts.append(_event_text(prefix, counter, play_id, token))
            body = ('{"events":[' + ",".join(texts) + "]}").encode()
            async with http.post(f"{url}/v1/plays", data=body, headers=headers) as r:
                await r.read()
                if r.status == 202:
                    accepted += batch
                else:
                    errors += 1

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(*(connection(http, deadline) for _ in range(connections)))
        elapsed = time.monotonic() - started
    return {"events_per_s": accepted / elapsed, "events": accepted, "errors": errors}


def main() -> int:
    url, seconds, connections, batch = sys.argv[1:5]
    result = uvloop.run(_post_load(url, float(seconds), int(connections), int(batch)))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
