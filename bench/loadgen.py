"""Virtual players in several processes, so one event loop is not what limits the load.

``cadenza bench fleet`` splits its players over ``generators(players)`` processes, each
``python -m bench.loadgen`` reading one ``Job`` (JSON) on stdin and writing its plays (JSON) on
stdout when the job's wall-clock deadline has passed (``end_early`` moves it closer while the
job runs: the benchmark ends a warm-up once the fleet has settled). A virtual player listens
in sessions: it picks tracks by Zipf popularity, often skips a track after a segment or two,
and downloads over a link shaped by a real mobile network trace. Player ``n`` behaves the
same whichever process runs it, so a run is the same for any number of processes.

A listener's link goes on from play to play: each play starts where the trace was when it
began (``player.traces.shifted``), rather than every play meeting the trace's first seconds
again. As Pensieve's authors did with the same HSDPA logs (Mao et al., SIGCOMM 2017, section
5.1), traces whose average throughput is under 0.2 Mbit/s are left out (``usable``): no
delivery can keep a stream going on them, and their stalls would measure the trace, not the
fleet.
"""

import asyncio
import contextlib
import json
import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import uvloop

from bench.processes import STOP_SECONDS, ServiceFailed
from player.abr import RULES, make_rule
from player.cache import MB, MemoryObjects
from player.qoe import Failure, QoE, SegmentRecord
from player.queue import Ahead
from player.session import PlaybackFailed, play
from player.traces import Trace, load_folder, shifted

PLAYERS_PER_GENERATOR = 250  # what one event loop plays comfortably, playlists and shaping
MIN_TRACE_KBPS = 200.0  # average throughput under which a trace is left out
FOLLOW_S = 0.5  # how often a generator looks for a closer deadline
MAX_ERRORS = 200  # error lines kept per process; the count is kept whole
CLIENTS = {  # where virtual players are, by region: (lat, lon, territory)
    "eu-west": (48.85, 2.35, "FR"),
    "us-east": (40.71, -74.0, "US"),
}
PLAY_GRACE_S = 60.0  # a play under way at the deadline may end this much later (a track)
AHEAD_BYTES = MB // 2  # each player's memory for the next track's start, fetched ahead
FAILURE_PAUSE_S = 1.0  # a player whose play failed waits before the next
READY_S = 60.0  # how long a new generator may take to load what it plays with
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
    ramp_s: float = 5.0  # players join at random times over these first seconds
    deadline_file: str = ""  # once it exists: a closer deadline (see ``end_early``)
    ready_file: str = ""  # made once the process is ready to play (see ``wait_ready``)
    duration: float = 0.0  # if set: the deadline comes this long after that, at the latest


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
    ready: Path  # appears once it is about to play
    deadline: Path  # where ``end_early`` tells it when to stop starting plays


def start(jobs: Sequence[Job], folder: Path) -> list[Generator]:
    """One ``python -m bench.loadgen`` per job, its job on stdin, its answer in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    started = []
    for i, job in enumerate(jobs):
        out, log = folder / f"plays-{i}.json", folder / f"players-{i}.log"
        ready, deadline = out.with_suffix(".ready"), out.with_suffix(".deadline")
        job = replace(job, deadline_file=str(deadline), ready_file=str(ready))
        for left in (ready, deadline):  # by an earlier run in this folder
            left.unlink(missing_ok=True)
        with out.open("wb") as stdout, log.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "bench.loadgen"],
                stdin=subprocess.PIPE, stdout=stdout, stderr=stderr,
            )  # fmt: skip
        assert process.stdin is not None
        process.stdin.write(json.dumps(asdict(job)).encode())
        process.stdin.close()
        started.append(Generator(process, out, log, ready, deadline))
    return started


def wait_ready(generators: Sequence[Generator], timeout: float = READY_S) -> None:
    """Until every generator has loaded its modules and traces and is about to play (or has
    ended: ``collect`` tells why), at most ``timeout`` seconds. On a loaded machine a new
    process takes seconds to get there, and a measure started before would miss its plays."""
    deadline = time.monotonic() + timeout
    waiting = list(generators)
    while waiting and time.monotonic() < deadline:
        waiting = [
            g for g in waiting
            if g.process.poll() is None and not g.ready.exists()
        ]  # fmt: skip
        if waiting:
            time.sleep(0.05)


def end_early(generators: Sequence[Generator], deadline: float) -> None:
    """Tell running generators to stop starting plays at ``deadline`` (time.time)."""
    for g in generators:
        staged = g.deadline.with_suffix(".tmp")
        staged.write_text(repr(deadline))
        staged.replace(g.deadline)  # atomic: a generator never reads half a number


@dataclass
class Collected:
    plays: list[Timed] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the first ones of each process
    failures: list[float] = field(default_factory=list)  # when each failed play began
    cpu_s: float = 0.0  # the generators' own CPU time


def collect(generators: Sequence[Generator], deadline: float) -> Collected:
    """Every process's plays (with their wall-clock start), errors and CPU time, waiting until
    ``deadline`` (time.time) plus a grace for plays under way; a process still running then is
    killed and named."""
    got = Collected()
    for g in generators:
        wait = max(1.0, deadline - time.time()) + PLAY_GRACE_S + STOP_SECONDS
        try:
            g.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            g.process.kill()
            g.process.wait(timeout=STOP_SECONDS)
            raise ServiceFailed(f"load generator {g.process.pid} did not end in time") from None
        text = g.out.read_text()
        for marker in (g.ready, g.deadline):  # served their turn
            marker.unlink(missing_ok=True)
        if g.process.returncode != 0 or not text.strip():
            tail = g.log.read_text(errors="replace").strip()[-2000:]
            raise ServiceFailed(f"load generator {g.process.pid} failed: {tail}")
        doc = json.loads(text)
        got.plays += [(p["started_at"], p["region"], qoe_from_json(p)) for p in doc["plays"]]
        got.errors += doc["errors"]
        got.failures += doc["failures"]
        got.cpu_s += doc["cpu_s"]
    return got


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


def mean_kbps(trace: Trace) -> float:
    return sum(p.kbps * p.duration_s for p in trace.periods) / trace.seconds


def usable(traces: Sequence[Trace]) -> list[Trace]:
    """The traces that carry at least ``MIN_TRACE_KBPS`` on average."""
    return [t for t in traces if mean_kbps(t) >= MIN_TRACE_KBPS]


class Deadline:
    """The job's deadline, which the benchmark may bring closer while the job runs."""

    def __init__(self, at: float, file: str) -> None:
        self.at = at
        self.file = Path(file) if file else None

    async def follow(self) -> None:
        while self.file is not None:
            with contextlib.suppress(OSError, ValueError):
                self.at = min(self.at, float(self.file.read_text()))
                return
            await asyncio.sleep(FOLLOW_S)


async def run_job(job: Job) -> dict[str, Any]:
    traces = usable(load_folder(Path(job.traces))) if job.traces else []
    plays: list[Timed] = []
    errors: list[tuple[float, str]] = []
    if job.ready_file:
        Path(job.ready_file).touch()
    at = min(job.deadline, time.time() + job.duration) if job.duration > 0 else job.deadline
    deadline = Deadline(at, job.deadline_file)
    follower = asyncio.create_task(deadline.follow())
    try:
        await asyncio.gather(
            *(
                _listener(n, job, deadline, traces, plays, errors)
                for n in range(job.first, job.first + job.count)
            )
        )
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
    return {
        "plays": [
            {"started_at": at, "region": region, **qoe.to_json()} for at, region, qoe in plays
        ],
        "errors": [error for _, error in errors[:MAX_ERRORS]],
        "failures": [at for at, _ in errors],
        "cpu_s": time.process_time(),
    }


async def _listener(
    n: int,
    job: Job,
    deadline: Deadline,
    traces: list[Trace],
    plays: list[Timed],
    errors: list[tuple[float, str]],
) -> None:
    """One virtual player: sessions of plays until the deadline, on one shaped link."""
    rng = random.Random(job.seed * 1000 + n)
    region = list(CLIENTS)[n % len(CLIENTS)]
    lat, lon, territory = CLIENTS[region]
    link = traces[rng.randrange(len(traces))] if traces else None
    weights = [1 / (rank + 1) ** job.zipf for rank in range(len(job.catalog))]
    # Players join over the ramp, as listeners do, not in one burst of connections.
    await asyncio.sleep(rng.uniform(0, min(job.ramp_s, max(0.0, deadline.at - time.time()) / 4)))
    joined = time.monotonic()
    cache = MemoryObjects(AHEAD_BYTES)
    listener = f"listener-{n}"

    def pick() -> tuple[str, int | None]:
        track = rng.choices(job.catalog, weights)[0]
        return track, rng.choice((1, 2)) if rng.random() < job.skip else None

    track, segments = pick()
    abr = make_rule(job.rule)  # one rule for all the player's plays, as a queue has
    ahead = Ahead()
    try:
        while time.time() < deadline.at - 1:
            trace = link and shifted(link, (time.monotonic() - joined) * job.speed)
            master = await ahead.take(PLAY_GRACE_S)  # prepared during the last one's buffer
            following = pick()

            def start_next(
                following: tuple[str, int | None] = following, trace: Trace | None = trace
            ) -> None:
                ahead.start(
                    following[0], job.locator, cache, territory=territory, lat=lat, lon=lon,
                    rule=job.rule, trace=trace, speed=job.speed, listener=listener, abr=abr,
                )  # fmt: skip

            started = time.time()
            try:
                qoe = await asyncio.wait_for(
                    play(
                        track, job.locator, territory=territory, lat=lat, lon=lon,
                        rule=job.rule, trace=trace, speed=job.speed, max_segments=segments,
                        listener=listener, cache=cache, prepared=master,
                        on_downloaded=start_next, abr=abr,
                    ),
                    timeout=max(1.0, deadline.at - time.time() + PLAY_GRACE_S),
                )  # fmt: skip
            except (PlaybackFailed, TimeoutError) as e:
                errors.append((started, f"player {n}, track {track}: {str(e) or type(e).__name__}"))
                await asyncio.sleep(FAILURE_PAUSE_S)
            else:
                plays.append((started, region, qoe))
            track, segments = following
    finally:
        await ahead.cancel()


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
