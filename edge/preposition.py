"""Pre-positioning: warm the first seconds of the region's most popular tracks at every rung.

Every ``interval`` the edge takes a hot list (the locator's ``/v1/hot`` for its region when a
locator is configured, else its own recent play counts), reads each track's master playlist
and media playlists through its own cache, and fetches the init segment and the first segments
of every rendition in the background, so that a play of a popular track starts from memory.
The plan (which keys) is pure; ``preposition`` is the loop that fetches.
"""

import asyncio
import contextlib
import posixpath
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import aiohttp

from cadenza import http
from cadenza.layout import INIT_SEGMENT
from cadenza.log import get_logger
from encoder.playlist import parse_media_playlist

logger = get_logger("edge.preposition")


@dataclass
class PlayCounts:
    """Plays per track on this edge (init segment requests), halved after each round."""

    counts: Counter[str] = field(default_factory=Counter)

    def record(self, key: str) -> None:
        parts = key.split("/")
        if len(parts) > 2 and parts[-1] == INIT_SEGMENT:
            self.counts[parts[1]] += 1

    def take_top(self, n: int) -> list[str]:
        """The ``n`` most played tracks; then every count halves, so old fame fades."""
        top = [track for track, _ in self.counts.most_common(n)]
        self.counts = Counter({t: c // 2 for t, c in self.counts.items() if c > 1})
        return top


def relative_key(base_key: str, uri: str) -> str | None:
    """The storage key of ``uri`` as written in the playlist stored under ``base_key``."""
    if "://" in uri or uri.startswith("/"):
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(base_key), uri))
    return http.object_key("/" + joined)


def variant_keys(master_key: str, text: str) -> list[str]:
    """The media playlists a master playlist names, as storage keys."""
    uris = [line.strip() for line in text.splitlines() if line.strip()[:1] not in ("", "#")]
    return [key for uri in uris if (key := relative_key(master_key, uri)) is not None]


def first_keys(playlist_key: str, text: str, seconds: float) -> list[str]:
    """The init segment and the segments covering the first ``seconds`` of a rendition."""
    try:
        playlist = parse_media_playlist(text)
    except ValueError:
        return []
    uris = [playlist.init_uri]
    covered = 0.0
    for segment in playlist.segments:
        if covered >= seconds:
            break
        uris.append(segment.uri)
        covered += segment.duration
    return [key for uri in uris if (key := relative_key(playlist_key, uri)) is not None]


Obtain = Callable[[str], Awaitable[bytes | None]]
Warm = Callable[[str], Awaitable[None]]


async def warm_tracks(tracks: Iterable[str], seconds: float, obtain: Obtain, warm: Warm) -> int:
    """Read the playlists of ``tracks`` with ``obtain`` and ``warm`` their first segments, one
    at a time (low priority: players' own misses go first); returns how many were warmed."""
    asked = 0
    for track in tracks:
        master_key = f"tracks/{track}/master.m3u8"
        if http.object_key("/" + master_key) is None:
            continue
        master = await obtain(master_key)
        if master is None:
            continue
        for playlist_key in variant_keys(master_key, master.decode(errors="replace")):
            playlist = await obtain(playlist_key)
            if playlist is None:
                continue
            for key in first_keys(playlist_key, playlist.decode(errors="replace"), seconds):
                await warm(key)
                asked += 1
    return asked


async def hot_from_locator(
    client: aiohttp.ClientSession, locator: str, region: str, n: int
) -> list[str]:
    """The locator's hot list for ``region``: ``{"tracks": [{"track_id": ...}, ...]}``."""
    url = f"{locator.rstrip('/')}/v1/hot"
    timeout = aiohttp.ClientTimeout(total=5)
    params = {"region": region, "limit": str(n)}
    async with client.get(url, params=params, timeout=timeout) as response:
        response.raise_for_status()
        doc = await response.json()
    return [str(item["track_id"]) for item in doc["tracks"]][:n]


async def preposition(
    interval: float,
    hot_list: Callable[[], Awaitable[list[str]]],
    seconds: float,
    obtain: Obtain,
    warm: Warm,
) -> None:
    """Every ``interval`` seconds, warm the first ``seconds`` of the hot list's tracks."""
    while True:
        await asyncio.sleep(interval)
        try:
            tracks = await hot_list()
        except (aiohttp.ClientError, TimeoutError, KeyError, TypeError, ValueError) as e:
            logger.warning("no hot list this round (%s)", e)
            continue
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            asked = await warm_tracks(tracks, seconds, obtain, warm)
            logger.info("pre-positioning %d objects of %d hot tracks", asked, len(tracks))
