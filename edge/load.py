"""The edge's load as the locator sees it: egress over a sliding window, active requests.

Pure: the clock is passed in.
"""

from collections import deque
from dataclasses import dataclass, field

WINDOW_SECONDS = 10.0


@dataclass
class Egress:
    """Bytes sent, bucketed by whole second, summed over the last ``window`` seconds."""

    window: float = WINDOW_SECONDS
    _buckets: deque[tuple[int, int]] = field(default_factory=deque)

    def add(self, nbytes: int, now: float) -> None:
        second = int(now)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1] = (second, self._buckets[-1][1] + nbytes)
        else:  # trimmed once a second, not per answer: a reading trims anyway
            self._buckets.append((second, nbytes))
            self._trim(now)

    def bits_per_second(self, now: float) -> float:
        self._trim(now)
        return sum(n for _, n in self._buckets) * 8 / self.window

    def _trim(self, now: float) -> None:
        oldest = now - self.window
        while self._buckets and self._buckets[0][0] < oldest:
            self._buckets.popleft()


@dataclass
class HitRatio:
    hits: int = 0
    misses: int = 0

    def record(self, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1

    @property
    def ratio(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0
