"""A player's own downloads held to a network trace, on a clock that may run faster than real.

Loopback is far faster than any mobile network, so a player that should live through a trace
delays each chunk of a response until the trace would have delivered it: cumulative bytes never
arrive earlier than ``arrival_s`` allows (they may arrive later, when the real link is slower).
The play's clock runs ``speed`` times faster than the wall clock so tests and benchmarks can
play minutes of music in seconds; traces, buffers and timings are all read on that clock.
"""

import asyncio
import math
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable

from player.traces import Trace, download_time, first_byte_s


class PlayClock:
    """Seconds since the play began, at ``speed`` times the wall clock."""

    def __init__(self, speed: float = 1.0, wall: Callable[[], float] = time.monotonic) -> None:
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a positive number, got {speed!r}")
        self.speed = speed
        self._wall = wall
        self._epoch = wall()

    def now(self) -> float:
        return (self._wall() - self._epoch) * self.speed

    def wall_seconds(self, seconds: float) -> float:
        """How long ``seconds`` of the play's clock last on the wall clock."""
        return max(0.0, seconds) / self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(self.wall_seconds(seconds))

    async def sleep_until(self, when: float) -> None:
        await self.sleep(when - self.now())


def arrival_s(trace: Trace, sent_s: float, nbytes: float) -> float:
    """Seconds after ``sent_s`` by which the first ``nbytes`` of a response may have arrived.

    A request sent at trace time ``sent_s`` waits one latency, then the bytes flow at the
    trace's bandwidth (``player.traces.download_time``), so the figure never falls as
    ``nbytes`` grows and a later request never completes earlier.
    """
    return download_time(trace, sent_s, max(0.0, nbytes))


async def head_arrived(trace: Trace | None, clock: PlayClock, sent_s: float) -> float:
    """Seconds from ``sent_s`` to a response's head, which a shaped link holds for the trace's
    latency first: the time to the first byte that a player measures apart from the transfer."""
    if trace is not None:
        await clock.sleep_until(sent_s + first_byte_s(trace, sent_s))
    return clock.now() - sent_s


async def shaped(
    chunks: AsyncIterable[bytes], trace: Trace | None, clock: PlayClock, sent_s: float
) -> AsyncIterator[bytes]:
    """``chunks`` of a response to a request sent at ``sent_s``, each held back until due."""
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if trace is not None:
            await clock.sleep_until(sent_s + arrival_s(trace, sent_s, total))
        yield chunk
