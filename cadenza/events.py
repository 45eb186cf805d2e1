"""Following the origin's event stream (publishes, takedowns, territory changes).

Edges purge and deny taken-down tracks, the locator stops new plays of them; both long-poll
``GET /v1/events?after=SEQ&timeout=S`` from the first event, so a service that starts late still
learns everything, and keep retrying through origin outages (logging once per outage).

With several origin replicas (one shared catalog, so one sequence of event ids), a poll that
fails moves on to the next replica at once, from the same last event id: no event is skipped
or applied twice. Only after every replica failed does the follower wait a second.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from cadenza.failover import Origins, sleep_between_rounds

LONG_POLL_SECONDS = 20
RETRY_SECONDS = 1.0
# A replica that holds a long poll this much past its timeout is taken for gone.
POLL_GRACE_SECONDS = 10

Event = dict[str, Any]


async def follow(
    client: aiohttp.ClientSession,
    origins: Origins | str,
    apply: Callable[[list[Event]], Awaitable[None]],
    logger: logging.Logger,
    after: int = 0,
    *,
    optional: bool = False,
) -> None:
    """Hand every batch of events to ``apply``, in order, forever (cancel to stop).

    ``optional``: an origin that answers 404 has no event stream (it is not a Cadenza origin);
    say so once and stop.
    """
    if isinstance(origins, str):
        origins = Origins([origins], logger)
    params = {"timeout": str(LONG_POLL_SECONDS)}
    timeout = aiohttp.ClientTimeout(total=LONG_POLL_SECONDS + POLL_GRACE_SECONDS)
    failing = False
    tried: set[str] = set()  # replicas that failed since the last answer
    while True:
        origin = origins.ordered()[0]
        try:
            params["after"] = str(after)
            url = f"{origin}/v1/events"
            async with client.get(url, params=params, timeout=timeout) as response:
                if optional and response.status == 404:
                    logger.info("the origin has no event stream; takedowns are not followed")
                    return
                response.raise_for_status()
                events: list[Event] = (await response.json())["events"]
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as e:
            if not failing:  # once per outage, not once per retry
                logger.warning("cannot read the origin's events (%s); retrying", e)
            failing = True
            origins.failed(origin, e or type(e).__name__)
            tried.add(origin)
            await sleep_between_rounds(tried, origins, RETRY_SECONDS)
            continue
        # Not origins.succeeded: a replica whose objects fail may still serve events, and the
        # fetcher's marks of it must stand.
        tried.clear()
        if failing:
            logger.warning("reading the origin's events again")
            failing = False
        if events:
            after = max(after, *(int(e["seq"]) for e in events))
            await apply(events)
