"""Generic mode end to end: the edge as an RFC 9111 shared cache in front of a scripted origin.

Each test scripts the origin's answers for its own paths, then checks what the client gets and
what reached the origin, through real sockets on loopback.
"""

import asyncio
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from edge.app import create_app
from edge.keys import INFLIGHT, MEMORY
from edge.peers import owner
from edge.settings import EdgeSettings
from tests.edge.workers import edge_workers
from tests.loopback import serve

Script = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Origin:
    """Answers each path with the script a test set for it; remembers every request."""

    scripts: dict[str, Script] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    seen: list[web.Request] = field(default_factory=list)
    heads: list[CIMultiDictProxy[str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests[request.path_qs] += 1
        self.heads.append(request.headers)
        self.seen.append(request)
        self.bodies.append(await request.read())
        script = self.scripts.get(request.path)
        if script is None:
            raise web.HTTPNotFound()
        return await script(request)


def answer(*lines: tuple[str, str], body: bytes = b"body", status: int = 200) -> Script:
    async def script(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=body, headers=CIMultiDict(lines))

    return script


def now_date(offset: float = 0) -> str:
    return formatdate(time.time() + offset, usegmt=True)


@dataclass
class Rig:
    origin: Origin
    edge: str
    client: aiohttp.ClientSession

    async def get(self, path: str, method: str = "GET", **kwargs: object) -> aiohttp.ClientResponse:
        async with self.client.request(
            method, self.edge + path, allow_redirects=False, **kwargs
        ) as response:
            await response.read()
            return response


async def _start_origin() -> tuple[Origin, web.AppRunner, str]:
    origin = Origin()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", origin.handle)
    runner, url = await serve(app)
    return origin, runner, url


@pytest.fixture
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    origin, origin_runner, origin_url = await _start_origin()
    settings = EdgeSettings(
        origin=origin_url, cache_dir=tmp_path / "cache", generic=True, allow_unsigned=True,
        workers=1, **getattr(request, "param", {}),
    )  # fmt: skip
    edge_runner, edge_url = await serve(create_app(settings))
    async with aiohttp.ClientSession(auto_decompress=False) as client:
        yield Rig(origin, edge_url, client)
    await asyncio.wait_for(edge_runner.cleanup(), 10)
    await asyncio.wait_for(origin_runner.cleanup(), 10)


async def test_any_path_is_cached_with_its_query_in_the_key(rig: Rig):
    rig.origin.scripts["/a/b"] = answer(("Cache-Control", "max-age=60"))
    for path in ("/a/b?x=1", "/a/b?x=1", "/a/b?x=2"):
        response = await rig.get(path)
        assert response.status == 200
    assert (rig.origin.requests["/a/b?x=1"], rig.origin.requests["/a/b?x=2"]) == (1, 1)
    assert response.headers["X-Cache"] == "MISS"


async def test_a_second_cache_control_line_counts(rig: Rig):
    rig.origin.scripts["/two"] = answer(
        ("Cache-Control", "max-age=3600"), ("Cache-Control", "no-store")
    )
    await rig.get("/two")
    await rig.get("/two")
    assert rig.origin.requests["/two"] == 2


async def test_every_header_line_is_relayed_and_stored(rig: Rig):
    rig.origin.scripts["/h"] = answer(
        ("Cache-Control", "max-age=60"), ("Link", "<a>; rel=preload"), ("Link", "<b>; rel=preload"),
        ("X-Custom", "1"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
    )  # fmt: skip
    for cache in ("MISS", "HIT"):
        response = await rig.get("/h")
        assert response.headers["X-Cache"] == cache
        assert response.headers.getall("Link") == ["<a>; rel=preload", "<b>; rel=preload"]
        assert response.headers.getall("Set-Cookie") == ["a=1", "b=2"]
        assert response.headers["X-Custom"] == "1"


async def test_vary_keeps_one_answer_per_variant_and_star_is_never_reused(rig: Rig):
    async def by_language(request: web.Request) -> web.Response:
        language = request.headers.get("Accept-Language", "none")
        headers = {"Cache-Control": "max-age=60", "Vary": "Accept-Language"}
        return web.Response(body=language.encode(), headers=headers)

    rig.origin.scripts["/v"] = by_language
    bodies = []
    for language in ("en", "fr", "en", "fr"):
        async with rig.client.get(rig.edge + "/v", headers={"Accept-Language": language}) as r:
            bodies.append(await r.read())
    assert bodies == [b"en", b"fr", b"en", b"fr"]
    assert rig.origin.requests["/v"] == 2
    rig.origin.scripts["/star"] = answer(("Cache-Control", "max-age=60"), ("Vary", "*"))
    await rig.get("/star")
    await rig.get("/star")
    assert rig.origin.requests["/star"] == 2


async def test_redirects_are_relayed_not_followed(rig: Rig):
    # Port 9 on another loopback address: if the edge followed it, it would fail with a 502.
    rig.origin.scripts["/moved"] = answer(
        ("Location", "http://127.0.0.2:9/elsewhere"), ("Cache-Control", "max-age=60"), status=301
    )
    for cache in ("MISS", "HIT"):
        response = await rig.get("/moved")
        assert (response.status, response.headers["Location"]) == (
            301,
            "http://127.0.0.2:9/elsewhere",
        )
        assert response.headers["X-Cache"] == cache
    assert rig.origin.requests["/moved"] == 1


@pytest.mark.parametrize("expires", ["0", "yesterday", "Thu, 01 Dec 2094 16:00:00 XYZ"])
async def test_an_invalid_expires_is_in_the_past(rig: Rig, expires: str):
    rig.origin.scripts["/e"] = answer(("Expires", expires), ("Date", now_date()))
    await rig.get("/e")
    await rig.get("/e")
    assert rig.origin.requests["/e"] == 2


async def test_the_origins_age_is_kept_on_misses_and_hits(rig: Rig):
    rig.origin.scripts["/aged"] = answer(("Cache-Control", "max-age=3600"), ("Age", "100"))
    miss = await rig.get("/aged")
    hit = await rig.get("/aged")
    assert miss.headers["X-Cache"] == "MISS" and int(miss.headers["Age"]) >= 100
    assert hit.headers["X-Cache"] == "HIT" and int(hit.headers["Age"]) >= 100
    assert miss.headers["Date"] == hit.headers["Date"]  # the origin's, not one per answer


async def test_an_answer_already_too_old_is_not_served_from_the_cache(rig: Rig):
    rig.origin.scripts["/old"] = answer(("Cache-Control", "max-age=10"), ("Age", "20"))
    await rig.get("/old")
    await rig.get("/old")
    assert rig.origin.requests["/old"] == 2


async def test_a_private_answer_goes_to_its_own_requester_only(rig: Rig):
    served = 0

    async def personal(request: web.Request) -> web.Response:
        nonlocal served
        served += 1
        mine = served
        await asyncio.sleep(0.3)  # the other requests join the fetch under way meanwhile
        return web.Response(body=f"for {mine}".encode(), headers={"Cache-Control": "private"})

    rig.origin.scripts["/me"] = personal
    bodies = await asyncio.gather(*(_body(rig, "/me") for _ in range(5)))
    assert rig.origin.requests["/me"] == 5
    assert len(set(bodies)) == 5


async def _body(rig: Rig, path: str, **kwargs: object) -> bytes:
    async with rig.client.get(rig.edge + path, **kwargs) as response:
        return await response.read()


async def test_shareable_answers_are_still_coalesced(rig: Rig):
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return web.Response(body=b"same", headers={"Cache-Control": "max-age=60"})

    rig.origin.scripts["/slow"] = slow
    bodies = await asyncio.gather(*(_body(rig, "/slow") for _ in range(8)))
    assert bodies == [b"same"] * 8 and rig.origin.requests["/slow"] == 1


async def test_every_status_is_relayed_with_its_headers(rig: Rig):
    rig.origin.scripts["/busy"] = answer(("Retry-After", "120"), ("X-Why", "load"), status=503)
    rig.origin.scripts["/teapot"] = answer(("X-Brew", "no"), status=418, body=b"short and stout")
    busy = await rig.get("/busy")
    assert (busy.status, busy.headers["Retry-After"], busy.headers["X-Why"]) == (503, "120", "load")
    async with rig.client.get(rig.edge + "/teapot") as teapot:
        assert (teapot.status, teapot.headers["X-Brew"]) == (418, "no")
        assert await teapot.read() == b"short and stout"


async def test_stale_on_error_only_where_stale_if_error_allows_and_with_the_true_age(rig: Rig):
    state = {"up": True}

    def flaky(cc: str) -> Script:
        async def script(request: web.Request) -> web.Response:
            if not state["up"]:
                return web.Response(status=500, body=b"down")
            return web.Response(body=b"kept", headers={"Cache-Control": cc})

        return script

    rig.origin.scripts["/sie"] = flaky("max-age=1, stale-if-error=60")
    rig.origin.scripts["/plain"] = flaky("max-age=1")
    await rig.get("/sie")
    await rig.get("/plain")
    await asyncio.sleep(2.1)
    state["up"] = False
    async with rig.client.get(rig.edge + "/sie") as stale:
        assert (stale.status, await stale.read(), stale.headers["X-Cache"]) == (
            200,
            b"kept",
            "STALE",
        )
        assert int(stale.headers["Age"]) >= 2
    plain = await rig.get("/plain")
    assert plain.status == 500  # no stale-if-error and no grace configured: the origin's error


async def test_last_modified_alone_is_revalidated_with_if_modified_since(rig: Rig):
    modified = now_date(-3600)

    async def script(request: web.Request) -> web.Response:
        if request.headers.get("If-Modified-Since") == modified:
            return web.Response(status=304, headers={"Cache-Control": "max-age=0"})
        return web.Response(
            body=b"doc", headers={"Last-Modified": modified, "Cache-Control": "max-age=0"}
        )

    rig.origin.scripts["/lm"] = script
    await rig.get("/lm")
    async with rig.client.get(rig.edge + "/lm") as again:
        assert (again.status, await again.read(), again.headers["X-Cache"]) == (
            200, b"doc", "REVALIDATED",
        )  # fmt: skip
    assert rig.origin.heads[-1]["If-Modified-Since"] == modified


async def test_a_cold_object_answers_the_clients_conditional_after_the_fill(rig: Rig):
    rig.origin.scripts["/c"] = answer(("ETag", '"v1"'), ("Cache-Control", "max-age=60"))
    response = await rig.get("/c", headers={"If-None-Match": '"v1"'})
    assert response.status == 304
    assert "If-None-Match" not in rig.origin.heads[0]  # the edge fetched the whole object
    assert (await rig.get("/c", headers={"If-None-Match": '"v0"'})).status == 200
    assert rig.origin.requests["/c"] == 1


async def test_unsafe_methods_pass_through_and_invalidate(rig: Rig):
    rig.origin.scripts["/doc"] = answer(("Cache-Control", "max-age=600"))
    rig.origin.scripts["/other"] = answer(("Cache-Control", "max-age=600"))
    await rig.get("/doc")
    await rig.get("/other")
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        rig.origin.scripts["/doc"] = answer(("Cache-Control", "max-age=600"))
        response = await rig.get("/doc", method=method, data=b"payload")
        assert response.status == 200
        assert rig.origin.seen[-1].method == method and rig.origin.bodies[-1] == b"payload"
        assert (await rig.get("/doc")).headers["X-Cache"] == "MISS"
    assert rig.origin.requests["/doc"] == 9
    # A POST that names another resource in Location invalidates that one too.
    rig.origin.scripts["/form"] = answer(("Location", "/other"), status=201)
    await rig.get("/form", method="POST", data=b"x")
    assert (await rig.get("/other")).headers["X-Cache"] == "MISS"


@pytest.mark.parametrize("rig", [{"between_bytes_timeout": 0.5}], indirect=True)
async def test_an_origin_that_stalls_mid_body_cuts_every_waiter(rig: Rig):
    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Cache-Control": "max-age=60"})
        response.content_length = 1000
        await response.prepare(request)
        await response.write(b"x" * 500)
        await asyncio.sleep(4)
        return response

    rig.origin.scripts["/stall"] = stall

    async def waiter() -> type[BaseException] | None:
        try:
            await _body(rig, "/stall")
        except aiohttp.ClientPayloadError as e:
            return type(e)
        return None

    started = time.monotonic()
    outcomes = await asyncio.wait_for(asyncio.gather(*(waiter() for _ in range(4))), 10)
    assert outcomes == [aiohttp.ClientPayloadError] * 4
    assert time.monotonic() - started < 4  # cut by the edge, not ended by the origin


async def test_request_directives_are_honoured(rig: Rig):
    rig.origin.scripts["/r"] = answer(("Cache-Control", "max-age=600"))
    await rig.get("/r")
    assert (await rig.get("/r", headers={"Cache-Control": "no-cache"})).headers["X-Cache"] == "MISS"
    assert (await rig.get("/r", headers={"Cache-Control": "max-age=0"})).headers[
        "X-Cache"
    ] == "MISS"
    assert (await rig.get("/r")).headers["X-Cache"] == "HIT"
    assert (await rig.get("/none", headers={"Cache-Control": "only-if-cached"})).status == 504
    assert rig.origin.requests["/none"] == 0


async def test_two_workers_act_as_one_cache_with_ages_intact(tmp_path: Path):
    """Every request for a key is served by its owner worker, whichever worker it reached."""
    origin, origin_runner, origin_url = await _start_origin()
    origin.scripts["/shared"] = answer(("Cache-Control", "max-age=600"), ("Age", "50"))
    settings = EdgeSettings(origin=origin_url, cache_dir=tmp_path / "cache", generic=True)
    try:
        async with edge_workers(settings) as urls, aiohttp.ClientSession() as client:
            non_owner = urls[1 - owner("/shared", 2)]
            ages = []
            for url in (non_owner, *urls):
                async with client.get(url + "/shared") as response:
                    assert await response.read() == b"body"
                    ages.append(int(response.headers["Age"]))
            async with client.post(non_owner + "/shared", data=b"x") as response:
                assert response.status == 200
            async with client.get(urls[0] + "/shared") as response:
                assert response.headers["X-Cache"] == "MISS"  # the POST invalidated the owner's
        assert min(ages) >= 50
        assert origin.requests["/shared"] == 3  # GET, POST, GET after the invalidation
    finally:
        await origin_runner.cleanup()


@pytest.mark.parametrize("rig", [{"max_object_bytes": 1 << 20}], indirect=True)
@pytest.mark.parametrize("chunked", [False, True])
async def test_answers_larger_than_an_object_may_be_are_relayed_whole_and_not_stored(
    rig: Rig, chunked: bool
):
    big = bytes(range(256)) * (3 << 12)  # 3 MiB

    async def large(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Cache-Control": "max-age=600"})
        if chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = len(big)
        await response.prepare(request)
        for start in range(0, len(big), 1 << 16):
            await response.write(big[start : start + (1 << 16)])
        await response.write_eof()
        return response

    rig.origin.scripts["/big"] = large
    assert await _body(rig, "/big") == big
    assert await _body(rig, "/big") == big
    assert rig.origin.requests["/big"] == 2


async def test_a_pass_through_answer_is_relayed_whole(rig: Rig):
    big = bytes(range(256)) * 4096  # 1 MiB: many chunks

    async def large(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = len(big)
        await response.prepare(request)
        for start in range(0, len(big), 1 << 14):
            await response.write(big[start : start + (1 << 14)])
            await asyncio.sleep(0)
        await response.write_eof()
        return response

    rig.origin.scripts["/post"] = large
    async with rig.client.post(rig.edge + "/post", data=b"x") as response:
        assert (response.status, await response.read()) == (200, big)


async def test_a_miss_that_reads_the_disk_while_the_fill_is_stored_serves_that_copy(
    tmp_path: Path,
):
    """The second request misses memory and reads the disk (held up here behind the one
    worker thread) while the first one's fill ends and is stored: it is answered from that
    copy, not fetched from the origin a second time."""
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
    origin, origin_runner, origin_url = await _start_origin()
    ending = asyncio.Event()

    async def slow_end(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Cache-Control": "max-age=3600"})
        await response.prepare(request)  # chunked: the fill ends with the last chunk
        await response.write(b"body")
        await ending.wait()
        await response.write_eof()
        return response

    origin.scripts["/race"] = slow_end
    settings = EdgeSettings(
        origin=origin_url, cache_dir=tmp_path / "cache", generic=True, allow_unsigned=True,
        workers=1,
    )  # fmt: skip
    app = create_app(settings)
    edge_runner, edge_url = await serve(app)
    disk_free = threading.Event()
    try:
        async with aiohttp.ClientSession() as client:

            async def body() -> bytes:
                async with client.get(edge_url + "/race") as response:
                    assert response.status == 200
                    return await response.read()

            first = asyncio.create_task(body())
            await until(lambda: "/race" in app[INFLIGHT])  # its disk read is over
            held = loop.run_in_executor(None, disk_free.wait)
            second = asyncio.create_task(body())
            await asyncio.sleep(0.3)  # the second request waits for the disk
            ending.set()
            await until(lambda: "/race" not in app[INFLIGHT] and app[MEMORY].peek("/race"))
            disk_free.set()
            await held
            assert await asyncio.wait_for(asyncio.gather(first, second), 10) == [b"body"] * 2
        assert origin.requests["/race"] == 1
    finally:
        ending.set()
        disk_free.set()
        await asyncio.wait_for(edge_runner.cleanup(), 10)
        await asyncio.wait_for(origin_runner.cleanup(), 10)


async def until(condition: Callable[[], object], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)
