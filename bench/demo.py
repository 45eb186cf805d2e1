"""``cadenza bench demo`` (what ``make demo`` runs): the whole system, end to end, in minutes.

It generates a small album, starts an origin, three edges in two regions and the locator on
loopback (each its own process), ingests the album through the origin, then plays two tracks
from Paris: one over a link shaped by a real 3G trace, and one whose edge is killed (kill -9)
after its second segment, so the player fails over. It prints each player's QoE summary and
where its segments came from, and stops every process it started.
"""

import argparse
import asyncio
import itertools
import shutil
import time
from pathlib import Path
from typing import Any

from bench.catalog import write_album
from bench.deploy import Deployment, deploy
from cadenza.errors import ConfigError
from player.qoe import QoE, SegmentRecord
from player.session import play
from player.traces import ATTRIBUTION, DEFAULT_TRACES, load_trace

LAT, LON, TERRITORY = 48.85, 2.35, "FR"  # the listeners are in Paris
SPEED = 2.0  # playback sped up, so the demo takes minutes, not the album's length
SHAPED_TRACE = "3g/report.2010-12-16_1149CET.json"  # a weak start, then 0.1 to 1.7 Mbit/s


def add_parser(benches: Any) -> None:
    parser = benches.add_parser(
        "demo",
        help="the whole system end to end: ingest, fleet, two plays, failover",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--folder", type=Path, default=Path("build/demo"), help="work folder")
    parser.add_argument("--traces", type=Path, default=DEFAULT_TRACES, help="trace folder")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    trace_file = args.traces / SHAPED_TRACE
    if not trace_file.is_file():
        raise ConfigError(f"{trace_file} is missing: the demo shapes a player's link with it")
    trace = load_trace(trace_file)
    shutil.rmtree(args.folder, ignore_errors=True)
    started = time.monotonic()
    _say("1. A small album of generated masters")
    masters = write_album(args.folder / "masters", 3, 24, 36, seed=11)
    for path in masters:
        print(f"   {path}")
    _say("2. The fleet on loopback: origin, three edges in two regions, locator")
    with deploy(args.folder / "fleet") as deployment:
        for name, url in _services(deployment):
            print(f"   {name:<12} {url}")
        _say("3. Ingest through the origin (encode, upload, publish)")
        tracks = deployment.ingest(masters)
        for track in tracks:
            print(
                f"   {Path(track['source']).name:<24} {track['status']:<6} "
                f"{track.get('track_id', '-')}  {track.get('error') or ''}"
            )
        ok = [t["track_id"] for t in tracks if t["status"] == "ok"]
        if len(ok) < 2:
            raise ConfigError("the demo needs two ingested tracks; see the errors above")
        _say(f"4. Play {ok[0]} from Paris over a 3G link ({trace.name}), {SPEED:g}x speed")
        shaped = play(
            ok[0], deployment.locator.url, lat=LAT, lon=LON, territory=TERRITORY, trace=trace,
            speed=SPEED,
        )  # fmt: skip
        first = asyncio.run(shaped)
        _report(first)
        _say(f"5. Play {ok[1]} from Paris; its edge gets kill -9 after the second segment")
        second, victim = asyncio.run(_play_through_a_kill(deployment, ok[1]))
        print(f"   killed: {victim}")
        _report(second)
        _say("6. Stopping every process")
    print(f"\nDone in {time.monotonic() - started:.0f} s. {ATTRIBUTION}.")
    return 0


async def _play_through_a_kill(deployment: Deployment, track: str) -> tuple[QoE, str]:
    killed: list[str] = []

    def on_segment(segment: SegmentRecord) -> None:
        if segment.index == 1 and not killed:  # the second segment (numbered from 0)
            deployment.kill_edge(segment.pathway)
            killed.append(segment.pathway)

    qoe = await play(
        track, deployment.locator.url, lat=LAT, lon=LON, territory=TERRITORY, speed=SPEED,
        on_segment=on_segment,
    )  # fmt: skip
    return qoe, killed[0] if killed else "nothing (the play ended first)"


def _services(deployment: Deployment) -> list[tuple[str, str]]:
    return [
        ("origin", deployment.origin.url),
        *((edge_id, service.url) for edge_id, service in deployment.edges.items()),
        ("locator", deployment.locator.url),
    ]


def _report(qoe: QoE) -> None:
    for line in qoe.render().splitlines():
        print(f"   {line}")
    print("   segments:")
    for (edge, kbps), run in itertools.groupby(
        qoe.segments, key=lambda s: (s.pathway, s.bitrate_kbps)
    ):
        indexes = [s.index for s in run]
        span = f"{indexes[0]}" if len(indexes) == 1 else f"{indexes[0]}-{indexes[-1]}"
        print(f"     {span:>7}  from {edge:<10} at {kbps:.0f} kbit/s")
    for failure in qoe.failures:
        print(f"     segment {failure.index}: {failure.what} failed on {failure.pathway}")


def _say(text: str) -> None:
    print(f"\n{text}", flush=True)
