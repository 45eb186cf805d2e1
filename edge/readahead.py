"""Which segments to fetch ahead of a player: the next ones of the same rendition.

Pure. A player that fetches segment n of a rendition will, unless it skips or switches rung,
fetch n+1, n+2, ...; the edge warms about ``seconds`` of audio ahead at low priority.
"""

import math

from cadenza import hls
from cadenza.layout import segment_index, segment_name

SEGMENT_SECONDS = 6.0
LAST_INDEX = 99_999  # readahead never names a segment past this


def segment_number(path: str) -> int | None:
    """The index of the segment ``path`` names (in some folder); None for other paths."""
    _, slash, name = path.rpartition("/")
    return segment_index(name) if slash else None


def following_segments(
    path: str, seconds: float, segment_seconds: float = SEGMENT_SECONDS
) -> list[str]:
    """The paths of the segments covering the next ``seconds`` after ``path``'s segment."""
    number = segment_number(path)
    if number is None or seconds <= 0:
        return []
    count = math.ceil(seconds / segment_seconds)
    folder = path[: path.rfind("/") + 1]
    return [
        folder + segment_name(n) for n in range(number + 1, min(number + 1 + count, LAST_INDEX + 1))
    ]


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
        name = path.rpartition("/")[2]
        if segment_index(name) is not None and name not in listed:
            continue
        kept.append(path)
    return kept
