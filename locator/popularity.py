"""Each region's hot tracks: play counts that decay with a half-life, in bounded memory.

Pure: the caller passes the time. A play at time ``t`` is worth ``2 ** -((now - t) / half_life)``
at ``now``. Rather than decaying every count as time passes, a region stores each play as
``exp(rate * (t - epoch))``, its weight scaled up to a fixed epoch, so a record touches one
count and the ranking never changes with time alone; when the scale grows large the region
moves its epoch and rescales its counts, once in ``RENORMALISE_AFTER / rate`` seconds.

A region keeps at most ``max_tracks`` counts, as Space-Saving does (Metwally, Agrawal and El
Abbadi, ICDT 2005): a new track takes the place of the least played one and inherits its count,
so every track played more than a ``1 / max_tracks`` share of the region's recent plays is kept,
and a count overestimates by at most what it inherited.
"""

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

DEFAULT_HALF_LIFE_S = 3600.0
DEFAULT_MAX_TRACKS = 1000
RENORMALISE_AFTER = 64.0  # in units of the exponent: scales stay within about e**64
HEAP_SLACK = 4  # rebuild a region's heap when it holds this many times its counts, plus one


@dataclass
class _Region:
    epoch: float
    counts: dict[str, float] = field(default_factory=dict)
    # (count, track) at the time of each change, least first; stale entries are skipped.
    heap: list[tuple[float, str]] = field(default_factory=list)


class HotTracks:
    """Decayed play counts per region, with the top tracks of each."""

    def __init__(
        self, *, half_life_s: float = DEFAULT_HALF_LIFE_S, max_tracks: int = DEFAULT_MAX_TRACKS
    ) -> None:
        if not (math.isfinite(half_life_s) and half_life_s > 0) or max_tracks < 1:
            raise ValueError(
                f"half-life {half_life_s!r} s and max tracks {max_tracks!r} must be positive"
            )
        self.half_life_s = half_life_s
        self.max_tracks = max_tracks
        self._rate = math.log(2) / half_life_s
        self._regions: dict[str, _Region] = {}

    def regions(self) -> list[str]:
        return sorted(self._regions)

    def __len__(self) -> int:
        """The counts held, in every region."""
        return sum(len(r.counts) for r in self._regions.values())

    def record(self, region: str, track_id: str, now: float, plays: float = 1.0) -> None:
        """``plays`` plays (1 by default) of ``track_id`` in ``region`` at time ``now``."""
        if not (math.isfinite(now) and math.isfinite(plays) and plays >= 0):
            raise ValueError(f"time {now!r} must be finite and plays {plays!r} at least 0")
        r = self._regions.get(region)
        if r is None:
            r = self._regions[region] = _Region(epoch=now)
        exponent = self._rate * (now - r.epoch)
        if exponent > RENORMALISE_AFTER:
            self._renormalise(r, now)
            exponent = 0.0
        added = plays * math.exp(exponent)
        counts = r.counts
        count = counts.get(track_id)
        if count is None:
            count = self._make_room(r) if len(counts) >= self.max_tracks else 0.0
        count += added
        counts[track_id] = count
        heapq.heappush(r.heap, (count, track_id))
        if len(r.heap) > HEAP_SLACK * len(counts) + 1:
            r.heap = [(c, t) for t, c in counts.items()]
            heapq.heapify(r.heap)

    def score(self, region: str, track_id: str, now: float) -> float:
        """The decayed plays of ``track_id`` in ``region`` at ``now``; 0 if not held."""
        r = self._regions.get(region)
        return 0.0 if r is None else r.counts.get(track_id, 0.0) * self._decay(r, now)

    def top(self, region: str, n: int, now: float) -> list[tuple[str, float]]:
        """The ``n`` most played tracks of ``region`` with their scores at ``now``, best first.

        Ties go to the smaller track id, so the list is the same on every run.
        """
        r = self._regions.get(region)
        if r is None or n <= 0:
            return []
        best = heapq.nsmallest(n, r.counts.items(), key=lambda item: (-item[1], item[0]))
        decay = self._decay(r, now)
        return [(track_id, count * decay) for track_id, count in best]

    def _decay(self, r: _Region, now: float) -> float:
        # Capped so that a clock set far back (before the epoch) cannot overflow.
        return math.exp(min(RENORMALISE_AFTER, self._rate * (r.epoch - now)))

    def _make_room(self, r: _Region) -> float:
        """Drop the least played track of ``r``; return its count, which the newcomer inherits."""
        while True:
            count, track_id = heapq.heappop(r.heap)
            if r.counts.get(track_id) == count:
                del r.counts[track_id]
                return count

    def _renormalise(self, r: _Region, now: float) -> None:
        """Move the epoch to ``now``; scaling every count alike keeps the heap ordered."""
        scale = math.exp(-self._rate * (now - r.epoch))
        r.epoch = now
        r.counts = {t: c * scale for t, c in r.counts.items()}
        r.heap = [(c * scale, t) for c, t in r.heap]


def merge_top(lists: Iterable[Iterable[tuple[str, float]]], n: int) -> list[tuple[str, float]]:
    """The ``n`` best tracks of several counters' ``top`` lists (one per locator worker), the
    scores of a track added up; ties to the smaller track id, as ``top``."""
    total: dict[str, float] = {}
    for found in lists:
        for track_id, score in found:
            total[track_id] = total.get(track_id, 0.0) + score
    return heapq.nsmallest(n, total.items(), key=lambda item: (-item[1], item[0]))
