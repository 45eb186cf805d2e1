"""The locator's aiohttp application: where every play begins.

``GET /v1/play/{track_id}`` locates the client, checks the track's rights (cached, forgotten on
catalog events), chooses edges (``locator.decision``), signs a path token and answers with a
multivariant playlist of one pathway per edge, steered by ``GET /v1/steer/{session}``. A poller
keeps every edge's health and load current; ``/v1/hot`` tells edges what to pre-position.
"""

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from cadenza import events, layout
from cadenza.errors import HttpError
from cadenza.failover import Origins
from cadenza.http import Cors
from cadenza.log import get_logger
from cadenza.status import EdgeStatus
from cadenza.tasks import background
from cadenza.tokens import TokenClaims, sign
from cadenza.web import json_errors, metrics_response, preflight
from locator import steering
from locator.decision import EdgeView, choose_edges
from locator.fleet import (
    Assignments,
    Fleet,
    Rights,
    RightsCache,
    Session,
    Sessions,
    pathway_priority,
    rights_from_origin,
)
from locator.geo import GeoIPDatabase, Location, distance_km, locate
from locator.metrics import LocatorMetrics
from locator.popularity import HotTracks
from locator.settings import LocatorSettings

logger = get_logger("locator")

SETTINGS = web.AppKey("settings", LocatorSettings)
METRICS = web.AppKey("metrics", LocatorMetrics)
FLEET = web.AppKey("fleet", Fleet)
ASSIGNED = web.AppKey("assigned", Assignments)
RIGHTS = web.AppKey("rights", RightsCache)
SESSIONS = web.AppKey("sessions", Sessions)
HOT = web.AppKey("hot", HotTracks)
MASTERS = web.AppKey("masters", dict[str, tuple[float, str]])
CLIENT = web.AppKey("client", aiohttp.ClientSession)
GEOIP = web.AppKey("geoip", GeoIPDatabase)
ORIGINS = web.AppKey("origins", Origins)

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
MASTER_TTL = 10.0  # seconds a track's master playlist is reused (the origin's max-age)
MAX_HOT = 100
BROWSERS = Cors(expose=("Location",), methods=("GET", "OPTIONS"))
CORS = BROWSERS.fields


class PlayRefused(HttpError):
    """A play that cannot go ahead; carries the HTTP status and the reason."""


def create_app(settings: LocatorSettings) -> web.Application:
    app = web.Application(middlewares=[json_errors(CORS)])
    app[SETTINGS] = settings
    app[METRICS] = LocatorMetrics()
    app[FLEET] = Fleet([edge.view() for edge in settings.edges])
    app[ASSIGNED] = Assignments()
    app[RIGHTS] = RightsCache(settings.rights_ttl)
    app[SESSIONS] = Sessions()
    app[HOT] = HotTracks(half_life_s=settings.hot_half_life)
    app[MASTERS] = {}
    app[ORIGINS] = Origins(settings.origins, logger, settings.origin_down)
    if settings.geoip_database is not None:
        app.cleanup_ctx.append(_geoip)
    app.cleanup_ctx.append(_client)
    app.cleanup_ctx.append(background("poll edges", _poll_forever, restart=True, logger=logger))
    app.cleanup_ctx.append(
        background("follow catalog", _follow_catalog, restart=True, logger=logger)
    )
    r = app.router
    r.add_get("/v1/play/{track_id}", play, name="play")
    r.add_get("/v1/redirect/{track_id}", redirect, name="redirect")
    r.add_get("/v1/locate/{track_id}", locate_edges, name="locate")
    r.add_get("/v1/steer/{session}", steer, name="steer")
    r.add_get("/v1/hot", hot, name="hot")
    r.add_get("/v1/edges", edges, name="edges")
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


async def _poll_forever(app: web.Application) -> None:
    settings, fleet = app[SETTINGS], app[FLEET]
    while True:
        started = time.monotonic()
        await asyncio.gather(*(_poll(app, edge) for edge in settings.edges))
        fleet.refresh()
        app[METRICS].edges_up.set(len(fleet.healthy_ids()))
        await asyncio.sleep(max(0.0, settings.poll_interval - (time.monotonic() - started)))


async def _poll(app: web.Application, edge: Any) -> None:
    health = app[FLEET].health[edge.id]
    timeout = aiohttp.ClientTimeout(total=app[SETTINGS].poll_timeout)
    try:
        async with app[CLIENT].get(f"{edge.url}/status", timeout=timeout) as response:
            response.raise_for_status()
            status = EdgeStatus.from_json(await response.json())
    except (aiohttp.ClientError, TimeoutError, ValueError) as e:
        if health.observe_failure(time.time()):
            logger.warning("edge %s is down (%s)", edge.id, e or type(e).__name__)
            app[METRICS].health_transitions.labels(edge.id, "down").inc()
        return
    if health.observe_success(status, time.time()):
        logger.info("edge %s is up", edge.id)
        app[METRICS].health_transitions.labels(edge.id, "up").inc()


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


# -- plays ------------------------------------------------------------------------------------


async def play(request: web.Request) -> web.Response:
    """The multivariant playlist of a play: one pathway per chosen edge, content-steered."""
    app, settings = request.app, request.app[SETTINGS]
    track_id, client, chosen, token = await _admit(request)
    master = await _master(app, track_id)
    session_id = secrets.token_urlsafe(12)
    now = time.time()
    app[SESSIONS].add(
        session_id,
        Session(track_id, client, tuple(e.id for e in chosen), now + settings.token_ttl),
    )
    pathways = [(e.id, _track_base(e, token, track_id)) for e in chosen]
    try:
        text = steering.multivariant_playlist(
            master, pathways, f"{_public_url(request)}/v1/steer/{session_id}", chosen[0].id
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
    chosen = _decide(request.app, client, track_id)
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
    session_id = request.match_info["session"]
    session = app[SESSIONS].get(session_id, time.time())
    if session is None:
        raise PlayRefused(404, "no such play session (expired?): start the play again")
    said = steering.parse_steering_query(request.query)
    fleet = app[FLEET]
    draining = {e.id for e in fleet.views if e.draining}
    priority = pathway_priority(session, fleet.healthy_ids(), draining)
    if said.pathway is not None:
        logger.debug("session %s on %s at %s bit/s", session_id, said.pathway, said.throughput_bps)
    app[METRICS].steering_reloads.inc()
    manifest = steering.steering_manifest(
        priority, settings.steering_ttl, f"{_public_url(request)}/v1/steer/{session_id}"
    )
    return web.json_response(manifest, headers={**CORS, "Cache-Control": "no-store"})


async def _admit(request: web.Request) -> tuple[str, Location, tuple[EdgeView, ...], str]:
    """Track, client, edges and token of a play that may go ahead; PlayRefused otherwise."""
    app, settings = request.app, request.app[SETTINGS]
    track_id = _track_id(request)
    client = _client_location(request)
    region = client.region or "unknown"
    territory = client.territory
    if territory is None and not settings.fail_open:
        app[METRICS].decisions.labels(region, "territory_unknown").inc()
        raise PlayRefused(451, "the client's territory is unknown, so its rights are too")
    if territory is not None:
        rights = await _rights(app, track_id, territory)
        if rights.status != 200:
            app[METRICS].decisions.labels(region, rights.reason).inc()
            raise PlayRefused(rights.status, f"track {track_id}: {rights.reason}")
    chosen = _decide(app, client, track_id)
    app[HOT].record(chosen[0].region, track_id, time.time())
    now = int(time.time())
    kid, secret = settings.signer
    claims = TokenClaims(
        acl=f"/{layout.TRACKS}/{track_id}/",
        expires=now + int(settings.token_ttl),
        kid=kid,
        territory=territory or "ZZ",  # ZZ: unknown, when rights fail open
    )
    return track_id, client, chosen, sign(claims, secret)


def _decide(app: web.Application, client: Location, track_id: str) -> tuple[EdgeView, ...]:
    started = time.perf_counter()
    now = time.time()
    assigned = app[ASSIGNED]
    chosen = choose_edges(
        app[FLEET].views,
        client,
        track_id,
        assigned.counts(now),
        load_factor=app[SETTINGS].load_factor,
    )
    chosen = chosen[: app[SETTINGS].pathways]
    app[METRICS].decision_seconds.observe(time.perf_counter() - started)
    region = client.region or "unknown"
    if not chosen:
        app[METRICS].decisions.labels(region, "no_edge").inc()
        raise PlayRefused(503, "no healthy edge can take this play now; try again shortly")
    assigned.add(chosen[0].id, now)
    app[METRICS].decisions.labels(region, "ok").inc()
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
    top = request.app[HOT].top(region, limit, time.time())
    tracks = [{"track_id": t, "plays": round(score, 3)} for t, score in top]
    return web.json_response({"region": region, "tracks": tracks}, headers=CORS)


async def edges(request: web.Request) -> web.Response:
    """Every configured edge as the locator sees it now."""
    fleet = request.app[FLEET]
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
    return metrics_response(request.app[METRICS].registry)
