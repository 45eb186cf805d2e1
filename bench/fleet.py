"""``cadenza bench fleet``: the whole system on loopback under many virtual players.

It starts an origin, edges in two regions and the locator (each its own process, see
``bench.deploy``), ingests a generated catalog, then runs one step per player count
(``--players 10,100,1000``) on that one fleet. A step runs its virtual players in several
load-generator processes (``bench.loadgen``) for a warm-up and then the measured time; counters
(edges, origin, the fleet's CPU time) are read at the measure's start and end and sampled every
second, and plays count when they started within it. Each step's report (Markdown, JSON, PNG
plots) gives startup p50/p95, stall ratio, average bitrate, edge hit ratio, origin offload,
origin requests per play, the fleet's CPU seconds per hour played, segment latency percentiles,
what pre-positioning warmed and wasted, and how evenly the edges were loaded; the top report
puts the steps side by side with plots of each figure against the load.

``--edges 3,9 --parents 1`` compares cache tiers: for each number of edges, the same steps run
without and then with a parent tier in front of the edges, each from cold caches on the same
origin and catalog, and the top report sets the origin's requests and bytes per hour played
(and the stalls) of each side by side.
"""

import argparse
import asyncio
import json
import random
import shutil
import statistics
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp

from bench import loadgen
from bench.catalog import MasterSpec, write_master
from bench.cpu import cpu_seconds, machine
from bench.deploy import (
    MAX_EDGES,
    Deployment,
    EdgeOptions,
    edge_specs,
    run_edges,
    run_origin,
)
from bench.fleet_report import write_report, write_scaling, write_tiers
from cadenza.errors import ConfigError
from player.abr import DEFAULT_RULE, RULES
from player.qoe import QoE
from player.traces import ATTRIBUTION, DEFAULT_TRACES, load_folder

SAMPLE_SECONDS = 1.0
TRACK_SECONDS = (14.0, 26.0)  # short tracks keep the ingest of a large catalog bounded
RENDERED = 8  # masters rendered; the others are copies of them with their own tags
MAX_PLAYERS = 1000
SETTLED_SHARE = 0.05  # a warm-up ends once the origin sends at most this share of edge egress
SETTLED_S = 5  # ... over this many seconds (samples one second apart)
MAX_STEPS = 6
MAX_PARENTS = 4
CLIENTS = loadgen.CLIENTS


@dataclass(frozen=True)
class FleetPlan:
    players: int
    seconds: float  # measured, after the warm-up
    tracks: int
    zipf: float
    skip: float  # share of plays skipped after one or two segments
    speed: float
    rule: str
    seed: int
    warmup: float = 0.0  # seconds of load at least before the counters are read ...
    warmup_max: float = 0.0  # ... and at most, waiting for the fleet to settle (SETTLED_SHARE)
    generators: int = 0  # load-generator processes; 0: from the players and the cores


def add_parser(benches: Any) -> None:
    parser = benches.add_parser(
        "fleet",
        help="origin, edges and locator under many virtual players: QoE and CDN figures",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--players",
        type=player_counts,
        default=(12,),
        help=f"virtual players; a list (10,100,1000) runs one step per count (12; at most "
        f"{MAX_PLAYERS})",
    )
    parser.add_argument(
        "--edges",
        type=edge_counts,
        default=(3,),
        help=f"edges in front of the origin, in two regions; a list (3,9) runs the steps on "
        f"each fleet (3; at most {MAX_EDGES})",
    )
    parser.add_argument(
        "--parents",
        type=int,
        default=0,
        help="compare cache tiers: run each fleet without and with this many parent edges in "
        f"front of its edges, from cold caches (0: no comparison; at most {MAX_PARENTS})",
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="measured time a step (60)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="load before each step's measure, at least (20 s; 0 with --parents, whose "
        "comparison counts the caches' filling)",
    )
    parser.add_argument(
        "--warmup-max",
        type=float,
        default=None,
        help="... and at most, until the origin sends under 5%% of the edges' bytes (90 s; "
        "with --parents the warm-up itself)",
    )
    parser.add_argument("--tracks", type=int, default=10, help="catalog size (10)")
    parser.add_argument("--zipf", type=float, default=0.9, help="popularity exponent (0.9)")
    parser.add_argument("--skip", type=float, default=0.3, help="share of early skips (0.3)")
    parser.add_argument("--speed", type=float, default=1.0, help="playback speed-up (1: real time)")
    parser.add_argument(
        "--generators", type=int, default=0, help="load-generator processes (0: one per 250 "
        "players, at most one per core)",
    )  # fmt: skip
    parser.add_argument("--memory-mb", type=int, default=64, help="each edge's memory tier")
    parser.add_argument(
        "--policy",
        default="music",
        choices=("music", "s3fifo", "lru", "wtinylfu"),
        help="the edges' eviction policy (music)",
    )
    parser.add_argument("--edge-workers", type=int, default=1, help="processes per edge (1)")
    parser.add_argument(
        "--preposition-tracks",
        type=int,
        default=20,
        help="hot tracks each edge may warm each round (20; 0: none)",
    )
    parser.add_argument(
        "--preposition-interval", type=float, default=15.0, help="seconds between rounds (15)"
    )
    parser.add_argument("--abr", default=DEFAULT_RULE, choices=sorted(RULES), help="ABR rule")
    parser.add_argument("--traces", type=Path, default=DEFAULT_TRACES, help="trace folder")
    parser.add_argument("--out", type=Path, default=Path("build/bench-fleet"), help="reports")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(run=run)


def player_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give whole numbers, e.g. 10,100,1000"
        ) from None
    if not 1 <= len(counts) <= MAX_STEPS or not all(1 <= c <= MAX_PLAYERS for c in counts):
        raise argparse.ArgumentTypeError(
            f"{text!r}: 1 to {MAX_STEPS} counts, each from 1 to {MAX_PLAYERS}"
        )
    return counts


def edge_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers, e.g. 3,9") from None
    if not 1 <= len(counts) <= MAX_STEPS or not all(1 <= c <= MAX_EDGES for c in counts):
        raise argparse.ArgumentTypeError(
            f"{text!r}: 1 to {MAX_STEPS} counts, each from 1 to {MAX_EDGES}"
        )
    return counts


@dataclass(frozen=True)
class Tier:
    """One fleet of a run: its edges, and the parent edges in front of them (0: none)."""

    edges: int
    parents: int

    @property
    def name(self) -> str:
        return f"edges-{self.edges}" + (f"-parents-{self.parents}" if self.parents else "")


def tiers(edges: tuple[int, ...], parents: int) -> list[Tier]:
    """The fleets a run measures, in order: each edge count alone, then with its parents."""
    return [Tier(n, p) for n in edges for p in ((0, parents) if parents else (0,))]


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.parents <= MAX_PARENTS:
        raise ConfigError(f"--parents must be from 0 to {MAX_PARENTS}")
    if args.warmup is None:
        args.warmup = 0.0 if args.parents else 20.0
    if args.warmup_max is None:
        args.warmup_max = args.warmup if args.parents else 90.0
    if args.preposition_tracks < 0 or args.generators < 0:
        raise ConfigError("--preposition-tracks and --generators must be 0 or more")
    if min(args.tracks, args.memory_mb, args.edge_workers) < 1:
        raise ConfigError("--tracks, --memory-mb and --edge-workers: 1 or more")
    if args.seconds <= 0 or args.speed <= 0 or args.warmup < 0 or not 0 <= args.skip <= 1:
        raise ConfigError(
            "--seconds and --speed must be positive, --warmup 0 or more, --skip between 0 and 1"
        )
    if args.preposition_interval <= 0:
        raise ConfigError("--preposition-interval must be positive")
    if not (args.traces / "3g").is_dir():
        raise ConfigError(f"--traces {args.traces}: no 3g folder of traces there")
    players = args.players if isinstance(args.players, tuple) else (args.players,)
    plans = [
        FleetPlan(
            n, args.seconds, args.tracks, args.zipf, args.skip, args.speed, args.abr, args.seed,
            args.warmup, max(args.warmup, args.warmup_max), args.generators,
        )
        for n in players
    ]  # fmt: skip
    options = EdgeOptions(
        workers=args.edge_workers,
        memory_bytes=args.memory_mb << 20,
        policy=args.policy,
        extra={
            "preposition_tracks": args.preposition_tracks,
            "preposition_interval_seconds": args.preposition_interval
            if args.preposition_tracks
            else 0.0,
        },
    )
    args.out.mkdir(parents=True, exist_ok=True)
    edges = args.edges if isinstance(args.edges, tuple) else (args.edges,)
    fleets = tiers(edges, args.parents)
    summaries = measure(args.out, plans, options, args.traces / "3g", fleets)
    if len(fleets) == 1:
        paths = write_scaling(args.out, summaries[0])
    else:
        paths = [p for s in summaries for p in write_scaling(args.out / s["tier"]["name"], s)]
        paths = [*write_tiers(args.out, summaries), *paths]
    if args.json:
        print(json.dumps(_json_summary(summaries), indent=2))
    else:
        print((args.out / "report.md").read_text())
        print("report: " + ", ".join(str(p) for p in paths))
    return 0


def _json_summary(summaries: list[dict[str, Any]]) -> Any:
    """``--json``: each step's figures; per fleet when a run measured several."""
    if len(summaries) == 1:
        return [step["figures"] for step in summaries[0]["steps"]]
    return [
        {"tier": s["tier"], "steps": [step["figures"] for step in s["steps"]]} for s in summaries
    ]


def masters(folder: Path, tracks: int, seed: int) -> list[Path]:
    """The generated catalog's masters. Rendering a master costs seconds of CPU, so a few are
    rendered (in parallel) and every track is a copy of one with its own tags: its own track
    id and version, and its own objects at the origin and the edges, whatever the sound. Files
    already there (seed, number and length in their names) are kept, so reruns skip this."""
    rng = random.Random(seed)
    bases = []
    for n in range(1, min(tracks, RENDERED) + 1):
        seconds = round(rng.uniform(*TRACK_SECONDS), 1)
        spec = MasterSpec(seconds, seed=seed * 1000 + n, tags={"artist": "Cadenza Bench"})
        bases.append((folder / "rendered" / f"{n:02d}-s{seed}-{seconds:g}s.flac", spec))
    with ThreadPoolExecutor(max_workers=loadgen.cores()) as pool:
        list(pool.map(lambda item: write_master(*item), [b for b in bases if not b[0].exists()]))
    paths = []
    for n in range(1, tracks + 1):
        base = bases[(n - 1) % len(bases)][0]
        path = folder / f"{n:03d}-{base.stem}.flac"
        if not path.exists():
            _tagged_copy(base, path, {"title": f"Fleet {n}", "artist": "Cadenza Bench"})
        paths.append(path)
    return paths


def _tagged_copy(source: Path, path: Path, tags: dict[str, str]) -> None:
    metadata = [arg for k, v in tags.items() for arg in ("-metadata", f"{k}={v}")]
    command = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-c", "copy"]
    subprocess.run([*command, *metadata, str(path)], check=True, timeout=60)


def measure(
    out: Path,
    plans: list[FleetPlan],
    options: EdgeOptions,
    traces: Path,
    fleets: list[Tier] | None = None,
) -> list[dict[str, Any]]:
    """One origin, one ingest, then for each fleet (edges and parents from cold caches) one
    step per plan: each fleet's summary. With one fleet its reports go in ``out`` itself."""
    fleets = fleets or [Tier(3, 0)]
    paths = masters(out / "masters", plans[0].tracks, plans[0].seed)
    about = machine()
    folder = out / "deployment"
    shutil.rmtree(folder, ignore_errors=True)  # a rerun starts from empty caches too
    summaries = []
    with run_origin(folder) as origin:
        ingest_started = time.monotonic()
        tracks = origin.ingest(paths, jobs=loadgen.cores())
        ingest_s = time.monotonic() - ingest_started
        catalog = [t["track_id"] for t in tracks if t["status"] == "ok"]
        if not catalog:
            raise ConfigError(f"no track of the generated catalog was ingested: {tracks}")
        for tier in fleets:
            reports = out if len(fleets) == 1 else out / tier.name
            fleet_options = replace(options, parents=tier.parents)
            steps = []
            with run_edges(
                folder / tier.name, origin, edge_specs(tier.edges), fleet_options
            ) as deployment:
                for plan in plans:
                    step_out = reports / f"players-{plan.players}"
                    step = asyncio.run(_step(deployment, catalog, plan, traces, step_out))
                    write_report(step_out, step)
                    steps.append(step)
            summaries.append(
                {
                    "machine": about,
                    "tier": {**tier.__dict__, "name": tier.name},
                    "catalog": catalog,
                    "ingest_s": round(ingest_s, 1),
                    "steps": steps,
                    "traces": ATTRIBUTION,
                    "links": f"{len(loadgen.usable(load_folder(traces)))} of "
                    f"{len(load_folder(traces))}",
                }
            )
    return summaries


async def _step(
    deployment: Deployment, catalog: list[str], plan: FleetPlan, traces: Path, folder: Path
) -> dict[str, Any]:
    """Players for the warm-up and the measured time; counters read at the measure's start
    and end, plays counted when they started within it."""
    count = plan.generators or loadgen.generators(plan.players)
    plan = replace(plan, generators=count)
    duration = max(plan.warmup, plan.warmup_max) + plan.seconds
    latest = time.time() + loadgen.READY_S + duration
    jobs = [
        loadgen.Job(
            deployment.locator.url, tuple(catalog), first, n, latest, plan.zipf, plan.skip,
            plan.speed, plan.rule, plan.seed, str(traces), ramp_s=max(5.0, plan.warmup * 0.75),
            duration=duration,
        )
        for first, n in loadgen.split(plan.players, count)
    ]  # fmt: skip
    services = [
        deployment.origin,
        deployment.locator,
        *deployment.edges.values(),
        *deployment.parents.values(),
    ]
    pids = [service.pid for service in services]
    generators = loadgen.start(jobs, folder)
    samples: list[dict[str, Any]] = []
    try:
        # The players' time runs from when they can play: what a start took is not theirs.
        await asyncio.to_thread(loadgen.wait_ready, generators)
        started = time.monotonic()
        await asyncio.sleep(plan.warmup)
        share = await _until_settled(deployment, plan.warmup_max - plan.warmup)
        warmed_s = time.monotonic() - started
        window = time.time()
        deadline = window + plan.seconds
        loadgen.end_early(generators, deadline)
        before, cpu_before = await _counters(deployment), cpu_seconds(pids)
        sampler = asyncio.create_task(_sample(deployment, samples))
        try:
            got = await asyncio.to_thread(loadgen.collect, generators, deadline)
        finally:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
        after, cpu_after = await _counters(deployment), cpu_seconds(pids)
        elapsed = time.time() - window
    finally:
        loadgen.stop(generators)
    measured = [(region, qoe) for at, region, qoe in got.plays if at >= window]
    f = figures(measured, samples, got.errors, plan, elapsed)
    f["failed_plays"] = sum(at >= window for at in got.failures)
    f.update(step_figures(measured, before, after, cpu_after - cpu_before, count))
    f.update(
        warmup_s=round(warmed_s, 1),
        warmup_origin_share=None if share is None else round(share, 4),
        generators_cpu_s=round(got.cpu_s, 1),
    )
    errors = got.errors
    return {
        "plan": plan.__dict__,
        "catalog": catalog,
        "elapsed_s": elapsed,
        "plays": [{"region": region, **qoe.to_json()} for region, qoe in measured],
        "errors": errors,
        "samples": samples,
        "figures": f,
        "traces": ATTRIBUTION,
    }


def settled_share(window: list[tuple[float, float]]) -> float | None:
    """The origin's bytes as a share of the edges' over ``window`` (origin bytes out, edge bytes
    served, cumulative, oldest first); None while the edges have served nothing in it."""
    if len(window) < 2:
        return None
    served = window[-1][1] - window[0][1]
    return (window[-1][0] - window[0][0]) / served if served > 0 else None


async def _until_settled(deployment: Deployment, most_s: float) -> float | None:
    """Wait (at most ``most_s``) until the origin has sent at most ``SETTLED_SHARE`` of what
    the edges served over the last ``SETTLED_S`` seconds: caches warm for this load. Returns
    the share last seen."""
    deadline = time.monotonic() + most_s
    window: list[tuple[float, float]] = []
    share = None
    while time.monotonic() < deadline:
        totals = await _counters(deployment)
        window = [*window, (totals["origin_bytes"], totals["edge_bytes"])][-SETTLED_S - 1 :]
        share = settled_share(window) if len(window) > SETTLED_S else None
        if share is not None and share <= SETTLED_SHARE:
            break
        await asyncio.sleep(SAMPLE_SECONDS)
    return share


async def _counters(deployment: Deployment) -> dict[str, float]:
    """The origin's requests and bytes, and the edges' pre-positioning counters, summed."""
    timeout = aiohttp.ClientTimeout(total=5)
    totals: dict[str, float] = {}
    async with aiohttp.ClientSession(timeout=timeout) as client:
        async with client.get(f"{deployment.origin.url}/metrics") as response:
            text = await response.text()
        totals["origin_requests"] = _sum(text, "cadenza_origin_requests_total")
        totals["origin_object_requests"] = _sum(
            text, "cadenza_origin_requests_total", 'route="tracks"'
        )
        totals["origin_revalidations"] = _sum(
            text, "cadenza_origin_requests_total", 'route="tracks",status="304"'
        )
        totals["origin_bytes"] = _sum(text, "cadenza_origin_bytes_out_total")
        for edge in deployment.edges.values():
            async with client.get(f"{edge.url}/metrics") as response:
                text = await response.text()
            totals["edge_bytes"] = totals.get("edge_bytes", 0.0) + _sum(
                text, "cadenza_edge_bytes_served_total"
            )
            for what in ("objects", "bytes"):
                for outcome in ("warmed", "used", "wasted"):
                    name = f"cadenza_edge_preposition_{what}_total"
                    key = f"preposition_{what}_{outcome}"
                    totals[key] = totals.get(key, 0.0) + _sum(text, name, f'outcome="{outcome}"')
    return totals


def step_figures(
    plays: list[tuple[str, QoE]],
    before: dict[str, float],
    after: dict[str, float],
    cpu_s: float,
    generators: int,
) -> dict[str, Any]:
    """What a step adds to ``figures``: origin requests per play, the origin's object requests
    and bytes per played hour, the fleet's CPU per played hour, and what pre-positioning
    warmed, and used or wasted."""
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    played_h = sum(q.duration_s for _, q in plays) / 3600
    return {
        "generators": generators,
        "origin_requests_per_play": round(delta["origin_requests"] / len(plays), 2)
        if plays
        else 0.0,
        "origin_object_requests": int(delta.get("origin_object_requests", 0.0)),
        "origin_requests_per_played_hour": round(
            delta.get("origin_object_requests", 0.0) / played_h, 1
        ) if played_h else 0.0,
        "origin_revalidations": int(delta.get("origin_revalidations", 0.0)),
        "origin_mb_per_played_hour": round(delta.get("origin_bytes", 0.0) / 1e6 / played_h, 2)
        if played_h
        else 0.0,
        "fleet_cpu_s": round(cpu_s, 1),
        "cpu_s_per_played_hour": round(cpu_s / played_h, 1) if played_h else 0.0,
        "preposition": {k.removeprefix("preposition_"): int(v) for k, v in delta.items()
                        if k.startswith("preposition_")},
    }  # fmt: skip


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


def _sum(text: str, name: str, label: str = "") -> float:
    """The sum of every sample of counter ``name`` (with ``label`` among its labels)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith((name + " ", name + "{")) and label in line.split(" ")[0]:
            total += float(line.rsplit(" ", 1)[1])
    return total


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
