"""The locator's aiohttp application: where every play begins.

``GET /v1/play/{track_id}`` locates the client, checks the track's rights (cached, forgotten on
catalog events), chooses edges (``locator.decision``), signs a path token and answers with a
multivariant playlist of one pathway per edge, steered by ``GET /v1/steer/{session}``. A poller
keeps every edge's health and load current; ``/v1/hot`` tells edges what to pre-position.

The locator may run as several worker processes on one port (``Worker``): the plays they
assign and the edges' health are shared in memory (``locator.shares``), sessions travel in
their signed steering URLs (``locator.sessions``), and ``/v1/hot`` and ``/metrics`` add up
every worker's own, asked over the workers' sockets (``cadenza.workers``).
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from prometheus_client import generate_latest

from cadenza import events, layout, workers
from cadenza.errors import HttpError
from cadenza.expositions import sum_expositions
from cadenza.failover import Origins
from cadenza.http import Cors
from cadenza.log import get_logger
from cadenza.tasks import background
from cadenza.tokens import TokenClaims, sign
from cadenza.web import json_errors, metrics_response, preflight
from locator import licences, plays, steering
from locator.decision import EdgeView, choose_edges
from locator.fleet import Fleet, Rights, RightsCache, Session, pathway_priority, rights_from_origin
from locator.geo import GeoIPDatabase, Location, distance_km, locate
from locator.listeners import listener_of
from locator.metrics import OLDEST, LocatorMetrics
from locator.poller import Poller
from locator.popularity import HotTracks, merge_top
from locator.sessions import read_session, session_id
from locator.settings import LocatorSettings
from locator.shares import AssignedPlays, AssignmentRow, SharedFleet, SharedState

logger = get_logger("locator")


@dataclass(frozen=True)
class Worker:
    """Which of the locator's processes an app is, and what they share (made before they fork).

    Worker 0 polls the edges and publishes their health; every worker assigns plays in its own
    row of the shared table and reads the others'. ``folder`` holds the workers' sockets.
    """

    index: int
    count: int
    shared: SharedState
    folder: str | None = None


SETTINGS = web.AppKey("settings", LocatorSettings)
WORKER = web.AppKey("worker", Worker)
METRICS = web.AppKey("metrics", LocatorMetrics)
FLEET = web.AppKey("fleet", SharedFleet)
ASSIGNED = web.AppKey("assigned", AssignedPlays)
ROW = web.AppKey("row", AssignmentRow)
PEERS = web.AppKey("peers", workers.Peers)
RIGHTS = web.AppKey("rights", RightsCache)
HOT = web.AppKey("hot", HotTracks)
MASTERS = web.AppKey("masters", dict[str, tuple[float, str]])
CLIENT = web.AppKey("client", aiohttp.ClientSession)
GEOIP = web.AppKey("geoip", GeoIPDatabase)
ORIGINS = web.AppKey("origins", Origins)

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
MASTER_TTL = 10.0  # seconds a track's master playlist is reused (the origin's max-age)
MAX_HOT = 100
HOT_FROM_PEERS = 1000  # each worker's share of a merged /v1/hot: its whole count table
BROWSERS = Cors(expose=("Location",), methods=("GET", "POST", "OPTIONS"))
CORS = BROWSERS.fields


class PlayRefused(HttpError):
    """A play that cannot go ahead; carries the HTTP status and the reason."""


def create_app(settings: LocatorSettings, worker: Worker | None = None) -> web.Application:
    """The locator, or one worker of it (``worker``; by default the only one)."""
    if worker is None:
        worker = Worker(0, 1, SharedState.allocate([e.id for e in settings.edges], 1))
    app = web.Application(middlewares=[json_errors(CORS)])
    app[SETTINGS] = settings
    app[WORKER] = worker
    app[METRICS] = LocatorMetrics()
    polling = worker.index == 0
    fleet = Fleet([edge.view() for edge in settings.edges])
    app[FLEET] = SharedFleet(fleet, worker.shared.health, polling=polling)
    app[ASSIGNED] = worker.shared.assignments.counts()
    app[ROW] = worker.shared.assignments.row(worker.index, time.time())
    app[RIGHTS] = RightsCache(settings.rights_ttl)
    app[HOT] = HotTracks(half_life_s=settings.hot_half_life)
    app[MASTERS] = {}
    app[ORIGINS] = Origins(settings.origins, logger, settings.origin_down)
    if settings.geoip_database is not None:
        app.cleanup_ctx.append(_geoip)
    app.cleanup_ctx.append(_client)
    if polling:
        app.cleanup_ctx.append(background("poll edges", _poll_edges, restart=True, logger=logger))
    app.cleanup_ctx.append(
        background("age assignments", _age_assignments, restart=True, logger=logger)
    )
    app.cleanup_ctx.append(
        background("follow catalog", _follow_catalog, restart=True, logger=logger)
    )
    if worker.folder is not None and worker.count > 1:
        app.cleanup_ctx.append(_peers)
    r = app.router
    r.add_get("/v1/play/{track_id}", play, name="play")
    r.add_get("/v1/redirect/{track_id}", redirect, name="redirect")
    r.add_get("/v1/locate/{track_id}", locate_edges, name="locate")
    r.add_get("/v1/steer/{session}", steer, name="steer")
    r.add_get("/v1/hot", hot, name="hot")
    r.add_get("/v1/edges", edges, name="edges")
    plays.add_routes(app, settings, app[METRICS])
    admission = licences.Admission(
        settings, _client_location, _rights, _master, app[METRICS].registry
    )
    licences.add_routes(app, admission)
    r.add_route("OPTIONS", "/{tail:.*}", preflight(BROWSERS))
    r.add_get("/metrics", _metrics, name="metrics")
    return app


async def _geoip(app: web.Application) -> AsyncIterator[None]:
    path = app[SETTINGS].geoip_database
    assert path is not None
    app[GEOIP] = await asyncio.to_thread(GeoIPDatabase, path)
    yield
    app[GEOIP].close()


async def _client(app: web.Application) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as client:
        app[CLIENT] = client
        yield


async def _poll_edges(app: web.Application) -> None:
    """Worker 0 polls every edge and publishes their health to the others; if either loop
    fails, the task group cancels the other and the whole job is restarted."""
    poller = Poller(app[SETTINGS], app[FLEET], app[CLIENT], app[METRICS])
    async with asyncio.TaskGroup() as group:
        group.create_task(poller.poll_forever())
        group.create_task(poller.publish_forever())


async def _age_assignments(app: web.Application) -> None:
    """Plays leave this worker's row as they leave the window, even when no new ones come."""
    while True:
        app[ROW].trim(time.time())
        await asyncio.sleep(1.0)


async def _peers(app: web.Application) -> AsyncIterator[None]:
    """Answer the other workers' questions on this worker's socket; hold clients for theirs."""
    worker = app[WORKER]
    assert worker.folder is not None
    for_peers = web.Application()
    hot_tracks, metrics = app[HOT], app[METRICS]

    async def own_hot(request: web.Request) -> web.Response:
        top = hot_tracks.top(request.query.get("region", ""), HOT_FROM_PEERS, time.time())
        return web.json_response(top)

    async def own_metrics(request: web.Request) -> web.Response:
        return metrics_response(metrics.registry)

    for_peers.router.add_get(f"{workers.PEER_PREFIX}/hot", own_hot)
    for_peers.router.add_get(f"{workers.PEER_PREFIX}/metrics", own_metrics)
    async with workers.listening(for_peers, worker.folder, worker.index):
        app[PEERS] = workers.Peers(worker.folder, worker.index, worker.count)
        yield
        await app[PEERS].close()


async def _follow_catalog(app: web.Application) -> None:
    """Takedowns and territory changes: forget the cached answers so the next play asks."""

    async def apply(batch: list[events.Event]) -> None:
        tracks = {e.track_id for e in batch if e.track_id}
        app[RIGHTS].forget(tracks)
        for track in tracks:
            app[MASTERS].pop(track, None)

    await events.follow(
        app[CLIENT], app[ORIGINS], apply, logger, answered=app[METRICS].events_answered
    )


def _fleet(app: web.Application) -> Fleet:
    return app[FLEET].current()


# -- plays ------------------------------------------------------------------------------------


async def play(request: web.Request) -> web.Response:
    """The multivariant playlist of a play: one pathway per chosen edge, content-steered."""
    app, settings = request.app, request.app[SETTINGS]
    track_id, _, chosen, token = await _admit(request)
    master = await _master(app, track_id)
    session = Session(track_id, tuple(e.id for e in chosen), time.time() + settings.token_ttl)
    steer_id = session_id(session, *settings.signer)
    pathways = [(e.id, _track_base(e, token, track_id)) for e in chosen]
    try:
        text = steering.multivariant_playlist(
            master, pathways, f"{_public_url(request)}/v1/steer/{steer_id}", chosen[0].id
        )
    except ValueError as e:
        raise PlayRefused(502, f"the origin's master playlist cannot be steered: {e}") from e
    headers = {**CORS, "Cache-Control": "no-store", "Content-Type": PLAYLIST_TYPE}
    return web.Response(text=text, headers=headers)


async def redirect(request: web.Request) -> web.Response:
    """For simple clients: a 302 to the track's master playlist on the primary edge."""
    track_id, _, chosen, token = await _admit(request)
    location = f"{_track_base(chosen[0], token, track_id)}{layout.MASTER_PLAYLIST}"
    raise web.HTTPFound(location, headers={**CORS, "Cache-Control": "no-store"})


async def locate_edges(request: web.Request) -> web.Response:
    """The ranked edges for a track and this client, as JSON (no rights check, no token)."""
    track_id = _track_id(request)
    client = _client_location(request)
    chosen = _decide(request.app, client, track_id, time.time())
    return web.json_response(
        {
            "track_id": track_id,
            "client": {
                "latitude": client.lat,
                "longitude": client.lon,
                "region": client.region,
                "territory": client.territory,
            },
            "edges": [
                {
                    "id": e.id,
                    "region": e.region,
                    "url": e.url,
                    "distance_km": round(distance_km(client.lat, client.lon, e.lat, e.lon), 1),
                    "load": round(e.load, 4),
                }
                for e in chosen
            ],
        },
        headers=CORS,
    )


async def steer(request: web.Request) -> web.Response:
    """The steering manifest of one play, from current health: dead edges drop out at once."""
    app, settings = request.app, request.app[SETTINGS]
    steer_id = request.match_info["session"]
    session = read_session(steer_id, settings.token_keys, time.time())
    if session is None:
        raise PlayRefused(404, "no such play session (expired?): start the play again")
    said = steering.parse_steering_query(request.query)
    fleet = _fleet(app)
    draining = {e.id for e in fleet.views if e.draining}
    priority = pathway_priority(session, fleet.healthy_ids(), draining)
    if said.pathway is not None:
        logger.debug("play of %s on %s at %s bit/s", session.track_id, said.pathway,
                     said.throughput_bps)  # fmt: skip
    app[METRICS].steering_reloads.inc()
    manifest = steering.steering_manifest(
        priority, settings.steering_ttl, f"{_public_url(request)}/v1/steer/{steer_id}"
    )
    return web.json_response(manifest, headers={**CORS, "Cache-Control": "no-store"})


async def _admit(request: web.Request) -> tuple[str, Location, tuple[EdgeView, ...], str]:
    """Track, client, edges and token of a play that may go ahead; PlayRefused otherwise."""
    app, settings = request.app, request.app[SETTINGS]
    track_id = _track_id(request)
    client = _client_location(request)
    listener = listener_of(
        request.headers,
        request.query,
        header=settings.listener_header,
        from_query=settings.listener_query,
    )
    region = client.region or "unknown"
    territory = client.territory
    if territory is None and not settings.fail_open:
        app[METRICS].decided(region, "territory_unknown")
        raise PlayRefused(451, "the client's territory is unknown, so its rights are too")
    if territory is not None:
        rights = await _rights(app, track_id, territory)
        if rights.status != 200:
            app[METRICS].decided(region, rights.reason)
            raise PlayRefused(rights.status, f"track {track_id}: {rights.reason}")
    when = time.time()
    chosen = _decide(app, client, track_id, when)
    app[HOT].record(chosen[0].region, track_id, when)
    now = int(when)
    kid, secret = settings.signer
    claims = TokenClaims(
        acl=f"/{layout.TRACKS}/{track_id}/",
        expires=now + int(settings.token_ttl),
        kid=kid,
        territory=territory or "ZZ",  # ZZ: unknown, when rights fail open
        listener=listener,
    )
    return track_id, client, chosen, sign(claims, secret)


def _decide(
    app: web.Application, client: Location, track_id: str, now: float
) -> tuple[EdgeView, ...]:
    """The edges of a play, counted in this worker's row of the assignments every worker reads."""
    started = time.perf_counter()
    settings, metrics, assigned, fleet = app[SETTINGS], app[METRICS], app[ASSIGNED], _fleet(app)
    chosen = choose_edges(
        fleet.views,
        client,
        track_id,
        assigned,
        load_factor=settings.load_factor,
        rankings=fleet.rankings,
    )[: settings.pathways]
    metrics.decision_seconds.observe(time.perf_counter() - started)
    region = client.region or "unknown"
    if not chosen:
        metrics.decided(region, "no_edge")
        raise PlayRefused(503, "no healthy edge can take this play now; try again shortly")
    app[ROW].add(chosen[0].id, now)
    metrics.decided(region, "ok")
    return chosen


def _track_id(request: web.Request) -> str:
    track_id = request.match_info["track_id"]
    if not layout.TRACK_ID.fullmatch(track_id):
        raise PlayRefused(400, f"{track_id!r} is not a track id (16 of [a-z0-9])")
    return track_id


def _client_location(request: web.Request) -> Location:
    settings = request.app[SETTINGS]
    return locate(
        request.query,
        request.remote,
        default=settings.default_location,
        centres=settings.region_centres,
        zones=settings.coverage_zones,
        geoip=request.app.get(GEOIP),
    )


def _public_url(request: web.Request) -> str:
    """Where players reach the locator: as configured, else as this request came in."""
    return request.app[SETTINGS].public_url or str(request.url.origin())


def _track_base(edge: EdgeView, token: str, track_id: str) -> str:
    return f"{edge.url}/p/{token}/{layout.TRACKS}/{track_id}/"


async def _rights(app: web.Application, track_id: str, territory: str) -> Rights:
    now = time.time()
    cached = app[RIGHTS].get(track_id, territory, now)
    if cached is not None:
        app[METRICS].rights_lookups.labels("cache").inc()
        return cached
    app[METRICS].rights_lookups.labels("origin").inc()
    path = f"/v1/tracks/{track_id}/rights"
    try:
        status, body = await app[ORIGINS].get(
            app[CLIENT], path, params={"territory": territory}, timeout=5
        )
        rights = rights_from_origin(status, json.loads(body) if status == 200 else None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as e:
        raise PlayRefused(503, f"the catalog cannot be asked about rights now ({e})") from e
    app[RIGHTS].put(track_id, territory, rights, now)
    return rights


async def _master(app: web.Application, track_id: str) -> str:
    now = time.monotonic()
    cached = app[MASTERS].get(track_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    try:
        status, body = await app[ORIGINS].get(
            app[CLIENT], f"/{layout.master_path(track_id)}", timeout=5
        )
    except (aiohttp.ClientError, TimeoutError) as e:
        raise PlayRefused(503, f"the origin cannot be asked for the playlist now ({e})") from e
    if status == 404:
        raise PlayRefused(404, f"track {track_id} has no published version")
    if status != 200:
        raise PlayRefused(503, f"the origin answered {status} for the playlist; try again")
    text = body.decode("utf-8", errors="replace")
    app[MASTERS][track_id] = (now + MASTER_TTL, text)
    return text


# -- for edges and operators -------------------------------------------------------------------


async def hot(request: web.Request) -> web.Response:
    """The region's most played tracks, decayed over time: edges pre-position them."""
    region = request.query.get("region", "")
    try:
        limit = min(max(int(request.query.get("limit", "20")), 1), MAX_HOT)
    except ValueError:
        raise PlayRefused(400, "limit must be a whole number") from None
    # The plays every player reported, counted by the popularity consumer; else the plays
    # that the locator's workers started.
    top = await plays.popular(request.app, region, limit)
    if top is None:
        top = await _started_here(request.app, region, limit)
    tracks = [{"track_id": t, "plays": round(score, 3)} for t, score in top]
    return web.json_response({"region": region, "tracks": tracks}, headers=CORS)


async def _started_here(app: web.Application, region: str, limit: int) -> list[tuple[str, float]]:
    if PEERS not in app:
        return app[HOT].top(region, limit, time.time())
    top = app[HOT].top(region, HOT_FROM_PEERS, time.time())
    answers = await app[PEERS].ask_all(f"/hot?{urlencode({'region': region})}")
    return merge_top([top, *(_top_list(json.loads(a)) for a in answers)], limit)


async def edges(request: web.Request) -> web.Response:
    """Every configured edge as the locator sees it now."""
    fleet = _fleet(request.app)
    rows = []
    for view in fleet.views:
        health = fleet.health[view.id]
        rows.append(
            {
                "id": view.id,
                "region": view.region,
                "url": view.url,
                "state": health.state,
                "draining": view.draining,
                "active_requests": view.active_requests,
                "egress_bps": view.egress_bps,
                "load": round(view.load, 4),
                "transitions": health.transitions,
            }
        )
    return web.json_response({"edges": rows}, headers=CORS)


async def _metrics(request: web.Request) -> web.Response:
    """The whole locator's metrics: this worker's and the others', summed."""
    app = request.app
    own = generate_latest(app[METRICS].registry)
    if PEERS in app:
        own = sum_expositions(own, await app[PEERS].ask_all("/metrics"), oldest=OLDEST)
    return metrics_response(own)


def _top_list(doc: Any) -> list[tuple[str, float]]:
    return [(str(track_id), float(score)) for track_id, score in doc]
