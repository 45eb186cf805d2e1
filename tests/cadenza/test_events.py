"""Catalog events: their JSON form, and following the stream through outages, in order."""

import asyncio
import contextlib
import logging

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

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
        seen.extend(e.seq for e in batch)
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


async def test_every_answer_is_reported_even_without_events():
    """A quiet catalog answers empty long polls; a metric of them tells it from a stall."""
    app = web.Application()

    async def event_log(request: web.Request) -> web.Response:
        return web.json_response({"events": []})

    app.router.add_get("/v1/events", event_log)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    answers = 0
    three = asyncio.Event()

    def answered() -> None:
        nonlocal answers
        answers += 1
        if answers == 3:
            three.set()

    async def apply(batch: list[events.Event]) -> None:
        raise AssertionError("no events were sent")

    logger = logging.getLogger("cadenza.test.events")
    async with aiohttp.ClientSession() as client:
        follow = events.follow(client, f"http://{host}:{port}", apply, logger, answered=answered)
        task = asyncio.create_task(follow)
        try:
            await asyncio.wait_for(three.wait(), 10)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    await runner.cleanup()


def test_an_event_reads_back_from_the_json_the_origin_writes():
    doc = {"seq": 7, "kind": "territories", "track_id": "0123456789abcdef", "territory": None,
           "data": {"territories": ["SE"]}, "at": 1.5e9}  # fmt: skip
    event = events.Event.from_json(doc)
    assert event == events.Event(7, events.TERRITORIES, "0123456789abcdef", None,
                                 {"territories": ["SE"]}, 1.5e9)  # fmt: skip
    assert event.to_json() == doc
    assert events.Event.from_json({"seq": 1, "kind": "new-kind", "track_id": "t"}).data == {}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "must be a JSON object"),
        ({"kind": "takedown", "track_id": "t"}, "'seq' must be a whole number"),
        ({"seq": True, "kind": "takedown", "track_id": "t"}, "'seq' must be a whole number"),
        ({"seq": 0, "kind": "takedown", "track_id": "t"}, "'seq' must be a whole number >= 1"),
        ({"seq": 1, "kind": "", "track_id": "t"}, "event 1: field 'kind'"),
        ({"seq": 1, "kind": "takedown"}, "field 'track_id' must be a string"),
        ({"seq": 1, "kind": "takedown", "track_id": "t", "territory": 5}, "'territory'"),
        ({"seq": 1, "kind": "takedown", "track_id": "t", "data": []}, "'data' must be an object"),
        ({"seq": 1, "kind": "takedown", "track_id": "t", "at": "now"}, "'at' must be a number"),
    ],
)
def test_a_malformed_event_is_named(doc, message):
    with pytest.raises(ValueError, match=message):
        events.Event.from_json(doc)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    st.builds(
        events.Event,
        seq=st.integers(1, 2**62),
        kind=st.text(min_size=1, max_size=12),
        track_id=st.text(max_size=20),
        territory=st.none() | st.text(max_size=3),
        data=st.dictionaries(st.text(max_size=8), _json, max_size=4),
        at=st.floats(0, 1e10),
    )
)
def test_every_event_survives_its_json(event):
    assert events.Event.from_json(event.to_json()) == event


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
        seen.extend(e.seq for e in batch)
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
