"""GET and HEAD of published objects under ``/tracks/``: validators, ranges, gzip, streaming.

Objects of a version are served only once the version is published; every object of a
globally withdrawn track answers 410.
"""

import gzip
import hashlib

from aiohttp import web

from cadenza import http, layout
from origin.keys import CATALOG, METRICS, SETTINGS, STORAGE
from origin.storage import ObjectInfo

PLAYLIST = ".m3u8"
CORS = http.Cors(expose=("ETag", "Content-Length", "Content-Range"), methods=("GET", "HEAD"))
_CORS_FIELDS = CORS.fields


async def serve_object(request: web.Request) -> web.StreamResponse:
    key = http.object_key(request.raw_path)
    if key is None:
        raise web.HTTPBadRequest(text="not a valid track path\n")
    parts = key.split("/")
    if len(parts) < 3:
        raise web.HTTPNotFound()
    track_id = parts[1]
    catalog = request.app[CATALOG]
    track = await catalog.track(track_id)
    if track is None:
        raise web.HTTPNotFound()
    if track["withdrawn"]:
        raise web.HTTPGone(text="this track has been withdrawn\n")
    is_master = len(parts) == 3 and parts[2] == layout.MASTER_PLAYLIST
    if not is_master and not await catalog.is_published(track_id, parts[2]):
        raise web.HTTPNotFound()
    with request.app[METRICS].timed("stat"):
        info = await request.app[STORAGE].stat(key)
    if info is None:
        raise web.HTTPNotFound()
    settings = request.app[SETTINGS]
    cache = f"public, max-age={settings.master_max_age}" if is_master else http.IMMUTABLE
    if key.endswith(PLAYLIST):
        return await _playlist(request, key, info, cache)
    return await _stream(request, key, info, cache)


def _headers(etag: str, cache: str, key: str) -> dict[str, str]:
    return {
        "ETag": etag,
        "Cache-Control": cache,
        "Content-Type": http.content_type(key),
        "Accept-Ranges": "bytes",
        **_CORS_FIELDS,
    }


async def _playlist(
    request: web.Request, key: str, info: ObjectInfo, cache: str
) -> web.StreamResponse:
    """Playlists are small: read whole, gzip when accepted, never ranged when gzipped."""
    zipped = http.accepts_gzip(request.headers.get("Accept-Encoding"))
    if not zipped:
        return await _stream(request, key, info, cache, vary=True)
    etag = http.etag_for(info.sha256, "-gz")
    headers = {**_headers(etag, cache, key), "Vary": "Accept-Encoding"}
    if http.none_match(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    body = b"".join([chunk async for chunk in request.app[STORAGE].read(key)])
    if hashlib.sha256(body).hexdigest() != info.sha256:
        raise web.HTTPServiceUnavailable(text="object changed while reading; retry\n")
    packed = gzip.compress(body, compresslevel=6, mtime=0)
    headers["Content-Encoding"] = "gzip"
    request.app[METRICS].bytes_out.inc(0 if request.method == "HEAD" else len(packed))
    return web.Response(status=200, body=packed, headers=headers)


async def _stream(
    request: web.Request, key: str, info: ObjectInfo, cache: str, *, vary: bool = False
) -> web.StreamResponse:
    etag = http.etag_for(info.sha256)
    headers = _headers(etag, cache, key)
    if vary:
        headers["Vary"] = "Accept-Encoding"
    if http.none_match(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    wanted = None
    if http.if_range_allows(request.headers.get("If-Range"), etag):
        try:
            wanted = http.parse_range(request.headers.get("Range"), info.size)
        except http.RangeNotSatisfiable as e:
            headers["Content-Range"] = f"bytes */{info.size}"
            raise web.HTTPRequestRangeNotSatisfiable(headers=headers, text=f"{e}\n") from None
    start, end = (wanted.start, wanted.end) if wanted else (0, info.size)
    response = web.StreamResponse(status=206 if wanted else 200, headers=headers)
    if wanted:
        response.headers["Content-Range"] = wanted.content_range(info.size)
    response.content_length = end - start
    await response.prepare(request)
    if request.method != "HEAD":
        sent = 0
        try:
            async for chunk in request.app[STORAGE].read(key, start, end):
                await response.write(chunk)
                sent += len(chunk)
        finally:
            request.app[METRICS].bytes_out.inc(sent)
    await response.write_eof()
    return response
