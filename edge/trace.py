"""A synthetic request trace of an edge serving music, and what a cache makes of it.

Pure and seeded, so that eviction policies can be compared offline on the same requests. The
model (every parameter in ``TraceModel``, defaults chosen to be plausible for music streaming):

- A catalog of tracks lasting 2 to 6 minutes (triangular, mode 3.5 min), cut into 6 s segments
  at every rung of the default ladder (AAC 256/160/96/48 kb/s), a segment's size being its
  bitrate times its duration. Playlists and init segments are left out: a few kB per track
  and rung, about two requests per session, they would barely move the byte figures.
- Track popularity is Zipf with exponent ``zipf`` (0.8 to 1.0, the range commonly measured
  for music and video on demand; 0.9 by default).
- A session plays one track from segment 0 in order. With probability ``early_skip`` (25%) the
  listener skips within the first 30 s; otherwise playback stops within the last 12 s, where
  gapless players start fetching the next track. A session picks a rung by the share of
  listeners on each (most on 256 or 160 kb/s) and moves one rung up or down with probability
  ``rung_switch`` per segment, so a player mostly stays on one rung.
- ``concurrency`` sessions play at once, and each request comes from one of them at random,
  so sessions interleave as they do at an edge; an ended session is replaced by a new one.

Readahead (``generate_marked``): when an edge serves segment k of a stream it fetches segment
k + 1 at the same rung, a segment's duration (6 s) before the player asks for it. So a request
for segment k >= 1 at the rung of the session's previous request is *ahead*: a miss on it is
hidden from the player, who finds it fetched. Every other miss is *waited on*: the first segment
of a play, and the first after a rung switch.
"""

import heapq
import math
import random
import string
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import NamedTuple

from cadenza.layout import segment_name, version_prefix
from edge.policy import Policy

# Mirrors the encoder's default ladder; the edge does not depend on the encoder.
RUNGS = (("aac_256", 256), ("aac_160", 160), ("aac_96", 96), ("aac_48", 48))
SEGMENT_SECONDS = 6.0

Request = tuple[str, int]  # (key, size in bytes)


@dataclass(frozen=True)
class TraceModel:
    tracks: int = 2000
    requests: int = 300_000
    zipf: float = 0.9
    seed: int = 1
    concurrency: int = 200  # sessions playing at once
    min_seconds: float = 120.0
    mode_seconds: float = 210.0
    max_seconds: float = 360.0
    early_skip: float = 0.25  # share of sessions skipped within skip_seconds
    skip_seconds: float = 30.0
    tail_seconds: float = 12.0  # non-skipped sessions stop within this much of the end
    rung_shares: tuple[float, ...] = (0.45, 0.30, 0.17, 0.08)  # one per rung of RUNGS
    rung_switch: float = 0.02  # chance per segment of moving one rung

    def __post_init__(self) -> None:
        if self.tracks < 1 or self.requests < 0 or self.concurrency < 1:
            raise ValueError("a trace needs at least one track, one session and 0 requests")
        if len(self.rung_shares) != len(RUNGS):
            raise ValueError(f"rung_shares needs one share per rung, {len(RUNGS)} in all")


@dataclass(frozen=True)
class Track:
    track_id: str
    version: str
    seconds: float

    @property
    def segments(self) -> int:
        return math.ceil(self.seconds / SEGMENT_SECONDS)

    def prefix(self) -> str:
        return f"{version_prefix(self.track_id, self.version)}/"

    def segment_bytes(self, rung: int, index: int) -> int:
        seconds = min(SEGMENT_SECONDS, self.seconds - index * SEGMENT_SECONDS)
        return int(RUNGS[rung][1] * 125 * seconds)

    def bytes(self) -> int:
        """Every segment at every rung."""
        return sum(
            self.segment_bytes(r, i) for r in range(len(RUNGS)) for i in range(self.segments)
        )


class Outcome(NamedTuple):
    hits: int
    misses: int
    hit_bytes: int
    miss_bytes: int
    waited: int = 0  # misses not hidden by readahead (given which requests are ahead)


def make_catalog(model: TraceModel, rng: random.Random) -> list[Track]:
    """Tracks in order of popularity, the most played first."""
    alphabet = string.ascii_lowercase + string.digits
    return [
        Track(
            track_id="".join(rng.choices(alphabet, k=16)),
            version=f"v{rng.getrandbits(48):012x}",
            seconds=rng.triangular(model.min_seconds, model.max_seconds, model.mode_seconds),
        )
        for _ in range(model.tracks)
    ]


def zipf_weights(tracks: int, exponent: float) -> list[float]:
    return [1 / rank**exponent for rank in range(1, tracks + 1)]


@dataclass(slots=True)
class _Session:
    track: Track
    prefix: str
    rung: int
    stop: int  # segments it plays
    next: int = 0


def generate(model: TraceModel) -> Iterator[Request]:
    """Yield ``model.requests`` requests: the same ones for the same model."""
    for key, size, _ in generate_marked(model):
        yield key, size


def generate_marked(model: TraceModel) -> Iterator[tuple[str, int, bool]]:
    """``generate``'s requests, each with whether readahead fetches it before it is asked for."""
    rng = random.Random(model.seed)
    catalog = make_catalog(model, rng)
    popularity = list(accumulate(zipf_weights(model.tracks, model.zipf)))
    rung_shares = list(accumulate(model.rung_shares))
    rung_names = [name for name, _ in RUNGS]
    top = len(RUNGS) - 1
    skip_segments = max(1, int(model.skip_seconds / SEGMENT_SECONDS))
    tail_segments = max(1, int(model.tail_seconds / SEGMENT_SECONDS))

    def start() -> _Session:
        track = rng.choices(catalog, cum_weights=popularity)[0]
        rung = rng.choices(range(len(RUNGS)), cum_weights=rung_shares)[0]
        if rng.random() < model.early_skip:
            played = rng.randint(1, skip_segments)
        else:
            played = track.segments - rng.randrange(tail_segments + 1)
        return _Session(track, track.prefix(), rung, min(track.segments, max(1, played)))

    sessions = [start() for _ in range(model.concurrency)]
    for _ in range(model.requests):
        slot = rng.randrange(model.concurrency)
        session = sessions[slot]
        previous = session.rung
        if session.next and rng.random() < model.rung_switch:
            session.rung = min(top, max(0, session.rung + rng.choice((-1, 1))))
        index, rung = session.next, session.rung
        yield (
            f"{session.prefix}{rung_names[rung]}/{segment_name(index)}",
            session.track.segment_bytes(rung, index),
            index > 0 and rung == previous,
        )
        session.next += 1
        if session.next == session.stop:
            sessions[slot] = start()


def catalog_bytes(model: TraceModel) -> int:
    """Bytes of the whole catalog the trace draws from, every rung of every track."""
    return sum(track.bytes() for track in make_catalog(model, random.Random(model.seed)))


def footprint(requests: Iterable[Request]) -> int:
    """Bytes of the distinct objects requested."""
    return sum(dict(requests).values())


def simulate(policy: Policy, requests: Iterable[Request], ahead: Sequence[bool] = ()) -> Outcome:
    """Play ``requests`` through ``policy``, admitting every miss; a miss is waited on unless
    ``ahead`` marks its request (by position) as fetched by readahead."""
    hits = misses = hit_bytes = miss_bytes = waited = 0
    get, admit = policy.get, policy.admit
    marked = len(ahead)
    for i, (key, size) in enumerate(requests):
        if get(key):
            hits += 1
            hit_bytes += size
        else:
            misses += 1
            miss_bytes += size
            if i >= marked or not ahead[i]:
                waited += 1
            admit(key, size)
    return Outcome(hits, misses, hit_bytes, miss_bytes, waited)


def belady(requests: Sequence[Request], capacity: int, ahead: Sequence[bool] = ()) -> Outcome:
    """Belady's furthest-next-use rule for a cache of ``capacity`` bytes.

    On a miss the object is taken in, then objects are evicted, the one whose next request is
    furthest in the future first (the newcomer included, so it may be declined); objects never
    requested again go before all others. A heap keyed by next use holds one entry per access,
    and entries made stale by a later access are skipped when popped.

    With unit sizes this is optimal (OPT). With variable sizes exact OPT is NP-hard, and this
    standard furthest-next-use heuristic is the usual proxy for it: its misses are an upper
    bound on exact OPT's, not a floor that an online policy could never go below.
    """
    n = len(requests)
    next_use = [0] * n
    seen: dict[str, int] = {}
    for i in range(n - 1, -1, -1):
        key = requests[i][0]
        next_use[i] = seen.get(key, n + i)  # never again: beyond every real use, still distinct
        seen[key] = i
    held: dict[str, int] = {}  # key -> its next use
    sizes: dict[str, int] = {}
    heap: list[tuple[int, str]] = []  # (-next use, key)
    used = hits = misses = hit_bytes = miss_bytes = waited = 0
    marked = len(ahead)
    for i, (key, size) in enumerate(requests):
        if key in held:
            hits += 1
            hit_bytes += size
        else:
            misses += 1
            miss_bytes += size
            if i >= marked or not ahead[i]:
                waited += 1
            if size > capacity:
                continue
            sizes[key] = size
            used += size
        held[key] = next_use[i]
        heapq.heappush(heap, (-next_use[i], key))
        if len(heap) > 2 * len(held) + 64:  # mostly stale entries: rebuild, amortised O(1)
            heap = [(-upcoming, k) for k, upcoming in held.items()]
            heapq.heapify(heap)
        while used > capacity:
            negative_next, victim = heapq.heappop(heap)
            if held.get(victim) == -negative_next:
                del held[victim]
                used -= sizes.pop(victim)
    return Outcome(hits, misses, hit_bytes, miss_bytes, waited)


def belady_misses(requests: Sequence[Request], capacity: int) -> int:
    return belady(requests, capacity).misses
