"""The origin's JSON API: label uploads and publishing, the catalog, the admin API, events.

Labels authenticate with ``Authorization: Bearer <api key>``; the admin API with the
operator key. Every error answers JSON ``{"error": ...}`` with its status.
"""

import asyncio
import hmac
import json
import time
from typing import Any

from aiohttp import web

from cadenza import http, layout
from cadenza.events import Event
from origin import bounds
from origin import publish as publishing
from origin.errors import (
    BadInput,
    BodyTooLarge,
    Conflict,
    Forbidden,
    NotFound,
    ObjectTooLarge,
    Unauthorized,
)
from origin.keys import CATALOG, LOCKS, METRICS, SETTINGS, SHUTDOWN, STORAGE
from origin.objects import Meter
from origin.settings import MAX_LONG_POLL
from origin.storage import Expected, validate_key

SSE_KEEPALIVE = 15.0
JSON_IN_THREAD_BYTES = 64 << 10  # larger bodies are parsed off the event loop
MANIFEST_ON_LOOP = 500  # larger manifests are checked off the event loop


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
        raise BadInput("track id or version is malformed")
    return track_id, version


async def _json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, bounded in size, depth and number length (see bounds)."""
    limit = bounds.MAX_JSON_BYTES
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"the JSON body is larger than {limit} bytes")
    data = bytearray()
    async for chunk in request.content.iter_chunked(1 << 16):
        data += chunk
        if len(data) > limit:
            raise BodyTooLarge(f"the JSON body is larger than {limit} bytes")
    try:
        if len(data) > JSON_IN_THREAD_BYTES:
            body = await asyncio.to_thread(bounds.parse_json, bytes(data))
        else:
            body = bounds.parse_json(bytes(data))
    except ValueError as e:
        raise BadInput(str(e)) from None
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object")
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
        raise BadInput("send {metadata: {...}, manifest: {path: {size, sha256}}}")
    if len(manifest) > MANIFEST_ON_LOOP:
        await asyncio.to_thread(_check_manifest, manifest)
    else:
        _check_manifest(manifest)
    if metadata.get("track_id") != track_id or metadata.get("version") != version:
        raise BadInput("metadata names another track or version")
    try:
        missing = await request.app[CATALOG].stage_version(
            label, track_id, version, metadata, manifest, territories
        )
    except ValueError as e:
        raise BadInput(str(e)) from None
    await publishing.write_metadata(request.app[STORAGE], track_id, version, metadata)
    return web.json_response({"missing": missing})


def _check_manifest(manifest: dict[str, Any]) -> None:
    for path, entry in manifest.items():
        _check_path(path)
        if not isinstance(entry, dict) or not isinstance(entry.get("size"), int):
            raise BadInput(f"manifest entry {path!r} needs size and sha256")


def _check_path(path: str) -> None:
    try:
        validate_key(path)
    except Exception:
        raise BadInput(
            f"object path {path!r} leaves the version's folder or is malformed"
        ) from None
    if path == layout.METADATA:
        raise BadInput(f"{layout.METADATA} is written by the origin, not uploaded")


async def upload_object(request: web.Request) -> web.Response:
    """Store one object of a staged version, streamed, checked against the manifest."""
    label = await _label(request)
    track_id, version = _ids(request)
    raw_tail = request.raw_path.split("?", 1)[0].split("/objects/", 1)[-1]
    key = http.object_key(f"/{layout.version_prefix(track_id, version)}/{raw_tail}")
    if key is None:
        raise BadInput("object path leaves the version's folder or is malformed")
    path = key.split("/", 3)[3]
    _check_path(path)
    catalog, storage = request.app[CATALOG], request.app[STORAGE]
    limit = request.app[SETTINGS].max_object_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ObjectTooLarge(f"object is larger than the limit of {limit} bytes")
    entry = await catalog.expected_object(label, track_id, version, path)
    if entry is None:
        raise BadInput(f"{path} is not in the manifest of {track_id}/{version}")
    expected = Expected(entry["size"], entry["sha256"])
    stored = await storage.stat(key)
    if stored is not None and (stored.size, stored.sha256) == (expected.size, expected.sha256):
        # The key already holds the right bytes: the upload is only checked, never written,
        # so a wrong one answers 409 and an identical one changes nothing.
        meter = Meter(key, limit, expected)
        async for chunk in request.content.iter_chunked(1 << 16):
            meter.add(chunk)
        meter.verified()
        await catalog.record_object(track_id, version, path, stored.size, stored.sha256)
        return web.json_response({"path": path, "stored": False, "reason": "already stored"})
    with request.app[METRICS].timed("put"):
        # Written aside and checked before it takes the key: wrong bytes answer 409 and
        # leave whatever the key held untouched.
        chunks = request.content.iter_chunked(1 << 16)
        info = await storage.put(key, chunks, max_bytes=limit, expect=expected)
    await catalog.record_object(track_id, version, path, info.size, info.sha256)
    request.app[METRICS].upload_bytes.inc(info.size)
    return web.json_response({"path": path, "stored": True, "size": info.size}, status=201)


async def publish(request: web.Request) -> web.Response:
    """Switch the track's master playlist to this version once every object is in place."""
    label = await _label(request)
    track_id, version = _ids(request)
    app = request.app
    metrics = app[METRICS]
    try:
        seq = await publishing.publish(
            app[CATALOG], app[STORAGE], app[LOCKS], label, track_id, version
        )
    except Conflict:  # answered as 409 with the missing objects by the app's middleware
        metrics.publishes.labels("refused").inc()
        raise
    except ValueError as e:  # metadata declared before it was checked at declaration
        metrics.publishes.labels("refused").inc()
        raise Conflict(f"cannot publish {track_id} {version}: {e}; declare a new version") from e
    metrics.publishes.labels("published").inc()
    return web.json_response({"track_id": track_id, "version": version, "event": seq})


async def get_track(request: web.Request) -> web.Response:
    track = await request.app[CATALOG].track(request.match_info["track_id"])
    if track is None:
        raise NotFound("no such track")
    return web.json_response(track)


async def list_tracks(request: web.Request) -> web.Response:
    try:
        limit = bounds.query_int(
            request.query.get("limit"), "limit", 100, -bounds.MAX_SEQ, bounds.MAX_SEQ
        )
    except ValueError as e:
        raise BadInput(str(e)) from None
    limit = min(max(limit, 1), 1000)
    tracks, cursor = await request.app[CATALOG].tracks(
        request.query.get("label"), limit, request.query.get("after")
    )
    return web.json_response({"tracks": tracks, "next": cursor})


async def rights(request: web.Request) -> web.Response:
    territory = request.query.get("territory", "")
    try:
        decision = await request.app[CATALOG].rights(request.match_info["track_id"], territory)
    except ValueError:
        raise BadInput(f"territory {territory!r} is not an ISO 3166 alpha-2 code") from None
    return web.json_response(decision)


async def takedown(request: web.Request) -> web.Response:
    _operator(request)
    body = await _json(request)
    track_id, territory = body.get("track_id"), body.get("territory")
    if not isinstance(track_id, str) or not (territory is None or isinstance(territory, str)):
        raise BadInput("send {track_id: ..., territory: CC or null}")
    try:
        seq = await request.app[CATALOG].takedown(track_id, territory)
    except ValueError:
        raise BadInput(f"territory {territory!r} is not an ISO 3166 alpha-2 code") from None
    return web.json_response({"event": seq})


async def set_territories(request: web.Request) -> web.Response:
    _operator(request)
    territories = (await _json(request)).get("territories")
    if territories is not None and not isinstance(territories, list):
        raise BadInput("send {territories: [CC, ...] or null for worldwide}")
    try:
        seq = await request.app[CATALOG].set_territories(
            request.match_info["track_id"], territories
        )
    except ValueError as e:
        raise BadInput(str(e)) from None
    return web.json_response({"event": seq})


async def events(request: web.Request) -> web.StreamResponse:
    """Events after ``?after=N``: a long poll (``?timeout=S``), or server-sent events."""
    try:
        after = bounds.query_int(request.query.get("after"), "after", 0, 0, bounds.MAX_SEQ)
        timeout = bounds.query_seconds(request.query.get("timeout"), "timeout", 0, MAX_LONG_POLL)
    except ValueError as e:
        raise BadInput(str(e)) from None
    if "text/event-stream" in request.headers.get("Accept", ""):
        return await _event_stream(request, after)
    found = await _wait_events(request, after, timeout)
    last = found[-1].seq if found else after
    return web.json_response({"events": [e.to_json() for e in found], "last": last})


async def _wait_events(request: web.Request, after: int, timeout: float) -> list[Event]:
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
        try:
            for event in found:
                data = json.dumps(event.to_json())
                frame = f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n"
                await response.write(frame.encode())
                after = event.seq
            idle = 0.0 if found else idle + 1.0
            if idle >= SSE_KEEPALIVE:
                await response.write(b": keep-alive\n\n")
                idle = 0.0
        except ConnectionResetError:  # the client went away: an ordinary end of a stream
            break
    return response


def _closed(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()
