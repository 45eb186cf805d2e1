"""Play events from the player: ``start``, ``progress`` every 30 s of audio heard, then ``end``
(played to the end) or ``skip``, sent to the locator's ``POST /v1/plays`` in batches.

Reporting never fails or holds up a play: events wait in a bounded queue (the newest are
dropped when it is full), a sender posts them in the background, each post bounded in time
and retried a few times when the locator or the network fails, and at the end of the play
what is left gets ``FLUSH_S`` to go. A batch the locator refuses names the bad event, which is
dropped and the rest sent again. The credential is the play's token, which the locator put in
the playlist's URLs (``/p/{token}/tracks/{track_id}/{version}/...``): it names the listener.
"""

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from cadenza import layout
from cadenza.log import get_logger
from cadenza.plays import MAX_BATCH, PlayEvent, PlayEventError
from cadenza.tokens import TokenError, split_token_path

logger = get_logger("player.reports")

PROGRESS_MS = 30_000  # a progress event each time this much more audio has been heard
QUEUE = 1000  # events waiting to be sent, at most
BATCH = 100
ATTEMPTS = 3  # posts of one batch before it is given up
RETRY_S = 0.5  # before the second attempt, doubled for the next
POST_TIMEOUT = aiohttp.ClientTimeout(total=3.0)
FLUSH_S = 2.0  # wall seconds the last events get once the play is over


def play_of(uri: str) -> tuple[str, str] | None:
    """The token and track version a variant's URI carries, or None if it carries none."""
    try:
        token, path = split_token_path(urlsplit(uri).path)
    except TokenError:
        return None
    parts = path.split("/")
    if token is None or len(parts) < 4 or parts[1] != layout.TRACKS:
        return None
    version = parts[3]
    return (token, version) if layout.VERSION.fullmatch(version) else None


class Sender:
    """Posts queued events to the locator in batches, in the background, bounded."""

    def __init__(self, http: aiohttp.ClientSession, locator_url: str) -> None:
        self.http = http
        self.url = f"{locator_url.rstrip('/')}/v1/plays"
        self.queue: asyncio.Queue[PlayEvent] = asyncio.Queue(QUEUE)
        self.dropped = 0
        self.sent = 0
        self._task = asyncio.create_task(self._send_forever())

    def put(self, event: PlayEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    async def close(self) -> None:
        """Give what is queued ``FLUSH_S`` to go, then stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FLUSH_S):
                await self.queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self.dropped or not self.queue.empty():
            logger.info("%d play events not reported", self.dropped + self.queue.qsize())

    async def _send_forever(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty() and len(batch) < min(BATCH, MAX_BATCH):
                batch.append(self.queue.get_nowait())
            try:
                await self._send(batch)
            except Exception as e:  # a bug here must not end the reporting of a whole run
                logger.warning("play events not sent: %s", e, exc_info=e)
            finally:
                for _ in batch:
                    self.queue.task_done()

    async def _send(self, batch: list[PlayEvent]) -> None:
        wait = RETRY_S
        for attempt in range(ATTEMPTS):
            if attempt:
                await asyncio.sleep(wait)
                wait *= 2
            try:
                status, doc = await self._post(batch)
            except (aiohttp.ClientError, TimeoutError, ValueError) as e:
                logger.debug("play events not sent (%s)", e)
                continue
            if status == 202:
                self.sent += len(batch)
                return
            bad = doc.get("event") if isinstance(doc, dict) else None
            if 400 <= status < 500 and isinstance(bad, int) and 0 <= bad < len(batch):
                logger.info("play event dropped: %s", doc.get("error"))
                self.dropped += 1
                batch = batch[:bad] + batch[bad + 1 :]
                if not batch:
                    return
            elif 400 <= status < 500:
                logger.info("play events refused (%d): %s", status, doc)
                self.dropped += len(batch)
                return
        self.dropped += len(batch)

    async def _post(self, batch: list[PlayEvent]) -> tuple[int, Any]:
        body = {"events": [e.to_json() for e in batch]}
        async with self.http.post(self.url, json=body, timeout=POST_TIMEOUT) as response:
            try:
                doc = await response.json(content_type=None)
            except ValueError:
                doc = None
            return response.status, doc


@dataclass
class PlayReporter:
    """The events of one play: ``segment`` as each segment arrives, ``finish`` at the end."""

    sender: Sender
    track_id: str
    version: str
    token: str
    territory: str
    play_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: bool = False
    next_progress_ms: int = PROGRESS_MS

    def segment(self, heard_ms: int, edge: str, kbps: float, stalls: int) -> None:
        if not self.started:
            self.started = True
            self._event("start", heard_ms, edge, kbps, stalls)
        elif heard_ms >= self.next_progress_ms:
            self.next_progress_ms = (heard_ms // PROGRESS_MS + 1) * PROGRESS_MS
            self._event("progress", heard_ms, edge, kbps, stalls)

    @classmethod
    def of(
        cls, sender: Sender, variant_uri: str, track_id: str, territory: str | None
    ) -> "PlayReporter | None":
        """The reporter of a play whose first variant is ``variant_uri``; None when that
        carries no token (nothing to report with)."""
        found = play_of(variant_uri)
        if found is None:
            return None
        code = (territory or "").upper()
        code = code if len(code) == 2 and code.isascii() and code.isalpha() else "ZZ"
        return cls(sender, track_id, found[1], found[0], code)

    def finish(self, heard_ms: int, edge: str, kbps: float, stalls: int, whole: bool) -> None:
        if self.started:
            self._event("end" if whole else "skip", heard_ms, edge, kbps, stalls)

    def _event(self, kind: str, heard_ms: int, edge: str, kbps: float, stalls: int) -> None:
        try:
            event = PlayEvent(
                id=uuid.uuid4().hex, play_id=self.play_id, kind=kind, at=time.time(),
                track_id=self.track_id, version=self.version, territory=self.territory,
                edge=edge, played_ms=max(0, heard_ms), rung_kbps=round(kbps),
                stalls=stalls, credential=self.token,
            )  # fmt: skip
        except PlayEventError as e:  # an edge id or rate out of bounds: not worth a play
            logger.info("play event not made: %s", e)
            return
        self.sender.put(event)
