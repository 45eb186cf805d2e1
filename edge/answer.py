"""What to answer from a stored object: 200, 206, 304 or 416, with the headers to send.

Pure, so that the aiohttp handlers and the lean lane for memory hits (``edge.front``) answer
alike; the clock is passed in.
"""

from collections.abc import Mapping

from cadenza import http
from edge.memory import Entry

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "ETag, Content-Length, Content-Range, Age, X-Cache",
}
_PER_RESPONSE = {"Date", "Content-Length"}


def public(meta: Mapping[str, str]) -> dict[str, str]:
    """Headers to repeat to a client: not our markers, and the length is set per response."""
    return {k: v for k, v in meta.items() if not k.startswith(":") and k not in _PER_RESPONSE}


def entry_answer(
    entry: Entry, request_headers: Mapping[str, str], cache: str, now: float
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body for a request of ``entry`` (conditional and range aware)."""
    headers = {**public(entry.headers), **CORS, "X-Cache": cache, "Accept-Ranges": "bytes"}
    headers["Age"] = str(int(entry.stored.age(now)))
    if entry.etag and http.none_match(request_headers.get("If-None-Match"), entry.etag):
        return 304, headers, b""
    body = entry.body
    if entry.etag is None or http.if_range_allows(request_headers.get("If-Range"), entry.etag):
        try:
            wanted = http.parse_range(request_headers.get("Range"), len(body))
        except http.RangeNotSatisfiable:
            headers["Content-Range"] = f"bytes */{len(body)}"
            return 416, headers, b""
        if wanted is not None:
            headers["Content-Range"] = wanted.content_range(len(body))
            return 206, headers, body[wanted.start : wanted.end]
    return 200, headers, body
