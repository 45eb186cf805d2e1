"""How the lean lane reads request bytes: llhttp judges them, exactly as aiohttp's server would.

The lane runs aiohttp's own request parser (llhttp, with the limits of aiohttp's request
handler), so it accepts and refuses the same bytes as aiohttp; it never parses a head itself.
This module says which parsed requests the lane may answer and where each of them ends. A
request the lane answers has no body, so it ends where its head ends: past the empty lines that
llhttp skips before a request, at the first blank line (a valid head holds no CR or LF
elsewhere). Everything unusual is aiohttp's, with the bytes from that request on.
"""

from dataclasses import dataclass
from typing import NamedTuple

from aiohttp.http import HttpRequestParser, HttpVersion11, RawRequestMessage
from multidict import CIMultiDictProxy

# A request naming any of these has a body, asks for an interim answer or for another
# protocol: aiohttp knows what to do.
_FOR_AIOHTTP = ("Content-Length", "Transfer-Encoding", "Expect", "Upgrade")
_EMPTY_LINE = (b"\r", b"\n")


@dataclass(frozen=True, slots=True)
class Limits:
    """The head limits of aiohttp's request handler (``max_line_size`` etc.), the lane's too."""

    max_line_size: int = 8190
    max_field_size: int = 8190
    max_headers: int = 128


class Head(NamedTuple):
    """A bodiless HTTP/1.1 GET or HEAD as llhttp parsed it (a tuple: one is made per request,
    and a frozen dataclass costs several times as much to make)."""

    method: str
    target: str  # origin-form, with the query
    headers: CIMultiDictProxy[str]
    keep_alive: bool


def request_parser(limits: Limits) -> HttpRequestParser:
    """llhttp for one connection. No payload objects: requests with a body are not the lane's."""
    return HttpRequestParser(
        None,
        None,
        2**16,
        max_line_size=limits.max_line_size,
        max_field_size=limits.max_field_size,
        max_headers=limits.max_headers,
        response_with_body=False,
    )


def lane_head(message: RawRequestMessage) -> Head | None:
    """``message`` as the lane answers it, or None if it is aiohttp's to answer."""
    if (
        message.method not in ("GET", "HEAD")
        or message.version != HttpVersion11  # HTTP/1.0 keep-alive rules: aiohttp's
        or message.upgrade
        or message.chunked
    ):
        return None
    target = message.path
    if not target.startswith("/") or "#" in target:
        return None
    headers = message.headers
    for name in _FOR_AIOHTTP:
        if name in headers:
            return None
    return Head(message.method, target, headers, not message.should_close)


def head_end(data: bytes, start: int = 0) -> int:
    """Where the bodiless request that llhttp found at ``start`` of ``data`` ends; -1 if unseen."""
    if data.startswith(_EMPTY_LINE, start):
        length = len(data)
        while start < length and data[start] in b"\r\n":
            start += 1
    end = data.find(b"\r\n\r\n", start)
    return -1 if end < 0 else end + 4
