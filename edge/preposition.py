"""Pre-positioning: warm what this edge's players will ask for next, and count what was wasted.

The edge learns from its own requests (``PlayCounts``): which tracks are played here (requests
for a track's first segment; init segments would count every switch of rung too), and how
often a play asks for each position in a track at each rung (players start low, climb, and
skip). Every ``interval`` it takes the tracks to consider (the locator's ``/v1/hot`` for
its region when a locator is configured, else its own most played), and ``plan`` keeps, per
track, only the segments (rung and position) of which at least ``MIN_EXPECTED`` requests are
expected before the next round. Warming an object nobody then asks for costs the origin a fetch for
nothing, so ``WarmLedger`` counts every warmed object as used (a player asked for it) or
wasted (nobody did within ``WASTE_ROUNDS`` rounds).
The plan and the ledger are pure; ``preposition`` is the loop that fetches.
"""

import asyncio
import contextlib
import functools
import posixpath
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import aiohttp

from cadenza import hls, http
from cadenza.layout import segment_index
from cadenza.log import get_logger

logger = get_logger("edge.preposition")

MIN_EXPECTED = 1.0  # requests expected before the next round for an object to be worth warming
WASTE_ROUNDS = 2  # a warmed object nobody asked for within this many rounds is wasted
MAX_LEDGER = 100_000  # warmed objects remembered at once; the oldest leave as wasted

K = TypeVar("K")
Outcome = Callable[[str, int], None]  # ("warmed" | "used" | "wasted", bytes)


class WarmLedger:
    """Warmed objects not yet asked for, oldest first; each ends as used or wasted, once."""

    def __init__(self, window_s: float, report: Outcome, max_objects: int = MAX_LEDGER) -> None:
        if not window_s > 0 or max_objects < 1:
            raise ValueError(f"window {window_s!r} s and size {max_objects!r} must be positive")
        self.window_s = window_s
        self.max_objects = max_objects
        self._report = report
        self._pending: dict[str, tuple[float, int]] = {}  # key: (warmed at, bytes)
        self._filling: dict[str, bool] = {}  # key: asked for while it was being fetched

    def __len__(self) -> int:
        return len(self._pending)

    def filling(self, key: str) -> None:
        """Pre-positioning starts fetching ``key`` (its size is known once it is in)."""
        self._filling.setdefault(key, False)

    def warmed(self, key: str, nbytes: int | None, now: float) -> None:
        """The fetch of ``key`` ended, with ``nbytes`` stored (``None``: it failed)."""
        asked = self._filling.pop(key, False)
        if nbytes is None or key in self._pending:
            return
        self._report("warmed", nbytes)
        if asked:
            self._report("used", nbytes)
            return
        if len(self._pending) >= self.max_objects:
            oldest = next(iter(self._pending))
            self._report("wasted", self._pending.pop(oldest)[1])
        self._pending[key] = (now, nbytes)

    def requested(self, key: str) -> None:
        """A player asked for ``key``: if it was warmed and waiting, it was worth it."""
        if key in self._filling:
            self._filling[key] = True
        held = self._pending.pop(key, None)
        if held is not None:
            self._report("used", held[1])

    def expire(self, now: float) -> None:
        """Objects warmed more than the window ago that nobody asked for are wasted."""
        while self._pending:
            key, (warmed_at, nbytes) = next(iter(self._pending.items()))
            if now - warmed_at < self.window_s:
                return
            del self._pending[key]
            self._report("wasted", nbytes)


@dataclass
class PlayCounts:
    """What this edge's players asked for, decayed: plays per track, and segment requests per
    rung and position in the track. Every count halves when a round takes them."""

    plays: Counter[str] = field(default_factory=Counter)
    positions: Counter[tuple[str, int]] = field(default_factory=Counter)  # (rung, number)
    ledger: WarmLedger | None = None
    first: int | None = None  # the lowest segment number asked for (the encoder's 0)
    # Only the worker that pre-positions learns: in the others nothing would ever take (and
    # halve) the counts, which would grow with every track played.
    learning: bool = True

    def record(self, key: str) -> None:
        if not self.learning:
            return
        if self.ledger is not None:
            self.ledger.requested(key)
        place = segment_place(key)
        if place is None:
            return
        track, rung, index = place
        self.positions[rung, index] += 1
        if self.first is None or index < self.first:
            self.first = index
        if index == self.first:  # a play asks for its first segment once, at one rung
            self.plays[track] += 1

    def take(self) -> "Demand":
        """The demand as of now; then every count halves, so old habits fade."""
        demand = Demand(dict(self.plays), dict(self.positions))
        self.plays, self.positions = _halved(self.plays), _halved(self.positions)
        return demand


@functools.lru_cache(maxsize=4096)
def segment_place(key: str) -> tuple[str, str, int] | None:
    """A segment's key as (track, rung, segment number); None for other keys. Remembered for
    the last few thousand keys: every memory hit is recorded."""
    parts = key.split("/")
    index = segment_index(parts[4]) if len(parts) == 5 else None
    return None if index is None else (parts[1], parts[3], index)


def _halved(counts: "Counter[K]") -> "Counter[K]":
    return Counter({k: c // 2 for k, c in counts.items() if c > 1})


@dataclass(frozen=True)
class Demand:
    plays: Mapping[str, float]
    positions: Mapping[tuple[str, int], float]  # segment requests by (rung, number)

    def rungs(self) -> list[str]:
        return sorted({rung for rung, _ in self.positions})

    def most_played(self, n: int) -> list[str]:
        """The ``n`` most played tracks, ties to the smaller id."""
        return sorted(self.plays, key=lambda t: (-self.plays[t], t))[:n]

    def chance(self, rung: str, position: int) -> float:
        """How often a play asks for the segment at ``position`` in its playlist at ``rung``:
        its requests over those of every first segment (the lowest number asked for). Players
        start low and climb, so a rung's share differs from one position to the next."""
        if not self.positions:
            return 0.0
        first = min(number for _, number in self.positions)
        plays = sum(c for (_, number), c in self.positions.items() if number == first)
        asked = self.positions.get((rung, first + position), 0.0)
        return min(1.0, asked / plays) if plays > 0 else 0.0


def plan(
    demand: Demand,
    candidates: Iterable[str],
    tracks: int,
    max_segments: int,
    min_expected: float = MIN_EXPECTED,
) -> dict[str, dict[str, list[int]]]:
    """Per track, per rung, the positions of the first ``max_segments`` segments to warm (with
    the rung's init segment).

    A track is considered only when it was played here. Counts halve every round, so a
    steady ``r`` plays a round make a count of ``2 r``: the segment at position ``i`` of rung
    ``s`` of track ``t`` is expected ``plays(t) / 2 * chance(s, i)`` times in the next round,
    and is kept when that is at least ``min_expected``. At most ``tracks`` tracks, in
    candidate order.
    """
    chosen: dict[str, dict[str, list[int]]] = {}
    rungs = demand.rungs()
    for track in candidates:
        if len(chosen) >= tracks:
            break
        plays = demand.plays.get(track, 0.0) / 2
        if plays <= 0 or track in chosen:
            continue
        wanted = {}
        for rung in rungs:
            at = [i for i in range(max_segments) if plays * demand.chance(rung, i) >= min_expected]
            if at:
                wanted[rung] = at
        if wanted:
            chosen[track] = wanted
    return chosen


def relative_key(base_key: str, uri: str) -> str | None:
    """The storage key of ``uri`` as written in the playlist stored under ``base_key``."""
    if "://" in uri or uri.startswith("/"):
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(base_key), uri))
    return http.object_key("/" + joined)


def variant_keys(master_key: str, text: str) -> list[str]:
    """The media playlists a master playlist names, as storage keys (none if it is malformed)."""
    try:
        variants = hls.parse_multivariant(text).variants
    except ValueError:
        return []
    return [key for v in variants if (key := relative_key(master_key, v.uri)) is not None]


def first_keys(
    playlist_key: str, text: str, seconds: float, positions: Iterable[int] | None = None
) -> list[str]:
    """The init segment and the segments starting within the first ``seconds`` of a
    rendition, only those at ``positions`` when given."""
    try:
        playlist = hls.parse_media_playlist(text)
    except ValueError:
        return []
    wanted = None if positions is None else set(positions)
    uris = [playlist.init_uri]
    covered = 0.0
    for i, segment in enumerate(playlist.segments):
        if covered >= seconds:
            break
        if wanted is None or i in wanted:
            uris.append(segment.uri)
        covered += segment.duration
    return [key for uri in uris if (key := relative_key(playlist_key, uri)) is not None]


Obtain = Callable[[str], Awaitable[bytes | None]]
Warm = Callable[[str], Awaitable[None]]


async def warm_tracks(
    wanted: Mapping[str, Mapping[str, list[int]]], seconds: float, obtain: Obtain, warm: Warm
) -> int:
    """Read the playlists of the ``wanted`` tracks with ``obtain`` and ``warm`` their first
    segments at the planned rungs and positions (at most ``seconds`` deep), one at a time (low
    priority: players' own misses go first); returns how many were asked for."""
    asked = 0
    for track, rungs in wanted.items():
        master_key = f"tracks/{track}/master.m3u8"
        if http.object_key("/" + master_key) is None:
            continue
        master = await obtain(master_key)
        if master is None:
            continue
        for playlist_key in variant_keys(master_key, master.decode(errors="replace")):
            rung = playlist_key.split("/")[-2]
            if rung not in rungs:
                continue
            playlist = await obtain(playlist_key)
            if playlist is None:
                continue
            text = playlist.decode(errors="replace")
            for key in first_keys(playlist_key, text, seconds, rungs[rung]):
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
    candidates: Callable[[], Awaitable[list[str]]],
    choose: Callable[[list[str]], Mapping[str, Mapping[str, list[int]]]],
    seconds: float,
    obtain: Obtain,
    warm: Warm,
) -> None:
    """Every ``interval`` seconds, warm what ``choose`` plans for the candidate tracks."""
    while True:
        await asyncio.sleep(interval)
        try:
            tracks = await candidates()
        except (aiohttp.ClientError, TimeoutError, KeyError, TypeError, ValueError) as e:
            logger.warning("no hot list this round (%s)", e)
            continue
        wanted = choose(tracks)
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            asked = await warm_tracks(wanted, seconds, obtain, warm)
            logger.info("pre-positioning %d objects of %d tracks", asked, len(wanted))
