"""Following the origin's event stream through outages, in order, from where it left off."""

import asyncio
import contextlib
import logging

import aiohttp
import pytest
from aiohttp import web

from cadenza import events
from cadenza.failover import Origins

EVENTS = [{"seq": n, "kind": "takedown", "track_id": f"{n:016x}"} for n in range(1, 6)]


async def test_batches_arrive_in_order_and_an_outage_is_logged_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(events, "RETRY_SECONDS", 0.01)
    asked: list[int] = []
    failures = 3

    async def event_log(request: web.Request) -> web.Response:
        nonlocal failures
        after = int(request.query["after"])
        asked.append(after)
        if after == 2 and failures:  # an outage after the first batch
            failures -= 1
            raise web.HTTPServiceUnavailable()
        found = [e for e in EVENTS if e["seq"] > after][:2]
        if not found:
            await asyncio.sleep(0.05)
        return web.json_response({"events": found})

    app = web.Application()
    app.router.add_get("/v1/events", event_log)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    seen: list[int] = []
    done = asyncio.Event()

    async def apply(batch: list[events.Event]) -> None:
        seen.extend(e["seq"] for e in batch)
        if len(seen) == len(EVENTS):
            done.set()

    logger = logging.getLogger("cadenza.test.events")
    async with aiohttp.ClientSession() as client:
        task = asyncio.create_task(events.follow(client, f"http://{host}:{port}", apply, logger))
        try:
            await asyncio.wait_for(done.wait(), 10)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    await runner.cleanup()
    assert seen == [1, 2, 3, 4, 5]
    assert asked[:5] == [0, 2, 2, 2, 2]
    warnings = [r.getMessage() for r in caplog.records if r.name == logger.name]
    assert len([w for w in warnings if "cannot read" in w]) == 1
    assert "reading the origin's events again" in warnings


async def test_a_failing_replica_is_left_at_once_for_the_next_from_the_same_id(
    monkeypatch: pytest.MonkeyPatch,
):
    """Two replicas of one catalog: the first fails after the first batch; the follower asks
    the second with the id it had, without waiting, and skips nothing."""
    monkeypatch.setattr(events, "RETRY_SECONDS", 30)  # a wait would fail the test's bound
    asked: list[tuple[str, int]] = []
    broken = False

    def replica(name: str) -> web.Application:
        async def event_log(request: web.Request) -> web.Response:
            after = int(request.query["after"])
            asked.append((name, after))
            if name == "first" and broken:
                raise web.HTTPBadGateway()
            found = [e for e in EVENTS if e["seq"] > after][:2]
            if not found:
                await asyncio.sleep(0.05)
            return web.json_response({"events": found})

        app = web.Application()
        app.router.add_get("/v1/events", event_log)
        return app

    runners = []
    for name in ("first", "second"):
        runner = web.AppRunner(replica(name))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
    urls = [f"http://127.0.0.1:{r.addresses[0][1]}" for r in runners]
    seen: list[int] = []
    done = asyncio.Event()

    async def apply(batch: list[events.Event]) -> None:
        nonlocal broken
        seen.extend(e["seq"] for e in batch)
        broken = True  # the first replica fails from now on
        if len(seen) == len(EVENTS):
            done.set()

    logger = logging.getLogger("cadenza.test.events")
    async with aiohttp.ClientSession() as client:
        origins = Origins(urls, logger)
        task = asyncio.create_task(events.follow(client, origins, apply, logger))
        try:
            await asyncio.wait_for(done.wait(), 10)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    for runner in runners:
        await runner.cleanup()
    assert seen == [1, 2, 3, 4, 5]
    assert asked[:3] == [("first", 0), ("first", 2), ("second", 2)]
