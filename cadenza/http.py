"""HTTP rules that the origin and the edges share: ranges, validators, content types, paths.

Pure (RFC 9110 sections 8.8.3, 13.1 and 14); the services' handlers call these.
"""

import functools
import itertools
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlsplit

MAX_RANGES = 4  # more ranges than this in one request is treated as abuse (416)
MAX_PATH = 1024
# A byte position past 2**63 is past the end of any object: longer numbers are read as this,
# so a header of absurd digit counts costs no big-integer parsing and never raises.
BEYOND_ANY_OBJECT = 1 << 63
_POSITION_DIGITS = 18  # every number of at most this many digits is below BEYOND_ANY_OBJECT
_SAFE_PATH = re.compile(r"/tracks/[A-Za-z0-9][A-Za-z0-9._/-]*")
_BYTE_RANGE = re.compile(r"([0-9]*)-([0-9]*)")

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mp4": "audio/mp4",
    ".m4s": "audio/mp4",
    ".json": "application/json",
    ".jpg": "image/jpeg",
    ".png": "image/png",
}
IMMUTABLE = "public, max-age=31536000, immutable"


class RangeNotSatisfiable(Exception):
    """416: the ranges cannot be served (beyond the end, overlapping, or too many)."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # exclusive

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range to serve, or None to serve the whole object (200).

    A header that does not parse is ignored, as RFC 9110 allows; several satisfiable,
    disjoint ranges are answered with the whole object, which the RFC also allows.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) > MAX_RANGES:
        raise RangeNotSatisfiable(f"more than {MAX_RANGES} ranges")
    ranges = []
    for part in parts:
        match = _BYTE_RANGE.fullmatch(part)
        if not match or match.groups() == ("", ""):
            return None
        first_digits, last_digits = (g.lstrip("0") or g[:1] for g in match.groups())
        if first_digits and last_digits and _below(last_digits, first_digits):
            return None
        first, last = _position(first_digits), _position(last_digits)
        resolved = _resolve(first, last, size)
        if resolved is not None:
            ranges.append(resolved)
    if not ranges:
        raise RangeNotSatisfiable("no range overlaps the object")
    ranges.sort(key=lambda r: r.start)
    if any(b.start < a.end for a, b in itertools.pairwise(ranges)):
        raise RangeNotSatisfiable("overlapping ranges")
    return ranges[0] if len(ranges) == 1 else None


def _below(a: str, b: str) -> bool:
    """a < b for decimal numbers without leading zeros, of any length, without int()."""
    return (len(a), a) < (len(b), b)


def _position(digits: str) -> int | None:
    """A byte position (no leading zeros); BEYOND_ANY_OBJECT for longer numbers, None for none."""
    if not digits:
        return None
    return int(digits) if len(digits) <= _POSITION_DIGITS else BEYOND_ANY_OBJECT


def _resolve(first: int | None, last: int | None, size: int) -> ByteRange | None:
    if first is None:  # suffix range: the last N bytes
        assert last is not None
        return ByteRange(max(0, size - last), size) if last > 0 and size > 0 else None
    if first >= size:
        return None
    end = size if last is None else min(last + 1, size)
    return ByteRange(first, end)


def etag_for(sha256: str, variant: str = "") -> str:
    """A strong ETag from the content hash; each encoding of a resource gets its own."""
    return f'"{sha256[:32]}{variant}"'


def none_match(header: str | None, etag: str) -> bool:
    """True when If-None-Match matches ``etag`` (weak comparison, RFC 9110 13.1.2)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in header.split(","))


def if_range_allows(header: str | None, etag: str) -> bool:
    """If-Range with a strong ETag: serve the range only when the ETag still matches."""
    if not header:
        return True
    return header.strip() == etag and not etag.startswith("W/")


def accepts_gzip(header: str | None) -> bool:
    for item in (header or "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in {"gzip", "*"}:
            q = params.strip().removeprefix("q=").strip() if "q=" in params else "1"
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(PurePosixPath(name).suffix.lower(), "application/octet-stream")


@functools.lru_cache(maxsize=4096)
def object_key(raw_path: str) -> str | None:
    """The storage key of a ``/tracks/...`` request path, or None when it is not a safe one.

    The raw path (before percent-decoding) must use only the characters keys are made of, so
    ``%2e%2e``, ``%2f``, encoded backslashes and NUL bytes never become a key. Remembered for
    the last few thousand paths: an edge's memory hits ask for the same ones again and again.
    """
    path = raw_path.split("?", 1)[0]
    if len(path) > MAX_PATH or not _SAFE_PATH.fullmatch(path):
        return None
    segments = path[1:].split("/")
    if any(s in {"", ".", ".."} for s in segments):
        return None
    return "/".join(segments)


def authority(url: str) -> tuple[str, int]:
    """The host and port ``url`` connects to (the scheme's port when it names none); ValueError
    for a port that is not a number in range."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def host_port(url: str) -> str:
    """``HOST:PORT`` of ``url``, an IPv6 host in brackets: a listen address, a scrape target."""
    host, port = authority(url)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Cors:
    """What browser players on other origins may do with a service: each names what it exposes.

    Web players fetch playlists, segments and steering manifests from other origins than the
    page's; a browser hides every answer without these fields, error answers included.
    """

    expose: tuple[str, ...]
    methods: tuple[str, ...] = ("GET", "HEAD", "OPTIONS")
    request_headers: str = "*"  # allowed when a preflight does not name the ones it wants

    @property
    def fields(self) -> dict[str, str]:
        """The fields of every answer (made anew each call: callers keep the dict)."""
        return {
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Expose-Headers": ", ".join(self.expose),
        }

    def preflight_fields(self, asked: str | None) -> dict[str, str]:
        """The answer to a preflight that asked for the request headers ``asked``."""
        return {
            **self.fields,
            "Access-Control-Allow-Methods": ", ".join(self.methods),
            "Access-Control-Allow-Headers": asked or self.request_headers,
            "Access-Control-Max-Age": "86400",
        }
