"""The consumers: exactly-once results over an at-least-once log, and the whole path through a
running fleet, with a consumer killed mid-stream, on the embedded log and on Redis Streams."""

import asyncio
import csv
import io
import json
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bench.catalog import MasterSpec, write_master
from bench.deploy import OriginRun, run_edges, run_origin
from player.session import play
from plays import results
from plays.consume import Consumer, LabelsUnknown, step
from plays.log import open_log
from tests.loopback import serve
from tests.plays.events import TRACK
from tests.plays.events import play as play_events
from tests.processes import cadenza

SPEED = 20.0
DEADLINE_S = 60.0  # for every wait on the fleet or the consumers
PARIS = {"territory": "FR", "lat": 48.85, "lon": 2.35}


# -- one consumer step at a time ----------------------------------------------------------------


@pytest.fixture
async def catalog() -> AsyncIterator[tuple[str, list[str]]]:
    """An origin's catalog API that knows one track's label, and the track ids asked."""
    asked: list[str] = []

    async def track(request: web.Request) -> web.Response:
        asked.append(request.match_info["track_id"])
        if request.match_info["track_id"] != TRACK:
            raise web.HTTPNotFound()
        return web.json_response({"track_id": TRACK, "label": "acme"})

    app = web.Application()
    app.router.add_get("/v1/tracks/{track_id}", track)
    runner, url = await serve(app)
    yield url, asked
    await runner.cleanup()


async def test_a_batch_read_again_after_a_crash_counts_nothing_twice(tmp_path, catalog):
    url, asked = catalog
    consumer = Consumer("streams", f"sqlite:///{tmp_path}/log.sqlite3", tmp_path / "r.sqlite3",
                        origin=url, batch=100, block_s=0.1)  # fmt: skip
    log = await open_log(consumer.log_url)
    db = results.connect(consumer.db)
    try:
        events = play_events(1.0) + play_events(1.0) + play_events(0.3)
        await log.append(events)
        # Committed, then killed before the acknowledgement: the log delivers the batch again.
        entries = await log.read("streams", "consumer-1", 100, 0.1)
        results.apply(db, "streams", "streams", [e.event for e in entries], "x",
                      labels={TRACK: "acme"})  # fmt: skip
        async with aiohttp.ClientSession() as http:
            assert await step(consumer, log, db, http) == len(events)
            assert await step(consumer, log, db, http) == 0
        assert await log.lag("streams") == 0
        assert [r["streams"] for r in results.streams(db, "acme", "2026-11")] == [2]
        assert asked == [TRACK]  # the label is asked once, then kept
    finally:
        db.close()
        await log.close()


async def test_a_batch_waits_while_the_catalog_cannot_name_its_labels(tmp_path):
    consumer = Consumer("streams", f"sqlite:///{tmp_path}/log.sqlite3", tmp_path / "r.sqlite3",
                        origin="http://127.0.0.1:9", block_s=0.1)  # fmt: skip
    log = await open_log(consumer.log_url)
    db = results.connect(consumer.db)
    try:
        await log.append(play_events(1.0))
        async with aiohttp.ClientSession() as http:
            with pytest.raises(LabelsUnknown, match="label"):
                await step(consumer, log, db, http)
        assert await log.lag("streams") == 3  # nothing acknowledged, nothing counted
        assert results.streams(db, "", "2026-11") == []
    finally:
        db.close()
        await log.close()


# -- through a running fleet ----------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OriginRun, dict]]:
    """An origin with two tracks: one of 40 s (a stream when played whole), one of 13 s."""
    root = tmp_path_factory.mktemp("plays-fleet")
    masters = [
        write_master(root / "long.flac", MasterSpec(40, seed=41)),
        write_master(root / "short.flac", MasterSpec(13, seed=42)),
    ]
    with run_origin(root / "origin-run") as origin:
        tracks = origin.ingest(masters)
        assert [t["status"] for t in tracks] == ["ok", "ok"], tracks
        yield origin, {"long": tracks[0]["track_id"], "short": tracks[1]["track_id"]}


class Consumers:
    """``cadenza plays consume`` processes of history and streams, killed and restarted."""

    def __init__(self, log: str, db: Path, origin: str, env: dict[str, str]) -> None:
        self.log, self.db, self.origin, self.env = log, db, origin, env
        self.running: dict[str, subprocess.Popen[str]] = {}

    def start(self) -> None:
        for kind in ("history", "streams"):
            process = subprocess.Popen(
                [sys.executable, "-P", "-m", "cadenza", "plays", "consume", kind, "--log",
                 self.log, "--db", str(self.db), "--origin", self.origin, "--batch", "2"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=self.env,
            )  # fmt: skip
            assert process.stdout is not None
            assert "reading" in process.stdout.readline()
            self.running[kind] = process

    def stop(self, sig: int = signal.SIGTERM) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(sig)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
            if process.stdout is not None:
                process.stdout.close()
        self.running = {}


def _applied(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    database = results.connect(db)
    try:
        return dict(database.execute("SELECT consumer, events FROM positions").fetchall())
    finally:
        database.close()


async def _until(what: str, check, deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {deadline_s} s: {what}")
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("engine", ["sqlite", "redis"])
async def test_history_and_streams_equal_what_was_played_through_a_consumer_kill(
    engine, catalog_origin, redis_url, tmp_path
):
    origin, tracks = catalog_origin
    long, short = tracks["long"], tracks["short"]
    if engine == "sqlite":
        log_url = f"sqlite:///{tmp_path}/plays.sqlite3"
    else:
        log_url = f"{redis_url}?stream=plays-{uuid.uuid4().hex}&claim_idle_s=1"
    db = tmp_path / "results.sqlite3"
    extra = {"listener_query": True, "plays_log": log_url, "plays_results": str(db)}
    # (listener, track, segments heard or None for the whole track)
    before = [("ann", long, None), ("ann", long, 1), ("ann", short, None), ("bob", long, None)]
    after = [("bob", long, 2), ("bob", long, None), ("cem", short, 1)]
    with run_edges(tmp_path / "fleet", origin, locator_extra=extra) as fleet:
        locator = fleet.locator.url
        consumers = Consumers(log_url, db, origin.service.url, origin.env)

        async def listen(listener: str, track: str, segments: int | None) -> None:
            qoe = await play(track, locator, **PARIS, speed=SPEED, max_segments=segments,
                             listener=listener, timeout_s=DEADLINE_S)  # fmt: skip
            assert qoe.segments

        try:
            consumers.start()
            playing = asyncio.gather(*(listen(*p) for p in before))

            async def some_applied() -> bool:
                applied = _applied(db)
                return all(applied.get(k, 0) >= 1 for k in ("history", "streams"))

            await _until("the consumers apply the first events", some_applied)
            consumers.stop(signal.SIGKILL)  # mid-stream: the plays go on, their events pile up
            await playing
            await asyncio.gather(*(listen(*p) for p in after))
            consumers.start()
            log = await open_log(log_url)
            try:

                async def caught_up() -> bool:
                    lags = [await log.lag(group) for group in ("history", "streams")]
                    return lags == [0, 0]

                await _until("the consumers catch up", caught_up)
            finally:
                await log.close()
        finally:
            consumers.stop()
        played = before + after
        for listener in ("ann", "bob", "cem"):
            with urllib.request.urlopen(f"{locator}/v1/history/{listener}?limit=50") as r:
                history = json.loads(r.read())["plays"]
            expected = [(t, n is None and t == long) for who, t, n in played if who == listener]
            assert sorted((p["track_id"], p["stream"]) for p in history) == sorted(expected)
            states = Counter(p["state"] for p in history)
            assert states == Counter("end" if n is None else "skip"
                                     for who, _, n in played if who == listener)  # fmt: skip
    streams = sum(1 for _, t, n in played if t == long and n is None)
    month = datetime.now(UTC).strftime("%Y-%m")
    done = cadenza("plays", "report", "--db", db, "--label", "bench", "--month", month)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert {(r["track_id"], r["territory"]) for r in rows} == {(long, "FR")}
    assert sum(int(r["streams"]) for r in rows) == streams == 3
