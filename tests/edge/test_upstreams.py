"""Origin replicas: an edge fails over to the next one, and follows their events from the same
event id, against fake origins on loopback (the outer edge of the system)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from cadenza.failover import Origins
from cadenza.log import get_logger
from edge.app import create_app
from edge.settings import EdgeSettings
from edge.upstreams import ORIGIN, PARENT, Upstreams
from tests.edge.test_app import SEGMENT, TRACK, VERSION, FakeOrigin, body_of
from tests.loopback import serve

OTHER = f"/tracks/{TRACK}/{VERSION}/aac_96/seg_00002.m4s"


class Stack(contextlib.AsyncExitStack):
    """Servers that a test starts, each stopped (within a bound) when the test ends."""

    async def start(self, app: web.Application) -> tuple[web.AppRunner, str]:
        runner, url = await serve(app)
        self.push_async_callback(stop_runner, runner)
        return runner, url


async def stop_runner(runner: web.AppRunner) -> None:
    if runner.server is not None:  # not stopped by the test already
        await asyncio.wait_for(runner.cleanup(), 10)


def origin_app(fake: FakeOrigin) -> web.Application:
    app = web.Application()
    app.router.add_get("/tracks/{tail:.*}", fake.track)
    app.router.add_get("/v1/events", fake.event_log)
    return app


async def dead_url() -> str:
    """A loopback URL where nothing listens any more (connections refused)."""
    runner, url = await serve(web.Application())
    await runner.cleanup()
    return url


def edge_settings(tmp_path: Path, origins: list[str], **more: object) -> EdgeSettings:
    return EdgeSettings(
        origin=",".join(origins),
        cache_dir=tmp_path / "edge-cache",
        first_byte_timeout=5,  # no test here waits for it: slack for a loaded machine
        readahead_seconds=0,
        allow_unsigned=True,
        **more,  # type: ignore[arg-type]
    )


async def metric(client: aiohttp.ClientSession, edge: str, line_start: str) -> float:
    async with client.get(f"{edge}/metrics") as response:
        text = await response.text()
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith(line_start)]  # fmt: skip
    return sum(values)


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with Stack() as servers:
        yield servers


async def test_the_next_origin_serves_when_the_first_is_down(stack: Stack, tmp_path: Path):
    fake = FakeOrigin()
    _, good = await stack.start(origin_app(fake))
    dead = await dead_url()
    _, edge = await stack.start(create_app(edge_settings(tmp_path, [dead, good])))
    async with aiohttp.ClientSession() as client:
        failed_over = f'cadenza_edge_upstream_failovers_total{{kind="origin",upstream="{dead}"}}'
        async with client.get(edge + SEGMENT) as r:
            assert (r.status, await r.read()) == (200, body_of(SEGMENT))
        # The dead one is asked at most once (the event follower may have found it dead first),
        # then last: the second object goes straight to the good one.
        once = await metric(client, edge, failed_over)
        async with client.get(edge + OTHER) as r:
            assert r.status == 200
        assert once <= 1 and await metric(client, edge, failed_over) == once
        served = (
            f'cadenza_edge_upstream_fetches_total{{kind="origin",result="200",upstream="{good}"'
        )
        assert await metric(client, edge, served) == 2
    assert fake.requests[SEGMENT] == fake.requests[OTHER] == 1


async def test_an_origin_answering_503_is_passed_over_before_any_byte(stack: Stack, tmp_path: Path):
    failing, good = FakeOrigin(down=True), FakeOrigin()
    _, failing_url = await stack.start(origin_app(failing))
    _, good_url = await stack.start(origin_app(good))
    _, edge = await stack.start(create_app(edge_settings(tmp_path, [failing_url, good_url])))
    async with aiohttp.ClientSession() as client:
        for path in (SEGMENT, OTHER):
            async with client.get(edge + path) as r:
                assert (r.status, await r.read()) == (200, body_of(path))
    assert (failing.requests[SEGMENT], failing.requests[OTHER]) == (1, 0)
    assert (good.requests[SEGMENT], good.requests[OTHER]) == (1, 1)


async def test_when_every_origin_fails_the_last_answer_stands(stack: Stack, tmp_path: Path):
    first, second = FakeOrigin(down=True), FakeOrigin(down=True)
    _, first_url = await stack.start(origin_app(first))
    _, second_url = await stack.start(origin_app(second))
    _, edge = await stack.start(create_app(edge_settings(tmp_path, [first_url, second_url])))
    async with aiohttp.ClientSession() as client, client.get(edge + SEGMENT) as r:
        assert r.status == 503
    assert first.requests[SEGMENT] == second.requests[SEGMENT] == 1  # one retry, not a storm


async def test_events_resume_from_the_last_id_on_the_other_replica(stack: Stack, tmp_path: Path):
    """Replicas share one catalog, so one event log: the follower moves to the survivor with
    the id it had, and a takedown written there reaches the edge."""
    log: list[dict[str, object]] = []
    first, second = FakeOrigin(events=log), FakeOrigin(events=log)
    asked: list[str] = []

    def recording(fake: FakeOrigin) -> web.Application:
        app = origin_app(fake)

        @web.middleware
        async def record(request: web.Request, handler: Callable) -> web.StreamResponse:
            if request.path == "/v1/events":
                asked.append(request.query["after"])
            return await handler(request)

        app.middlewares.append(record)
        return app

    first_runner, first_url = await stack.start(recording(first))
    _, second_url = await stack.start(recording(second))
    _, edge = await stack.start(create_app(edge_settings(tmp_path, [first_url, second_url])))
    other = "fedcba9876543210"
    log.append({"seq": 7, "kind": "takedown", "track_id": other, "territory": None})
    async with aiohttp.ClientSession() as client:
        await until(lambda: "7" in asked)
        await first_runner.cleanup()  # the first replica dies mid long poll
        log.append({"seq": 8, "kind": "takedown", "track_id": TRACK, "territory": None})

        async def withdrawn() -> bool:
            async with client.get(edge + SEGMENT) as r:
                return r.status == 410

        for _ in range(100):
            if await withdrawn():
                break
            await asyncio.sleep(0.05)
        assert await withdrawn()
    assert "0" in asked and not any(int(a) < 7 for a in asked[asked.index("7") :])


async def until(condition: Callable[[], bool], seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.02)


def test_a_plan_ranks_parents_for_the_key_then_two_origins():
    origins = Origins(["http://o1", "http://o2", "http://o3"], get_logger("test"))
    upstreams = Upstreams(origins, ["http://p1", "http://p2"], {"k1": b"0123456789abcdef"})
    key = SEGMENT.lstrip("/")
    plan = upstreams.plan(key, SEGMENT, music=True)
    assert [u.kind for u in plan] == [PARENT, PARENT, ORIGIN, ORIGIN]
    assert [u.url for u in plan[2:]] == ["http://o1", "http://o2"]
    assert plan[0].target.startswith("/p/") and plan[0].target.endswith(SEGMENT)
    assert plan[2].target == SEGMENT  # the origin takes no token
    assert [u.kind for u in upstreams.plan(key, SEGMENT, music=False)] == [ORIGIN, ORIGIN]
    upstreams.failed(plan[0], "refused")
    replan = upstreams.plan(key, SEGMENT, music=True)
    assert [u.url for u in replan[:1]] == [plan[1].url] and len(replan) == 3
    unsigned = Upstreams(origins, ["http://p1"])
    assert unsigned.plan(key, SEGMENT, music=True)[0].target == SEGMENT
