"""Common Media Client Data (CTA-5004) that the player sends with every media request.

Pure. The data travel as one ``CMCD`` query parameter: keys sorted, comma separated, strings in
double quotes, tokens bare, true booleans as the bare key, false and unknown values left out.
Edges read ``nor`` (the next object) to warm it before the player asks, and log the rest.
"""

import math
import posixpath
import urllib.parse
from dataclasses import dataclass
from typing import Literal

QUERY = "CMCD"
ObjectType = Literal["m", "a", "i"]  # manifest (a playlist), audio segment, init segment
MANIFEST: ObjectType = "m"
AUDIO: ObjectType = "a"
INIT: ObjectType = "i"
MAX_STRING = 64  # CTA-5004 caps sid and cid at 64 characters


@dataclass(frozen=True)
class Cmcd:
    """What one request says about the player; None means unknown, and is not sent."""

    session_id: str  # sid: one play
    content_id: str  # cid: the track
    object_type: ObjectType  # ot
    bitrate_kbps: float | None = None  # br: encoded rate of the requested rendition
    buffer_s: float | None = None  # bl: media buffered ahead of the playhead
    throughput_kbps: float | None = None  # mtp: throughput the player measures
    next_object: str | None = None  # nor: URL of the next request, relative to this one
    startup: bool = False  # su: needed at once (startup, or recovery from a stall)


def encode(data: Cmcd) -> str:
    """The CMCD value, before URL encoding of the whole."""
    pairs: dict[str, str | None] = {
        "cid": _string(data.content_id[:MAX_STRING]),
        "ot": data.object_type,
        "sid": _string(data.session_id[:MAX_STRING]),
    }
    if data.bitrate_kbps is not None:
        pairs["br"] = str(round(data.bitrate_kbps))
    if data.buffer_s is not None:
        pairs["bl"] = str(_hundreds(data.buffer_s * 1000.0))
    if data.throughput_kbps is not None:
        pairs["mtp"] = str(_hundreds(data.throughput_kbps))
    if data.next_object:
        pairs["nor"] = _string(data.next_object)
    if data.startup:
        pairs["su"] = None
    return ",".join(
        key if value is None else f"{key}={value}" for key, value in sorted(pairs.items())
    )


def query_value(data: Cmcd) -> str:
    """``CMCD=...``, ready to append to a query string."""
    return f"{QUERY}={urllib.parse.quote(encode(data), safe='')}"


def with_cmcd(url: str, data: Cmcd) -> str:
    """``url`` with the CMCD query parameter added (the URL must carry no CMCD yet)."""
    return f"{url}{'&' if '?' in url else '?'}{query_value(data)}"


def relative_url(request_url: str, next_url: str) -> str | None:
    """``next_url`` relative to ``request_url``, URL-encoded, for ``nor``; None across hosts."""
    here, there = urllib.parse.urlsplit(request_url), urllib.parse.urlsplit(next_url)
    if (here.scheme, here.netloc) != (there.scheme, there.netloc):
        return None
    folder = posixpath.dirname(here.path) or "/"
    relative = posixpath.relpath(there.path or "/", folder)
    encoded = urllib.parse.quote(urllib.parse.unquote(relative), safe="/")
    return f"{encoded}?{there.query}" if there.query else encoded


def _hundreds(value: float) -> int:
    """Rounded to the nearest 100, as CTA-5004 asks for bl and mtp (fewer distinct values)."""
    if not math.isfinite(value) or value <= 0:
        return 0
    return math.floor(value / 100.0 + 0.5) * 100


def _string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
