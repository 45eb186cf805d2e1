"""Common Media Client Data (CTA-5004) as players send it: a ``CMCD`` query parameter or the
``CMCD-Request``, ``CMCD-Object``, ``CMCD-Status`` and ``CMCD-Session`` headers.

Pure. The edge reads ``nor`` (next object request) for readahead and logs the rest.
"""

import posixpath
import urllib.parse
from collections.abc import Mapping

from edge.fields import split_list, unquote

TRACKS = "/tracks/"
CMCD_HEADERS = ("CMCD-Request", "CMCD-Object", "CMCD-Status", "CMCD-Session")
CmcdValue = str | int | float | bool


def parse_cmcd(text: str) -> dict[str, CmcdValue]:
    """``key=value`` pairs separated by commas; strings quoted, bare keys are true.

    Unparseable pairs are skipped rather than failing the request: CMCD is advisory.
    """
    data: dict[str, CmcdValue] = {}
    for pair in split_list(text):
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not key or not key.replace("-", "").isalnum():
            continue
        data[key] = True if not sep else _value(raw.strip())
    return data


def _value(raw: str) -> CmcdValue:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return unquote(raw[1:-1])
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw  # a token such as ot=a or sf=h


def from_request(query: Mapping[str, str], headers: Mapping[str, str]) -> dict[str, CmcdValue]:
    """CMCD from the query parameter, else from the four headers."""
    if "CMCD" in query:
        return parse_cmcd(query["CMCD"])
    data: dict[str, CmcdValue] = {}
    for name in CMCD_HEADERS:
        if name in headers:
            data.update(parse_cmcd(headers[name]))
    return data


def next_objects(cmcd: Mapping[str, CmcdValue], request_path: str) -> list[str]:
    """Paths the player says it will request next (``nor``), resolved against the request.

    Only paths on this host under ``/tracks/`` are kept; ``nor`` may name several objects
    separated by commas inside the quoted string (CMCD v2), each URL-encoded.
    """
    nor = cmcd.get("nor")
    if not isinstance(nor, str) or not nor:
        return []
    base = posixpath.dirname(request_path) + "/"
    found = []
    for item in nor.split(","):
        relative = urllib.parse.unquote(item.strip())
        parsed = urllib.parse.urlsplit(relative)
        if parsed.scheme or parsed.netloc or not parsed.path:
            continue
        path = posixpath.normpath(posixpath.join(base, parsed.path))
        if path.startswith(TRACKS) and ".." not in path.split("/"):
            found.append(path)
    return found
