"""The locator end to end on loopback, with fake edges and a fake origin (the outer edge)."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import m3u8
import pytest
from aiohttp import web

from cadenza.tokens import split_token_path, verify
from locator.app import create_app
from locator.geo import Location
from locator.settings import EdgeConfig, LocatorSettings
from tests.loopback import serve

TRACK = "0123456789abcdef"
FRENCH_ONLY = "00000000000000fe"
WITHDRAWN = "0000000000000bad"
KEYS = {"k1": b"locator-test-secret-0123456789"}
MASTER = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-SESSION-DATA:DATA-ID="org.cadenza.loudness.integrated-lufs",VALUE="-16.4"
#EXT-X-STREAM-INF:BANDWIDTH=280000,AVERAGE-BANDWIDTH=260000,CODECS="mp4a.40.2"
v0123456789ab/aac_256/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=60000,AVERAGE-BANDWIDTH=52000,CODECS="mp4a.40.2"
v0123456789ab/aac_48/index.m3u8
"""


@dataclass
class FakeOrigin:
    withdrawn: set[str] = field(default_factory=lambda: {WITHDRAWN})
    rights_asked: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    async def rights(self, request: web.Request) -> web.Response:
        self.rights_asked += 1
        track, territory = request.match_info["track_id"], request.query["territory"]
        if track not in {TRACK, FRENCH_ONLY, WITHDRAWN}:
            raise web.HTTPNotFound()
        if track in self.withdrawn:
            return web.json_response({"licensed": False, "reason": "withdrawn"})
        if track == FRENCH_ONLY and territory != "FR":
            return web.json_response({"licensed": False, "reason": "not_licensed"})
        return web.json_response({"licensed": True, "reason": "worldwide"})

    async def master(self, request: web.Request) -> web.Response:
        return web.Response(text=MASTER, content_type="application/vnd.apple.mpegurl")

    async def event_log(self, request: web.Request) -> web.Response:
        after = int(request.query.get("after", "0"))
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            found = [e for e in self.events if e["seq"] > after]
            if found:
                return web.json_response({"events": found})
            await asyncio.sleep(0.02)
        return web.json_response({"events": []})


@dataclass
class FakeEdge:
    region: str
    up: bool = True
    draining: bool = False
    egress_bps: float = 0.0

    async def status(self, request: web.Request) -> web.Response:
        if not self.up:
            raise web.HTTPServiceUnavailable()
        state = "draining" if self.draining else "healthy"
        return web.json_response(
            {
                "healthy": not self.draining, "state": state, "region": self.region,
                "latitude": 0.0, "longitude": 0.0, "capacity_bps": 1e9, "active_requests": 0,
                "egress_bps": self.egress_bps, "hit_ratio": 0.0, "hits": 0, "misses": 0,
                "workers": 1,
                "cache": {"memory": {"bytes": 0, "objects": 0}, "disk": {"bytes": 0, "objects": 0}},
            }
        )  # fmt: skip


@dataclass
class World:
    origin: FakeOrigin
    edges: dict[str, FakeEdge]
    urls: dict[str, str]
    locator: str
    client: aiohttp.ClientSession

    async def get(self, path: str, **params: str) -> tuple[int, str, aiohttp.typedefs.LooseHeaders]:
        async with self.client.get(self.locator + path, params=params, allow_redirects=False) as r:
            return r.status, await r.text(), r.headers.copy()


PLACES = {  # id: (region, latitude, longitude)
    "paris": ("eu-west", 48.86, 2.35),
    "frankfurt": ("eu-west", 50.11, 8.68),
    "virginia": ("us-east", 38.9, -77.04),
}
IN_PARIS = {"lat": "48.85", "lon": "2.35", "territory": "FR"}
IN_NEW_YORK = {"lat": "40.71", "lon": "-74.0", "territory": "US"}


@pytest.fixture
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    fake = FakeOrigin()
    origin = web.Application()
    origin.router.add_get("/v1/tracks/{track_id}/rights", fake.rights)
    origin.router.add_get("/tracks/{track_id}/master.m3u8", fake.master)
    origin.router.add_get("/v1/events", fake.event_log)
    runners = []
    runner, origin_url = await serve(origin)
    runners.append(runner)
    edges, urls, configs = {}, {}, []
    for name, (region, lat, lon) in PLACES.items():
        edges[name] = FakeEdge(region)
        app = web.Application()
        app.router.add_get("/status", edges[name].status)
        runner, urls[name] = await serve(app)
        runners.append(runner)
        configs.append(EdgeConfig(name, region, urls[name], lat, lon, 1e9))
    settings = LocatorSettings(
        origin=origin_url,
        edges=tuple(configs),
        token_keys=KEYS,
        poll_interval=0.1,
        poll_timeout=0.5,
        token_ttl=600,
        **getattr(request, "param", {}),
    )
    runner, locator_url = await serve(create_app(settings))
    runners.append(runner)
    async with aiohttp.ClientSession() as client:
        world = World(fake, edges, urls, locator_url, client)
        await _until_up(world, len(PLACES))
        yield world
    for runner in reversed(runners):
        await asyncio.wait_for(runner.cleanup(), 10)


async def _until_up(world: World, count: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        _, text, _ = await world.get("/v1/edges")
        if text.count('"state": "up"') == count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("edges never came up")


def _pathways(text: str) -> list[str]:
    playlist = m3u8.loads(text)
    return list(dict.fromkeys(p.stream_info.pathway_id for p in playlist.playlists))


async def test_a_play_is_a_content_steered_playlist_with_the_nearest_edge_first(world: World):
    status, text, headers = await world.get(f"/v1/play/{TRACK}", **IN_PARIS)
    assert status == 200 and headers["Content-Type"].startswith("application/vnd.apple.mpegurl")
    assert headers["Cache-Control"] == "no-store"
    playlist = m3u8.loads(text)
    assert playlist.content_steering.uri.startswith(f"{world.locator}/v1/steer/")
    pathways = _pathways(text)
    assert pathways[0] in {"paris", "frankfurt"} and pathways[-1] == "virginia"
    assert playlist.content_steering.pathway_id == pathways[0]
    assert len(playlist.playlists) == 2 * len(pathways)
    assert '#EXT-X-SESSION-DATA:DATA-ID="org.cadenza.loudness.integrated-lufs"' in text
    first = playlist.playlists[0].uri
    assert first.startswith(world.urls[pathways[0]] + "/p/")
    token, path = split_token_path(first.removeprefix(world.urls[pathways[0]]))
    assert token is not None
    claims = verify(token, KEYS, path, time.time())
    assert (claims.acl, claims.territory) == (f"/tracks/{TRACK}/", "FR")
    status, text, _ = await world.get(f"/v1/play/{TRACK}", **IN_NEW_YORK)
    assert _pathways(text)[0] == "virginia"


async def test_refusals_say_why(world: World):
    assert (await world.get("/v1/play/ffffffffffffffff", **IN_PARIS))[0] == 404
    assert (await world.get(f"/v1/play/{FRENCH_ONLY}", **IN_NEW_YORK))[0] == 451
    assert (await world.get(f"/v1/play/{FRENCH_ONLY}", **IN_PARIS))[0] == 200
    assert (await world.get(f"/v1/play/{WITHDRAWN}", **IN_PARIS))[0] == 410
    assert (await world.get("/v1/play/NOT-A-TRACK", **IN_PARIS))[0] == 400
    status, text, _ = await world.get(f"/v1/play/{TRACK}", lat="95", lon="0")
    assert status == 400 and "lat" in text


async def test_an_unknown_territory_fails_closed_by_default(world: World):
    status, text, _ = await world.get(f"/v1/play/{TRACK}")
    assert status == 451 and "territory is unknown" in text


@pytest.mark.parametrize(
    "world", [{"fail_open": True, "default_location": Location(48.86, 2.35)}], indirect=True
)
async def test_fail_open_plays_with_an_unknown_territory(world: World):
    status, text, _ = await world.get(f"/v1/play/{TRACK}")
    assert status == 200 and _pathways(text)[0] in {"paris", "frankfurt"}


def _claims(world: World, text: str):
    uri = m3u8.loads(text).playlists[0].uri
    base = next(url for url in world.urls.values() if uri.startswith(url))
    token, path = split_token_path(uri.removeprefix(base))
    assert token is not None
    return verify(token, KEYS, path, time.time())


@pytest.mark.parametrize(
    "world", [{"listener_header": "X-Cadenza-Listener", "listener_query": True}], indirect=True
)
async def test_the_token_carries_the_listener_that_the_front_end_or_the_lab_names(world: World):
    _, text, _ = await world.get(f"/v1/play/{TRACK}", **IN_PARIS, listener="lab_listener")
    assert _claims(world, text).listener == "lab_listener"
    async with world.client.get(
        f"{world.locator}/v1/play/{TRACK}",
        params={**IN_PARIS, "listener": "mallory"},
        headers={"X-Cadenza-Listener": "alice"},
    ) as response:
        assert _claims(world, await response.text()).listener == "alice"
    status, text, _ = await world.get(f"/v1/play/{TRACK}", **IN_PARIS, listener="not valid")
    assert status == 400 and "listener" in text


async def test_without_a_configured_source_plays_are_anonymous(world: World):
    _, text, _ = await world.get(f"/v1/play/{TRACK}", **IN_PARIS, listener="mallory")
    assert _claims(world, text).listener == ""


async def test_rights_are_cached_and_forgotten_on_a_takedown(world: World):
    for _ in range(3):
        assert (await world.get(f"/v1/play/{TRACK}", **IN_PARIS))[0] == 200
    assert world.origin.rights_asked == 1
    world.origin.withdrawn.add(TRACK)
    world.origin.events.append({"seq": 1, "kind": "takedown", "track_id": TRACK})
    deadline = time.monotonic() + 5
    while (await world.get(f"/v1/play/{TRACK}", **IN_PARIS))[0] != 410:
        assert time.monotonic() < deadline, "the takedown never stopped new plays"
        await asyncio.sleep(0.05)


async def test_metrics_tell_when_the_event_stream_last_answered(world: World):
    deadline = time.monotonic() + 5
    while True:
        _, text, _ = await world.get("/metrics")
        line = next(
            line
            for line in text.splitlines()
            if line.startswith("cadenza_locator_events_answered_timestamp_seconds ")
        )
        if float(line.split()[1]) > 0:
            break
        assert time.monotonic() < deadline, "the event stream's answers were never counted"
        await asyncio.sleep(0.1)


async def test_the_steering_manifest_drops_a_dead_edge_within_two_seconds(world: World):
    _, text, _ = await world.get(f"/v1/play/{TRACK}", **IN_PARIS)
    steer = m3u8.loads(text).content_steering.uri.removeprefix(world.locator)
    status, body, _ = await world.get(steer, _HLS_pathway="paris", _HLS_throughput="800000")
    manifest = json.loads(body)
    assert status == 200 and manifest["VERSION"] == 1 and manifest["TTL"] >= 1
    assert manifest["RELOAD-URI"].endswith(steer)
    primary = manifest["PATHWAY-PRIORITY"][0]
    world.edges[primary].up = False
    died = time.monotonic()
    while primary in json.loads((await world.get(steer))[1])["PATHWAY-PRIORITY"]:
        assert time.monotonic() - died < 2.0, "a dead edge stayed in the manifest"
        await asyncio.sleep(0.05)
    assert (await world.get("/v1/steer/no-such-session"))[0] == 404


async def test_a_draining_edge_gets_no_new_plays(world: World):
    world.edges["paris"].draining = True
    world.edges["frankfurt"].draining = True
    deadline = time.monotonic() + 3
    while True:
        _, text, _ = await world.get(f"/v1/play/{TRACK}", **IN_PARIS)
        if _pathways(text) == ["virginia"]:
            break
        assert time.monotonic() < deadline, "draining edges kept getting plays"
        await asyncio.sleep(0.05)


async def test_locate_redirect_hot_list_metrics_and_cors(world: World):
    status, body, _ = await world.get(f"/v1/locate/{TRACK}", **IN_NEW_YORK)
    ranked = json.loads(body)
    assert status == 200 and ranked["edges"][0]["id"] == "virginia"
    assert ranked["client"]["territory"] == "US" and ranked["edges"][0]["distance_km"] < 500
    status, _, headers = await world.get(f"/v1/redirect/{TRACK}", **IN_NEW_YORK)
    assert status == 302
    assert headers["Location"].startswith(world.urls["virginia"] + "/p/")
    assert headers["Location"].endswith(f"/tracks/{TRACK}/master.m3u8")
    for _ in range(3):
        await world.get(f"/v1/play/{FRENCH_ONLY}", **IN_PARIS)
    await world.get(f"/v1/play/{TRACK}", **IN_PARIS)
    status, body, _ = await world.get("/v1/hot", region="eu-west", limit="5")
    hot = json.loads(body)
    assert [t["track_id"] for t in hot["tracks"]] == [FRENCH_ONLY, TRACK]
    status, text, _ = await world.get("/metrics")
    assert 'cadenza_locator_decisions_total{outcome="ok",region="eu-west"}' in text
    assert "cadenza_locator_decision_seconds_count" in text
    async with world.client.options(
        f"{world.locator}/v1/play/{TRACK}",
        headers={"Origin": "https://player.example", "Access-Control-Request-Method": "GET"},
    ) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_settings_replace_keeps_the_edges():
    settings = LocatorSettings(edges=(EdgeConfig("e", "r", "http://x", 0, 0, 1e9),))
    assert replace(settings, fail_open=True).edges == settings.edges


async def test_every_error_is_json_with_the_cors_fields(world: World):
    """A refusal and aiohttp's own 405 (every path has an OPTIONS route) answer alike."""
    for path, status, error in [
        ("/v1/play/NOT-A-TRACK", 400, "'NOT-A-TRACK' is not a track id (16 of [a-z0-9])"),
        ("/v1/nowhere", 405, "Method Not Allowed"),
    ]:
        got, text, headers = await world.get(path)
        assert (got, json.loads(text)) == (status, {"error": error})
        assert headers["Access-Control-Allow-Origin"] == "*"  # type: ignore[index]
        assert headers["Cache-Control"] == "no-store"  # type: ignore[index]


async def test_rights_playlists_and_events_come_from_the_replica_that_answers():
    """The first origin replica is gone: plays are served from the second, and a takedown in
    the catalog they share reaches the locator through it."""
    fake = FakeOrigin()
    origin = web.Application()
    origin.router.add_get("/v1/tracks/{track_id}/rights", fake.rights)
    origin.router.add_get("/tracks/{track_id}/master.m3u8", fake.master)
    origin.router.add_get("/v1/events", fake.event_log)
    gone_runner, gone = await serve(web.Application())
    await gone_runner.cleanup()
    origin_runner, good = await serve(origin)
    runners = [origin_runner]
    edge = FakeEdge("eu-west")
    edge_app = web.Application()
    edge_app.router.add_get("/status", edge.status)
    edge_runner, edge_url = await serve(edge_app)
    runners.append(edge_runner)
    # Status polls get 2 s: on a loaded machine two slow ones marked the only edge down (503).
    settings = LocatorSettings(
        origin=f"{gone},{good}", token_keys=KEYS, poll_interval=0.1, poll_timeout=2.0,
        edges=(EdgeConfig("paris", "eu-west", edge_url, 48.86, 2.35, 1e9),),
    )  # fmt: skip
    locator_runner, locator = await serve(create_app(settings))
    runners.append(locator_runner)
    try:
        async with aiohttp.ClientSession() as client:
            world = World(fake, {"paris": edge}, {"paris": edge_url}, locator, client)
            await _until_up(world, 1)
            status, text, _ = await world.get(f"/v1/play/{TRACK}", **IN_PARIS)
            assert status == 200 and "#EXT-X-CONTENT-STEERING" in text, text  # which refusal
            fake.withdrawn.add(TRACK)
            fake.events.append({"seq": 1, "kind": "takedown", "track_id": TRACK})
            deadline = time.monotonic() + 10
            while (await world.get(f"/v1/play/{TRACK}", **IN_PARIS))[0] != 410:
                assert time.monotonic() < deadline, "the takedown never stopped new plays"
                await asyncio.sleep(0.05)
    finally:
        for runner in reversed(runners):
            await asyncio.wait_for(runner.cleanup(), 10)
