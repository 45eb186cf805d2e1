"""The edge's aiohttp application: ``create_app(settings)`` for the CLI and the tests alike.

A request is checked (path token or --allow-unsigned, safe path, takedowns), served from memory
when fresh, else joined to the one origin fetch for its object and streamed as bytes arrive.
Segments also start readahead of the ones that follow.
"""

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from aiohttp import web

from cadenza import http
from cadenza.log import get_logger
from cadenza.tokens import TokenError, split_token_path, verify
from cadenza.web import metrics_response, preflight
from edge.answer import CORS, entry_answer, public
from edge.cmcd import from_request, next_objects
from edge.disk import DiskTier
from edge.fetch import CACHE, STATUS, Fetcher, OriginTimeout
from edge.freshness import CacheControl, Stored
from edge.inflight import Fill, FillFailed, Inflight
from edge.load import Egress, HitRatio
from edge.memory import Entry, MemoryTier
from edge.metrics import EdgeMetrics
from edge.peers import PEER_PREFIX, Peers, combine, socket_path
from edge.policy import make_policy
from edge.preposition import PlayCounts, hot_from_locator, preposition
from edge.purge import Denials, follow_events
from edge.readahead import following_segments
from edge.settings import EdgeSettings

logger = get_logger("edge")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SETTINGS = web.AppKey("settings", EdgeSettings)
METRICS = web.AppKey("metrics", EdgeMetrics)
MEMORY = web.AppKey("memory", MemoryTier)
INFLIGHT = web.AppKey("inflight", Inflight)
FETCHER = web.AppKey("fetcher", Fetcher)
DISK = web.AppKey("disk", DiskTier)
EGRESS = web.AppKey("egress", Egress)
HITS = web.AppKey("hits", HitRatio)
DENIALS = web.AppKey("denials", Denials)
STATE = web.AppKey("state", dict[str, int])
PREFETCHED = web.AppKey("prefetched", set[str])
TASKS = web.AppKey("tasks", set[asyncio.Task[None]])
PLAYS = web.AppKey("plays", PlayCounts)
AHEAD = web.AppKey("ahead", dict[str, float])  # when readahead last looked past a key
AHEAD_SECONDS = 1.0
PEERS = web.AppKey("peers", Peers)
FOR_PEERS = web.AppKey("for_peers", bool)  # the app behind the workers' own Unix sockets
SHARED = (SETTINGS, METRICS, MEMORY, INFLIGHT, FETCHER, DISK, EGRESS, HITS, DENIALS, STATE,
          PREFETCHED, TASKS)  # fmt: skip

MAX_PREFETCHES = 16  # readahead fetches under way at once, per worker


def create_app(settings: EdgeSettings) -> web.Application:
    app = web.Application(middlewares=[_observe])
    app[SETTINGS] = settings
    app[METRICS] = EdgeMetrics()
    app[MEMORY] = MemoryTier(
        make_policy(settings.policy, settings.memory_bytes), on_evict=_on_evict(app)
    )
    app[INFLIGHT] = Inflight()
    app[EGRESS] = Egress()
    app[HITS] = HitRatio()
    app[DENIALS] = Denials()
    app[STATE] = {"active": 0, "draining": 0}
    app[PREFETCHED] = set()
    app[AHEAD] = {}
    app[PLAYS] = PlayCounts()
    app[TASKS] = set()
    app[FOR_PEERS] = False
    app.cleanup_ctx.append(_disk)
    app.cleanup_ctx.append(_client)
    if settings.peer_folder and settings.workers > 1:
        app.cleanup_ctx.append(_peers)
    if settings.worker == 0 and settings.preposition_interval > 0:
        app.cleanup_ctx.append(_preposition)
    app.cleanup_ctx.append(_purge)
    app.on_shutdown.append(_drain)
    r = app.router
    r.add_get("/tracks/{tail:.*}", serve, name="tracks")
    r.add_get("/p/{token}/tracks/{tail:.*}", serve, name="signed_tracks")
    r.add_route("OPTIONS", "/{tail:.*}", preflight(CORS, "GET, HEAD, OPTIONS", "Range"))
    r.add_get("/status", status, name="status")
    r.add_get("/metrics", _metrics, name="metrics")
    return app


def _on_evict(app: web.Application) -> Callable[[str], None]:
    def evicted(key: str) -> None:
        app[METRICS].evictions.inc()
        if key in app[PREFETCHED]:
            app[PREFETCHED].discard(key)
            app[METRICS].prefetches.labels("wasted").inc()

    return evicted


async def _disk(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    disk = await asyncio.to_thread(DiskTier, settings.cache_dir, settings.disk_bytes)
    app[DISK] = disk
    yield
    await asyncio.to_thread(disk.close)


async def _peers(app: web.Application) -> AsyncIterator[None]:
    """Listen for this edge's other workers, and hold clients for theirs (see edge.peers)."""
    s = app[SETTINGS]
    for_peers = web.Application()
    for key in SHARED:
        for_peers[key] = app[key]  # type: ignore[misc]
    for_peers[FOR_PEERS] = True
    for_peers.router.add_get(PEER_PREFIX + "/tracks/{tail:.*}", serve_peer)
    for_peers.router.add_get(PEER_PREFIX + "/status", own_status)
    runner = web.AppRunner(for_peers, access_log=None, handle_signals=False)
    await runner.setup()
    await web.UnixSite(runner, socket_path(s.peer_folder, s.worker)).start()
    peers = app[FETCHER].peers = Peers(s.peer_folder, s.worker, s.workers)
    app[PEERS] = peers
    yield
    app[FETCHER].peers = None
    await runner.cleanup()
    await peers.close()


async def _client(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    connector = aiohttp.TCPConnector(limit=256, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as client:
        app[FETCHER] = Fetcher(
            client, s.origin, app[MEMORY], app[DISK], app[METRICS], s.first_byte_timeout,
            s.fetch_timeout, s.stale_grace,
        )  # fmt: skip
        yield
        await app[INFLIGHT].close()
        await app[FETCHER].flush()
        prefetches: set[asyncio.Task[None]] = app[TASKS]
        for task in list(prefetches):
            task.cancel()
        await asyncio.gather(*prefetches, return_exceptions=True)


async def _purge(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(
        follow_events(
            app[FETCHER].client, app[SETTINGS].origin, app[DENIALS], app[MEMORY], app[DISK]
        )
    )
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _preposition(app: web.Application) -> AsyncIterator[None]:
    """One worker warms the hot tracks; the others find them on the shared disk tier."""
    s = app[SETTINGS]

    async def hot_list() -> list[str]:
        if s.locator:
            return await hot_from_locator(
                app[FETCHER].client, s.locator, s.region, s.preposition_tracks
            )
        return app[PLAYS].take_top(s.preposition_tracks)

    async def obtain(key: str) -> bytes | None:
        entry = app[MEMORY].peek(key) or await _from_disk(app, key)
        if entry is not None and entry.stored.fresh(time.time()):
            return entry.body
        fill, _ = app[INFLIGHT].join(key, app[FETCHER].fill)
        try:
            body = b"".join([chunk async for chunk in fill.stream()])
        except FillFailed:
            return None
        return body if fill.headers.get(STATUS) == "200" else None

    async def warm(key: str) -> None:
        if key in app[INFLIGHT] or app[MEMORY].peek(key) or await app[DISK].has(key):
            return
        fill, first = app[INFLIGHT].join(key, app[FETCHER].fill)
        if first:
            app[PREFETCHED].add(key)
            app[METRICS].prefetches.labels("issued").inc()
        await _settle(fill)

    task = asyncio.create_task(
        preposition(s.preposition_interval, hot_list, s.preposition_seconds, obtain, warm)
    )
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _drain(app: web.Application) -> None:
    app[STATE]["draining"] = 1


@web.middleware
async def _observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    state["active"] += 1
    cache = "NONE"
    status = 500
    try:
        response = await handler(request)
        status = response.status
        cache = response.headers.get("X-Cache", "NONE")
        return response
    except web.HTTPException as e:
        status = e.status
        raise
    finally:
        state["active"] -= 1
        request.app[METRICS].served(status, cache)


def _refuse(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=CORS)


async def serve(request: web.Request) -> web.StreamResponse:
    started = time.perf_counter()
    settings = request.app[SETTINGS]
    try:
        token, path = split_token_path(request.raw_path.split("?", 1)[0])
        claims = verify(token, settings.token_keys, path, time.time()) if token else None
    except TokenError as e:
        return _refuse(403, f"token refused: {e.reason}")
    if claims is None and not settings.allow_unsigned:
        return _refuse(403, "a signed path token (/p/{token}/...) is required")
    key = http.object_key(path)
    if key is None:
        return _refuse(400, "not a valid track path")
    denial = request.app[DENIALS].denied(key, claims.territory if claims else None)
    if denial is not None:
        return _refuse(denial, "this track has been withdrawn here")
    request.app[PLAYS].record(key)
    readahead(request.app, key, path, request.query, request.headers)
    return await _deliver(request, key, started)


async def serve_peer(request: web.Request) -> web.StreamResponse:
    """Another worker of this edge asks for an object this one owns."""
    started = time.perf_counter()
    key = http.object_key(request.path.removeprefix(PEER_PREFIX))
    if key is None:
        return _refuse(400, "not a valid track path")
    return await _deliver(request, key, started)


async def _deliver(request: web.Request, key: str, started: float) -> web.StreamResponse:
    """From memory or disk when fresh, else from the one fill under way for ``key``."""
    app = request.app
    entry = app[MEMORY].get(key) or await _from_disk(app, key)
    if entry is not None and entry.stored.fresh(time.time()):
        if not app[FOR_PEERS]:
            record_hit(app, key)
        return await _send_entry(request, entry, "HIT", started)
    if not app[FOR_PEERS]:
        app[HITS].record(False)
    fill, first = app[INFLIGHT].join(key, app[FETCHER].fill)
    if not first:
        app[METRICS].coalesced.inc()
    return await _send_fill(request, fill, started)


def record_hit(app: web.Application, key: str) -> None:
    app[HITS].record(True)
    if key in app[PREFETCHED]:
        app[PREFETCHED].discard(key)
        app[METRICS].prefetches.labels("used").inc()


async def _from_disk(app: web.Application, key: str) -> Entry | None:
    """A disk hit is promoted to memory (stale ones too: the fetcher revalidates them)."""
    entry = await app[DISK].get(key)
    if entry is not None:
        app[MEMORY].put(key, entry)
    return entry


async def _send_entry(
    request: web.Request, entry: Entry, cache: str, started: float
) -> web.StreamResponse:
    status, headers, body = entry_answer(entry, request.headers, cache, time.time())
    if status in (304, 416):
        return web.Response(status=status, headers=headers)
    request.app[METRICS].first_byte(cache, time.perf_counter() - started)
    count(request.app, 0 if request.method == "HEAD" else len(body))
    return web.Response(status=status, body=body, headers=headers)


async def _send_fill(request: web.Request, fill: Fill, started: float) -> web.StreamResponse:
    try:
        meta = await fill.started()
    except FillFailed as e:
        timed_out = isinstance(e.__cause__, OriginTimeout | TimeoutError)
        return _refuse(504 if timed_out else 502, f"origin unavailable: {e.__cause__ or e}")
    status, cache = int(meta[STATUS]), meta[CACHE]
    if status != 200 or "Range" in request.headers:
        return await _send_whole(request, fill, status, cache, started)
    headers = {**public(meta), **CORS, "X-Cache": cache, "Accept-Ranges": "bytes", "Age": "0"}
    response = web.StreamResponse(status=200, headers=headers)
    length = meta.get("Content-Length")
    if length is not None and length.isdigit():
        response.content_length = int(length)
    await response.prepare(request)
    request.app[METRICS].first_byte(cache, time.perf_counter() - started)
    if request.method != "HEAD":
        try:
            async for chunk in fill.stream():
                await response.write(chunk)
                count(request.app, len(chunk))
        except FillFailed:
            # Cut the connection: the client must see a short body, never a complete one.
            if request.transport is not None:
                request.transport.abort()
            raise
    await response.write_eof()
    return response


async def _send_whole(
    request: web.Request, fill: Fill, status: int, cache: str, started: float
) -> web.StreamResponse:
    """Error answers and ranges of a miss: wait for the whole object, then answer."""
    try:
        body = b"".join([chunk async for chunk in fill.stream()])
    except FillFailed as e:
        return _refuse(502, f"origin unavailable: {e.__cause__ or e}")
    meta = fill.headers
    if status != 200:
        headers = {
            **CORS,
            "X-Cache": "MISS",
            "Content-Type": meta.get("Content-Type", "text/plain"),
        }
        return web.Response(status=status, body=body, headers=headers)
    # Just fetched: age 0, whatever the cache kept of it.
    just_fetched = Stored(0.0, 0.0, time.time(), CacheControl())
    entry = Entry(body, public(meta), just_fetched, meta.get("ETag"))
    return await _send_entry(request, entry, cache, started)


def count(app: web.Application, nbytes: int) -> None:
    """Body bytes sent to a client."""
    if app[FOR_PEERS]:  # not egress: the client-facing worker counts it
        return
    app[METRICS].bytes_served.inc(nbytes)
    app[EGRESS].add(nbytes, time.time())


def readahead(
    app: web.Application,
    key: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
) -> None:
    """Warm the next segments of this rendition (and what CMCD ``nor`` names) in the background."""
    now = time.monotonic()
    checked = app[AHEAD]
    if now - checked.get(key, -AHEAD_SECONDS) < AHEAD_SECONDS:
        return  # players of this rendition were just served it; the next ones are coming
    if len(checked) > 100_000:
        checked.clear()
    checked[key] = now
    seconds = app[SETTINGS].readahead_seconds
    nexts = next_objects(from_request(query, headers), path)
    paths = nexts or following_segments(path, seconds)
    for next_path in paths:
        next_key = http.object_key(next_path)
        if next_key is None or next_key in app[INFLIGHT] or app[MEMORY].peek(next_key):
            continue
        if len(app[TASKS]) >= MAX_PREFETCHES:
            return
        fill, first = app[INFLIGHT].join(next_key, app[FETCHER].fill)
        if first:
            app[PREFETCHED].add(next_key)
            app[METRICS].prefetches.labels("issued").inc()
            task = asyncio.create_task(_settle(fill))
            app[TASKS].add(task)
            task.add_done_callback(app[TASKS].discard)


async def _settle(fill: Fill) -> None:
    with contextlib.suppress(FillFailed):
        async for _ in fill.stream():
            pass


async def status(request: web.Request) -> web.Response:
    """The whole edge's status for the locator: every worker's figures, summed."""
    doc = _status_of(request.app)
    doc["active_requests"] -= 1  # not counting this request
    if PEERS in request.app:
        doc = combine(doc, await request.app[PEERS].statuses())
    return web.json_response(doc, headers=CORS)


async def own_status(request: web.Request) -> web.Response:
    return web.json_response(_status_of(request.app))


def _status_of(app: web.Application) -> dict[str, Any]:
    s, memory = app[SETTINGS], app[MEMORY]
    return {
        "healthy": not app[STATE]["draining"],
        "state": "draining" if app[STATE]["draining"] else "healthy",
        "region": s.region,
        "pid": os.getpid(),
        "latitude": s.latitude,
        "longitude": s.longitude,
        "capacity_bps": s.capacity_bps,
        "active_requests": app[STATE]["active"],
        "egress_bps": app[EGRESS].bits_per_second(time.time()),
        "hit_ratio": app[HITS].ratio,
        "hits": app[HITS].hits,
        "misses": app[HITS].misses,
        "lane_requests": app[METRICS].lane_answered,
        "workers": 1,
        "cache": {
            "memory": {"bytes": memory.bytes, "objects": len(memory)},
            "disk": {"bytes": app[DISK].volume(), "objects": len(app[DISK])},
        },
    }


async def _metrics(request: web.Request) -> web.Response:
    memory = request.app[MEMORY]
    request.app[METRICS].cache_bytes.labels("memory").set(memory.bytes)
    request.app[METRICS].cache_bytes.labels("disk").set(request.app[DISK].volume())
    return metrics_response(request.app[METRICS].registry)
