"""The origin's catalog events (publishes, takedowns, territory changes), and following them.

``Event`` is the one type on both sides: the origin writes ``to_json`` into ``GET /v1/events``,
followers read it back with ``from_json``. Edges purge and deny taken-down tracks, the locator
stops new plays of them; both long-poll ``GET /v1/events?after=SEQ&timeout=S`` from the first
event, so a service that starts late still learns everything, and keep retrying through origin
outages (logging once per outage).

With several origin replicas (one shared catalog, so one sequence of event ids), a poll that
fails moves on to the next replica at once, from the same last event id: no event is skipped
or applied twice. Only after every replica failed does the follower wait a second.
"""

import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from cadenza.failover import Origins, sleep_between_rounds

LONG_POLL_SECONDS = 20
RETRY_SECONDS = 1.0
# A replica that holds a long poll this much past its timeout is taken for gone.
POLL_GRACE_SECONDS = 10

PUBLISHED = "published"  # data: the version published and what it replaced
TAKEDOWN = "takedown"  # territory None: everywhere
TERRITORIES = "territories"  # data: {"territories": [...] or None}


@dataclass(frozen=True)
class Event:
    """One row of the catalog's event log; ``seq`` orders them (the commit order).

    Followers skip kinds they do not know, so the origin can add kinds without breaking them.
    """

    seq: int
    kind: str
    track_id: str
    territory: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0  # when it was written, seconds since the epoch

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind,
            "track_id": self.track_id,
            "territory": self.territory,
            "data": self.data,
            "at": self.at,
        }

    @classmethod
    def from_json(cls, doc: object) -> "Event":
        """The event in ``doc``, a decoded JSON object; ValueError naming the first bad field."""
        if not isinstance(doc, Mapping):
            raise ValueError(f"an event must be a JSON object, got {type(doc).__name__}")
        seq, kind, track_id = doc.get("seq"), doc.get("kind"), doc.get("track_id")
        territory, data, at = doc.get("territory"), doc.get("data", {}), doc.get("at", 0.0)
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            raise ValueError(f"event field 'seq' must be a whole number >= 1: {seq!r:.40}")
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"event {seq}: field 'kind' must be a non-empty string: {kind!r:.40}")
        if not isinstance(track_id, str):
            raise ValueError(f"event {seq}: field 'track_id' must be a string: {track_id!r:.40}")
        if territory is not None and not isinstance(territory, str):
            raise ValueError(f"event {seq}: field 'territory' must be a string or null")
        if not isinstance(data, dict):
            raise ValueError(f"event {seq}: field 'data' must be an object")
        if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
            raise ValueError(f"event {seq}: field 'at' must be a number: {at!r:.40}")
        return cls(seq, kind, track_id, territory, data, float(at))


async def follow(
    client: aiohttp.ClientSession,
    origins: Origins | str,
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
                docs = (await response.json())["events"]
                events = [Event.from_json(doc) for doc in docs]
        except (aiohttp.ClientError, TimeoutError, KeyError, TypeError, ValueError) as e:
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
            after = max(after, *(e.seq for e in events))
            await apply(events)
        if answered is not None:
            answered()
