"""A consumer of the play log: reads a batch, applies it to the results, commits, acknowledges.

The order is what makes results exactly once over an at-least-once log: the batch's results
and its event ids are committed in one transaction (``plays.results.apply``), then the batch is
acknowledged. Killed between the two, the consumer reads the batch again when it restarts and
the ids it finds in ``seen`` are dropped. The stream counts need each track's label, asked of
the origin's catalog (``GET /v1/tracks/{id}``) before the transaction and kept in the results.
"""

import asyncio
import contextlib
import json
import logging
import signal
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from cadenza.log import get_logger
from plays import results
from plays.log import Entry, PlayLog, open_log

logger = get_logger("plays")

RETRY_S = 1.0  # after a failed batch (log or origin unreachable), doubled up to MAX_RETRY_S
MAX_RETRY_S = 30.0
ORIGIN_TIMEOUT = aiohttp.ClientTimeout(total=10)


class LabelsUnknown(Exception):
    """The origin could not say a track's label now: the batch waits and is read again."""


@dataclass(frozen=True)
class Consumer:
    kind: str  # one of results.KINDS
    log_url: str
    db: Path
    group: str = ""  # default: the kind
    name: str = "consumer-1"  # this consumer within its group
    origin: str = ""  # the catalog, for the streams' labels
    batch: int = 500
    block_s: float = 1.0
    half_life: float = 3600.0

    @property
    def group_name(self) -> str:
        return self.group or self.kind


async def run(consumer: Consumer, stop: asyncio.Event | None = None) -> None:
    """Consume until ``stop`` is set (or SIGTERM/SIGINT when none is given)."""
    stop = stop or _stop_on_signals()
    log = await open_log(consumer.log_url)
    db = results.connect(consumer.db)
    try:
        async with aiohttp.ClientSession(timeout=ORIGIN_TIMEOUT) as http:
            wait = RETRY_S
            while not stop.is_set():
                try:
                    await step(consumer, log, db, http)
                    wait = RETRY_S
                except Exception as e:  # the log or the origin is away: the batch waits
                    logger.warning("%s consumer: batch not done (%s); again in %.0f s",
                                   consumer.kind, e or type(e).__name__, wait,
                                   exc_info=not isinstance(e, LabelsUnknown | OSError))  # fmt: skip
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), wait)
                    wait = min(wait * 2, MAX_RETRY_S)
    finally:
        db.close()
        await log.close()


async def step(
    consumer: Consumer, log: PlayLog, db: sqlite3.Connection, http: aiohttp.ClientSession
) -> int:
    """One batch: read, apply and commit, acknowledge; how many entries it held."""
    entries = await log.read(consumer.group_name, consumer.name, consumer.batch, consumer.block_s)
    if not entries:
        return 0
    labels = await _labels(consumer, db, http, entries) if consumer.kind == "streams" else None
    applied = results.apply(
        db, consumer.group_name, consumer.kind, [e.event for e in entries],
        entries[-1].position, labels=labels, half_life=consumer.half_life,
    )  # fmt: skip
    await log.ack(consumer.group_name, entries)
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s: %d events applied, %d seen before", consumer.kind, applied.new,
                     applied.repeated)  # fmt: skip
    return len(entries)


async def _labels(
    consumer: Consumer,
    db: sqlite3.Connection,
    http: aiohttp.ClientSession,
    entries: Sequence[Entry],
) -> dict[str, str]:
    wanted = {e.event.track_id for e in entries}
    known = results.known_labels(db, wanted)
    asked = {}
    for track_id in sorted(wanted - set(known)):
        asked[track_id] = await _label(http, consumer.origin, track_id)
    if asked:
        results.remember_labels(db, asked)
    return {**known, **asked}


async def _label(http: aiohttp.ClientSession, origin: str, track_id: str) -> str:
    url = f"{origin.rstrip('/')}/v1/tracks/{track_id}"
    try:
        async with http.get(url) as response:
            if response.status == 404:
                return results.UNKNOWN_LABEL
            if response.status != 200:
                raise LabelsUnknown(f"the origin answered {response.status} for {url}")
            doc = json.loads(await response.read())
    except (aiohttp.ClientError, TimeoutError, ValueError) as e:
        raise LabelsUnknown(f"cannot ask the origin for the label of {track_id}: {e}") from e
    label = doc.get("label") if isinstance(doc, dict) else None
    return label if isinstance(label, str) else results.UNKNOWN_LABEL


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
