"""Takedowns reach the edge through the origin's event stream: purge and deny within seconds.

``Denials`` is pure (what is withdrawn where); ``follow_events`` applies the origin's event
stream (``cadenza.events``) to it and purges both tiers.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import aiohttp

from cadenza import events, layout
from cadenza.failover import Origins
from cadenza.log import get_logger
from edge.disk import DiskTier
from edge.memory import MemoryTier

logger = get_logger("edge.purge")


@dataclass
class Denials:
    """Track id -> territories taken down (None: everywhere)."""

    takedowns: dict[str, set[str | None]] = field(default_factory=dict)
    last_seq: int = 0
    generation: int = 0  # moves with every takedown recorded: answers remembered before are void

    def apply(self, batch: Iterable[events.Event]) -> list[str]:
        """Record takedown events; returns the tracks withdrawn everywhere (to purge)."""
        purge = []
        for event in batch:
            self.last_seq = max(self.last_seq, event.seq)
            if event.kind != events.TAKEDOWN:
                continue
            track, territory = event.track_id, event.territory
            self.takedowns.setdefault(track, set()).add(territory)
            self.generation += 1
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
    origins: Origins,
    denials: Denials,
    memory: MemoryTier,
    disk: DiskTier,
    *,
    optional: bool = False,
    answered: Callable[[], None] | None = None,
) -> None:
    async def apply(batch: list[events.Event]) -> None:
        for track in denials.apply(batch):
            prefix = f"{layout.track_prefix(track)}/"
            purged = memory.remove_prefix(prefix) + await disk.remove_prefix(prefix)
            logger.info("track %s withdrawn: purged %d objects", track, purged)

    await events.follow(
        client, origins, apply, logger, after=denials.last_seq, optional=optional, answered=answered
    )
