"""Which segments to fetch ahead of a player: the next ones of the same rendition.

Pure. A player that fetches segment n of a rendition will, unless it skips or switches rung,
fetch n+1, n+2, ...; the edge warms about ``seconds`` of audio ahead at low priority.
"""

import math
import re

from cadenza import hls

SEGMENT = re.compile(r"^(?P<folder>.*/)seg_(?P<number>\d{5})\.m4s$")
SEGMENT_SECONDS = 6.0


def segment_number(path: str) -> int | None:
    match = SEGMENT.match(path)
    return int(match.group("number")) if match else None


def following_segments(
    path: str, seconds: float, segment_seconds: float = SEGMENT_SECONDS
) -> list[str]:
    """The paths of the segments covering the next ``seconds`` after ``path``'s segment."""
    match = SEGMENT.match(path)
    if match is None or seconds <= 0:
        return []
    count = math.ceil(seconds / segment_seconds)
    first = int(match.group("number")) + 1
    last = min(first + count, 100_000)
    return [f"{match.group('folder')}seg_{n:05d}.m4s" for n in range(first, last)]


def listed_segments(playlist: bytes) -> frozenset[str]:
    """The segment file names a media playlist lists (relative names only; none if the playlist
    is malformed)."""
    try:
        segments = hls.parse_media_playlist(playlist.decode("utf-8", "replace")).segments
    except ValueError:
        return frozenset()
    return frozenset(s.uri for s in segments if "/" not in s.uri and "?" not in s.uri)


def allowed(paths: list[str], prefix: str, listed: frozenset[str]) -> list[str]:
    """The paths under ``prefix`` (the token's ACL, or the request's track) whose segments the
    rendition's playlist lists; other objects under the prefix (init, playlists) are kept."""
    kept = []
    for path in paths:
        if not path.startswith(prefix):
            continue
        if SEGMENT.match(path) and path.rsplit("/", 1)[1] not in listed:
            continue
        kept.append(path)
    return kept
