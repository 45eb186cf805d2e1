"""Asking one of several origin replicas, against fake replicas on loopback."""

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from cadenza.errors import ConfigError
from cadenza.failover import Origins, require_any_reachable
from cadenza.log import get_logger
from tests.loopback import serve

LOGGER = get_logger("test.failover")


class Replica:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.asked: Counter[str] = Counter()

    async def answer(self, request: web.Request) -> web.Response:
        self.asked[request.path_qs] += 1
        return web.Response(status=self.status, text=f"{self.status} {request.path_qs}")


@pytest.fixture
async def replicas() -> AsyncIterator[tuple[list[Replica], list[str]]]:
    """Two replicas that answer, and the URL of one where nothing listens."""
    found: list[Replica] = [Replica(), Replica()]
    urls = []
    async with contextlib.AsyncExitStack() as stack:
        for replica in found:
            app = web.Application()
            app.router.add_get("/{tail:.*}", replica.answer)
            runner, url = await serve(app)
            stack.push_async_callback(runner.cleanup)
            urls.append(url)
        runner, dead = await serve(web.Application())
        await runner.cleanup()
        urls.append(dead)
        yield found, urls


async def test_a_replica_that_refuses_connections_is_passed_over_then_asked_last(replicas):
    (first, _), (url, _, dead) = replicas
    origins = Origins([dead, url], LOGGER)
    async with aiohttp.ClientSession() as client:
        status, body = await origins.get(client, "/v1/x", params={"a": "1"}, timeout=5)
        assert (status, body) == (200, b"200 /v1/x?a=1")
        assert origins.ordered() == [url, dead]  # the dead one is down for a while
        assert (await origins.get(client, "/v1/y", timeout=5))[0] == 200
    assert first.asked == {"/v1/x?a=1": 1, "/v1/y": 1}


async def test_a_5xx_is_retried_once_on_the_next_replica(replicas):
    (failing, good), (failing_url, good_url, _) = replicas
    failing.status = 503
    origins = Origins([failing_url, good_url], LOGGER)
    async with aiohttp.ClientSession() as client:
        assert await origins.get(client, "/a", timeout=5) == (200, b"200 /a")
        good.status = 502
        # Both fail now: the last answer stands, and only two replicas were asked.
        assert (await origins.get(client, "/b", timeout=5))[0] in (502, 503)
    assert failing.asked["/a"] + good.asked["/a"] == 2
    assert failing.asked["/b"] + good.asked["/b"] == 2


async def test_4xx_answers_are_answers(replicas):
    (first, second), (url, other, _) = replicas
    first.status = 404
    origins = Origins([url, other], LOGGER)
    async with aiohttp.ClientSession() as client:
        assert (await origins.get(client, "/gone", timeout=5))[0] == 404
    assert second.asked == {}


async def test_when_no_replica_can_be_reached_the_error_is_raised(replicas):
    _, (_, _, dead) = replicas
    origins = Origins([dead], LOGGER)
    async with aiohttp.ClientSession() as client:
        with pytest.raises(aiohttp.ClientConnectionError):
            await origins.get(client, "/a", timeout=5)


async def test_one_reachable_replica_is_enough_to_start(replicas):
    _, (url, _, dead) = replicas
    await asyncio.to_thread(require_any_reachable, [dead, url], 5, "the origin", "--origin")
    with pytest.raises(ConfigError, match=f"cannot reach the origin at {dead} .*--origin"):
        await asyncio.to_thread(require_any_reachable, [dead], 0.3, "the origin", "--origin")
    require_any_reachable([dead], 0, "the origin", "--origin")  # 0: not checked
