"""Sending answers to clients through aiohttp: stored entries, and fills as their bytes arrive.

A fill of a 200 is streamed to a plain GET as it arrives; a conditional or range request, a HEAD,
and any other status wait for the whole answer and are answered as from the cache, so a cold
object gets the same 304, 206 or 416 as a stored one.
"""

import time

from aiohttp import web
from multidict import CIMultiDict

from cadenza.log import get_logger
from cadenza.web import error_response
from edge.answer import CORS, body_allowed, entry_answer, with_cors
from edge.fetch import Head, OriginTimeout
from edge.inflight import Fill, FillFailed
from edge.keys import EGRESS, FOR_PEERS, METRICS
from edge.load import Egress
from edge.memory import Entry, make_entry
from edge.metrics import EdgeMetrics

logger = get_logger("edge")

# Request fields that make the answer depend on more than the stored object.
_SELECTIVE = ("If-None-Match", "If-Modified-Since", "If-Match", "If-Range", "Range")
CORS_FIELDS = dict(CORS)


def refuse(status: int, message: str, *, cors: bool = True) -> web.Response:
    return error_response(status, message, CORS_FIELDS if cors else None)


def count(app: web.Application, nbytes: int) -> None:
    """Body bytes sent to a client."""
    if app[FOR_PEERS]:  # not egress: the client-facing worker counts it
        return
    count_egress(app[METRICS], app[EGRESS], nbytes, time.time())


def count_egress(metrics: EdgeMetrics, egress: Egress, nbytes: int, now: float) -> None:
    """Body bytes sent to a client at ``now``: in the counters and in the load's window."""
    metrics.sent(nbytes)
    egress.add(nbytes, now)


async def send_entry(
    request: web.Request, entry: Entry, cache: str, started: float, *, cors: bool
) -> web.StreamResponse:
    status, lines, body = entry_answer(entry, request.headers, cache, time.time(), cors=cors)
    headers = CIMultiDict(lines)
    if status in (204, 304):
        return web.Response(status=status, headers=headers)
    request.app[METRICS].first_byte(cache, time.perf_counter() - started)
    if body_allowed(status, request.method):
        count(request.app, len(body))
    # For a HEAD, aiohttp sends the length that a GET's body would have, and no body.
    return web.Response(status=status, body=body, headers=headers)


async def send_fill(
    request: web.Request, fill: Fill, head: Head, started: float, *, cors: bool
) -> web.StreamResponse:
    selective = any(name in request.headers for name in _SELECTIVE)
    if head.status != 200 or selective or request.method == "HEAD":
        return await _send_whole(request, fill, head, started, cors=cors)
    lines = with_cors(head.entry.headers) if cors else list(head.entry.headers)
    age = str(int(head.entry.stored.age(time.time())))
    lines += [("X-Cache", head.cache), ("Accept-Ranges", "bytes"), ("Age", age)]
    response = web.StreamResponse(status=200, headers=CIMultiDict(lines))
    if head.length is not None:
        response.content_length = head.length
    await response.prepare(request)
    request.app[METRICS].first_byte(head.cache, time.perf_counter() - started)
    try:
        async for chunk in fill.stream():
            await response.write(chunk)
            count(request.app, len(chunk))
    except FillFailed as e:
        # Cut the connection: the client must see a short body, never a complete one.
        logger.warning("cut a response short: %s", e)
        if request.transport is not None:
            request.transport.abort()
        return response
    await response.write_eof()
    return response


async def _send_whole(
    request: web.Request, fill: Fill, head: Head, started: float, *, cors: bool
) -> web.StreamResponse:
    try:
        body = b"".join([chunk async for chunk in fill.stream()])
    except FillFailed as e:
        return failed(e, cors=cors)
    entry = make_entry(head.entry.status, body, head.entry.headers, head.entry.stored)
    return await send_entry(request, entry, head.cache, started, cors=cors)


def failed(error: FillFailed, *, cors: bool) -> web.Response:
    """502 when upstream could not be reached or broke off, 504 when it took too long."""
    cause = error.__cause__ or error
    timed_out = isinstance(cause, OriginTimeout | TimeoutError)
    return refuse(504 if timed_out else 502, f"upstream unavailable: {cause}", cors=cors)
