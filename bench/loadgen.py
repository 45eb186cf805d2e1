"""Virtual players in several processes, so one event loop is not what limits the load.

``cadenza bench fleet`` splits its players over ``generators(players)`` processes, each
``python -m bench.loadgen`` reading one ``Job`` (JSON) on stdin and writing its plays (JSON) on
stdout when the job's wall-clock deadline has passed. A virtual player listens in sessions: it
picks tracks by Zipf popularity, often skips a track after a segment or two, and downloads over
a link shaped by a real mobile network trace. Player ``n`` behaves the same whichever process
runs it, so a run is the same for any number of processes.
"""

import asyncio
import json
import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import uvloop

from bench.processes import STOP_SECONDS, ServiceFailed
from player.abr import RULES
from player.qoe import Failure, QoE, SegmentRecord
from player.session import PlaybackFailed, play
from player.traces import Trace, load_folder

PLAYERS_PER_GENERATOR = 250  # what one event loop plays comfortably, playlists and shaping
MAX_ERRORS = 200  # error lines kept per process; the count is kept whole
CLIENTS = {  # where virtual players are, by region: (lat, lon, territory)
    "eu-west": (48.85, 2.35, "FR"),
    "us-east": (40.71, -74.0, "US"),
}
PLAY_GRACE_S = 60.0  # a play under way at the deadline may end this much later (a track)
FAILURE_PAUSE_S = 1.0  # a player whose play failed waits before the next
Timed = tuple[float, str, QoE]  # the play's start (time.time), region, QoE


@dataclass(frozen=True)
class Job:
    """The players ``first`` to ``first + count - 1`` of a run, until ``deadline`` (time.time)."""

    locator: str
    catalog: tuple[str, ...]
    first: int
    count: int
    deadline: float
    zipf: float
    skip: float
    speed: float
    rule: str
    seed: int
    traces: str  # a folder of traces, "" for unshaped links


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def generators(players: int, available: int | None = None) -> int:
    """How many processes for ``players``: one per ``PLAYERS_PER_GENERATOR``, at most one per
    core (they share the cores with the fleet itself), at least one."""
    return max(1, min(available or cores(), math.ceil(players / PLAYERS_PER_GENERATOR)))


def split(players: int, parts: int) -> list[tuple[int, int]]:
    """(first, count) of each part: contiguous, sizes differing by at most one."""
    parts = max(1, min(parts, players))
    size, extra = divmod(players, parts)
    spans, first = [], 0
    for i in range(parts):
        count = size + (i < extra)
        spans.append((first, count))
        first += count
    return spans


@dataclass
class Generator:
    process: "subprocess.Popen[bytes]"
    out: Path  # its plays, as JSON, once it ends
    log: Path  # what its players logged (failovers)


def start(jobs: Sequence[Job], folder: Path) -> list[Generator]:
    """One ``python -m bench.loadgen`` per job, its job on stdin, its answer in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    started = []
    for i, job in enumerate(jobs):
        out, log = folder / f"plays-{i}.json", folder / f"players-{i}.log"
        with out.open("wb") as stdout, log.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "bench.loadgen"],
                stdin=subprocess.PIPE, stdout=stdout, stderr=stderr,
            )  # fmt: skip
        assert process.stdin is not None
        process.stdin.write(json.dumps(asdict(job)).encode())
        process.stdin.close()
        started.append(Generator(process, out, log))
    return started


def collect(generators: Sequence[Generator], deadline: float) -> tuple[list[Timed], list[str], int]:
    """Every process's plays (with their wall-clock start), errors and error count, waiting
    until ``deadline`` (time.time) plus a grace for plays under way; a process still running
    then is killed and named."""
    plays: list[Timed] = []
    errors: list[str] = []
    failed = 0
    for g in generators:
        wait = max(1.0, deadline - time.time()) + PLAY_GRACE_S + STOP_SECONDS
        try:
            g.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            g.process.kill()
            g.process.wait(timeout=STOP_SECONDS)
            raise ServiceFailed(f"load generator {g.process.pid} did not end in time") from None
        text = g.out.read_text()
        if g.process.returncode != 0 or not text.strip():
            tail = g.log.read_text(errors="replace").strip()[-2000:]
            raise ServiceFailed(f"load generator {g.process.pid} failed: {tail}")
        doc = json.loads(text)
        plays += [(p["started_at"], p["region"], qoe_from_json(p)) for p in doc["plays"]]
        errors += doc["errors"]
        failed += doc["failed"]
    return plays, errors, failed


def stop(generators: Sequence[Generator]) -> None:
    """Kill whatever is still running (after an error elsewhere), bounded."""
    for g in generators:
        if g.process.poll() is None:
            g.process.kill()
            g.process.wait(timeout=STOP_SECONDS)


def qoe_from_json(doc: dict[str, Any]) -> QoE:
    fields = {k: v for k, v in doc.items() if k not in ("region", "started_at")}
    fields["pathways"] = tuple(fields["pathways"])
    fields["segments"] = tuple(SegmentRecord(**s) for s in fields["segments"])
    fields["failures"] = tuple(Failure(**f) for f in fields["failures"])
    return QoE(**fields)


async def run_job(job: Job) -> dict[str, Any]:
    traces = load_folder(Path(job.traces)) if job.traces else []
    plays: list[Timed] = []
    errors: list[str] = []
    await asyncio.gather(
        *(_listener(n, job, traces, plays, errors) for n in range(job.first, job.first + job.count))
    )
    return {
        "plays": [
            {"started_at": at, "region": region, **qoe.to_json()} for at, region, qoe in plays
        ],
        "errors": errors[:MAX_ERRORS],
        "failed": len(errors),
    }


async def _listener(
    n: int, job: Job, traces: list[Trace], plays: list[Timed], errors: list[str]
) -> None:
    """One virtual player: sessions of plays until the deadline, on one shaped link."""
    rng = random.Random(job.seed * 1000 + n)
    region = list(CLIENTS)[n % len(CLIENTS)]
    lat, lon, territory = CLIENTS[region]
    trace = traces[rng.randrange(len(traces))] if traces else None
    weights = [1 / (rank + 1) ** job.zipf for rank in range(len(job.catalog))]
    # Players start spread over the first seconds, as listeners do, not in one burst.
    await asyncio.sleep(rng.uniform(0, min(5.0, max(0.0, job.deadline - time.time()) / 4)))
    while time.time() < job.deadline - 1:
        track = rng.choices(job.catalog, weights)[0]
        segments = rng.choice((1, 2)) if rng.random() < job.skip else None
        started = time.time()
        try:
            qoe = await asyncio.wait_for(
                play(
                    track, job.locator, territory=territory, lat=lat, lon=lon, rule=job.rule,
                    trace=trace, speed=job.speed, max_segments=segments,
                ),
                timeout=max(1.0, job.deadline - time.time() + PLAY_GRACE_S),
            )  # fmt: skip
        except (PlaybackFailed, TimeoutError) as e:
            errors.append(f"player {n}, track {track}: {str(e) or type(e).__name__}")
            await asyncio.sleep(FAILURE_PAUSE_S)
            continue
        plays.append((started, region, qoe))


def main() -> int:
    job = Job(**json.loads(sys.stdin.read()))
    job = Job(**{**asdict(job), "catalog": tuple(job.catalog)})
    if job.rule not in RULES or not job.catalog or job.count < 1 or not job.speed > 0:
        print(f"not a job to run: rule {job.rule!r}, {len(job.catalog)} tracks, "
              f"{job.count} players, speed {job.speed}", file=sys.stderr)  # fmt: skip
        return 2
    result = uvloop.run(run_job(job))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
