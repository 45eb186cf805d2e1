"""``POST /v1/plays``, ``/v1/history`` and ``/v1/hot`` from the plays' results, on loopback."""

import io
import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from cadenza.licences import Licence, sign_licence
from cadenza.plays import MAX_BATCH, PlayEvent
from cadenza.tokens import TokenClaims, TokenError, sign
from locator.app import create_app
from locator.plays import MAX_BODY, check_event
from locator.settings import EdgeConfig, LocatorSettings
from player.offline import PlayJournal
from player.qoe import SegmentRecord
from player.store import OfflineStore
from plays import results
from tests.loopback import serve

KEYS = {"k1": b"locator-test-secret-0123456789"}
TRACK = "0123456789abcdef"
OTHER = "fedcba9876543210"
VERSION = "v0123456789ab"


def token(track: str = TRACK, listener: str = "ann", expires_in: float = 600) -> str:
    claims = TokenClaims(f"/tracks/{track}/", int(time.time() + expires_in), "k1", "SE", listener)
    return sign(claims, KEYS["k1"])


def licence(version: str = VERSION, listener: str = "bob") -> str:
    now = int(time.time())
    lic = Licence("k1", now - 3600, now + 86400, "NO", TRACK, version, listener, "device-0001")
    return sign_licence(lic, KEYS["k1"])


def event(credential: str, **fields: Any) -> dict[str, Any]:
    e = PlayEvent(
        id=uuid.uuid4().hex, play_id=uuid.uuid4().hex, kind="start", at=time.time(),
        track_id=TRACK, version=VERSION, territory="FR", edge="paris", played_ms=0,
        rung_kbps=160, stalls=0, credential=credential,
    )  # fmt: skip
    return replace(e, **fields).to_json()


@dataclass
class Locator:
    url: str
    folder: Path
    client: aiohttp.ClientSession

    async def post(self, events: list[dict[str, Any]] | bytes) -> tuple[int, dict[str, Any]]:
        body = events if isinstance(events, bytes) else json.dumps({"events": events}).encode()
        async with self.client.post(f"{self.url}/v1/plays", data=io.BytesIO(body)) as r:
            return r.status, await r.json()

    async def get(self, path: str, **headers: str) -> tuple[int, Any]:
        async with self.client.get(f"{self.url}{path}", headers=headers) as r:
            return r.status, await r.json()

    def logged(self) -> list[dict[str, Any]]:
        path = self.folder / "plays.sqlite3"
        if not path.exists():
            return []
        with sqlite3.connect(path) as db:
            return [json.loads(b) for (b,) in db.execute("SELECT body FROM events ORDER BY seq")]


@pytest.fixture
async def locator(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Locator]:
    async def no_events(request: web.Request) -> web.Response:
        return web.json_response({"events": []})

    origin = web.Application()
    origin.router.add_get("/v1/events", no_events)
    origin_runner, origin_url = await serve(origin)
    settings = LocatorSettings(
        origin=origin_url,
        edges=(
            EdgeConfig("paris", "eu-west", "http://127.0.0.1:9", 48.86, 2.35),
            EdgeConfig("virginia", "us-east", "http://127.0.0.1:9", 38.9, -77.04),
        ),
        token_keys=KEYS,
        plays_log=f"sqlite:///{tmp_path}/plays.sqlite3",
        plays_results=tmp_path / "results.sqlite3",
        **getattr(request, "param", {}),
    )
    runner, url = await serve(create_app(settings))
    try:
        async with aiohttp.ClientSession() as client:
            yield Locator(url, tmp_path, client)
    finally:
        await runner.cleanup()
        await origin_runner.cleanup()


async def test_a_batch_is_logged_with_the_listener_and_territory_of_its_token(locator):
    events = [event(token(), listener="mallory", territory="FR") for _ in range(3)]
    status, doc = await locator.post(events)
    assert (status, doc) == (202, {"accepted": 3, "new": 3, "duplicates": 0})
    logged = locator.logged()
    assert [e["id"] for e in logged] == [e["id"] for e in events]
    assert {(e["listener"], e["territory"], e["credential"]) for e in logged} == {("ann", "SE", "")}


async def test_an_event_sent_again_is_counted_once(locator):
    events = [event(token()) for _ in range(2)]
    await locator.post(events)
    status, doc = await locator.post([*events, event(token())])
    assert (status, doc) == (202, {"accepted": 3, "new": 1, "duplicates": 2})
    assert len(locator.logged()) == 3


REFUSED = [
    (token(OTHER), "wrong_acl"),
    (token(expires_in=-8 * 86400), "expired"),
    (token()[:-2] + "AA", "bad_signature"),
    ("", "malformed"),
]


@pytest.mark.parametrize(
    ("credential", "reason"),
    REFUSED,
    ids=[reason for _, reason in REFUSED],  # the tokens change with the clock
)
async def test_one_event_without_a_good_token_refuses_its_whole_batch(locator, credential, reason):
    good, bad = event(token()), event(credential)
    status, doc = await locator.post([good, bad])
    assert status == 403 and doc["event"] == 1 and doc["id"] == bad["id"]
    assert reason in doc["error"]
    assert locator.logged() == []
    _, metrics = await _metrics(locator)
    assert f'cadenza_locator_play_events_total{{outcome="token_{reason}"}} 1.0' in metrics


async def test_a_token_is_checked_for_each_track_it_is_used_for(locator):
    shared = token()
    status, doc = await locator.post([event(shared), event(shared, track_id=OTHER)])
    assert status == 403 and doc["event"] == 1 and "wrong_acl" in doc["error"]


async def test_a_token_expired_within_the_reporting_window_still_reports(locator):
    status, _ = await locator.post([event(token(expires_in=-6 * 86400))])
    assert status == 202


async def test_an_offline_event_is_credited_to_its_licences_listener(locator):
    status, _ = await locator.post([event(licence(), offline=True, listener="eve")])
    assert status == 202
    (logged,) = locator.logged()
    assert (logged["listener"], logged["territory"], logged["offline"]) == ("bob", "NO", True)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"credential": licence("v0000000000aa")}, "not " + TRACK),
        ({"credential": licence(), "at": time.time() + 30 * 86400}, "outside its licence"),
        ({"credential": token()}, "licence"),  # a token is no licence
    ],
)
async def test_an_offline_event_needs_its_own_licence(locator, fields, message):
    status, doc = await locator.post([event(offline=True, **fields)])
    assert status == 403 and doc["event"] == 0 and message in doc["error"]


async def test_a_malformed_batch_is_a_400_naming_the_event(locator):
    bad = {**event(token()), "played_ms": -1}
    status, doc = await locator.post([event(token()), bad])
    assert status == 400 and doc["event"] == 1 and doc["id"] == bad["id"]
    assert "played_ms" in doc["error"]
    status, doc = await locator.post([event(token()), "not an event"])
    assert status == 400 and doc["event"] == 1 and doc["id"] is None
    for body in (b"not json", json.dumps({"events": []}).encode()):
        status, doc = await locator.post(body)
        assert status == 400 and "events" in doc["error"]
    status, doc = await locator.post([event(token())] * (MAX_BATCH + 1))
    assert status == 400 and str(MAX_BATCH) in doc["error"]


async def test_a_body_over_the_bound_is_refused_unread(locator):
    status, doc = await locator.post(b" " * (MAX_BODY + 1))
    assert status == 413 and str(MAX_BODY) in doc["error"]


def test_the_checked_event_keeps_nothing_of_the_credential_but_the_listener():
    e = PlayEvent.from_json(event(token(listener="zoe"), listener="other"))
    checked = check_event(e, KEYS, time.time(), 60)
    assert (checked.listener, checked.territory, checked.credential) == ("zoe", "SE", "")
    with pytest.raises(TokenError, match="expired"):
        check_event(e, KEYS, time.time() + 700, 60)


def _results(folder: Path, events: list[PlayEvent], kind: str) -> None:
    db = results.connect(folder / "results.sqlite3")
    try:
        results.apply(db, kind, kind, events, "1")
    finally:
        db.close()


async def test_history_lists_a_listeners_plays_from_the_results(locator):
    status, doc = await locator.get("/v1/history/ann")
    assert (status, doc["plays"]) == (200, [])  # no consumer has run yet
    plays = [
        PlayEvent.from_json({**event(""), "listener": "ann", "at": 1.8e9 + n, "kind": "end",
                             "played_ms": ms})
        for n, ms in enumerate((10_000, 45_000))
    ]  # fmt: skip
    _results(locator.folder, plays, "history")
    status, doc = await locator.get("/v1/history/ann")
    assert status == 200
    heard = [(p["played_ms"], p["stream"]) for p in doc["plays"]]
    assert heard == [(45_000, True), (10_000, False)]
    status, _ = await locator.get("/v1/history/not%20an%20id")
    assert status == 400


@pytest.mark.parametrize("locator", [{"listener_header": "X-Listener"}], indirect=True)
async def test_behind_a_front_end_a_history_is_its_listeners_alone(locator):
    status, _ = await locator.get("/v1/history/ann", **{"X-Listener": "bob"})
    assert status == 403
    status, _ = await locator.get("/v1/history/ann", **{"X-Listener": "ann"})
    assert status == 200


async def test_hot_serves_the_popularity_consumers_counts_by_region(locator):
    now = time.time()
    starts = [
        PlayEvent.from_json({**event(""), "track_id": track, "edge": edge, "at": now})
        for track, edge, n in ((TRACK, "paris", 3), (OTHER, "paris", 1), (OTHER, "virginia", 5))
        for _ in range(n)
    ]
    _results(locator.folder, starts, "popularity")
    status, doc = await locator.get("/v1/hot?region=eu-west")
    assert status == 200
    assert [(t["track_id"], round(t["plays"])) for t in doc["tracks"]] == [(TRACK, 3), (OTHER, 1)]
    _, doc = await locator.get("/v1/hot?region=us-east")
    assert [(t["track_id"], round(t["plays"])) for t in doc["tracks"]] == [(OTHER, 5)]


async def _metrics(locator: Locator) -> tuple[int, str]:
    async with locator.client.get(f"{locator.url}/metrics") as r:
        return r.status, await r.text()


async def test_the_events_an_offline_play_journals_are_taken_when_synced(locator, tmp_path):
    now = int(time.time())
    terms = Licence("k1", now - 60, now + 86400, "NO", TRACK, VERSION, "bob", "device-0001")
    journal = PlayJournal(OfflineStore(tmp_path / "store"), sign_licence(terms, KEYS["k1"]),
                          terms, 160.0, 30.0)  # fmt: skip
    for n in range(12):  # 72 s in the buffer, some 40 s of it heard
        journal.segment(SegmentRecord(n, 0, 160.0, "local", 4000, 0.01, 6.0, n * 6.0))
    journal.failed()
    status, doc = await locator.post([e.to_json() for e in journal.events])
    assert (status, doc["new"]) == (202, len(journal.events))
    logged = locator.logged()
    assert [e["kind"] for e in logged] == ["start", "progress", "skip"]
    assert {(e["listener"], e["territory"], e["offline"]) for e in logged} == {("bob", "NO", True)}
