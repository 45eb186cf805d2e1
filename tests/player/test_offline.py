"""``cadenza offline`` and ``cadenza play --offline`` as processes, against a real fleet on
loopback; the reporting of offline plays against a small plays endpoint (the outer edge)."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bench.catalog import MasterSpec, write_master
from bench.deploy import DEFAULT_EDGES, OriginRun, run_edges, run_origin
from bench.processes import start_cadenza
from cadenza.licences import Licence, sign_licence
from cadenza.plays import PlayEvent, batch_from_json
from player.offline import ENV_NOW, PlayJournal, _progress, licence_clock, rung_picker
from player.qoe import QoE, SegmentRecord
from player.store import OfflineStore
from tests.loopback import serve
from tests.processes import cadenza

LABS = {"listener_query": True}
RENEWAL_SECONDS = 20.0  # for the locator to hear of a takedown from the origin's events


def _refuses_connections(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex((host, int(port))) != 0


# Runs ``cadenza`` with an audit hook that stops the process at its first connection or name
# lookup: what runs under it provably uses no network.
NO_NETWORK = """
import os, sys
def refuse(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.sendto"):
        print(f"network used: {event} {args}", file=sys.stderr)
        os._exit(99)
sys.addaudithook(refuse)
from cadenza.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _without_network(*args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NO_NETWORK, *map(str, args)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _json(done: Any) -> Any:
    assert done.stdout.strip(), done.stderr
    return json.loads(done.stdout)


def test_an_offline_track_plays_without_network_until_its_licence_ends_and_a_takedown_stops_renewal(
    tmp_path: Path,
):
    master = write_master(tmp_path / "one.flac", MasterSpec(13, seed=41))
    store = tmp_path / "store"
    edges = DEFAULT_EDGES[:2]
    with run_origin(tmp_path / "fleet") as origin:
        with run_edges(tmp_path / "fleet" / "run-1", origin, edges, locator_extra=LABS) as fleet:
            (ingested,) = fleet.ingest([master])
            assert ingested["status"] == "ok", ingested
            track = ingested["track_id"]
            done = cadenza(
                "offline", "add", track, "--locator", fleet.locator.url, "--listener", "ada",
                "--territory", "FR", "--quality", "low", "--store", store, "--json",
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            (added,) = _json(done)["tracks"]
            assert added["status"] == "ok" and added["track_id"] == track
            assert added["bytes"] > 0 and added["expires"] > time.time() + 29 * 86400
            services = [fleet.locator.url, *(e.url for e in fleet.edges.values())]
        origin.service.stop()
        services.append(origin.service.url)
        assert all(_refuses_connections(url) for url in services)  # every service is down
        done = _without_network("offline", "renew", "--locator", services[0], "--store", store)
        assert done.returncode == 99 and "network used: socket.connect" in done.stderr

        done = _without_network("play", track, "--offline", "--store", store, "--speed", "50",
                                "--json")  # fmt: skip
        assert done.returncode == 0, done.stderr
        played = _json(done)
        assert played["status"] == "ok" and played["stalls"] == 0
        assert [s["index"] for s in played["segments"]] == [0, 1, 2]
        assert played["edge_share"] == {"offline": 1.0} and played["failovers"] == 0
        assert played["local_hits"] == 5  # media playlist, init, three segments
        assert played["loudness_gain_db"] != 0.0  # the master's loudness travelled along
        assert {s["rung"] for s in played["segments"]} == {0}

        listed = _json(cadenza("offline", "list", "--store", store, "--json"))
        (entry,) = listed["tracks"]
        assert entry["track_id"] == track and entry["listener"] == "ada"
        assert entry["expired"] is False and listed["pending_events"] == 2  # start and end
        events = [e for _, batch in OfflineStore(store).pending() for e in batch]
        assert [e.kind for e in events] == ["start", "end"]
        assert all(e.offline and e.listener == "ada" and e.territory == "FR" for e in events)
        assert events[1].played_ms == round(played["duration_s"] * 1000)

        later = {**os.environ, ENV_NOW: str(entry["expires"])}
        done = cadenza("play", track, "--offline", "--store", store, env=later)
        assert done.returncode == 1
        assert "expired" in done.stderr and "go online" in done.stderr
        assert "cadenza offline renew" in done.stderr and "Traceback" not in done.stderr
        done = cadenza("play", track, "--offline", "--store", store, "--json", env=later)
        assert done.returncode == 1 and "go online" in _json(done)["error"]

        restarted = start_cadenza(
            "origin", "--listen", "127.0.0.1:0", "--data-dir", origin.folder / "origin",
            env=origin.env,
        )  # fmt: skip
        try:
            again = OriginRun(
                origin.folder, restarted, origin.api_key, origin.operator_key, origin.env
            )
            with run_edges(tmp_path / "fleet" / "run-2", again, edges, locator_extra=LABS) as fleet:
                renew = ("offline", "renew", "--locator", fleet.locator.url, "--territory", "FR",
                         "--store", store, "--json")  # fmt: skip
                done = cadenza(*renew)
                assert done.returncode == 0, done.stderr
                (renewed,) = _json(done)["licences"]
                assert renewed["status"] == "ok" and renewed["expires"] >= entry["expires"]
                # The events are reported first; whether or not this locator takes them,
                # renewal goes on, and none is lost.
                events = _json(done)["events"]
                assert events["sent"] + events["pending"] == 2

                done = cadenza(
                    "catalog", "takedown", track, "--origin", restarted.url, env=origin.env
                )
                assert done.returncode == 0, done.stderr
                deadline = time.monotonic() + RENEWAL_SECONDS
                while done.returncode == 0 and time.monotonic() < deadline:
                    done = cadenza(*renew)
                assert done.returncode == 1, done.stderr
                (refused,) = _json(done)["licences"]
                assert refused["status"] == "failed" and refused["code"] == 410
                assert "withdrawn" in refused["error"]
                assert "until its licence ends" in refused["error"]
        finally:
            restarted.stop()
    # The refused track still plays offline until its licence ends, then no more.
    done = cadenza("play", track, "--offline", "--store", store, "--speed", "50", "--json")
    assert done.returncode == 0, done.stderr
    assert cadenza("offline", "remove", track, "--store", store).returncode == 0
    done = cadenza("play", track, "--offline", "--store", store)
    assert done.returncode == 1 and "cadenza offline add" in done.stderr


# -- reporting offline plays --------------------------------------------------------------------

KEY = b"offline-test-secret-0123456789ab"
TERMS = Licence("k1", 1_800_000_000, 1_802_592_000, "SE", "0123456789abcdef", "v0123456789ab",
                "bo", "device-0001")  # fmt: skip


class PlaysEndpoint:
    """A stand-in for the locator's ``POST /v1/plays``: refuses the first batches it is told
    to, then takes the rest, keeping each event once by id."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.poison: set[str] = set()  # event ids refused as the locator refuses a bad event
        self.batches: list[list[PlayEvent]] = []
        self.events: dict[str, PlayEvent] = {}

    async def plays(self, request: web.Request) -> web.Response:
        batch = batch_from_json(await request.json())  # the wire format, checked
        if self.refusals:
            self.refusals -= 1
            return web.json_response({"error": "log unavailable"}, status=503)
        for n, event in enumerate(batch):
            if event.id in self.poison:
                answer = {"error": "licence refused", "event": n, "id": event.id}
                return web.json_response(answer, status=403)
        self.batches.append(batch)
        self.events.update((e.id, e) for e in batch)
        return web.json_response({"accepted": len(batch)}, status=202)


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[PlaysEndpoint, str]]:
    fake = PlaysEndpoint(refusals=1)
    app = web.Application()
    app.router.add_post("/v1/plays", fake.plays)
    runner, url = await serve(app)
    try:
        yield fake, url
    finally:
        await runner.cleanup()


def _journal(store: OfflineStore, plays: int, segments: int) -> None:
    qoe = QoE("0123456789abcdef", "bola", ("offline",), segments * 6.0, 0.1, 0, 0.0, 0.0, 48.0,
              0, 1000, {"offline": 1.0}, 0, 0.0, (), ())  # fmt: skip
    for _ in range(plays):
        journal = PlayJournal(store, sign_licence(TERMS, KEY), TERMS, 48.0, 30.0)
        journal.end(qoe)


async def test_offline_plays_are_reported_and_kept_until_accepted(
    tmp_path: Path, endpoint: tuple[PlaysEndpoint, str]
):
    fake, url = endpoint
    store = OfflineStore(tmp_path / "store")
    _journal(store, plays=3, segments=20)
    made = [e for _, events in store.pending() for e in events]
    assert len(made) == 6 and {e.kind for e in made} == {"start", "end"}

    done = await _cadenza("offline", "sync", "--locator", url, "--store", store.root, "--json")
    assert done[0] == 1 and "503" in done[2]
    assert json.loads(done[1]) == {
        "sent": 0, "refused": 0, "pending": 6, "error": json.loads(done[1])["error"]
    }  # fmt: skip
    assert fake.events == {}

    done = await _cadenza("offline", "sync", "--locator", url, "--store", store.root, "--json")
    assert done[0] == 0, done[2]
    assert json.loads(done[1]) == {"sent": 6, "refused": 0, "pending": 0, "error": None}
    assert set(fake.events) == {e.id for e in made}
    assert all(e.offline and e.credential and e.listener == "bo" for e in fake.events.values())
    assert [e.at for e in made] == sorted(e.at for e in made)  # their original times

    done = await _cadenza("offline", "sync", "--locator", url, "--store", store.root)
    assert done[0] == 0 and "0 play events reported, 0 pending" in done[1]


async def _cadenza(*args: Any) -> tuple[int, str, str]:
    """``cadenza`` as a process, without blocking the loop that serves the fake endpoint."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cadenza", *map(str, args),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), 120)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def test_a_journal_reports_progress_every_30_s_heard_with_a_full_buffer_ahead(tmp_path: Path):
    store = OfflineStore(tmp_path)
    clock = iter(range(1_800_000_000, 1_800_001_000))
    journal = PlayJournal(store, sign_licence(TERMS, KEY), TERMS, 47.6, 30.0, lambda: next(clock))
    for n in range(20):  # 120 s arrive; the last 30 s are still in the buffer
        journal.segment(SegmentRecord(n, 0, 48.0, "offline", 100, 0.0, 6.0, 0.0))
    kinds = [(e.kind, e.played_ms) for e in journal.events]
    assert kinds == [("start", 0), ("progress", 30_000), ("progress", 60_000), ("progress", 90_000)]
    journal.failed()
    ((play_id, events),) = store.pending()
    assert play_id == journal.play_id and events[-1].kind == "skip"
    assert len({e.id for e in events}) == 5 and {e.rung_kbps for e in events} == {48}
    assert [e.at for e in events] == sorted(e.at for e in events)


def test_rungs_are_picked_by_quality_or_rate():
    rates = [48.0, 96.0, 160.0, 256.0]
    assert rung_picker("high", None)(rates) == 3
    assert rung_picker("low", None)(rates) == 0
    assert rung_picker("high", 200)(rates) == 2
    assert rung_picker("high", 20)(rates) == 0  # nothing fits: the lowest


def test_download_progress_draws_one_bar_per_track(capsys: pytest.CaptureFixture[str]):
    with _progress(enabled=True) as update:
        for done in range(4):
            update("0123456789abcdef", done, 3)
    assert "0123456789abcdef" in capsys.readouterr().err
    with _progress(enabled=False) as update:
        update("0123456789abcdef", 1, 3)
    assert capsys.readouterr().err == ""


def test_the_licence_clock_is_the_system_clock_unless_overridden():
    assert abs(licence_clock({}) - time.time()) < 60
    assert licence_clock({ENV_NOW: "1900000000"}) == 1_900_000_000
    with pytest.raises(Exception, match=ENV_NOW):
        licence_clock({ENV_NOW: "tomorrow"})


def test_help_and_usage_errors():
    done = cadenza("offline", "--help")
    assert done.returncode == 0
    for words in ("licence", "renew", "sync", "--offline", ENV_NOW, "Exit status"):
        assert words in done.stdout, words
    done = cadenza("offline", "add", "NOT-A-TRACK", "--locator", "http://127.0.0.1:9")
    assert done.returncode == 2 and "not a track id" in done.stderr
    done = cadenza("play", "0123456789abcdef")
    assert done.returncode == 2 and "--locator" in done.stderr


def test_a_locator_that_cannot_be_reached_fails_the_add(tmp_path: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    done = cadenza("offline", "add", "0123456789abcdef", "--locator", closed, "--store", tmp_path)
    assert done.returncode == 1 and "cannot reach" in done.stderr
    assert "Traceback" not in done.stderr


async def test_an_event_the_locator_refuses_is_dropped_and_does_not_block_the_others(
    tmp_path: Path, endpoint: tuple[PlaysEndpoint, str]
):
    fake, url = endpoint
    fake.refusals = 0
    store = OfflineStore(tmp_path / "store")
    _journal(store, plays=2, segments=20)
    made = [e for _, events in store.pending() for e in events]
    fake.poison = {made[1].id}
    done = await _cadenza("offline", "sync", "--locator", url, "--store", store.root, "--json")
    assert done[0] == 0, done[2]
    assert json.loads(done[1]) == {"sent": 3, "refused": 1, "pending": 0, "error": None}
    assert set(fake.events) == {e.id for e in made} - fake.poison
