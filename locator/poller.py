"""The locator's view of its edges' health: each edge's ``/status`` polled every poll interval,
judged with hysteresis (``locator.health``) and published for the other workers
(``locator.shares.SharedFleet``). One worker runs it.
"""

import asyncio
import time

import aiohttp

from cadenza.log import get_logger
from cadenza.status import EdgeStatus
from locator.metrics import LocatorMetrics
from locator.settings import EdgeConfig, LocatorSettings
from locator.shares import SharedFleet

logger = get_logger("locator")

PUBLISH_EVERY = 0.05  # seconds: how soon the other workers learn that an edge went up or down
PUBLISH_LOADS_EVERY = 0.25  # seconds: how soon they learn of a change of load


class Poller:
    def __init__(
        self,
        settings: LocatorSettings,
        shared: SharedFleet,
        client: aiohttp.ClientSession,
        metrics: LocatorMetrics,
    ) -> None:
        self.settings = settings
        self.shared = shared
        self.client = client
        self.metrics = metrics

    async def poll_forever(self) -> None:
        """Each edge every poll interval, the edges' polls spread evenly over it.

        Polling them all at once would hold this worker's loop for the whole round, a few
        milliseconds per ten edges, twice a second: the tail latency of the plays it serves.
        """
        edges, interval = self.settings.edges, self.settings.poll_interval
        if not edges:
            return
        loop = asyncio.get_running_loop()
        step = interval / len(edges)
        polls: dict[str, asyncio.Task[None]] = {}
        start, turn = loop.time(), 0
        try:
            while True:
                edge = edges[turn % len(edges)]
                under_way = polls.get(edge.id)
                if under_way is None or under_way.done():  # one poll per edge at a time
                    polls[edge.id] = asyncio.create_task(self.poll(edge))
                turn += 1
                behind = loop.time() - (start + turn * step)
                if behind > interval:  # after a stall: on from now, not a burst
                    start += behind
                await asyncio.sleep(max(0.0, start + turn * step - loop.time()))
        finally:
            for task in polls.values():
                task.cancel()
            await asyncio.gather(*polls.values(), return_exceptions=True)

    async def publish_forever(self) -> None:
        """What the polls found, for the other workers: an edge going up, down or draining at
        once, changes of load every PUBLISH_LOADS_EVERY seconds (every edge's, each time)."""
        shared, loop = self.shared, asyncio.get_running_loop()
        published = 0.0
        while True:
            now = loop.time()
            if shared.changed and (shared.urgent or now - published >= PUBLISH_LOADS_EVERY):
                shared.changed = shared.urgent = False
                published = now
                try:
                    shared.publish()
                except ValueError as e:  # the other workers keep the last health they read
                    logger.error("edge health not shared with the other workers: %s", e)
                self.metrics.edges_up.set(len(shared.fleet.healthy_ids()))
            await asyncio.sleep(PUBLISH_EVERY)

    async def poll(self, edge: EdgeConfig) -> None:
        shared = self.shared
        health = shared.fleet.health[edge.id]
        timeout = aiohttp.ClientTimeout(total=self.settings.poll_timeout)
        try:
            async with self.client.get(f"{edge.url}/status", timeout=timeout) as response:
                response.raise_for_status()
                status = EdgeStatus.from_json(await response.json())
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            shared.changed = True
            if health.observe_failure(time.time()):
                shared.urgent = True
                logger.warning("edge %s is down (%s)", edge.id, e or type(e).__name__)
                self.metrics.health_transitions.labels(edge.id, "down").inc()
            return
        shared.changed = True
        draining = health.draining
        if health.observe_success(status, time.time()):
            shared.urgent = True
            logger.info("edge %s is up", edge.id)
            self.metrics.health_transitions.labels(edge.id, "up").inc()
        if health.draining != draining:  # it wants no new plays, or wants them again
            shared.urgent = True
