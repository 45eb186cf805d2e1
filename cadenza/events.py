"""Following the origin's event stream (publishes, takedowns, territory changes).

Edges purge and deny taken-down tracks, the locator stops new plays of them; both long-poll
``GET /v1/events?after=SEQ&timeout=S`` from the first event, so a service that starts late still
learns everything, and keep retrying through origin outages (logging once per outage).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

LONG_POLL_SECONDS = 20
RETRY_SECONDS = 1.0

Event = dict[str, Any]


async def follow(
    client: aiohttp.ClientSession,
    origin: str,
    apply: Callable[[list[Event]], Awaitable[None]],
    logger: logging.Logger,
    after: int = 0,
    *,
    optional: bool = False,
    answered: Callable[[], None] | None = None,
) -> None:
    """Hand every batch of events to ``apply``, in order, forever (cancel to stop).

    ``optional``: an origin that answers 404 has no event stream (it is not a Cadenza origin);
    say so once and stop. ``answered`` is called after every answer of the stream, empty long
    polls included, so a metric of it tells a quiet catalog from a stalled stream.
    """
    url = f"{origin.rstrip('/')}/v1/events"
    failing = False
    while True:
        try:
            params = {"after": str(after), "timeout": str(LONG_POLL_SECONDS)}
            async with client.get(url, params=params) as response:
                if optional and response.status == 404:
                    logger.info("the origin has no event stream; takedowns are not followed")
                    return
                response.raise_for_status()
                events: list[Event] = (await response.json())["events"]
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as e:
            if not failing:  # once per outage, not once per retry
                logger.warning("cannot read the origin's events (%s); retrying every second", e)
            failing = True
            await asyncio.sleep(RETRY_SECONDS)
            continue
        if failing:
            logger.warning("reading the origin's events again")
            failing = False
        if events:
            after = max(after, *(int(e["seq"]) for e in events))
            await apply(events)
        if answered is not None:
            answered()
