"""The origin's JSON API: label uploads and publishing, the catalog, the admin API, events.

Labels authenticate with ``Authorization: Bearer <api key>``; the admin API with the
operator key. Every error answers JSON ``{"error": ...}`` with its status.
"""

import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from cadenza import http, layout
from encoder.pipeline import master_playlist
from origin.errors import Conflict, Forbidden, NotFound, ObjectTooLarge, Unauthorized
from origin.keys import CATALOG, METRICS, SETTINGS, SHUTDOWN, STORAGE
from origin.settings import MAX_LONG_POLL
from origin.storage import validate_key

SSE_KEEPALIVE = 15.0


class BadRequest(web.HTTPBadRequest):
    def __init__(self, message: str) -> None:
        super().__init__(
            text=json.dumps({"error": message}) + "\n", content_type="application/json"
        )


def _bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <api key>")
    return token.strip()


async def _label(request: web.Request) -> str:
    label = await request.app[CATALOG].label_for_key(_bearer(request))
    if label is None:
        raise Unauthorized("unknown API key")
    claimed = request.headers.get("X-Cadenza-Label")
    if claimed is not None and claimed != label:
        raise Forbidden(f"this API key belongs to label {label!r}, not {claimed!r}")
    return label


def _operator(request: web.Request) -> None:
    expected = request.app[SETTINGS].operator_key
    if not expected:
        raise Forbidden("the admin API is disabled: set operator_key or CADENZA_OPERATOR_KEY")
    if not hmac.compare_digest(_bearer(request).encode(), expected.encode()):
        raise Unauthorized("wrong operator key")


def _ids(request: web.Request) -> tuple[str, str]:
    track_id, version = request.match_info["track_id"], request.match_info["version"]
    if not layout.TRACK_ID.fullmatch(track_id) or not layout.VERSION.fullmatch(version):
        raise BadRequest("track id or version is malformed")
    return track_id, version


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("the body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


async def whoami(request: web.Request) -> web.Response:
    return web.json_response({"label": await _label(request)})


async def stage_version(request: web.Request) -> web.Response:
    """Declare a version (metadata and manifest); answers which objects are still missing."""
    label = await _label(request)
    track_id, version = _ids(request)
    body = await _json(request)
    metadata, manifest = body.get("metadata"), body.get("manifest")
    territories = body.get("territories")
    if not isinstance(metadata, dict) or not isinstance(manifest, dict) or not manifest:
        raise BadRequest("send {metadata: {...}, manifest: {path: {size, sha256}}}")
    for path, entry in manifest.items():
        _check_path(path)
        if not isinstance(entry, dict) or not isinstance(entry.get("size"), int):
            raise BadRequest(f"manifest entry {path!r} needs size and sha256")
    if metadata.get("track_id") != track_id or metadata.get("version") != version:
        raise BadRequest("metadata names another track or version")
    try:
        missing = await request.app[CATALOG].stage_version(
            label, track_id, version, metadata, manifest, territories
        )
    except ValueError as e:
        raise BadRequest(str(e)) from None
    key = f"{layout.version_prefix(track_id, version)}/{layout.METADATA}"
    if await request.app[STORAGE].stat(key) is None:
        await request.app[STORAGE].put(key, _once(_metadata_bytes(metadata)))
    return web.json_response({"missing": missing})


def _metadata_bytes(metadata: dict[str, Any]) -> bytes:
    return (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode()


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _check_path(path: str) -> None:
    try:
        validate_key(path)
    except Exception:
        raise BadRequest(
            f"object path {path!r} leaves the version's folder or is malformed"
        ) from None
    if path == layout.METADATA:
        raise BadRequest(f"{layout.METADATA} is written by the origin, not uploaded")


async def upload_object(request: web.Request) -> web.Response:
    """Store one object of a staged version, streamed, checked against the manifest."""
    label = await _label(request)
    track_id, version = _ids(request)
    raw_tail = request.raw_path.split("?", 1)[0].split("/objects/", 1)[-1]
    key = http.object_key(f"/{layout.version_prefix(track_id, version)}/{raw_tail}")
    if key is None:
        raise BadRequest("object path leaves the version's folder or is malformed")
    path = key.split("/", 3)[3]
    _check_path(path)
    catalog, storage = request.app[CATALOG], request.app[STORAGE]
    limit = request.app[SETTINGS].max_object_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ObjectTooLarge(f"object is larger than the limit of {limit} bytes")
    expected = await catalog.expected_object(label, track_id, version, path)
    if expected is None:
        raise BadRequest(f"{path} is not in the manifest of {track_id}/{version}")
    if await catalog.is_published(track_id, version):
        return web.json_response({"path": path, "stored": False, "reason": "already published"})
    with request.app[METRICS].timed("put"):
        info = await storage.put(key, request.content.iter_chunked(1 << 16), max_bytes=limit)
    if (info.size, info.sha256) != (expected["size"], expected["sha256"]):
        await storage.delete(key)
        raise Conflict(f"{path}: content does not match the manifest (size or sha256)")
    await catalog.record_object(track_id, version, path, info.size, info.sha256)
    request.app[METRICS].upload_bytes.inc(info.size)
    return web.json_response({"path": path, "stored": True, "size": info.size}, status=201)


async def publish(request: web.Request) -> web.Response:
    """Switch the track's master playlist to this version once every object is in place."""
    label = await _label(request)
    track_id, version = _ids(request)
    catalog, storage, metrics = request.app[CATALOG], request.app[STORAGE], request.app[METRICS]
    try:
        seq = await catalog.publish(label, track_id, version)
    except Conflict:  # answered as 409 with the missing objects by the app's middleware
        metrics.publishes.labels("refused").inc()
        raise
    metadata_key = f"{layout.version_prefix(track_id, version)}/{layout.METADATA}"
    metadata = json.loads(b"".join([c async for c in storage.read(metadata_key)]))
    master = master_playlist(metadata).encode()
    await storage.put(str(layout.master_path(track_id)), _once(master))
    metrics.publishes.labels("published").inc()
    return web.json_response({"track_id": track_id, "version": version, "event": seq})


async def get_track(request: web.Request) -> web.Response:
    track = await request.app[CATALOG].track(request.match_info["track_id"])
    if track is None:
        raise NotFound("no such track")
    return web.json_response(track)


async def list_tracks(request: web.Request) -> web.Response:
    try:
        limit = min(max(int(request.query.get("limit", "100")), 1), 1000)
    except ValueError:
        raise BadRequest("limit must be a number") from None
    tracks, cursor = await request.app[CATALOG].tracks(
        request.query.get("label"), limit, request.query.get("after")
    )
    return web.json_response({"tracks": tracks, "next": cursor})


async def rights(request: web.Request) -> web.Response:
    territory = request.query.get("territory", "")
    try:
        decision = await request.app[CATALOG].rights(request.match_info["track_id"], territory)
    except ValueError:
        raise BadRequest(f"territory {territory!r} is not an ISO 3166 alpha-2 code") from None
    return web.json_response(decision)


async def takedown(request: web.Request) -> web.Response:
    _operator(request)
    body = await _json(request)
    track_id, territory = body.get("track_id"), body.get("territory")
    if not isinstance(track_id, str) or not (territory is None or isinstance(territory, str)):
        raise BadRequest("send {track_id: ..., territory: CC or null}")
    try:
        seq = await request.app[CATALOG].takedown(track_id, territory)
    except ValueError:
        raise BadRequest(f"territory {territory!r} is not an ISO 3166 alpha-2 code") from None
    return web.json_response({"event": seq})


async def set_territories(request: web.Request) -> web.Response:
    _operator(request)
    territories = (await _json(request)).get("territories")
    if territories is not None and not isinstance(territories, list):
        raise BadRequest("send {territories: [CC, ...] or null for worldwide}")
    try:
        seq = await request.app[CATALOG].set_territories(
            request.match_info["track_id"], territories
        )
    except ValueError as e:
        raise BadRequest(str(e)) from None
    return web.json_response({"event": seq})


async def events(request: web.Request) -> web.StreamResponse:
    """Events after ``?after=N``: a long poll (``?timeout=S``), or server-sent events."""
    try:
        after = int(request.query.get("after", "0"))
        timeout = min(float(request.query.get("timeout", "0")), MAX_LONG_POLL)
    except ValueError:
        raise BadRequest("after and timeout must be numbers") from None
    if "text/event-stream" in request.headers.get("Accept", ""):
        return await _event_stream(request, after)
    found = await _wait_events(request, after, timeout)
    last = found[-1]["seq"] if found else after
    return web.json_response({"events": found, "last": last})


async def _wait_events(request: web.Request, after: int, timeout: float) -> list[dict[str, Any]]:
    catalog, shutdown = request.app[CATALOG], request.app[SHUTDOWN]
    deadline = time.monotonic() + timeout
    while True:
        # Short waits also pick up events written by another process (a CLI takedown).
        found = await catalog.wait_for_events(
            after, min(1.0, max(0.0, deadline - time.monotonic()))
        )
        # A stopping origin or a gone client ends the poll: nobody waits out its timeout.
        if found or time.monotonic() >= deadline or shutdown.is_set() or _closed(request):
            return found


async def _event_stream(request: web.Request, after: int) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    idle = 0.0
    shutdown = request.app[SHUTDOWN]
    while not shutdown.is_set() and not _closed(request):
        found = await _wait_events(request, after, 1.0)
        for event in found:
            frame = f"id: {event['seq']}\nevent: {event['kind']}\ndata: {json.dumps(event)}\n\n"
            await response.write(frame.encode())
            after = event["seq"]
        idle = 0.0 if found else idle + 1.0
        if idle >= SSE_KEEPALIVE:
            await response.write(b": keep-alive\n\n")
            idle = 0.0
    return response


def _closed(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()
