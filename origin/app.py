"""The origin's aiohttp application: ``create_app(settings)`` for the CLI and the tests alike."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from cadenza.log import get_logger
from cadenza.web import json_errors, metrics_response
from origin import api, fsck, serve
from origin.catalog import Catalog
from origin.keys import CATALOG, LOCKS, METRICS, SETTINGS, SHUTDOWN, STORAGE
from origin.metrics import OriginMetrics
from origin.publish import TrackLocks
from origin.settings import OriginSettings
from origin.storage import open_storage

logger = get_logger("origin")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CLIENT_GONE = 499  # counted for requests whose client disconnected before the answer ended


def create_app(settings: OriginSettings) -> web.Application:
    app = web.Application(
        middlewares=[_observe, json_errors(serve.CORS.fields)],
        client_max_size=settings.max_object_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = OriginMetrics()
    app[SHUTDOWN] = asyncio.Event()
    app[LOCKS] = TrackLocks()
    app.on_shutdown.append(_end_streams)
    app.cleanup_ctx.append(_storage)
    app.cleanup_ctx.append(_catalog)
    app.cleanup_ctx.append(_startup_check)
    r = app.router
    r.add_get("/tracks/{tail:.*}", serve.serve_object, name="tracks")
    r.add_get("/v1/labels/me", api.whoami, name="whoami")
    r.add_put("/v1/tracks/{track_id}/versions/{version}", api.stage_version, name="stage")
    r.add_put(
        "/v1/tracks/{track_id}/versions/{version}/objects/{path:.+}",
        api.upload_object,
        name="upload",
    )
    r.add_post("/v1/tracks/{track_id}/versions/{version}/publish", api.publish, name="publish")
    r.add_get("/v1/tracks", api.list_tracks, name="tracks_list")
    r.add_get("/v1/tracks/{track_id}", api.get_track, name="track")
    r.add_get("/v1/tracks/{track_id}/rights", api.rights, name="rights")
    r.add_post("/v1/admin/takedown", api.takedown, name="takedown")
    r.add_put("/v1/admin/tracks/{track_id}/territories", api.set_territories, name="territories")
    r.add_get("/v1/events", api.events, name="events")
    r.add_get("/v1/status", _status, name="status")
    r.add_get("/metrics", _metrics, name="metrics")
    return app


async def _end_streams(app: web.Application) -> None:
    app[SHUTDOWN].set()


async def _storage(app: web.Application) -> AsyncIterator[None]:
    storage = await open_storage(app[SETTINGS].storage)
    app[STORAGE] = storage
    yield
    await storage.close()


async def _catalog(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    catalog = await Catalog.open(settings.catalog_location)
    app[CATALOG] = catalog
    yield
    await catalog.close()


async def _startup_check(app: web.Application) -> AsyncIterator[None]:
    """The cheap part of fsck before serving: masters that lag their catalog entry (an origin
    killed mid-publish) are rewritten and stale temp files of killed uploads removed."""
    catalog, storage = app[CATALOG], app[STORAGE]
    findings = await fsck.check(catalog, storage, deep=False)
    for finding in await fsck.repair(catalog, storage, app[LOCKS], findings):
        logger.warning("start-up check repaired %s", finding.line())
    yield


@web.middleware
async def _observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request by route and status (errors are answers by now: json_errors)."""
    route = request.match_info.route.name or "unmatched"
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as e:
        status = e.status
        raise
    except ConnectionResetError:
        # The client went away mid-answer: ordinary on the internet, so no traceback and no
        # 500. aiohttp finds the transport closed and sends nothing more.
        status = CLIENT_GONE
        return web.Response(status=CLIENT_GONE)
    finally:
        request.app[METRICS].requests.labels(route, str(status)).inc()


async def _status(request: web.Request) -> web.Response:
    return web.json_response(
        {"healthy": True, "last_event": await request.app[CATALOG].last_seq(), "time": time.time()}
    )


async def _metrics(request: web.Request) -> web.Response:
    return metrics_response(request.app[METRICS].registry)
