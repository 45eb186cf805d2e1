"""The poller against real stand-in edges on loopback: health judged, then published."""

import asyncio
import time

import aiohttp
from aiohttp import web

from bench.stub_edge import STATUS
from locator.fleet import Fleet
from locator.metrics import LocatorMetrics
from locator.poller import Poller
from locator.settings import EdgeConfig, LocatorSettings
from locator.shares import SharedFleet, SharedState
from tests.loopback import serve


async def test_edges_are_polled_judged_and_published_for_the_other_workers():
    up = {"a": True, "b": True}

    def edge_app(name: str) -> web.Application:
        async def status(request: web.Request) -> web.Response:
            if not up[name]:
                raise web.HTTPServiceUnavailable()
            return web.json_response({**STATUS, "egress_bps": 5e8 if name == "a" else 0.0})

        app = web.Application()
        app.router.add_get("/status", status)
        return app

    runners, configs = [], []
    for name in up:
        runner, url = await serve(edge_app(name))
        runners.append(runner)
        configs.append(EdgeConfig(name, "eu-west", url, 48.86, 2.35, 1e9))
    settings = LocatorSettings(edges=tuple(configs), poll_interval=0.05, poll_timeout=0.5)
    state = SharedState.allocate(list(up), workers=2)
    polling = SharedFleet(Fleet([c.view() for c in configs]), state.health, polling=True)
    other = SharedFleet(Fleet([c.view() for c in configs]), state.health, polling=False)
    metrics = LocatorMetrics()
    async with aiohttp.ClientSession() as client:
        poller = Poller(settings, polling, client, metrics)
        tasks = [asyncio.create_task(poller.poll_forever()),
                 asyncio.create_task(poller.publish_forever())]  # fmt: skip
        try:
            await _until(lambda: other.current().healthy_ids() == {"a", "b"})
            assert other.current().views[0].load == 0.5  # the loads come along
            up["b"] = False
            await _until(lambda: other.current().healthy_ids() == {"a"})
            assert polling.current().health["b"].state == "down"
            assert metrics.registry.get_sample_value("cadenza_locator_edges_up") == 1
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for runner in runners:
                await runner.cleanup()


async def _until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the deadline"
        await asyncio.sleep(0.02)
