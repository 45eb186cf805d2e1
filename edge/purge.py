"""Takedowns reach the edge through the origin's event stream: purge and deny within seconds.

``Denials`` is pure (what is withdrawn where); ``follow_events`` long-polls the origin from the
first event, so an edge that starts late still learns every takedown.
"""

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from cadenza import layout
from cadenza.log import get_logger
from edge.disk import DiskTier
from edge.memory import MemoryTier

logger = get_logger("edge.purge")
LONG_POLL_SECONDS = 20
RETRY_SECONDS = 1.0


@dataclass
class Denials:
    """Track id -> territories taken down (None: everywhere)."""

    takedowns: dict[str, set[str | None]] = field(default_factory=dict)
    last_seq: int = 0

    def apply(self, events: Iterable[dict[str, Any]]) -> list[str]:
        """Record takedown events; returns the tracks withdrawn everywhere (to purge)."""
        purge = []
        for event in events:
            self.last_seq = max(self.last_seq, int(event["seq"]))
            if event.get("kind") != "takedown":
                continue
            track, territory = event["track_id"], event.get("territory")
            self.takedowns.setdefault(track, set()).add(territory)
            if territory is None:
                purge.append(track)
        return purge

    def denied(self, key: str, territory: str | None) -> int | None:
        """410 for a track withdrawn everywhere, 451 in a territory it was taken down in."""
        parts = key.split("/")
        taken = self.takedowns.get(parts[1]) if len(parts) > 1 else None
        if not taken:
            return None
        if None in taken:
            return 410
        return 451 if territory is not None and territory in taken else None


async def follow_events(
    client: aiohttp.ClientSession,
    origin: str,
    denials: Denials,
    memory: MemoryTier,
    disk: DiskTier,
) -> None:
    url = f"{origin.rstrip('/')}/v1/events"
    failing = False
    while True:
        try:
            params = {"after": str(denials.last_seq), "timeout": str(LONG_POLL_SECONDS)}
            async with client.get(url, params=params) as response:
                response.raise_for_status()
                events = (await response.json())["events"]
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as e:
            if not failing:  # once per outage, not once per retry
                logger.warning("cannot read the origin's events (%s); retrying every second", e)
            failing = True
            await asyncio.sleep(RETRY_SECONDS)
            continue
        if failing:
            logger.warning("reading the origin's events again")
            failing = False
        for track in denials.apply(events):
            prefix = f"{layout.track_prefix(track)}/"
            purged = memory.remove_prefix(prefix) + await disk.remove_prefix(prefix)
            logger.info("track %s withdrawn: purged %d objects", track, purged)
