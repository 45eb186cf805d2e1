"""The edge's aiohttp application: ``create_app(settings)`` for the CLI and the tests alike.

A request is checked (path token or --allow-unsigned, safe path, takedowns), served from memory
when fresh, else joined to the one origin fetch for its object and streamed as bytes arrive.
Segments also start readahead of the ones that follow.
"""

import asyncio
import contextlib
import functools
import math
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace

import aiohttp
from aiohttp import web

from cadenza import http, tasks
from cadenza.failover import Origins
from cadenza.layout import MEDIA_PLAYLIST
from cadenza.log import get_logger
from cadenza.status import CacheTier, EdgeStatus
from cadenza.tasks import background
from cadenza.upstreams import passed_through
from cadenza.web import error_answer, metrics_response, preflight
from edge import generic
from edge.answer import BROWSERS, CORS
from edge.cmcd import from_request, next_objects
from edge.core import Refused, admit, serves_from_cache
from edge.disk import DiskTier
from edge.fetch import IDENTITY, Fetcher, Head, Order
from edge.freshness import CacheControl
from edge.inflight import Fill, FillFailed, Inflight
from edge.keys import (
    AHEAD,
    DENIALS,
    DISK,
    EGRESS,
    FETCHER,
    FOR_PEERS,
    HITS,
    INFLIGHT,
    MEMORY,
    METRICS,
    PEERS,
    PLAYS,
    PREFETCHED,
    SETTINGS,
    SHARED,
    STATE,
    TASKS,
)  # fmt: skip
from edge.load import Egress, HitRatio
from edge.memory import MemoryTier
from edge.metrics import EdgeMetrics, sum_expositions
from edge.peers import PEER_PREFIX, Peers, combine, socket_path
from edge.policy import make_policy
from edge.preposition import (
    WASTE_ROUNDS,
    PlayCounts,
    WarmLedger,
    hot_from_locator,
    plan,
    preposition,
)
from edge.purge import Denials, follow_events
from edge.readahead import allowed, following_segments, listed_segments
from edge.send import CORS_FIELDS, count, failed, refuse, send_entry, send_fill
from edge.settings import EdgeSettings
from edge.upstreams import Upstreams

__all__ = ["DENIALS", "MEMORY", "METRICS", "PLAYS", "SETTINGS", "count", "create_app"]

logger = get_logger("edge")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AHEAD_SECONDS = 1.0
FIRST_SEGMENT_S = 6.0  # the ladder's segment length: pre-positioning's depth, in segments

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
    prepositions = settings.worker == 0 and settings.preposition_interval > 0
    window = WASTE_ROUNDS * settings.preposition_interval
    ledger = WarmLedger(window, app[METRICS].prepositioned) if prepositions else None
    app[PLAYS] = PlayCounts(ledger=ledger, learning=prepositions)
    app[TASKS] = set()
    app[FOR_PEERS] = False
    app.cleanup_ctx.append(_disk)
    app.cleanup_ctx.append(_client)
    if settings.peer_folder and settings.workers > 1:
        app.cleanup_ctx.append(_peers)
    if prepositions:
        app.cleanup_ctx.append(background("preposition", _preposition, restart=True, logger=logger))
    app.cleanup_ctx.append(background("purge", _purge, restart=True, logger=logger))
    app.on_shutdown.append(_drain)
    r = app.router
    r.add_get("/tracks/{tail:.*}", serve, name="tracks")
    r.add_get("/p/{token}/tracks/{tail:.*}", serve, name="signed_tracks")
    music_preflight = preflight(BROWSERS)
    r.add_get("/status", status, name="status")
    r.add_get("/metrics", _metrics, name="metrics")
    if settings.generic:
        r.add_route("OPTIONS", "/tracks/{tail:.*}", music_preflight)
        r.add_route("OPTIONS", "/p/{token}/tracks/{tail:.*}", music_preflight)
        r.add_route("*", "/{tail:.*}", generic.serve, name="generic")
    else:
        r.add_route("OPTIONS", "/{tail:.*}", music_preflight)
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
    for_peers.router.add_get(PEER_PREFIX + "/metrics", _metrics)  # its own: not summed there
    for_peers.router.add_post(generic.INVALIDATE, generic.serve_invalidate)
    for_peers.router.add_route("*", generic.RELAYED + "/{tail:.*}", generic.serve_relayed)
    peers = Peers(s.peer_folder, s.worker, s.workers)
    app[PEERS] = for_peers[PEERS] = peers
    runner = web.AppRunner(for_peers, access_log=None, handle_signals=False)
    await runner.setup()
    await web.UnixSite(runner, socket_path(s.peer_folder, s.worker)).start()
    app[FETCHER].peers = peers
    yield
    app[FETCHER].peers = None
    await runner.cleanup()
    await peers.close()


async def _client(app: web.Application) -> AsyncIterator[None]:
    s = app[SETTINGS]
    connector = aiohttp.TCPConnector(limit=256, ttl_dns_cache=300)
    origins = Origins(s.origins, get_logger("edge.upstreams"), s.upstream_down)
    upstreams = Upstreams(origins, s.parents, s.token_keys, s.upstream_down)
    # Via names this edge, the same in every worker, so a request that comes back is refused.
    name = s.id or s.pseudonym or f"edge-{secrets.token_hex(4)}"
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as client:
        app[FETCHER] = Fetcher(
            client, upstreams, app[MEMORY], app[DISK], app[METRICS], s.first_byte_timeout,
            s.fetch_timeout, s.stale_grace, s.between_bytes_timeout, s.negative_ttl,
            s.max_object_bytes, name=name,
        )  # fmt: skip
        yield
        await app[INFLIGHT].close()
        await app[FETCHER].flush()
        readaheads: set[asyncio.Task[None]] = app[TASKS]
        await tasks.stop(readaheads, logger=logger)


async def _purge(app: web.Application) -> None:
    await follow_events(
        app[FETCHER].client,
        app[FETCHER].upstreams.origins,
        app[DENIALS],
        app[MEMORY],
        app[DISK],
        optional=app[SETTINGS].generic,
        answered=app[METRICS].events_answered,
    )


async def _preposition(app: web.Application) -> None:
    """One worker warms what its players will ask for; the others find it on the shared disk
    tier. It learns from the requests it serves itself, a sample of the edge's."""
    s = app[SETTINGS]
    most = max(1, math.ceil(s.preposition_seconds / FIRST_SEGMENT_S))

    async def candidates() -> list[str]:
        if s.locator:
            return await hot_from_locator(
                app[FETCHER].client, s.locator, s.region, s.preposition_tracks
            )
        return []

    def choose(hot: list[str]) -> dict[str, dict[str, list[int]]]:
        plays = app[PLAYS]
        if plays.ledger is not None:
            plays.ledger.expire(time.monotonic())
        demand = plays.take()
        tracks = hot or demand.most_played(s.preposition_tracks)
        return plan(demand, tracks, s.preposition_tracks, most)

    async def obtain(key: str) -> bytes | None:
        entry = app[MEMORY].peek(key) or await app[DISK].promote(key, app[MEMORY])
        if entry is not None and entry.stored.fresh(time.time()):
            return entry.body
        fill, _ = music_fill(app, key)
        try:
            body = b"".join([chunk async for chunk in fill.stream()])
        except FillFailed:
            return None
        return body if fill.head.status == 200 else None

    async def warm(key: str) -> None:
        if key in app[INFLIGHT] or app[MEMORY].peek(key) or await app[DISK].has(key):
            return
        fill, first = music_fill(app, key)
        ledger = app[PLAYS].ledger
        if not first or ledger is None:
            return await _settle(fill)
        ledger.filling(key)
        await _settle(fill)
        entry = app[MEMORY].peek(key) or await app[DISK].get(key)
        stored = entry is not None and entry.status == 200
        ledger.warmed(key, len(entry.body) if stored and entry else None, time.monotonic())

    await preposition(
        s.preposition_interval, candidates, choose, s.preposition_seconds, obtain, warm
    )


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
    except Exception as e:  # a refusal is returned, not raised: this is the rare path
        status = e.status if isinstance(e, web.HTTPException) else 500
        response = error_answer(request, e, CORS_FIELDS)  # raises again when it cannot answer
        status = response.status
        return response
    finally:
        state["active"] -= 1
        request.app[METRICS].served(status, cache)


async def serve(request: web.Request) -> web.StreamResponse:
    started = time.perf_counter()
    settings, app = request.app[SETTINGS], request.app
    admitted = admit(
        request.raw_path, settings.token_keys, settings.allow_unsigned, app[DENIALS], time.time()
    )
    if isinstance(admitted, Refused):
        return refuse(admitted.status, admitted.reason)
    app[PLAYS].record(admitted.key)
    readahead(app, admitted.key, admitted.path, request.query, request.headers, admitted.acl)
    return await _deliver(request, admitted.key, started)


async def serve_peer(request: web.Request) -> web.StreamResponse:
    """Another worker of this edge asks for an object this one owns."""
    started = time.perf_counter()
    key = http.object_key(request.path.removeprefix(PEER_PREFIX))
    if key is None:
        return refuse(400, "not a valid track path")
    return await _deliver(request, key, started)


async def _deliver(request: web.Request, key: str, started: float) -> web.StreamResponse:
    """From memory or disk when fresh, else from the one fill under way for ``key``."""
    app = request.app
    cors = not app[FOR_PEERS]  # a peer's answer is stored, not shown to a browser
    entry = app[MEMORY].get(key)
    if entry is None and key not in app[INFLIGHT]:  # a fill under way is fresher than the disk
        entry = await app[DISK].promote(key, app[MEMORY])
    if entry is not None and serves_from_cache(entry, time.time()):
        if not app[FOR_PEERS]:
            record_hit(app, key)
        return await send_entry(request, entry, "HIT", started, cors=cors)
    via = request.headers.get("Via")
    if via is not None and passed_through(via, app[FETCHER].name):
        return refuse(508, f"loop: this request already passed through {app[FETCHER].name}")
    if not app[FOR_PEERS]:
        app[HITS].record(False)
    fill, first = music_fill(app, key, via or "")
    if not first:
        app[METRICS].coalesced.inc()
    try:
        head: Head = await fill.started()
    except FillFailed as e:
        return failed(e, cors=cors)
    return await send_fill(request, fill, head, started, cors=cors)


def music_fill(app: web.Application, key: str, via: str = "") -> tuple[Fill, bool]:
    """The one fill of a /tracks/ object, asked upstream in its stored (identity) form; its
    stale copy in memory, if any, is revalidated. ``via``: the Via of the request."""
    order = Order(
        key=key,
        target="/" + key,
        headers=IDENTITY,
        fields={},
        directives=CacheControl(),
        music=True,
        stale=app[MEMORY].peek(key),
        via=via,
    )
    return app[INFLIGHT].join(key, functools.partial(app[FETCHER].fill, order=order))


def record_hit(app: web.Application, key: str) -> None:
    app[HITS].record(True)
    if key in app[PREFETCHED]:
        app[PREFETCHED].discard(key)
        app[METRICS].prefetches.labels("used").inc()


def readahead(
    app: web.Application,
    key: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    acl: str | None = None,
) -> None:
    """Warm the next segments of this rendition (and what CMCD ``nor`` names) in the background,
    only within ``acl`` (the token's, else the request's track) and the rendition's playlist."""
    if readahead_due(app, key):
        start_readahead(app, path, query, headers, acl)


def readahead_due(app: web.Application, key: str) -> bool:
    """Whether a request for ``key`` should start readahead now; once True, not again for
    ``AHEAD_SECONDS`` (so the lane reads a request's query only when it is needed)."""
    now = time.monotonic()
    checked = app[AHEAD]
    if now - checked.get(key, -AHEAD_SECONDS) < AHEAD_SECONDS:
        return False  # players of this rendition were just served it; the next ones are coming
    if len(checked) > 100_000:
        checked.clear()
    checked[key] = now
    return len(app[TASKS]) < MAX_PREFETCHES


def start_readahead(
    app: web.Application,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    acl: str | None = None,
) -> None:
    """``readahead`` once it is due."""
    nexts = next_objects(from_request(query, headers), path)
    paths = nexts or following_segments(path, app[SETTINGS].readahead_seconds)
    if not paths:
        return
    track = "/".join(path.split("/")[:3]) + "/"  # /tracks/{id}/
    prefix = acl if acl is not None and acl.startswith(track) else track
    tasks.spawn(app[TASKS], _read_ahead(app, path, paths, prefix))


async def _read_ahead(app: web.Application, path: str, paths: list[str], prefix: str) -> None:
    if not any(_wanted(app, http.object_key(next_path)) for next_path in paths):
        return  # all held or coming already: the playlist, perhaps read from disk, cannot matter
    folder_key = http.object_key(path.rsplit("/", 1)[0] + "/" + MEDIA_PLAYLIST)
    playlist = folder_key and (app[MEMORY].peek(folder_key) or await app[DISK].get(folder_key))
    listed = listed_segments(playlist.body) if playlist and playlist.status == 200 else frozenset()
    fills = []
    for next_path in allowed(paths, prefix, listed):
        next_key = http.object_key(next_path)
        if next_key is None or not _wanted(app, next_key):
            continue
        fill, first = music_fill(app, next_key)
        if first:
            app[PREFETCHED].add(next_key)
            app[METRICS].prefetches.labels("issued").inc()
            fills.append(fill)
    await asyncio.gather(*(_settle(fill) for fill in fills))


def _wanted(app: web.Application, key: str | None) -> bool:
    """Whether readahead would fetch ``key``: neither held in memory nor being fetched."""
    return key is not None and key not in app[INFLIGHT] and not app[MEMORY].peek(key)


async def _settle(fill: Fill) -> None:
    with contextlib.suppress(FillFailed):
        async for _ in fill.stream():
            pass


async def status(request: web.Request) -> web.Response:
    """The whole edge's status for the locator: every worker's figures, summed."""
    own = _status_of(request.app)
    doc = replace(own, active_requests=own.active_requests - 1)  # not counting this request
    if PEERS in request.app:
        doc = combine(doc, await request.app[PEERS].statuses())
    return web.json_response(doc.to_json(), headers=CORS)


async def own_status(request: web.Request) -> web.Response:
    return web.json_response(_status_of(request.app).to_json())


def _status_of(app: web.Application) -> EdgeStatus:
    s, memory = app[SETTINGS], app[MEMORY]
    return EdgeStatus(
        draining=bool(app[STATE]["draining"]),
        id=s.id,
        region=s.region,
        # The process to signal (the parent of the workers, if any), and the answering worker.
        edge_pid=os.getppid() if s.peer_folder else os.getpid(),
        pid=os.getpid(),
        latitude=s.latitude,
        longitude=s.longitude,
        capacity_bps=s.capacity_bps,
        active_requests=app[STATE]["active"],
        egress_bps=app[EGRESS].bits_per_second(time.time()),
        hit_ratio=app[HITS].ratio,
        hits=app[HITS].hits,
        misses=app[HITS].misses,
        lane_requests=app[METRICS].lane_answered,
        memory=CacheTier(memory.bytes, len(memory)),
        disk=CacheTier(app[DISK].volume(), len(app[DISK])),
    )


async def _metrics(request: web.Request) -> web.Response:
    """The whole edge's metrics: this worker's and the others', summed (see edge.metrics)."""
    app = request.app
    own = app[METRICS].exposition(app[MEMORY].bytes, app[DISK].volume())
    if PEERS in app and not app[FOR_PEERS]:
        own = sum_expositions(own, await app[PEERS].expositions())
    return metrics_response(own)
