"""Adaptive bitrate rules: which rung of the ladder to request next.

Every rule is a pure core: it sees the player's state before each request and each finished
download, and reads no clock and does no I/O, so the simulator and a real player drive it alike.
Rungs are indexed from 0, the lowest bitrate; ``choose`` always returns a valid index.
"""

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PlayerState:
    """What the player knows just before it requests the next segment."""

    bitrates_kbps: tuple[float, ...]  # the ladder, ascending
    buffer_s: float  # media buffered and not yet played
    max_buffer_s: float  # the player never requests a segment that would overfill this
    segment_s: float  # duration of the segment about to be requested
    last_rung: int | None  # None before the first request
    playing: bool  # False until the first segment has arrived


@dataclass(frozen=True)
class DownloadSample:
    """One finished segment download, latency included."""

    nbytes: float
    seconds: float
    segment_s: float
    rung: int

    @property
    def kbps(self) -> float:
        return self.nbytes * 8.0 / 1000.0 / max(self.seconds, 1e-6)


class AbrRule(Protocol):
    def choose(self, state: PlayerState) -> int: ...

    def observe(self, sample: DownloadSample) -> None: ...


def highest_below(bitrates: tuple[float, ...], kbps: float) -> int:
    """The highest rung whose bitrate is at most ``kbps``; the lowest when none is."""
    return max((i for i, bitrate in enumerate(bitrates) if bitrate <= kbps), default=0)


class Ewma:
    """An exponentially weighted mean whose weights decay with seconds of download time.

    ``half_life_s`` seconds of newer samples halve an older sample's weight. The estimate is
    divided by the weight given so far, so the first samples are not pulled towards zero.
    """

    def __init__(self, half_life_s: float) -> None:
        self._alpha = 0.5 ** (1.0 / half_life_s)
        self._mean = 0.0
        self._weight = 0.0

    def add(self, weight_s: float, value: float) -> None:
        keep = self._alpha**weight_s
        self._mean = keep * self._mean + (1.0 - keep) * value
        self._weight += weight_s

    @property
    def value(self) -> float | None:
        given = 1.0 - self._alpha**self._weight
        return self._mean / given if given > 0.0 else None


class ThroughputRule:
    """Throughput-based, as hls.js does it: a fast and a slow EWMA, trust the lower.

    Picks the highest rung within ``safety`` of the estimate; before any sample, assumes
    ``default_kbps``.
    """

    def __init__(
        self,
        fast_half_life_s: float = 3.0,
        slow_half_life_s: float = 9.0,
        safety: float = 0.9,
        default_kbps: float = 500.0,
    ) -> None:
        self._fast = Ewma(fast_half_life_s)
        self._slow = Ewma(slow_half_life_s)
        self._safety = safety
        self._default_kbps = default_kbps

    def estimate_kbps(self) -> float:
        fast, slow = self._fast.value, self._slow.value
        if fast is None or slow is None:
            return self._default_kbps
        return min(fast, slow)

    def choose(self, state: PlayerState) -> int:
        return highest_below(state.bitrates_kbps, self._safety * self.estimate_kbps())

    def observe(self, sample: DownloadSample) -> None:
        self._fast.add(sample.seconds, sample.kbps)
        self._slow.add(sample.seconds, sample.kbps)


class BolaRule:
    """BOLA-BASIC (Spiteri, Urgaonkar and Sitaraman, INFOCOM 2016): buffer level only.

    Rung m has utility v_m = ln(bitrate_m / lowest bitrate) and is chosen when it maximises
    (Vp * (v_m + gp) - buffer) / bitrate_m. The score thresholds between neighbouring rungs are
    linear in the buffer, so Vp and gp follow from two of them: the lowest rung below
    ``min_buffer_s``, the top rung from the buffer target up, by default the fullest buffer at
    which the player requests (its maximum less one segment).
    """

    def __init__(self, min_buffer_s: float = 10.0, target_buffer_s: float | None = None) -> None:
        self._min_buffer_s = min_buffer_s
        self._target_buffer_s = target_buffer_s

    def choose(self, state: PlayerState) -> int:
        bitrates = state.bitrates_kbps
        if len(bitrates) == 1:
            return 0
        target = self._target_buffer_s
        if target is None:
            target = max(state.max_buffer_s - state.segment_s, state.segment_s)
        # A small buffer squeezes the range, keeping the lowest rung up to half the target.
        vp, gp = bola_parameters(bitrates, min(self._min_buffer_s, target / 2), target)
        utilities = [math.log(b / bitrates[0]) for b in bitrates]
        scores = [
            (vp * (v + gp) - state.buffer_s) / b for v, b in zip(utilities, bitrates, strict=True)
        ]
        return max(range(len(scores)), key=scores.__getitem__)

    def observe(self, sample: DownloadSample) -> None:
        pass


def bola_parameters(
    bitrates: tuple[float, ...], min_buffer_s: float, target_s: float
) -> tuple[float, float]:
    """(Vp, gp) putting the lowest-to-next switch at ``min_buffer_s``, the top one at ``target_s``.

    The switch from rung m to m+1 happens at buffer Vp * (a_m + gp), where
    a_m = (S_{m+1} v_m - S_m v_{m+1}) / (S_{m+1} - S_m). With two rungs there is one switch,
    put halfway.
    """
    v = [math.log(b / bitrates[0]) for b in bitrates]

    def a(m: int) -> float:
        s0, s1 = bitrates[m], bitrates[m + 1]
        return (s1 * v[m] - s0 * v[m + 1]) / (s1 - s0)

    low, high = a(0), a(len(bitrates) - 2)
    if high - low < 1e-9:
        vp = (target_s - min_buffer_s) / max(v[-1], 1e-9) or 1.0
        return vp, (min_buffer_s + target_s) / 2 / vp - low
    vp = (target_s - min_buffer_s) / (high - low)
    return vp, min_buffer_s / vp - low


class CadenzaRule:
    """Cadenza's rule: a short lookahead on a cautious throughput estimate and the buffer.

    After RobustMPC (Yin et al., SIGCOMM 2015), simplified. For every rung it plays the next
    ``horizon`` segments at that rung in a model of the buffer, at the estimated throughput, and
    scores them as the simulator scores a session: bitrate, less the switch, less the top
    bitrate per second of predicted stall and, as insurance against the next outage, a share
    ``floor_weight`` of it, spread over the horizon, per second the buffer would sit below
    ``floor_s`` at each arrival. The estimate is the lower of the last sample and the harmonic
    mean of the last ``window`` samples: it falls at once and rises once the recent samples
    agree. A rung above the last one must also be within ``up_safety`` of the estimate, so the
    rule does not spend its buffer on an upswitch, yet a full buffer still rides out a dip
    without switching.
    """

    def __init__(
        self,
        horizon: int = 5,
        window: int = 3,
        up_safety: float = 0.8,
        floor_s: float = 8.0,
        floor_weight: float = 0.5,
        default_kbps: float = 500.0,
    ) -> None:
        self._samples: deque[float] = deque(maxlen=window)
        self._horizon = horizon
        self._up_safety = up_safety
        self._floor_s = floor_s
        self._floor_weight = floor_weight
        self._default_kbps = default_kbps

    def estimate_kbps(self) -> float:
        if not self._samples:
            return self._default_kbps
        harmonic = len(self._samples) / sum(1.0 / s for s in self._samples)
        return min(self._samples[-1], harmonic)

    def choose(self, state: PlayerState) -> int:
        estimate = self.estimate_kbps()
        bitrates, last = state.bitrates_kbps, state.last_rung
        allowed = [
            rung
            for rung, bitrate in enumerate(bitrates)
            if rung == 0 or last is None or rung <= last or bitrate <= self._up_safety * estimate
        ]
        return max(allowed, key=lambda rung: self._outlook(state, rung, estimate))

    def _outlook(self, state: PlayerState, rung: int, estimate: float) -> float:
        """The predicted score of the next ``horizon`` segments, all at ``rung``."""
        bitrates = state.bitrates_kbps
        bitrate, mu = bitrates[rung], bitrates[-1]
        last = bitrates[rung if state.last_rung is None else state.last_rung]
        score = bitrate * self._horizon - abs(bitrate - last)
        fetch_s = bitrate * state.segment_s / estimate
        room = state.max_buffer_s - state.segment_s
        buffer = state.buffer_s
        for step in range(self._horizon):
            if state.playing or step:
                buffer = min(buffer, room)
                left = buffer - fetch_s
                below = max(0.0, self._floor_s - max(0.0, left))
                score -= mu * (max(0.0, -left) + self._floor_weight * below / self._horizon)
            buffer = max(0.0, buffer - fetch_s) + state.segment_s
        return score

    def observe(self, sample: DownloadSample) -> None:
        self._samples.append(sample.kbps)


RULES: dict[str, Callable[[], AbrRule]] = {
    "throughput": ThroughputRule,
    "bola": BolaRule,
    "cadenza": CadenzaRule,
}
DEFAULT_RULE = "cadenza"


def make_rule(name: str) -> AbrRule:
    """A fresh rule, with no history, by its name in ``RULES``."""
    return RULES[name]()
