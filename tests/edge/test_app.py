"""The edge end to end on loopback, in front of a fake origin (the outer edge of the system)."""

import asyncio
import gzip
import hashlib
import json
import time
import urllib.parse
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import aiohttp
import pytest
import yarl
from aiohttp import web
from multidict import CIMultiDict

from cadenza.tokens import TokenClaims, sign
from edge.app import MEMORY, create_app
from edge.peers import owner
from edge.settings import EdgeSettings
from tests.edge.workers import edge_workers
from tests.loopback import serve

TRACK = "0123456789abcdef"
VERSION = "v0123456789ab"
SEGMENT = f"/tracks/{TRACK}/{VERSION}/aac_96/seg_00001.m4s"
KEY_ID, SECRET = "k1", b"edge-test-secret-0123456789"


RUNGS = ("aac_256", "aac_96")
MASTER = "".join(
    f'#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS="mp4a.40.2"\n{VERSION}/{rung}/index.m3u8\n'
    for rung in RUNGS
)
MEDIA = '#EXT-X-MAP:URI="init.mp4"\n' + "".join(
    f"#EXTINF:6.0,\nseg_{n:05d}.m4s\n" for n in range(1, 41)
)


def body_of(path: str) -> bytes:
    if path.endswith("master.m3u8"):
        return f"#EXTM3U\n{MASTER}".encode()
    if path.endswith("index.m3u8"):
        return f"#EXTM3U\n#EXT-X-TARGETDURATION:6\n{MEDIA}#EXT-X-ENDLIST\n".encode()
    seed = hashlib.sha256(path.encode()).digest()
    return seed * 4096  # 128 KiB, like a 160 kb/s segment


@dataclass
class FakeOrigin:
    """Serves deterministic bytes for any /tracks/ path; can be slow, down or cut short."""

    delay: float = 0.0
    down: bool = False
    truncate: bool = False
    hold: asyncio.Event | None = None  # when set: send half, wait for the event, then the rest
    first_byte_at: float = 0.0
    cache_control: str = "public, max-age=31536000, immutable"
    requests: Counter[str] = field(default_factory=Counter)
    missing: set[str] = field(default_factory=set)
    age: int | None = None  # an Age the origin's own cache would add
    events: list[dict[str, object]] = field(default_factory=list)

    async def track(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests[path] += 1
        if self.down:
            raise web.HTTPServiceUnavailable()
        if path in self.missing:
            raise web.HTTPNotFound()
        await asyncio.sleep(self.delay)
        body = body_of(path)
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        headers = {"Cache-Control": self.cache_control, "ETag": etag, "Content-Type": "audio/mp4"}
        headers["Access-Control-Allow-Origin"] = "*"  # as the origin does
        if self.age is not None:
            headers["Age"] = str(self.age)
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        if path.endswith(".m3u8") and "gzip" in request.headers.get("Accept-Encoding", ""):
            headers["Content-Encoding"] = "gzip"  # as the origin does for playlists
            return web.Response(body=gzip.compress(body), headers=headers)
        response = web.StreamResponse(headers=headers)
        response.content_length = len(body)
        await response.prepare(request)
        if self.hold is not None:
            await response.write(body[: len(body) // 2])
            self.first_byte_at = time.perf_counter()
            await self.hold.wait()
            await response.write(body[len(body) // 2 :])
            await response.write_eof()
            return response
        if self.truncate:
            await response.write(body[: len(body) // 2])
            await asyncio.sleep(0.2)  # the edge is streaming the first half meanwhile
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write(body)
        await response.write_eof()
        return response

    async def event_log(self, request: web.Request) -> web.Response:
        after = int(request.query.get("after", "0"))
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            found = [e for e in self.events if int(str(e["seq"])) > after]
            if found:
                return web.json_response({"events": found, "last": found[-1]["seq"]})
            await asyncio.sleep(0.02)
        return web.json_response({"events": [], "last": after})


@dataclass
class Fleet:
    origin: FakeOrigin
    edge: str
    client: aiohttp.ClientSession
    settings: EdgeSettings
    runner: web.AppRunner


async def fleet_runner_cleanup(runner: web.AppRunner) -> None:
    if runner.server is not None:  # not stopped by the test already
        await runner.cleanup()


@pytest.fixture
async def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Fleet]:
    changes = getattr(request, "param", {})
    fake = FakeOrigin()
    origin_app = web.Application()
    origin_app.router.add_get("/tracks/{tail:.*}", fake.track)
    origin_app.router.add_get("/v1/events", fake.event_log)
    origin_runner, origin_url = await serve(origin_app)
    base = EdgeSettings(
        origin=origin_url,
        cache_dir=tmp_path / "edge-cache",
        first_byte_timeout=0.5,
        stale_grace=60,
        token_keys={KEY_ID: SECRET},
        allow_unsigned=True,
    )
    settings = replace(base, **changes)
    edge_runner, edge_url = await serve(create_app(settings))
    async with aiohttp.ClientSession() as client:
        yield Fleet(fake, edge_url, client, settings, edge_runner)
    await asyncio.wait_for(fleet_runner_cleanup(edge_runner), 10)
    await asyncio.wait_for(origin_runner.cleanup(), 10)


async def _get(fleet: Fleet, path: str, **kwargs: object) -> tuple[int, CIMultiDict[str], bytes]:
    async with fleet.client.get(yarl.URL(fleet.edge + path, encoded=True), **kwargs) as r:
        return r.status, r.headers.copy(), await r.read()


async def test_miss_then_hit_with_identical_bytes(fleet: Fleet):
    status, headers, body = await _get(fleet, SEGMENT)
    assert (status, headers["X-Cache"]) == (200, "MISS")
    assert body == body_of(SEGMENT)
    await _until_cached(fleet)
    status, headers, again = await _get(fleet, SEGMENT)
    assert (status, headers["X-Cache"], again) == (200, "HIT", body)
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert int(headers["Age"]) >= 0 and headers["ETag"].startswith('"')
    assert fleet.origin.requests[SEGMENT] == 1


async def test_64_concurrent_cold_requests_make_one_origin_fetch(fleet: Fleet):
    fleet.origin.delay = 0.2
    results = await asyncio.gather(*(_get(fleet, SEGMENT) for _ in range(64)))
    assert fleet.origin.requests[SEGMENT] == 1
    assert {status for status, _, _ in results} == {200}
    assert {body for _, _, body in results} == {body_of(SEGMENT)}


async def test_waiters_get_the_first_bytes_while_the_origin_is_still_sending(fleet: Fleet):
    """Every waiter is streamed the object as it arrives, not after it is complete: the origin
    holds the second half until all 64 waiters have their first bytes."""
    fleet.origin.hold = asyncio.Event()
    first_bytes: list[float] = []

    async def one() -> bytes:
        async with fleet.client.get(yarl.URL(fleet.edge + SEGMENT, encoded=True)) as response:
            head = await response.content.readany()
            first_bytes.append(time.perf_counter())
            if len(first_bytes) == 64:
                assert fleet.origin.hold is not None
                fleet.origin.hold.set()  # the origin sends the rest only now
            return head + await response.read()

    bodies = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(64))), 10)
    assert bodies == [body_of(SEGMENT)] * 64
    assert fleet.origin.requests[SEGMENT] == 1


@pytest.mark.parametrize(
    "fleet", [{"memory_bytes": 4 * len(body_of(SEGMENT)), "readahead_seconds": 12}], indirect=True
)
async def test_prefetches_count_as_used_or_wasted(fleet: Fleet):
    await _get(fleet, SEGMENT.replace("seg_00001.m4s", "index.m3u8"))
    await _get(fleet, f"/tracks/{TRACK}/{VERSION}/aac_48/index.m3u8")
    await _get(fleet, SEGMENT)
    nexts = [SEGMENT.replace("00001", f"{n:05d}") for n in (2, 3)]
    await _until(lambda: all(fleet.origin.requests[p] for p in nexts))
    await _until_cached(fleet, nexts[0])
    assert (await _get(fleet, nexts[0]))[1]["X-Cache"] == "HIT"
    for n in (10, 20, 30, 36):  # each reads ahead two segments nobody asks for
        await _get(fleet, f"/tracks/{TRACK}/{VERSION}/aac_48/seg_{n:05d}.m4s")
    async with fleet.client.get(f"{fleet.edge}/metrics") as response:
        text = await response.text()
    assert 'cadenza_edge_prefetches_total{outcome="used"} 1.0' in text
    wasted = float(text.split('cadenza_edge_prefetches_total{outcome="wasted"} ')[1].split()[0])
    assert wasted >= 2


async def test_readahead_stays_inside_the_renditions_segment_list(fleet: Fleet):
    """The playlist lists segments 1 to 40: asking for 39 reads ahead 40 and nothing past it."""
    playlist = SEGMENT.replace("seg_00001.m4s", "index.m3u8")
    await _get(fleet, playlist)
    await _get(fleet, SEGMENT.replace("00001", "00039"))
    await _until(lambda: fleet.origin.requests[SEGMENT.replace("00001", "00040")] == 1)
    await asyncio.sleep(0.2)  # time enough for any stray readahead to reach the origin
    past = [p for p in fleet.origin.requests if p.endswith(("00041.m4s", "00042.m4s"))]
    assert past == []


async def test_readahead_without_the_playlist_fetches_nothing(fleet: Fleet):
    await _get(fleet, SEGMENT)
    await asyncio.sleep(0.3)
    assert set(fleet.origin.requests) == {SEGMENT}


@pytest.mark.parametrize("fleet", [{"allow_unsigned": False}], indirect=True)
async def test_cmcd_nor_cannot_reach_outside_the_tokens_acl(fleet: Fleet):
    other = "fedcba9876543210"
    token = _token()
    await _get(fleet, f"/p/{token}" + SEGMENT.replace("seg_00001.m4s", "index.m3u8"))
    nor = urllib.parse.quote(f"../../../{other}/{VERSION}/aac_96/seg_00002.m4s", safe="")
    status, _, _ = await _get(fleet, f"/p/{token}{SEGMENT}?CMCD=nor%3D%22{nor}%22")
    assert status == 200
    await asyncio.sleep(0.3)
    assert not [p for p in fleet.origin.requests if other in p]
    inside = urllib.parse.quote("seg_00005.m4s", safe="")
    await _get(fleet, f"/p/{token}{SEGMENT.replace('00001', '00003')}?CMCD=nor%3D%22{inside}%22")
    await _until(lambda: fleet.origin.requests[SEGMENT.replace("00001", "00005")] == 1)


async def test_a_missing_track_object_is_remembered_for_the_negative_ttl(fleet: Fleet):
    missing = f"/tracks/{TRACK}/{VERSION}/aac_96/missing.m4s"
    fleet.origin.missing.add(missing)
    for _ in range(3):
        assert (await _get(fleet, missing))[0] == 404
        await asyncio.sleep(0.05)
    assert fleet.origin.requests[missing] == 1


async def _until(condition: Callable[[], bool], seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_playlists_are_stored_and_served_as_plain_text(fleet: Fleet):
    path = f"/tracks/{TRACK}/{VERSION}/aac_96/index.m3u8"
    for _ in range(2):  # the miss, then the hit
        status, headers, body = await _get(fleet, path, headers={"Accept-Encoding": "identity"})
        assert (status, body) == (200, body_of(path))
        assert "Content-Encoding" not in headers
        await _until_cached(fleet, path)


@pytest.mark.parametrize(
    "fleet", [{"preposition_interval": 1.0, "readahead_seconds": 0}], indirect=True
)
async def test_pre_positioning_warms_the_rungs_and_depth_players_ask_for_and_counts_use(
    fleet: Fleet,
):
    other = "fedcba9876543210"
    for _ in range(4):  # four plays of this track begin ...
        assert (await _get(fleet, f"/tracks/{TRACK}/{VERSION}/aac_96/seg_00001.m4s"))[0] == 200
    for n in (1, 2) * 4:  # ... and half of the edge's plays go on to a second segment
        assert (await _get(fleet, f"/tracks/{other}/{VERSION}/aac_96/seg_{n:05d}.m4s"))[0] == 200
    warmed = [  # both tracks are played here: their inits, and the second segment of TRACK
        f"/tracks/{TRACK}/{VERSION}/aac_96/init.mp4",
        f"/tracks/{TRACK}/{VERSION}/aac_96/seg_00002.m4s",
        f"/tracks/{other}/{VERSION}/aac_96/init.mp4",
    ]
    await _until(lambda: all(fleet.origin.requests[p] for p in warmed))
    for path in warmed:
        await _until_cached(fleet, path)
    # asked for within two rounds (2 s) of its warming, so it counts as used
    status, headers, _ = await _get(fleet, warmed[1])
    assert (status, headers["X-Cache"]) == (200, "HIT")
    assert fleet.origin.requests[f"/tracks/{TRACK}/{VERSION}/aac_96/seg_00003.m4s"] == 0
    assert not [p for p in fleet.origin.requests if "aac_256" in p]  # nobody plays it
    assert all(n == 1 for n in fleet.origin.requests.values())
    used = 'cadenza_edge_preposition_objects_total{outcome="used"} 1.0'
    deadline = time.monotonic() + 5
    text = ""
    while used not in text and time.monotonic() < deadline:  # counted once the fetch has ended
        async with fleet.client.get(f"{fleet.edge}/metrics") as response:
            text = await response.text()
        await asyncio.sleep(0.05)
    assert used in text
    assert 'cadenza_edge_preposition_objects_total{outcome="warmed"} 3.0' in text
    assert (
        f'cadenza_edge_preposition_bytes_total{{outcome="used"}} {len(body_of(warmed[1]))}' in text
    )


async def test_readahead_makes_the_next_segments_hits(fleet: Fleet):
    await _get(fleet, SEGMENT)
    following = [SEGMENT.replace("00001", f"{n:05d}") for n in (2, 3, 4, 5)]
    deadline = time.monotonic() + 5
    while not all(fleet.origin.requests[p] for p in following) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    for path in following:
        status, headers, body = await _get(fleet, path)
        assert (status, body) == (200, body_of(path))
        assert headers["X-Cache"] in {"HIT", "MISS"}  # MISS only if the prefetch is still running
    assert all(fleet.origin.requests[p] == 1 for p in following)


async def test_cmcd_next_object_request_is_prefetched(fleet: Fleet):
    other = f"/tracks/{TRACK}/{VERSION}/aac_48/seg_00009.m4s"
    await _get(fleet, SEGMENT.replace("seg_00001.m4s", "index.m3u8"))
    await _get(fleet, SEGMENT, params={"CMCD": 'nor="../aac_48/seg_00009.m4s"'})
    deadline = time.monotonic() + 5
    while not fleet.origin.requests[other] and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert fleet.origin.requests[other] == 1
    assert fleet.origin.requests[SEGMENT.replace("00001", "00002")] == 0


async def test_origin_down_serves_cached_and_fails_uncached_promptly(fleet: Fleet):
    await _get(fleet, SEGMENT)
    await _until_cached(fleet)
    fleet.origin.down = True
    status, headers, body = await _get(fleet, SEGMENT)
    assert (status, headers["X-Cache"], body) == (200, "HIT", body_of(SEGMENT))
    started = time.monotonic()
    status, _, _ = await _get(fleet, SEGMENT.replace("aac_96", "aac_160"))
    assert status == 503  # the origin's own answer, relayed
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("fleet", [{"first_byte_timeout": 0.2}], indirect=True)
async def test_a_slow_origin_gives_504_within_the_timeout(fleet: Fleet):
    fleet.origin.delay = 3
    started = time.monotonic()
    status, _, _ = await _get(fleet, SEGMENT)
    assert status == 504
    assert time.monotonic() - started < 1.5


async def _until_cached(fleet: Fleet, path: str = SEGMENT) -> None:
    """The fetch ends a moment after its last byte reaches the client: wait for the store."""
    key = path.lstrip("/")
    deadline = time.monotonic() + 5
    while fleet.runner.app[MEMORY].peek(key) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"{key} was never stored")
        await asyncio.sleep(0.01)


async def test_stale_is_served_when_the_origin_fails(fleet: Fleet):
    fleet.origin.cache_control = "public, max-age=0"
    await _get(fleet, SEGMENT)
    await _until_cached(fleet)
    _, headers, body = await _get(fleet, SEGMENT)
    assert headers["X-Cache"] == "REVALIDATED" and body == body_of(SEGMENT)
    fleet.origin.down = True
    status, headers, body = await _get(fleet, SEGMENT)
    assert (status, headers["X-Cache"], body) == (200, "STALE", body_of(SEGMENT))


async def test_a_truncated_origin_answer_is_not_cached(fleet: Fleet):
    fleet.origin.truncate = True
    with pytest.raises(aiohttp.ClientPayloadError):
        await _get(fleet, SEGMENT)
    fleet.origin.truncate = False
    status, headers, body = await _get(fleet, SEGMENT)
    assert (status, headers["X-Cache"], body) == (200, "MISS", body_of(SEGMENT))
    assert fleet.origin.requests[SEGMENT] == 2


def _token(acl: str = f"/tracks/{TRACK}/", expires: float | None = None) -> str:
    claims = TokenClaims(acl, int(expires or time.time() + 60), KEY_ID, "SE")
    return sign(claims, SECRET)


@pytest.mark.parametrize("fleet", [{"allow_unsigned": False}], indirect=True)
async def test_tokens_are_checked_locally_and_left_out_of_the_cache_key(fleet: Fleet):
    assert (await _get(fleet, SEGMENT))[0] == 403
    status, headers, body = await _get(fleet, f"/p/{_token()}{SEGMENT}")
    assert (status, headers["X-Cache"], body) == (200, "MISS", body_of(SEGMENT))
    await _until_cached(fleet)
    status, headers, _ = await _get(fleet, f"/p/{_token(expires=time.time() + 99)}{SEGMENT}")
    assert (status, headers["X-Cache"]) == (200, "HIT")
    good = _token()
    tampered = good[:-1] + ("A" if good[-1] != "A" else "B")
    for bad in (tampered, _token(expires=time.time() - 5), _token(acl="/tracks/fedcba9876543210/")):
        status, _, body = await _get(fleet, f"/p/{bad}{SEGMENT}")
        assert status == 403, body
    assert fleet.origin.requests[SEGMENT] == 1


@pytest.mark.parametrize(
    "path",
    [
        "/tracks/../etc/passwd",
        "/tracks/%2e%2e/%2e%2e/etc/passwd",
        f"/tracks/{TRACK}/..%2f..%2fsecret",
        f"/tracks/{TRACK}/%5c..%5csecret",
        f"/tracks/{TRACK}/x%00.m4s",
        "/tracks//etc",
    ],
)
async def test_malformed_paths_are_4xx_and_never_forwarded(fleet: Fleet, path: str):
    status, _, _ = await _get(fleet, path)
    assert 400 <= status < 500
    assert sum(fleet.origin.requests.values()) == 0


async def test_takedowns_purge_and_deny_within_seconds(fleet: Fleet):
    await _get(fleet, SEGMENT)
    await _until_cached(fleet)
    fleet.origin.events.append({"seq": 1, "kind": "takedown", "track_id": TRACK, "territory": None})
    deadline = time.monotonic() + 5
    status = 200
    while status == 200 and time.monotonic() < deadline:
        status, _, _ = await _get(fleet, SEGMENT)
        await asyncio.sleep(0.05)
    assert status == 410
    async with fleet.client.get(f"{fleet.edge}/status") as response:
        assert (await response.json())["cache"]["memory"]["objects"] == 0


async def test_status_metrics_and_cors(fleet: Fleet):
    await _get(fleet, SEGMENT)
    await _until_cached(fleet)
    await _get(fleet, SEGMENT)
    async with fleet.client.get(f"{fleet.edge}/status") as response:
        state = await response.json()
    assert state["healthy"] is True and state["region"] == "local"
    assert state["hit_ratio"] == pytest.approx(0.5)
    assert state["egress_bps"] > 0
    assert state["cache"]["memory"]["bytes"] >= len(body_of(SEGMENT))
    async with fleet.client.get(f"{fleet.edge}/metrics") as response:
        text = await response.text()
    assert 'cadenza_edge_requests_total{cache="HIT",status="200"} 1.0' in text
    assert 'cadenza_edge_origin_fetches_total{result="200"}' in text
    async with fleet.client.options(
        fleet.edge + SEGMENT,
        headers={"Origin": "https://player.example", "Access-Control-Request-Method": "GET"},
    ) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "*"


async def test_a_restart_keeps_the_disk_tier(fleet: Fleet):
    await _get(fleet, SEGMENT)
    await _until_cached(fleet)
    await asyncio.wait_for(fleet.runner.cleanup(), 10)
    fleet.origin.down = True
    runner, url = await serve(create_app(fleet.settings))
    try:
        async with fleet.client.get(url + SEGMENT) as response:
            assert response.status == 200
            assert response.headers["X-Cache"] == "HIT"
            assert await response.read() == body_of(SEGMENT)
        async with fleet.client.get(f"{url}/status") as response:
            cache = (await response.json())["cache"]
        assert cache["disk"]["objects"] >= 1 and cache["memory"]["objects"] >= 1
    finally:
        await asyncio.wait_for(runner.cleanup(), 10)
    assert fleet.origin.requests[SEGMENT] == 1


@pytest.mark.parametrize(
    "fleet", [{"memory_bytes": 1 << 20, "readahead_seconds": 0}], indirect=True
)
async def test_memory_stays_within_budget_on_a_catalog_ten_times_larger(fleet: Fleet):
    paths = [f"/tracks/{TRACK}/{VERSION}/aac_96/seg_{n:05d}.m4s" for n in range(80)]  # 10 MiB
    for path in paths:
        status, _, body = await _get(fleet, path)
        assert (status, body) == (200, body_of(path))
    async with fleet.client.get(f"{fleet.edge}/status") as response:
        memory = (await response.json())["cache"]["memory"]
    assert 0 < memory["bytes"] <= 1 << 20
    assert memory["objects"] <= 8


async def test_a_non_owner_worker_keeps_the_owners_age_and_date(tmp_path: Path):
    """An object filled through its owner worker arrives with its true Age and the origin's Date,
    so a playlist cannot outlive its max-age on the workers that do not own it."""
    fake = FakeOrigin(cache_control="public, max-age=120", age=100)
    origin_app = web.Application()
    origin_app.router.add_get("/tracks/{tail:.*}", fake.track)
    origin_runner, origin_url = await serve(origin_app)
    settings = EdgeSettings(
        origin=origin_url, cache_dir=tmp_path / "cache", allow_unsigned=True,
        readahead_seconds=0, preposition_interval=0,
    )  # fmt: skip
    try:
        async with edge_workers(settings) as urls, aiohttp.ClientSession() as client:
            key = f"tracks/{TRACK}/master.m3u8"
            non_owner = urls[1 - owner(key, 2)]
            async with client.get(f"{non_owner}/{key}") as response:
                assert response.status == 200 and int(response.headers["Age"]) >= 100
            fake.age = 119  # the owner's copy is what the non-owner stored: no refetch
            await asyncio.sleep(1.1)
            async with client.get(f"{non_owner}/{key}") as response:
                assert response.headers["X-Cache"] == "HIT"
                assert int(response.headers["Age"]) >= 101
        assert fake.requests[f"/{key}"] == 1
    finally:
        await origin_runner.cleanup()


async def test_browsers_get_one_allowed_origin_on_misses_and_hits(fleet: Fleet):
    """The origin's own CORS fields are replaced by the edge's, never repeated (a browser refuses
    an answer that names its allowed origin twice)."""
    for cache in ("MISS", "HIT"):
        async with fleet.client.get(fleet.edge + SEGMENT) as response:
            await response.read()
            assert response.headers["X-Cache"] == cache
            assert response.headers.getall("Access-Control-Allow-Origin") == ["*"]
        await _until_cached(fleet)


async def test_every_error_is_json_with_the_cors_fields(fleet: Fleet):
    """The edge's own refusals and aiohttp's 405s (every path has an OPTIONS route) alike."""
    answers = [
        await _get(fleet, f"/p/not-a-token/tracks/{TRACK}/master.m3u8"),
        await _get(fleet, "/nowhere"),
    ]
    async with fleet.client.post(fleet.edge + SEGMENT) as r:
        answers.append((r.status, r.headers.copy(), await r.read()))
    assert [status for status, _, _ in answers] == [403, 405, 405]
    for _, headers, body in answers:
        assert headers["Content-Type"].startswith("application/json")
        assert headers["Access-Control-Allow-Origin"] == "*"
        assert headers["Cache-Control"] == "no-store"
        assert "not-a-token" not in body.decode()
    assert json.loads(answers[1][2]) == {"error": "Method Not Allowed"}
    assert "GET" in answers[2][1]["Allow"].split(",")  # kept from aiohttp's answer
