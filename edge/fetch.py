"""Filling a miss from the origin: revalidate what is stale, stream what is new, keep what is
storable and complete, and fall back to a stale copy when the origin fails.
"""

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp

from edge.disk import DiskTier
from edge.freshness import Stored, current_age, freshness_lifetime, parse_cache_control, storable
from edge.inflight import Fill
from edge.memory import Entry, MemoryTier
from edge.metrics import EdgeMetrics
from edge.peers import PEER_PREFIX, Peers

STATUS = ":status"
CACHE = ":cache"  # how the fill was satisfied: MISS, REVALIDATED or STALE
KEPT_HEADERS = (
    "Content-Type", "Cache-Control", "ETag", "Last-Modified", "Expires", "Date", "Vary", "Age",
    "Content-Encoding",
)  # fmt: skip
# One stored form per object, served to every client: ask for the bytes as they are.
IDENTITY = {"Accept-Encoding": "identity"}
CHUNK = 1 << 16


class OriginTimeout(Exception):
    """The origin did not answer within the first-byte timeout."""


class OriginFailed(Exception):
    """The origin answered with a server error."""


@dataclass
class Fetcher:
    client: aiohttp.ClientSession
    origin: str
    memory: MemoryTier
    disk: DiskTier
    metrics: EdgeMetrics
    first_byte_timeout: float
    fetch_timeout: float
    stale_grace: float
    peers: Peers | None = None
    writes: set[asyncio.Task[None]] = field(default_factory=set)

    async def fill(self, fill: Fill) -> None:
        stale = self.memory.peek(fill.key)
        request_time = time.time()
        headers = {**IDENTITY, "If-None-Match": stale.etag} if stale and stale.etag else IDENTITY
        peer = self.peers.route(fill.key) if self.peers else None
        try:
            response, from_peer = await self._ask(fill.key, headers, peer)
        except (TimeoutError, aiohttp.ClientError) as e:
            self.metrics.origin_fetches.labels("error").inc()
            if stale and stale.stored.usable_on_error(time.time(), self.stale_grace):
                return self._serve(fill, stale, "STALE")
            if isinstance(e, TimeoutError):
                raise OriginTimeout("no answer within the first-byte timeout") from e
            raise
        async with response:
            if response.status == 304 and stale is not None:
                self.metrics.origin_fetches.labels("revalidated").inc()
                fresh = _entry(stale.body, {**stale.headers, **_kept(response)}, request_time)
                self.memory.put(fill.key, fresh)
                self._write(fill.key, fresh)
                return self._serve(fill, fresh, "REVALIDATED")
            if response.status >= 500:
                self.metrics.origin_fetches.labels("error").inc()
                if stale and stale.stored.usable_on_error(time.time(), self.stale_grace):
                    return self._serve(fill, stale, "STALE")
                raise OriginFailed(f"origin answered {response.status}")
            await self._stream(fill, response, request_time, from_peer=from_peer)

    async def _ask(
        self, key: str, headers: dict[str, str], peer: aiohttp.ClientSession | None
    ) -> tuple[aiohttp.ClientResponse, bool]:
        """The owner worker's answer for ``key``, or the origin's when this worker owns it.

        A peer answers within the first-byte timeout itself (with a 504 if its origin fetch
        does not), so it gets a second more; an unreachable peer sends us to the origin.
        """
        if peer is not None:
            try:
                response = await asyncio.wait_for(
                    peer.get(f"http://peer{PEER_PREFIX}/{key}", headers=headers),
                    self.first_byte_timeout + 1.0,
                )
                return response, True
            except aiohttp.ClientConnectionError:
                self.metrics.peer_fetches.labels("unreachable").inc()
        response = await asyncio.wait_for(
            self.client.get(f"{self.origin.rstrip('/')}/{key}", headers=headers),
            self.first_byte_timeout,
        )
        return response, False

    async def _stream(
        self,
        fill: Fill,
        response: aiohttp.ClientResponse,
        request_time: float,
        *,
        from_peer: bool,
    ) -> None:
        kept = _kept(response)
        expected = response.content_length
        length = {} if expected is None else {"Content-Length": str(expected)}
        # Through a peer, the edge as a whole may have had it: keep the owner's verdict.
        cache = response.headers.get("X-Cache", "MISS") if from_peer else "MISS"
        fill.start({**kept, **length, STATUS: str(response.status), CACHE: cache})
        deadline = time.monotonic() + self.fetch_timeout
        async for chunk in response.content.iter_chunked(CHUNK):
            fill.append(chunk)
            if not from_peer:
                self.metrics.origin_bytes.inc(len(chunk))
            if time.monotonic() > deadline:
                raise OriginTimeout(f"origin took more than {self.fetch_timeout} s")
        if expected is not None and fill.size != expected:
            raise aiohttp.ClientPayloadError(f"origin sent {fill.size} of {expected} bytes")
        counter = self.metrics.peer_fetches if from_peer else self.metrics.origin_fetches
        counter.labels(str(response.status)).inc()
        fill.finish()
        cc = parse_cache_control(kept.get("Cache-Control"))
        if response.status == 200 and storable(200, "GET", cc):
            entry = _entry(fill.body(), kept, request_time)
            self.memory.put(fill.key, entry)
            if not from_peer:  # the owner keeps the disk copy, which all workers share
                self._write(fill.key, entry)

    def _write(self, key: str, entry: Entry) -> None:
        """Copy to disk in the background: the fetch (and its slot in Inflight) ends now."""
        task = asyncio.create_task(self.disk.put(key, entry), name=f"disk {key}")
        self.writes.add(task)
        task.add_done_callback(self.writes.discard)

    async def flush(self) -> None:
        """Wait for the disk copies under way (before the disk tier closes)."""
        await asyncio.gather(*self.writes, return_exceptions=True)

    def _serve(self, fill: Fill, entry: Entry, how: str) -> None:
        length = {"Content-Length": str(len(entry.body))}
        fill.start({**entry.headers, **length, STATUS: "200", CACHE: how})
        fill.append(entry.body)
        fill.finish()


def _kept(response: aiohttp.ClientResponse) -> dict[str, str]:
    return {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}


def _entry(body: bytes, headers: dict[str, str], request_time: float) -> Entry:
    now = time.time()
    cc = parse_cache_control(headers.get("Cache-Control"))
    stored = Stored(
        lifetime=freshness_lifetime(cc, headers),
        age_at_response=current_age(headers, request_time, now, now),
        response_time=now,
        cc=cc,
    )
    return Entry(body, headers, stored, headers.get("ETag"))
