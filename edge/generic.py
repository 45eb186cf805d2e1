"""Generic mode: any path of any HTTP/1.1 origin, cached as a shared cache (RFC 9111).

The cache key is the request target with its query; a response with Vary is kept per variant
(``edge.vary``) and ``Vary: *`` is never reused. Unsafe methods pass through to the origin and,
when they succeed, invalidate the target and the same-origin Location and Content-Location
(RFC 9111 4.4). With several workers, every request for a key is served by that key's owner
worker (``edge.peers``), so the edge behaves as one cache: the others relay it over the
workers' Unix sockets.
"""

import functools
import time
import uuid
from collections.abc import Callable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from cadenza.web import read_body
from edge.fetch import CLIENT_ONLY, VIA, Head, Order
from edge.fields import Lines, combined, end_to_end, without
from edge.freshness import request_directives
from edge.inflight import Fill, FillFailed
from edge.keys import DISK, FETCHER, FOR_PEERS, HITS, INFLIGHT, MEMORY, PEERS, SETTINGS
from edge.memory import Entry, MemoryTier, refreshed
from edge.peers import PEER_PREFIX
from edge.send import count, failed, refuse, send_entry, send_fill
from edge.vary import secondary_key, selecting

RELAYED = PEER_PREFIX + "/any"  # a non-owner worker relays a request to the owner here
INVALIDATE = PEER_PREFIX + "/invalidate"
MAX_BODY = 64 << 20  # request and pass-through response bodies, bytes
SAFE = ("GET", "HEAD")
IDEMPOTENT = ("GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE")


async def serve(request: web.Request) -> web.StreamResponse:
    """The generic handler for every path the music routes do not take."""
    return await _serve(request, request.raw_path)


async def serve_relayed(request: web.Request) -> web.StreamResponse:
    """The owner's side of a relay: the client's request, as another worker received it."""
    return await _serve(request, request.raw_path.removeprefix(RELAYED))


async def _serve(request: web.Request, target: str) -> web.StreamResponse:
    if not target.startswith("/"):
        return refuse(400, "the request target must be a path (origin-form)", cors=False)
    app = request.app
    if PEERS in app and not app[FOR_PEERS]:
        session = app[PEERS].route(target)
        if session is not None:
            return await _relay(request, session, target)
    if request.method in SAFE:
        return await _lookup(request, target)
    return await _pass_through(request, target)


async def _lookup(request: web.Request, target: str) -> web.StreamResponse:
    started = time.perf_counter()
    app = request.app
    fields = combined(request.headers.items())
    directives = request_directives(fields.get("cache-control"), fields.get("pragma"))
    key, entry = await _stored(app, target, fields)
    if entry is not None and entry.stored.satisfies(directives, time.time()):
        app[HITS].record(True)
        return await send_entry(request, entry, "HIT", started, cors=False)
    app[HITS].record(False)
    if directives.only_if_cached:
        return refuse(504, "not in the cache, and the request said only-if-cached", cors=False)
    if request.method == "HEAD":  # asked upstream as a HEAD; it may freshen what is stored
        return await _pass_through(request, target, stored=(key, entry))
    order = Order(
        key=target,
        target=target,
        headers=without(end_to_end(request.headers.items()), CLIENT_ONLY),
        fields=fields,
        directives=directives,
        music=False,
        authorized="authorization" in fields,
        stale=entry,
    )
    alone = order.authorized or directives.no_store  # never shared with other requesters
    try:
        fill, head = await _join(app, order, alone=alone)
    except FillFailed as e:
        return failed(e, cors=False)
    return await send_fill(request, fill, head, started, cors=False)


async def _join(app: web.Application, order: Order, *, alone: bool) -> tuple[Fill, Head]:
    """The fill to answer from: the one under way for the key when its answer may be shared
    with this request (RFC 9111: not private, not no-store, the same Vary fields), else one of
    this request's own."""
    fetch = functools.partial(app[FETCHER].fill, order=order)
    key = f"{order.key}\x01{uuid.uuid4()}" if alone else order.key
    fill, first = app[INFLIGHT].join(key, fetch)
    head: Head = await fill.started()
    if first or (head.shared and selecting(head.vary, order.fields) == head.varied):
        return fill, head
    fill, _ = app[INFLIGHT].join(f"{order.key}\x01{uuid.uuid4()}", fetch)
    return fill, await fill.started()


async def _stored(
    app: web.Application, target: str, fields: dict[str, str]
) -> tuple[str, Entry | None]:
    """The key of the variant this request selects, and what is stored under it."""
    memory = app[MEMORY]
    key, entry = _variant(memory, target, fields, memory.get)
    if entry is not None or key != target:
        return key, entry
    entry = await app[DISK].promote(target, memory)
    if memory.varies.get(target):  # the fill that ended meanwhile stored variants
        return _variant(memory, target, fields, memory.peek)
    return target, entry


def _variant(
    memory: MemoryTier, target: str, fields: dict[str, str], look: Callable[[str], Entry | None]
) -> tuple[str, Entry | None]:
    """The key of the variant this request selects (variants live in memory only) and what
    ``look`` (the memory's ``get``, or ``peek`` that the policy does not hear of) finds there."""
    names = memory.varies.get(target)
    key = secondary_key(target, names, fields) if names else target
    return key, look(key)


async def _pass_through(
    request: web.Request, target: str, stored: tuple[str, Entry | None] = ("", None)
) -> web.StreamResponse:
    """An unsafe (or unknown) method, or a HEAD: forwarded as is, its answer relayed and never
    stored; a HEAD's 200 freshens the stored response it validates (RFC 9111 4.3.5)."""
    app = request.app
    settings = app[SETTINGS]
    body = await read_body(request, MAX_BODY)
    if body is None:
        return refuse(413, f"request bodies are limited to {MAX_BODY} bytes", cors=False)
    timeout = aiohttp.ClientTimeout(total=settings.fetch_timeout)
    headers = [*without(end_to_end(request.headers.items()), ("host", "content-length")), VIA]
    request_time = time.time()
    # A pooled connection that the origin closed meanwhile fails at once; an idempotent request
    # is sent again on a new one, as a client would (RFC 9110 9.2.2), to the next replica if any.
    tries = 2 if request.method in IDEMPOTENT else 1
    origins = app[FETCHER].upstreams.origins
    replicas = origins.ordered()
    for attempt in range(tries):
        origin = replicas[attempt % len(replicas)]
        try:
            async with app[FETCHER].client.request(
                request.method, origin + target, headers=headers,
                data=body, allow_redirects=False,
                skip_auto_headers=("Accept-Encoding", "User-Agent"), timeout=timeout,
            ) as response:  # fmt: skip
                lines = end_to_end(response.headers.items())
                payload = await _read_at_most(response.content, MAX_BODY + 1)
            break
        except TimeoutError:
            return refuse(504, "the origin did not answer in time", cors=False)
        except aiohttp.ClientConnectionError as e:
            origins.failed(origin, e)
            if attempt + 1 == tries:
                return refuse(502, f"the origin could not be reached: {e}", cors=False)
        except aiohttp.ClientError as e:
            return refuse(502, f"the origin could not be reached: {e}", cors=False)
    if len(payload) > MAX_BODY:
        return refuse(502, "the origin's answer is larger than a pass-through allows", cors=False)
    key, entry = stored
    if request.method == "HEAD":
        if response.status == 200 and entry is not None and _validates(entry, lines):
            fresh = refreshed(entry, lines, request_time, time.time())
            app[MEMORY].put(key, fresh, target)
    elif 200 <= response.status < 400:
        await _invalidate_after(request, target, lines)
    relayed = lines if request.method == "HEAD" else without(lines, ("content-length",))
    headers_out = CIMultiDict(relayed)
    out = web.Response(status=response.status, reason=response.reason, headers=headers_out)
    if payload:
        out.body = payload
    count(app, len(payload))
    return out


def _validates(entry: Entry, lines: Lines) -> bool:
    """Does a HEAD answer describe the stored response (the same validators)?"""
    fields = combined(lines)
    if entry.etag is not None or "etag" in fields:
        return fields.get("etag") == entry.etag
    return fields.get("last-modified") == entry.last_modified


async def _invalidate_after(request: web.Request, target: str, lines: Lines) -> None:
    """RFC 9111 4.4: the target, and Location and Content-Location on the same host."""
    fields = combined(lines)
    keys = {target}
    base = URL.build(scheme="http", authority=request.host or "edge", encoded=True)
    here = base.join(URL(target, encoded=True))
    for name in ("location", "content-location"):
        value = fields.get(name)
        if not value:
            continue
        try:
            there = here.join(URL(value.strip()))
        except ValueError:
            continue
        if there.host == here.host and there.port == here.port:
            keys.add(there.raw_path_qs)
    for key in keys:
        await invalidate(request.app, key)


async def invalidate(app: web.Application, key: str) -> None:
    """Forget every stored response for ``key``, on whichever worker owns it."""
    peers = app.get(PEERS)
    session = peers.route(key) if peers is not None else None
    if session is None:
        app[MEMORY].invalidate(key)
        await app[FETCHER].forget(key)
        return
    timeout = aiohttp.ClientTimeout(total=app[SETTINGS].first_byte_timeout)
    try:
        async with session.post(f"http://peer{INVALIDATE}", data=key.encode(), timeout=timeout):
            pass
    except (TimeoutError, aiohttp.ClientError):
        await app[DISK].remove(key)  # the owner's memory copy ages out by its own freshness


async def serve_invalidate(request: web.Request) -> web.Response:
    key = (await request.read()).decode("utf-8", "replace")
    request.app[MEMORY].invalidate(key)
    await request.app[FETCHER].forget(key)
    return web.Response(status=204)


async def _relay(
    request: web.Request, session: aiohttp.ClientSession, target: str
) -> web.StreamResponse:
    """Hand the request to the key's owner worker and stream its answer back unchanged."""
    body = None if request.method in SAFE else await read_body(request, MAX_BODY)
    if request.method not in SAFE and body is None:
        return refuse(413, f"request bodies are limited to {MAX_BODY} bytes", cors=False)
    settings = request.app[SETTINGS]
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=settings.first_byte_timeout, sock_read=settings.fetch_timeout
    )
    headers = without(end_to_end(request.headers.items()), ("content-length",))
    try:
        async with session.request(
            request.method, f"http://peer{RELAYED}{target}", headers=headers, data=body,
            allow_redirects=False, timeout=timeout, skip_auto_headers=("Accept-Encoding",),
        ) as answer:  # fmt: skip
            lines = without(end_to_end(answer.headers.items()), ("content-length",))
            response = web.StreamResponse(
                status=answer.status, reason=answer.reason, headers=CIMultiDict(lines)
            )
            if answer.content_length is not None:
                response.content_length = answer.content_length
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
                count(request.app, len(chunk))
            await response.write_eof()
            return response
    except TimeoutError:
        return refuse(504, "the owner worker did not answer in time", cors=False)
    except aiohttp.ClientError as e:
        if request.transport is not None and "response" in locals():
            request.transport.abort()  # headers went out: cut, never a short complete body
        return refuse(502, f"the owner worker failed: {e}", cors=False)


async def _read_at_most(content: aiohttp.StreamReader, limit: int) -> bytes:
    """The body up to ``limit`` bytes (a longer one is cut there: the caller refuses it)."""
    parts, size = [], 0
    async for chunk in content.iter_any():
        parts.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(parts)
