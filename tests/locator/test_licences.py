"""Offline licences from the locator on loopback, with a fake origin (the outer edge)."""

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from cadenza.licences import Licence, read_licence, sign_licence
from locator.app import create_app
from locator.licences import version_of
from locator.settings import EdgeConfig, LocatorSettings
from tests.loopback import serve

TRACK = "0123456789abcdef"
FRENCH_ONLY = "00000000000000fe"
WITHDRAWN = "0000000000000bad"
KEYS = {"k1": b"locator-test-secret-0123456789"}
DEVICE = "device-0001"
PARIS = {"territory": "FR", "lat": "48.85", "lon": "2.35"}
MASTER = """#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=280000,AVERAGE-BANDWIDTH=260000,CODECS="mp4a.40.2"
{version}/aac_256/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=60000,AVERAGE-BANDWIDTH=52000,CODECS="mp4a.40.2"
{version}/aac_48/index.m3u8
"""


@dataclass
class FakeOrigin:
    withdrawn: set[str] = field(default_factory=lambda: {WITHDRAWN})
    version: str = "v0123456789ab"
    log: list[dict[str, Any]] = field(default_factory=list)

    async def rights(self, request: web.Request) -> web.Response:
        track, territory = request.match_info["track_id"], request.query["territory"]
        if track not in {TRACK, FRENCH_ONLY, WITHDRAWN}:
            raise web.HTTPNotFound()
        if track in self.withdrawn:
            return web.json_response({"licensed": False, "reason": "withdrawn"})
        if track == FRENCH_ONLY and territory != "FR":
            return web.json_response({"licensed": False, "reason": "not_licensed"})
        return web.json_response({"licensed": True, "reason": "worldwide"})

    async def master(self, request: web.Request) -> web.Response:
        return web.Response(text=MASTER.format(version=self.version))

    async def events(self, request: web.Request) -> web.Response:
        after = int(request.query.get("after", "0"))
        found = [e for e in self.log if e["seq"] > after]
        if not found:
            await asyncio.sleep(0.1)
        return web.json_response({"events": found})

    def publish(self, version: str) -> None:
        """A re-ingest: a new version, and the event that tells the locator so."""
        self.version = version
        self.log.append({"seq": len(self.log) + 1, "kind": "publish", "track_id": TRACK})


@dataclass
class World:
    origin: FakeOrigin
    locator: str
    client: aiohttp.ClientSession

    async def post(self, path: str, doc: Any, **query: str) -> tuple[int, Any]:
        async with self.client.post(self.locator + path, json=doc, params=query) as response:
            return response.status, await response.json()


@pytest.fixture
async def world() -> AsyncIterator[World]:
    fake = FakeOrigin()
    origin = web.Application()
    origin.router.add_get("/v1/tracks/{track_id}/rights", fake.rights)
    origin.router.add_get("/tracks/{track_id}/master.m3u8", fake.master)
    origin.router.add_get("/v1/events", fake.events)
    origin_runner, origin_url = await serve(origin)
    settings = LocatorSettings(
        origin=origin_url,
        edges=(EdgeConfig("paris", "eu-west", "http://127.0.0.1:9", 48.86, 2.35),),
        token_keys=KEYS,
        listener_query=True,
        rights_ttl=0.0,  # every licence asks the origin: the tests change the catalog
        licence_days=7,
    )
    runner, url = await serve(create_app(settings))
    try:
        async with aiohttp.ClientSession() as client:
            yield World(fake, url, client)
    finally:
        await asyncio.wait_for(runner.cleanup(), 10)
        await asyncio.wait_for(origin_runner.cleanup(), 10)


async def test_licences_are_signed_per_track_with_the_rights_of_a_play(world: World):
    before = int(time.time())
    tracks = [TRACK, WITHDRAWN, FRENCH_ONLY, "ffffffffffffffff", "BAD"]
    status, doc = await world.post(
        "/v1/licences", {"tracks": tracks, "device": DEVICE}, listener="ada", **PARIS
    )
    assert status == 200 and doc["listener"] == "ada" and doc["territory"] == "FR"
    granted, withdrawn, french, unknown, bad = doc["licences"]
    assert [r["status"] for r in doc["licences"]] == ["ok", "refused", "ok", "refused", "refused"]
    assert (withdrawn["code"], unknown["code"], bad["code"]) == (410, 404, 400)
    assert "withdrawn" in withdrawn["error"] and french["track_id"] == FRENCH_ONLY
    licence = read_licence(granted["licence"], KEYS)
    assert (licence.track_id, licence.version, licence.listener, licence.device) == (
        TRACK, "v0123456789ab", "ada", DEVICE,
    )  # fmt: skip
    assert licence.territory == "FR" and licence.expires - licence.issued == 7 * 86400
    assert licence.issued >= before and granted["expires"] == licence.expires
    assert granted["version"] == "v0123456789ab"
    assert granted["play"].startswith(f"{world.locator}/v1/play/{TRACK}?")
    assert "listener=ada" in granted["play"] and "territory=FR" in granted["play"]

    status, doc = await world.post(
        "/v1/licences", {"track": FRENCH_ONLY, "device": DEVICE}, listener="ada",
        territory="US", lat="40.7", lon="-74.0",
    )  # fmt: skip
    assert status == 200 and doc["licences"][0]["code"] == 451


@pytest.mark.parametrize(
    ("doc", "query", "status", "words"),
    [
        ({"tracks": [TRACK], "device": DEVICE}, PARIS, 403, "names none"),
        ({"tracks": [TRACK], "device": "short"}, {**PARIS, "listener": "ada"}, 400, "device"),
        ({"tracks": [], "device": DEVICE}, {**PARIS, "listener": "ada"}, 400, "1 to 100"),
        ({"tracks": [TRACK], "device": DEVICE}, {"listener": "ada"}, 451, "territory"),
        ([TRACK], {**PARIS, "listener": "ada"}, 400, "JSON object"),
        ({"tracks": [TRACK], "device": DEVICE}, {**PARIS, "listener": "a b"}, 400, "listener"),
    ],
)
async def test_requests_that_cannot_be_answered_say_why(
    world: World, doc: Any, query: dict[str, str], status: int, words: str
):
    got, body = await world.post("/v1/licences", doc, **query)
    assert got == status and words in body["error"]


async def _licence(world: World, listener: str = "ada") -> str:
    _, doc = await world.post(
        "/v1/licences", {"tracks": [TRACK], "device": DEVICE}, listener=listener, **PARIS
    )
    text: str = doc["licences"][0]["licence"]
    return text


async def test_renewal_extends_while_the_track_may_be_played_and_says_why_not(world: World):
    old = await _licence(world)
    forged = sign_licence(read_licence(old, KEYS), b"not-the-locator-secret-0123456789")
    other = await _licence(world, listener="bo")
    doc = {"licences": [old, forged, other, 7], "device": DEVICE}
    status, answer = await world.post("/v1/licences/renew", doc, listener="ada", **PARIS)
    assert status == 200
    renewed, refused_forged, refused_other, refused_junk = answer["licences"]
    assert renewed["status"] == "ok" and renewed["track_id"] == TRACK
    assert read_licence(renewed["licence"], KEYS).expires >= read_licence(old, KEYS).expires
    assert (refused_forged["code"], refused_other["code"], refused_junk["code"]) == (403, 403, 400)
    assert "signature" in refused_forged["error"] and "another listener" in refused_other["error"]

    world.origin.publish("v00000000beef")  # a re-ingest replaced the version licensed
    deadline = time.monotonic() + 5
    replaced: dict[str, Any] = {"status": "ok"}
    while replaced["status"] == "ok" and time.monotonic() < deadline:
        _, answer = await world.post(
            "/v1/licences/renew", {"licences": [old], "device": DEVICE}, listener="ada", **PARIS
        )
        (replaced,) = answer["licences"]
    assert replaced["code"] == 409 and "replaced by v00000000beef" in replaced["error"]
    assert f"cadenza offline add {TRACK}" in replaced["error"]

    world.origin.withdrawn.add(TRACK)  # taken down
    _, answer = await world.post(
        "/v1/licences/renew", {"licences": [old], "device": DEVICE}, listener="ada", **PARIS
    )
    (taken_down,) = answer["licences"]
    assert taken_down["code"] == 410 and "withdrawn" in taken_down["error"]
    async with world.client.get(f"{world.locator}/metrics") as response:
        metrics = await response.text()
    assert 'cadenza_locator_licences_total{action="issue",result="ok"} 2.0' in metrics
    assert 'cadenza_locator_licences_total{action="renew",result="403"} 2.0' in metrics
    assert 'cadenza_locator_licences_total{action="renew",result="410"} 1.0' in metrics


async def test_renewal_is_refused_on_another_device_and_where_the_track_is_not_licensed(
    world: World,
):
    _, doc = await world.post(
        "/v1/licences", {"tracks": [FRENCH_ONLY], "device": DEVICE}, listener="ada", **PARIS
    )
    french = doc["licences"][0]["licence"]
    _, answer = await world.post(
        "/v1/licences/renew", {"licences": [french], "device": "device-0002"}, listener="ada",
        **PARIS,
    )  # fmt: skip
    assert answer["licences"][0]["code"] == 403
    _, answer = await world.post(
        "/v1/licences/renew", {"licences": [french], "device": DEVICE}, listener="ada",
        territory="US", lat="40.7", lon="-74.0",
    )  # fmt: skip
    assert answer["licences"][0]["code"] == 451


def test_the_version_is_the_one_the_master_names():
    assert version_of(MASTER.format(version="v0123456789ab")) == "v0123456789ab"
    with pytest.raises(ValueError, match="not one"):
        version_of(MASTER.format(version="v0123456789ab").replace("v0123456789ab/aac_48", "x/a"))
    with pytest.raises(ValueError, match="not one"):
        version_of("#EXTM3U\n")


def test_a_licence_names_every_party():
    licence = Licence("k1", 1, 2, "FR", TRACK, "v0123456789ab", "ada", DEVICE)
    assert read_licence(sign_licence(licence, KEYS["k1"]), KEYS) == licence
