"""``cadenza bench fleet``: the whole system on loopback under many virtual players.

It starts an origin, edges in two regions and the locator (each its own process, see
``bench.deploy``), ingests a generated catalog, then runs virtual players for a bounded time.
Each player listens in sessions: it picks tracks by Zipf popularity, often skips a track after a
segment or two, and downloads over a link shaped by a real mobile network trace. Meanwhile the
edges' and the origin's counters are sampled every second. The report (Markdown, JSON and PNG
plots) gives startup p50/p95, stall ratio, average bitrate, edge hit ratio, origin offload,
segment latency percentiles and how evenly the edges were loaded.
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.catalog import MasterSpec, write_master
from bench.deploy import DEFAULT_EDGES, Deployment, EdgeOptions, deploy
from bench.fleet_report import write_report
from cadenza.errors import ConfigError
from player.abr import DEFAULT_RULE, RULES
from player.qoe import QoE
from player.session import PlaybackFailed, play
from player.traces import ATTRIBUTION, DEFAULT_TRACES, Trace, load_folder

SAMPLE_SECONDS = 1.0
CLIENTS = {  # where virtual players are, by region: (lat, lon, territory)
    "eu-west": (48.85, 2.35, "FR"),
    "us-east": (40.71, -74.0, "US"),
}


@dataclass(frozen=True)
class FleetPlan:
    players: int
    seconds: float
    tracks: int
    zipf: float
    skip: float  # share of plays skipped after one or two segments
    speed: float
    rule: str
    seed: int


def add_parser(benches: Any) -> None:
    parser = benches.add_parser(
        "fleet",
        help="origin, edges and locator under many virtual players: QoE and CDN figures",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--players", type=int, default=12, help="virtual players (12)")
    parser.add_argument("--seconds", type=float, default=60.0, help="wall time of the load (60)")
    parser.add_argument("--tracks", type=int, default=10, help="catalog size (10)")
    parser.add_argument("--zipf", type=float, default=0.9, help="popularity exponent (0.9)")
    parser.add_argument("--skip", type=float, default=0.3, help="share of early skips (0.3)")
    parser.add_argument("--speed", type=float, default=4.0, help="playback speed-up (4)")
    parser.add_argument("--memory-mb", type=int, default=64, help="each edge's memory tier")
    parser.add_argument("--policy", default="s3fifo", choices=("s3fifo", "lru", "wtinylfu"))
    parser.add_argument("--edge-workers", type=int, default=1, help="processes per edge (1)")
    parser.add_argument(
        "--preposition-tracks",
        type=int,
        default=20,
        help="hot tracks each edge warms at every rung each minute (20; 0: none)",
    )
    parser.add_argument("--abr", default=DEFAULT_RULE, choices=sorted(RULES), help="ABR rule")
    parser.add_argument("--traces", type=Path, default=DEFAULT_TRACES, help="trace folder")
    parser.add_argument("--out", type=Path, default=Path("build/bench-fleet"), help="reports")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.preposition_tracks < 0:
        raise ConfigError("--preposition-tracks must be 0 or more")
    if min(args.players, args.tracks, args.memory_mb, args.edge_workers) < 1:
        raise ConfigError("--players, --tracks, --memory-mb and --edge-workers: 1 or more")
    if args.seconds <= 0 or args.speed <= 0 or not 0 <= args.skip <= 1:
        raise ConfigError("--seconds and --speed must be positive, --skip between 0 and 1")
    traces = load_folder(args.traces / "3g")
    plan = FleetPlan(
        args.players, args.seconds, args.tracks, args.zipf, args.skip, args.speed, args.abr,
        args.seed,
    )  # fmt: skip
    options = EdgeOptions(
        workers=args.edge_workers,
        memory_bytes=args.memory_mb << 20,
        policy=args.policy,
        extra={"preposition_tracks": args.preposition_tracks},
    )
    args.out.mkdir(parents=True, exist_ok=True)
    summary = measure(args.out, plan, options, traces)
    paths = write_report(args.out, summary)
    if args.json:
        print(json.dumps(summary["figures"], indent=2))
    else:
        print((args.out / "report.md").read_text())
        print("report: " + ", ".join(str(p) for p in paths))
    return 0


def measure(
    out: Path, plan: FleetPlan, options: EdgeOptions, traces: list[Trace]
) -> dict[str, Any]:
    rng = random.Random(plan.seed)
    masters = [
        write_master(
            out / "masters" / f"{n:02d}.flac",
            MasterSpec(rng.uniform(20, 40), seed=plan.seed * 100 + n,
                       tags={"title": f"Fleet {n}", "artist": "Cadenza Bench"}),
        )
        for n in range(1, plan.tracks + 1)
    ]  # fmt: skip
    with deploy(out / "deployment", DEFAULT_EDGES, options) as deployment:
        tracks = deployment.ingest(masters, jobs=os.cpu_count())
        catalog = [t["track_id"] for t in tracks if t["status"] == "ok"]
        if not catalog:
            raise ConfigError(f"no track of the generated catalog was ingested: {tracks}")
        return asyncio.run(_load(deployment, catalog, plan, traces))


async def _load(
    deployment: Deployment, catalog: list[str], plan: FleetPlan, traces: list[Trace]
) -> dict[str, Any]:
    samples: list[dict[str, Any]] = []
    deadline = time.monotonic() + plan.seconds
    sampler = asyncio.create_task(_sample(deployment, samples))
    plays: list[tuple[str, QoE]] = []
    errors: list[str] = []
    started = time.monotonic()
    try:
        await asyncio.gather(
            *(
                _listener(n, deployment, catalog, plan, traces, deadline, plays, errors)
                for n in range(plan.players)
            )
        )
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
    elapsed = time.monotonic() - started
    return {
        "plan": plan.__dict__,
        "catalog": catalog,
        "elapsed_s": elapsed,
        "plays": [{"region": region, **qoe.to_json()} for region, qoe in plays],
        "errors": errors,
        "samples": samples,
        "figures": figures(plays, samples, errors, plan, elapsed),
        "traces": ATTRIBUTION,
    }


async def _listener(
    n: int,
    deployment: Deployment,
    catalog: list[str],
    plan: FleetPlan,
    traces: list[Trace],
    deadline: float,
    plays: list[tuple[str, QoE]],
    errors: list[str],
) -> None:
    """One virtual player: sessions of plays until the deadline, on one shaped link."""
    rng = random.Random(plan.seed * 1000 + n)
    region = list(CLIENTS)[n % len(CLIENTS)]
    lat, lon, territory = CLIENTS[region]
    trace = traces[rng.randrange(len(traces))] if traces else None
    weights = [1 / (rank + 1) ** plan.zipf for rank in range(len(catalog))]
    while time.monotonic() < deadline - 1:
        track = rng.choices(catalog, weights)[0]
        segments = rng.choice((1, 2)) if rng.random() < plan.skip else None
        try:
            qoe = await asyncio.wait_for(
                play(
                    track, deployment.locator.url, territory=territory, lat=lat, lon=lon,
                    rule=plan.rule, trace=trace, speed=plan.speed, max_segments=segments,
                ),
                timeout=max(1.0, deadline - time.monotonic() + 30),
            )  # fmt: skip
        except (PlaybackFailed, TimeoutError) as e:
            errors.append(f"player {n}, track {track}: {e or type(e).__name__}")
            continue
        plays.append((region, qoe))


async def _sample(deployment: Deployment, samples: list[dict[str, Any]]) -> None:
    """Every second: each edge's hits, misses and bytes served, and the origin's bytes out."""
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(timeout=timeout) as client:
        while True:
            sample: dict[str, Any] = {"t": time.monotonic() - started, "edges": {}}
            for edge_id, edge in deployment.edges.items():
                try:
                    async with client.get(f"{edge.url}/status") as response:
                        status = await response.json()
                    sample["edges"][edge_id] = {
                        "hits": status["hits"],
                        "misses": status["misses"],
                        "egress_bps": status["egress_bps"],
                    }
                except (aiohttp.ClientError, TimeoutError, KeyError, ValueError):
                    continue
            try:
                async with client.get(f"{deployment.origin.url}/metrics") as response:
                    sample["origin_bytes"] = _counter(
                        await response.text(), "cadenza_origin_bytes_out_total"
                    )
            except (aiohttp.ClientError, TimeoutError):
                pass
            samples.append(sample)
            await asyncio.sleep(SAMPLE_SECONDS)


def _counter(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith((name + " ", name + "{")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def figures(
    plays: list[tuple[str, QoE]],
    samples: list[dict[str, Any]],
    errors: list[str],
    plan: FleetPlan,
    elapsed: float,
) -> dict[str, Any]:
    """The report's numbers, from the plays and the counter samples."""
    qoes = [q for _, q in plays]
    played = sum(q.duration_s for q in qoes)
    stalled = sum(q.stall_s for q in qoes)
    player_bytes = sum(q.bytes for q in qoes)
    per_edge: Counter[str] = Counter()
    for q in qoes:
        per_edge.update(s.pathway for s in q.segments)
    first, last = (samples[0], samples[-1]) if samples else ({}, {})
    hits = sum(e["hits"] for e in last.get("edges", {}).values()) - sum(
        e["hits"] for e in first.get("edges", {}).values()
    )
    misses = sum(e["misses"] for e in last.get("edges", {}).values()) - sum(
        e["misses"] for e in first.get("edges", {}).values()
    )
    origin_bytes = last.get("origin_bytes", 0.0) - first.get("origin_bytes", 0.0)
    latencies = [s.seconds * 1e3 for q in qoes for s in q.segments]
    loads = list(per_edge.values())
    mean_load = statistics.mean(loads) if loads else 0.0
    return {
        "players": plan.players,
        "plays": len(qoes),
        "failed_plays": len(errors),
        "elapsed_s": round(elapsed, 1),
        "played_media_s": round(played, 1),
        "startup_p50_s": round(_percentile([q.startup_s for q in qoes], 0.5), 3),
        "startup_p95_s": round(_percentile([q.startup_s for q in qoes], 0.95), 3),
        "stall_ratio": round(stalled / played, 4) if played else 0.0,
        "average_kbps": round(
            sum(q.average_kbps * q.duration_s for q in qoes) / played if played else 0.0, 1
        ),
        "edge_hit_ratio": round(hits / (hits + misses), 4) if hits + misses else 0.0,
        "origin_offload": round(1 - origin_bytes / player_bytes, 4) if player_bytes else 0.0,
        "segment_ms_p50": round(_percentile(latencies, 0.5), 1),
        "segment_ms_p95": round(_percentile(latencies, 0.95), 1),
        "segment_ms_p99": round(_percentile(latencies, 0.99), 1),
        "segments_per_edge": dict(per_edge),
        "edge_load_max_over_mean": round(max(loads) / mean_load, 3) if loads else 0.0,
    }
