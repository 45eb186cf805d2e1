"""A listening queue: tracks one after the other, each next one made ready while the current
one's buffer plays out, so that the change between them is gapless.

Once every segment of the current track that the listener will hear has arrived (its last
segment, or the last before a skip), the player still has up to its buffer's worth of audio to
play. That is when it asks the locator for the next track's play and fetches what that play
reads first (``session.prepare``: the probe playlist, the first rung's playlist, init and first
segment) into the local cache, or into memory without one. When the current track ends, the
next play starts from the device: its startup is the gap the listener hears.

The gap of a change is measured on the play's clock: the wait, if any, for the preparation to
finish after the previous track ended, plus the next play's startup (from its start to its
first segment in the buffer). A play that fails is reported and the queue goes on with the
next track, as a player would.
"""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from player.abr import DEFAULT_MAX_BUFFER_S, DEFAULT_RULE, RULES, make_rule
from player.cache import MemoryObjects, ObjectSource
from player.hls import Multivariant
from player.qoe import QoE
from player.session import PlaybackFailed, play, prepare
from player.traces import Trace

MAX_QUEUE = 100


@dataclass(frozen=True)
class Entry:
    """One track of a queue as it went: its QoE or the reason it failed, and the gap before
    it (None for the first track)."""

    track_id: str
    qoe: QoE | None
    error: str | None
    gap_s: float | None
    prepared: bool  # whether it started from what was fetched ahead

    def to_json(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "status": "ok" if self.qoe is not None else "failed",
            "gap_ms": None if self.gap_s is None else round(self.gap_s * 1e3, 1),
            "prepared": self.prepared,
            **({"error": self.error} if self.error else {}),
            **({"qoe": self.qoe.to_json()} if self.qoe is not None else {}),
        }


async def play_queue(
    track_ids: Sequence[str],
    locator_url: str,
    *,
    territory: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    rule: str = DEFAULT_RULE,
    trace: Trace | None = None,
    speed: float = 1.0,
    max_buffer_s: float = DEFAULT_MAX_BUFFER_S,
    timeout_s: float | None = None,
    cache: ObjectSource | None = None,
    max_segments: Sequence[int | None] | None = None,
    listener: str | None = None,
    report: bool = True,
) -> list[Entry]:
    """Play ``track_ids`` in order, each next one prepared during the current one's last
    buffer; one Entry per track. ``timeout_s`` bounds each play; ``max_segments`` (one per
    track) makes the listener skip after that many segments. One ABR rule plays every track,
    so the next track starts at the rung the link has been giving, not from scratch."""
    if not 1 <= len(track_ids) <= MAX_QUEUE:
        raise ValueError(f"a queue holds 1 to {MAX_QUEUE} tracks, not {len(track_ids)}")
    store = cache if cache is not None else MemoryObjects()
    entries: list[Entry] = []
    abr = make_rule(rule) if rule in RULES else None  # a bad name: the play says so
    ahead = Ahead()
    ended: float | None = None  # wall clock when the previous track ended
    try:
        for n, track_id in enumerate(track_ids):
            # Without a prepared answer the play itself asks again, and says why if it fails.
            master = await ahead.take(timeout_s)
            waited = 0.0 if ended is None else (time.monotonic() - ended) * speed
            following = track_ids[n + 1] if n + 1 < len(track_ids) else None

            def start_next(following: str | None = following) -> None:
                if following is not None:
                    ahead.start(
                        following, locator_url, store, territory=territory, lat=lat, lon=lon,
                        rule=rule, max_buffer_s=max_buffer_s, trace=trace, speed=speed,
                        listener=listener, abr=abr,
                    )  # fmt: skip

            try:
                qoe = await play(
                    track_id, locator_url, territory=territory, lat=lat, lon=lon, rule=rule,
                    trace=trace, speed=speed, max_buffer_s=max_buffer_s, timeout_s=timeout_s,
                    max_segments=max_segments[n] if max_segments else None, cache=store,
                    prepared=master, on_downloaded=start_next, listener=listener, report=report,
                    abr=abr,
                )  # fmt: skip
            except PlaybackFailed as e:
                entries.append(Entry(track_id, None, str(e), None, master is not None))
                ended = time.monotonic()
                continue
            gap = None if n == 0 else waited + qoe.startup_s
            entries.append(Entry(track_id, qoe, None, gap, master is not None))
            ended = time.monotonic()
    finally:
        await ahead.cancel()
    return entries


class Ahead:
    """The next track's preparation (``session.prepare``): started once, when the current
    track's last segment has arrived, and taken when the next play begins."""

    def __init__(self) -> None:
        self._task: asyncio.Task[Multivariant] | None = None

    def start(self, track_id: str, locator_url: str, cache: ObjectSource, **options: Any) -> None:
        """Prepare ``track_id`` in the background, unless a preparation is already pending."""
        if self._task is None:
            self._task = asyncio.create_task(prepare(track_id, locator_url, cache, **options))

    async def take(self, timeout_s: float | None) -> Multivariant | None:
        """The prepared play answer; None when nothing was prepared, or its play was refused
        or not answered within ``timeout_s``."""
        task, self._task = self._task, None
        if task is None:
            return None
        try:
            return await asyncio.wait_for(task, timeout_s)
        except (PlaybackFailed, TimeoutError):
            return None

    async def cancel(self) -> None:
        """Stop a pending preparation (the queue or the session ended)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def render(entries: Sequence[Entry]) -> str:
    """The queue for people: each track's QoE, and the gap before it."""
    blocks = []
    for n, e in enumerate(entries, 1):
        head = f"{n}. track {e.track_id}"
        if e.gap_s is not None:
            head += f", gap {e.gap_s * 1e3:.0f} ms" + (" (prepared)" if e.prepared else "")
        body = e.qoe.render() if e.qoe is not None else f"   failed: {e.error}"
        blocks.append(f"{head}\n{body}")
    gaps = [e.gap_s for e in entries if e.gap_s is not None]
    if gaps:
        blocks.append(f"gaps: longest {max(gaps) * 1e3:.0f} ms over {len(gaps)} changes")
    return "\n\n".join(blocks)
