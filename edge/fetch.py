"""Filling a miss from upstream: revalidate what is stale, stream what is new, keep what is
storable and complete, and fall back to a stale copy only where the response or the operator
allows it (stale-if-error, or the configured grace).

Upstream is the owner worker of the key (see edge.peers), else the plan of edge.upstreams: the
parents ranked for the object, then the origin replicas. Until an answer's head is taken, an
upstream that cannot be reached, times out before its first byte or answers 5xx (a parent also
401 or 403: it does not take this edge's credential) is passed over for the next one, and marked
down unless it is a parent relaying an error from further up; the last one's answer or error
stands. Once a head is taken, readers may have bytes, so a failure
fails the fill. Redirects are never followed: a 3xx is an answer like any other. Every wait has
a deadline: the first byte, each later chunk, and the whole body; a cut-off body fails the fill,
and so every reader of it.
"""

import asyncio
import time
from dataclasses import dataclass, field, replace

import aiohttp

from cadenza.upstreams import via_after
from edge.disk import DiskTier
from edge.fields import Lines, end_to_end, without
from edge.freshness import CacheControl, storable
from edge.inflight import Fill
from edge.memory import Entry, MemoryTier, make_entry, new_entry, refreshed
from edge.metrics import EdgeMetrics
from edge.peers import PEER_PREFIX, Peers
from edge.upstreams import ORIGIN, PARENT, Upstream, Upstreams
from edge.vary import STAR, secondary_key, selecting, vary_names

CHUNK = 1 << 16
RELAY_BUFFER = 4 << 20  # bytes held for a reader of an answer too large to store
VIA = ("Via", "1.1 cadenza")
# Music paths ask for one stored form per object, served to every client: the bytes as they are.
IDENTITY: Lines = (("Accept-Encoding", "identity"),)
# Not forwarded upstream: the edge answers these itself from the whole object (RFC 9111 4.3.2).
CLIENT_ONLY = ("host", "if-none-match", "if-modified-since", "if-match", "if-unmodified-since",
               "if-range", "range", "content-length", "expect")  # fmt: skip
# Added by an edge, never stored as the origin's (a peer worker's answer carries them).
EDGE_ADDED = ("x-cache", "accept-ranges", "access-control-allow-origin",
              "access-control-expose-headers")  # fmt: skip


class OriginTimeout(Exception):
    """Upstream did not answer, or stopped sending, within its deadline."""


@dataclass(frozen=True)
class Order:
    """One fill: what to ask upstream and how to keep the answer."""

    key: str  # primary cache key
    target: str  # request target sent upstream: "/tracks/..." or the client's path and query
    headers: Lines  # request header lines to forward
    fields: dict[str, str]  # the requester's combined header fields (for Vary)
    directives: CacheControl  # the requester's Cache-Control
    music: bool  # a Cadenza origin's /tracks/ object: music rules (negative TTL, no Vary)
    authorized: bool = False
    stale: Entry | None = None  # the stored response to revalidate, if any
    via: str = ""  # the Via of the request that started the fill (edges before this one)


@dataclass(frozen=True)
class Head:
    """What readers of a fill need before its body: the answer's status, headers and age."""

    status: int
    entry: Entry  # the answer as it would be stored (body empty until the fill finishes)
    cache: str  # MISS, REVALIDATED, STALE, or the owner worker's verdict
    length: int | None
    shared: bool  # may requests other than the one that started the fill use it
    vary: tuple[str, ...] = ()  # the fields the answer varies on
    varied: tuple[tuple[str, str], ...] = ()  # their values in the request that started it


@dataclass
class Fetcher:
    client: aiohttp.ClientSession
    upstreams: Upstreams
    memory: MemoryTier
    disk: DiskTier
    metrics: EdgeMetrics
    first_byte_timeout: float
    fetch_timeout: float
    stale_grace: float
    between_bytes_timeout: float = 10.0
    negative_ttl: float = 10.0
    max_object_bytes: int = 64 << 20
    peers: Peers | None = None
    name: str = "cadenza"  # this edge in Via
    writes: set[asyncio.Task[None]] = field(default_factory=set)
    writing: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # the latest, by key

    async def fill(self, fill: Fill, order: Order) -> None:
        stale = order.stale
        request_time = time.time()
        headers = list(order.headers)
        if stale is not None and stale.etag:
            headers.append(("If-None-Match", stale.etag))
        if stale is not None and stale.last_modified:
            headers.append(("If-Modified-Since", stale.last_modified))
        peer = self.peers.route(order.key) if self.peers and order.music else None
        try:
            response, source = await self._ask(order, headers, peer)
        except (TimeoutError, aiohttp.ClientError) as e:
            if stale is not None and self._stale_allowed(stale, order):
                return self._serve(fill, stale, "STALE")
            if isinstance(e, TimeoutError):
                raise OriginTimeout("no answer within the first-byte timeout") from e
            raise
        async with response:
            lines = _lines(response, source is None or source.kind == PARENT)
            if response.status == 304 and stale is not None:
                self._count(source, "revalidated")
                fresh = refreshed(stale, lines, request_time, time.time())
                self._keep(order, fresh)
                return self._serve(fill, fresh, "REVALIDATED")
            if response.status >= 500 and stale is not None and self._stale_allowed(stale, order):
                self._count(source, "error")
                return self._serve(fill, stale, "STALE")
            await self._stream(fill, order, response, lines, request_time, source)

    def _stale_allowed(self, stale: Entry, order: Order) -> bool:
        return stale.stored.usable_on_error(time.time(), self.stale_grace, order.directives)

    async def _ask(
        self, order: Order, headers: list[tuple[str, str]], peer: aiohttp.ClientSession | None
    ) -> tuple[aiohttp.ClientResponse, Upstream | None]:
        """The owner worker's answer for the order (source None), or else the first usable
        answer along the plan of upstreams.

        A peer answers within the first-byte timeout itself (with a 504 if its upstreams do
        not), so it gets a second more; an unreachable peer sends us up the plan ourselves.
        """
        if peer is not None:
            try:
                response = await asyncio.wait_for(
                    peer.get(f"http://peer{PEER_PREFIX}{order.target}",
                             headers=[*headers, *_via(order.via)], allow_redirects=False),
                    self.first_byte_timeout + 1.0,
                )  # fmt: skip
                return response, None
            except aiohttp.ClientConnectionError:
                self.metrics.peer_fetches.labels("unreachable").inc()
        # Players fail over to another edge quickly; any other client waits as long as a body may.
        first_byte = self.first_byte_timeout if order.music else self.fetch_timeout
        hop = [*headers, ("Via", via_after(order.via, self.name))]
        plan = self.upstreams.plan(order.key, order.target, music=order.music)
        for n, upstream in enumerate(plan, 1):
            last = n == len(plan)
            try:
                response = await asyncio.wait_for(
                    self.client.get(
                        upstream.url + upstream.target,
                        headers=hop,
                        allow_redirects=False,
                        skip_auto_headers=("Accept-Encoding", "User-Agent"),
                    ),
                    first_byte,
                )
            except (TimeoutError, aiohttp.ClientError) as e:
                self.upstreams.failed(upstream, e or type(e).__name__)
                self._count(upstream, "error")
                if last:
                    raise
                self.metrics.failovers.labels(upstream.kind, upstream.url).inc()
                continue
            if _unusable(upstream, response.status):
                if _broken(upstream, response.status):
                    self.upstreams.failed(upstream, f"status {response.status}")
                if not last:
                    self._count(upstream, str(response.status))
                    self.metrics.failovers.labels(upstream.kind, upstream.url).inc()
                    response.release()
                    continue
            else:
                self.upstreams.succeeded(upstream)
            return response, upstream
        raise AssertionError("a plan ends with an origin, which answers or raises")

    def _count(self, source: Upstream | None, result: str) -> None:
        if source is None:
            self.metrics.peer_fetches.labels(result).inc()
            return
        self.metrics.upstream_fetches.labels(source.kind, source.url, result).inc()
        if source.kind == ORIGIN:
            self.metrics.origin_fetches.labels(result).inc()

    async def _stream(
        self,
        fill: Fill,
        order: Order,
        response: aiohttp.ClientResponse,
        lines: Lines,
        request_time: float,
        source: Upstream | None,
    ) -> None:
        from_peer = source is None
        entry = new_entry(response.status, b"", lines, request_time, time.time())
        if order.music and response.status in (404, 410) and not _explicit(entry):
            entry = replace(entry, stored=replace(entry.stored, lifetime=self.negative_ttl))
        names = () if order.music else vary_names(entry.fields.get("vary"))
        keep = names != STAR and storable(
            response.status, "GET", entry.stored.cc, authorized=order.authorized,
            has_expires="expires" in entry.fields, request=order.directives,
        )  # fmt: skip
        cc = entry.stored.cc
        length = response.content_length
        oversize = length is not None and length > self.max_object_bytes
        keep = keep and not oversize
        shared = names != STAR and not (cc.private or cc.no_store or oversize)
        cache = response.headers.get("X-Cache", "MISS") if from_peer else "MISS"
        varied = selecting(names, order.fields)
        if oversize and not order.music:
            fill.stop_retaining()
        fill.start(Head(response.status, entry, cache, length, shared, names, varied))
        await self._read_body(fill, response, source)
        self._count(source, str(response.status))
        fill.finish()
        if keep and fill.retain:
            whole = make_entry(entry.status, fill.body(), entry.headers, entry.stored)
            self._keep(order, whole, names, write=not from_peer)

    async def _read_body(
        self, fill: Fill, response: aiohttp.ClientResponse, source: Upstream | None
    ) -> None:
        """Append the body as it arrives, cut at the between-bytes or the total deadline.

        An answer that outgrows ``max_object_bytes`` while one reader streams it is not
        stored: it is relayed with at most ``RELAY_BUFFER`` bytes held, at the reader's pace.
        """
        deadline = time.monotonic() + self.fetch_timeout
        expected = response.content_length
        counted = [] if source is None else [self.metrics.upstream_bytes.labels(source.kind)]
        if source is not None and source.kind == ORIGIN:
            counted.append(self.metrics.origin_bytes)
        while True:
            if fill.retain and fill.size > self.max_object_bytes and fill.readers <= 1:
                fill.stop_retaining()
            if not fill.retain:
                await fill.room(RELAY_BUFFER)
                deadline = time.monotonic() + self.fetch_timeout  # the reader sets the pace
            left = deadline - time.monotonic()
            try:
                chunk = await asyncio.wait_for(
                    response.content.readany(), min(self.between_bytes_timeout, max(0.0, left))
                )
            except TimeoutError:
                what = "stopped sending" if left > self.between_bytes_timeout else "took too long"
                raise OriginTimeout(f"upstream {what} ({fill.size} bytes received)") from None
            if not chunk:
                break
            fill.append(chunk)
            for counter in counted:
                counter.inc(len(chunk))
        if expected is not None and fill.size != expected:
            raise aiohttp.ClientPayloadError(f"upstream sent {fill.size} of {expected} bytes")

    def _keep(self, order: Order, entry: Entry, names: tuple[str, ...] = (), *,
              write: bool = True) -> None:  # fmt: skip
        """Store a complete answer under the order's key (or its Vary variant's)."""
        if order.music:
            self.memory.put(order.key, entry)
        elif names:
            self.memory.varies[order.key] = names
            self.memory.put(secondary_key(order.key, names, order.fields), entry, order.key)
            return  # variants live in memory only (see docs/architecture.md)
        else:
            self.memory.varies.pop(order.key, None)
            self.memory.put(order.key, entry)
        if write:  # the owner keeps the disk copy, which all workers share
            self._write(order.key, entry)

    def _write(self, key: str, entry: Entry) -> None:
        """Copy to disk in the background: the fetch (and its slot in Inflight) ends now."""
        task = asyncio.create_task(self.disk.put(key, entry), name=f"disk {key}")
        self.writes.add(task)
        self.writing[key] = task

        def done(task: asyncio.Task[None]) -> None:
            self.writes.discard(task)
            if self.writing.get(key) is task:
                del self.writing[key]

        task.add_done_callback(done)

    async def forget(self, key: str) -> None:
        """Remove ``key`` from the disk tier once any copy under way there has landed, so that
        an invalidated answer cannot come back from a write that finishes after it."""
        task = self.writing.get(key)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        await self.disk.remove(key)

    async def flush(self) -> None:
        """Wait for the disk copies under way (before the disk tier closes)."""
        await asyncio.gather(*self.writes, return_exceptions=True)

    def _serve(self, fill: Fill, entry: Entry, how: str) -> None:
        fill.start(Head(entry.status, entry, how, len(entry.body), True))
        fill.append(entry.body)
        fill.finish()


def _lines(response: aiohttp.ClientResponse, from_edge: bool) -> Lines:
    lines = end_to_end(response.headers.items())
    return without(lines, EDGE_ADDED) if from_edge else lines


def _unusable(upstream: Upstream, status: int) -> bool:
    """An answer to try the next upstream over: a 5xx, or a parent refusing this edge."""
    return status >= 500 or (upstream.kind == PARENT and status in (401, 403))


def _broken(upstream: Upstream, status: int) -> bool:
    """Whether the answer marks the upstream down. A parent's other 5xx are its upstreams'
    (an origin's error, relayed): the parent is fine, and marking it down would send every
    child to the origin for every object until the mark ends."""
    return upstream.kind == ORIGIN or status in (401, 403, 508)


def _via(value: str) -> Lines:
    return (("Via", value),) if value else ()


def _explicit(entry: Entry) -> bool:
    cc = entry.stored.cc
    return cc.max_age is not None or cc.s_maxage is not None or "expires" in entry.fields
