"""What to answer from a stored object: its status, or 206, 304, 412 or 416, with the headers.

Pure, so that the aiohttp handlers and the lean lane for memory hits (``edge.front``) answer
alike; the clock is passed in. Conditionals and ranges are evaluated only on stored 200s
(RFC 9110 13.2.1 and 14.2); other statuses are repeated as stored.
"""

from collections.abc import Mapping

from cadenza import http
from edge.fields import Lines
from edge.freshness import parse_http_date
from edge.memory import Entry

BROWSERS = http.Cors(
    expose=("ETag", "Content-Length", "Content-Range", "Age", "X-Cache"), request_headers="Range"
)
CORS: Lines = tuple(BROWSERS.fields.items())
_CORS_NAMES = frozenset(name.lower() for name, _ in CORS)
_BODILESS = frozenset({204, 304})


def with_cors(lines: Lines) -> list[tuple[str, str]]:
    """``lines`` with the edge's CORS fields instead of any the origin sent: a browser refuses
    an answer that names its allowed origin twice."""
    return [(n, v) for n, v in lines if n.lower() not in _CORS_NAMES] + list(CORS)


def entry_answer(
    entry: Entry, request: Mapping[str, str], cache: str, now: float, *, cors: bool = True
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, header lines and body for a request of ``entry`` (conditional and range aware).

    ``request`` is case-insensitive (aiohttp's and the lane's header multidicts are).
    """
    headers = with_cors(entry.headers) if cors else list(entry.headers)
    headers += [("X-Cache", cache), ("Age", str(int(entry.stored.age(now))))]
    if entry.status != 200:
        return entry.status, headers, entry.body
    headers.append(("Accept-Ranges", "bytes"))
    if not_modified(entry, request):
        return 304, headers, b""
    if_match = request.get("If-Match")
    if if_match is not None and not _strong_match(if_match, entry.etag):
        return 412, headers, b""
    body = entry.body
    if entry.etag is None or http.if_range_allows(request.get("If-Range"), entry.etag):
        try:
            wanted = http.parse_range(request.get("Range"), len(body))
        except http.RangeNotSatisfiable:
            headers.append(("Content-Range", f"bytes */{len(body)}"))
            return 416, headers, b""
        if wanted is not None:
            headers.append(("Content-Range", wanted.content_range(len(body))))
            return 206, headers, body[wanted.start : wanted.end]
    return 200, headers, body


def not_modified(entry: Entry, request: Mapping[str, str]) -> bool:
    """If-None-Match, else If-Modified-Since, against the stored validators (RFC 9110 13.2.2)."""
    none_match = request.get("If-None-Match")
    if none_match is not None:
        return entry.etag is not None and http.none_match(none_match, entry.etag)
    since = parse_http_date(request.get("If-Modified-Since"))
    modified = parse_http_date(entry.last_modified)
    return since is not None and modified is not None and modified <= since


def _strong_match(header: str, etag: str | None) -> bool:
    if header.strip() == "*":
        return etag is not None
    return etag is not None and not etag.startswith("W/") and etag in _tags(header)


def _tags(header: str) -> list[str]:
    return [t.strip() for t in header.split(",")]


def body_allowed(status: int, method: str) -> bool:
    return method != "HEAD" and status not in _BODILESS and status >= 200
