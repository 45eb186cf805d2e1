"""Adaptive bitrate rules: which rung of the ladder to request next.

Every rule is a pure core: it sees the player's state before each request and each finished
download, and reads no clock and does no I/O, so the simulator and a real player drive it alike.
Rungs are indexed from 0, the lowest bitrate; ``choose`` always returns a valid index.
"""

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

# The player's buffer: it never requests a segment that would take the buffer past this many
# seconds of media. Two minutes of audio is under 4 MB at the top rung, and rides out the
# outages of a 3G commute that 30 s (a video player's default) does not. The simulator and the
# benchmark play with the same figure.
DEFAULT_MAX_BUFFER_S = 120.0


@dataclass(frozen=True)
class PlayerState:
    """What the player knows just before it requests the next segment."""

    bitrates_kbps: tuple[float, ...]  # the ladder, ascending
    buffer_s: float  # media buffered and not yet played
    max_buffer_s: float  # the player never requests a segment that would overfill this
    segment_s: float  # duration of the segment about to be requested
    last_rung: int | None  # None before the first request
    playing: bool  # False until the first segment has arrived


# A transfer is timed at no less than this: a response that came in one packet with its head
# has no measurable transfer time, and would read as an endless link.
MIN_TRANSFER_S = 0.01


@dataclass(frozen=True)
class DownloadSample:
    """One finished download, latency included: a segment, or (``segment_s`` 0) a playlist.

    The player's first request, the lowest rung's media playlist, is its bandwidth probe.
    ``first_byte_s`` is the part of ``seconds`` spent before the response began to arrive (its
    latency, as hls.js's ``loading.first``), 0 where it was not measured.
    """

    nbytes: float
    seconds: float
    segment_s: float
    rung: int
    first_byte_s: float = 0.0

    @property
    def kbps(self) -> float:
        return self.nbytes * 8.0 / 1000.0 / max(self.seconds, 1e-6)

    @property
    def transfer_kbps(self) -> float:
        """The rate of the bytes once they flowed: the latency left out, as hls.js measures."""
        transfer = min(self.seconds - self.first_byte_s, self.seconds)
        return self.nbytes * 8.0 / 1000.0 / max(transfer, MIN_TRANSFER_S)


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


class DualEwma:
    """Shaka's and hls.js's estimator: a fast and a slow EWMA of throughput, trust the lower.

    Each sample weighs its download time, at least ``min_seconds``; ``default_kbps`` until the
    first sample.
    """

    def __init__(
        self,
        fast_half_life_s: float = 3.0,
        slow_half_life_s: float = 9.0,
        default_kbps: float = 500.0,
        min_seconds: float = 0.0,
    ) -> None:
        self._fast = Ewma(fast_half_life_s)
        self._slow = Ewma(slow_half_life_s)
        self._default_kbps = default_kbps
        self._min_seconds = min_seconds

    @property
    def kbps(self) -> float:
        fast, slow = self._fast.value, self._slow.value
        if fast is None or slow is None:
            return self._default_kbps
        return min(fast, slow)

    def add(self, sample: DownloadSample) -> None:
        seconds = max(sample.seconds, self._min_seconds, 1e-6)
        kbps = sample.nbytes * 8.0 / 1000.0 / seconds
        self._fast.add(seconds, kbps)
        self._slow.add(seconds, kbps)


class ThroughputRule:
    """Throughput-based: the highest rung within ``safety`` of a dual-EWMA estimate.

    Before any sample, assumes ``default_kbps``.
    """

    def __init__(
        self,
        fast_half_life_s: float = 3.0,
        slow_half_life_s: float = 9.0,
        safety: float = 0.9,
        default_kbps: float = 500.0,
    ) -> None:
        self._estimator = DualEwma(fast_half_life_s, slow_half_life_s, default_kbps)
        self._safety = safety

    def estimate_kbps(self) -> float:
        return self._estimator.kbps

    def choose(self, state: PlayerState) -> int:
        return highest_below(state.bitrates_kbps, self._safety * self.estimate_kbps())

    def observe(self, sample: DownloadSample) -> None:
        self._estimator.add(sample)


TOP_BUFFER_S = 30.0


class BolaRule:
    """BOLA-BASIC (Spiteri, Urgaonkar and Sitaraman, INFOCOM 2016): buffer level only.

    Rung m has utility v_m = ln(bitrate_m / lowest bitrate) and is chosen when it maximises
    (Vp * (v_m + gp) - buffer) / bitrate_m. The score thresholds between neighbouring rungs are
    linear in the buffer, so Vp and gp follow from two of them: the lowest rung below
    ``min_buffer_s``, the top rung from the buffer target up, by default the fullest buffer at
    which the player requests (its maximum less one segment) but at most ``TOP_BUFFER_S``, as
    dash.js's ``bufferTimeAtTopQuality``: a two-minute buffer would keep it low for minutes.
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
            target = max(min(state.max_buffer_s - state.segment_s, TOP_BUFFER_S), state.segment_s)
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


class HlsJsRule:
    """hls.js's default rule (its ``AbrController`` with the default configuration), as a baseline.

    The estimate is the lower of two EWMAs of throughput, with half-lives of 3 and 9 seconds
    of download time, each sample taking at least 50 ms; 500 kbit/s before any. From the top
    rung down it takes the first whose bitrate fits within ``up_factor`` (0.7) of the estimate
    for a rung above the last one, ``factor`` (0.95) otherwise, and whose fetch, a time to
    first byte (100 ms, hls.js's default: the simulator does not time it apart) plus the
    transfer, ends before the buffer runs dry. When none does, it allows a stall of up to one
    segment or 4 s; after the bandwidth probe, with an empty buffer, the budget is 4 s less the
    probe's time, with no safety factors. Otherwise the lowest rung. hls.js's abandoning of a
    slow download half way is not modelled.
    """

    def __init__(
        self,
        factor: float = 0.95,
        up_factor: float = 0.7,
        max_starvation_s: float = 4.0,
        ttfb_s: float = 0.1,
        default_kbps: float = 500.0,
    ) -> None:
        self._estimator = DualEwma(3.0, 9.0, default_kbps, min_seconds=0.05)
        self._factor = factor
        self._up_factor = up_factor
        self._max_starvation_s = max_starvation_s
        self._ttfb_s = ttfb_s
        self._probe_s: float | None = None

    def estimate_kbps(self) -> float:
        return self._estimator.kbps

    def choose(self, state: PlayerState) -> int:
        estimate = self.estimate_kbps()
        starvation = state.buffer_s if state.playing else 0.0
        if starvation > 0:
            best = self._best(state, estimate, starvation, 0.0, self._factor, self._up_factor)
            if best >= 0:
                return best
        allowed = min(state.segment_s, self._max_starvation_s)
        factor, up_factor = self._factor, self._up_factor
        if starvation <= 0 and self._probe_s is not None and state.last_rung is None:
            allowed, factor, up_factor = allowed - self._probe_s, 1.0, 1.0
        return max(self._best(state, estimate, starvation, allowed, factor, up_factor), 0)

    def _best(
        self,
        state: PlayerState,
        estimate: float,
        starvation: float,
        allowed: float,
        factor: float,
        up_factor: float,
    ) -> int:
        base = state.last_rung or 0
        for rung in range(len(state.bitrates_kbps) - 1, -1, -1):
            bitrate = state.bitrates_kbps[rung]
            usable = (up_factor if rung > base else factor) * estimate
            fetch = self._ttfb_s + bitrate * state.segment_s / max(usable, 1e-9)
            if usable >= bitrate and fetch < starvation + allowed:
                return rung
        return -1

    def observe(self, sample: DownloadSample) -> None:
        self._estimator.add(sample)
        if sample.segment_s == 0.0 and self._probe_s is None:
            self._probe_s = sample.seconds


class RobustMpcRule:
    """RobustMPC (Yin et al., SIGCOMM 2015), as its authors' published code runs it: a baseline.

    The bandwidth ahead is the harmonic mean of the last ``window`` samples divided by one plus
    the largest relative error of the last ``window`` such predictions. Every sequence of rungs
    for the next ``horizon`` segments is played in a model of the buffer at that bandwidth and
    scored as the simulator scores a session; the rule takes the best sequence's first rung.
    The search keeps, per step and rung, only the sequences no other one beats in both score
    and buffer, which finds the same best as trying all of them, in far less time.
    """

    def __init__(self, horizon: int = 5, window: int = 5, default_kbps: float = 500.0) -> None:
        self._samples: deque[float] = deque(maxlen=window)
        self._errors: deque[float] = deque(maxlen=window)
        self._predicted: float | None = None
        self._horizon = horizon
        self._default_kbps = default_kbps

    def estimate_kbps(self) -> float:
        if not self._samples:
            return self._default_kbps
        return _harmonic(self._samples) / (1.0 + max(self._errors, default=0.0))

    def choose(self, state: PlayerState) -> int:
        estimate = max(self.estimate_kbps(), 1e-9)
        self._predicted = estimate
        bitrates, mu = state.bitrates_kbps, state.bitrates_kbps[-1]
        room = state.max_buffer_s - state.segment_s
        # Per last rung: (score, buffer, first rung) of the sequences kept so far.
        fronts: dict[int, list[tuple[float, float, int]]] = {
            -1 if state.last_rung is None else state.last_rung: [(0.0, state.buffer_s, -1)]
        }
        for step in range(self._horizon):
            grown: dict[int, list[tuple[float, float, int]]] = {}
            for last, front in fronts.items():
                for score, buffer, first in front:
                    level = min(buffer, room) if state.playing or step else buffer
                    for rung, bitrate in enumerate(bitrates):
                        fetch = bitrate * state.segment_s / estimate
                        stall = max(0.0, fetch - level) if state.playing or step else 0.0
                        change = abs(bitrate - bitrates[last]) if last >= 0 else 0.0
                        grown.setdefault(rung, []).append(
                            (
                                score + bitrate - change - mu * stall,
                                max(0.0, level - fetch) + state.segment_s,
                                rung if first < 0 else first,
                            )
                        )
            fronts = {rung: _pareto(states) for rung, states in grown.items()}
        best = max((s for front in fronts.values() for s in front), key=lambda s: s[0])
        return best[2]

    def observe(self, sample: DownloadSample) -> None:
        kbps = sample.kbps
        if self._predicted is not None and sample.segment_s > 0:
            self._errors.append(abs(self._predicted - kbps) / max(kbps, 1e-9))
        self._samples.append(kbps)


def _pareto(states: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """The states that no other beats in both score and buffer (ties: the first kept)."""
    kept: list[tuple[float, float, int]] = []
    fullest = -math.inf
    for state in sorted(states, key=lambda s: (-s[0], -s[1])):
        if state[1] > fullest:
            kept.append(state)
            fullest = state[1]
    return kept


class CadenzaRule:
    """Cadenza's rule: a lookahead on a cautious throughput estimate that expects recovery.

    After RobustMPC (Yin et al., SIGCOMM 2015). For every rung it plays the next ``horizon``
    segments at that rung in a model of the buffer and scores them as the simulator scores a
    session: bitrate, less the switch, less the top bitrate per second of predicted stall and,
    as insurance against the next outage, a share ``floor_weight`` of it, spread over the
    horizon, per second the buffer would sit below ``floor_s`` at each arrival.

    The first segment of the lookahead is fetched at the short-term estimate, the harmonic mean
    of the last ``window`` samples: a slow sample pulls it down at once (a harmonic mean follows
    its lowest values), and it rises as the recent samples agree. Later ones move towards the
    arithmetic mean of the last ``memory`` samples, the rate the link gives over a good minute,
    a share ``recovery`` of the way closer per segment: on 3G a slow spell usually passes, so a
    deep buffer rides it out at a good rung instead of dropping to the lowest, while a shallow
    one still steps down at once. A rung above the last one must also be
    within ``up_safety`` of the short-term estimate, so the rule does not spend its buffer on an
    upswitch. The bandwidth probe (a playlist) is the only sample until the first segment
    arrives, then forgotten: so small a transfer measures latency more than bandwidth, and would
    hold the first minute back.

    The first segment is chosen apart (``first_rung``): the startup is silence, scored like a
    stall, and a first segment below the rung the link carries costs a switch as well as
    bitrate. The probe's rate once its bytes flowed (``DownloadSample.transfer_kbps``), and its
    latency, tell how long each rung's first segment would take.
    """

    def __init__(
        self,
        horizon: int = 10,
        window: int = 3,
        memory: int = 10,
        recovery: float = 0.3,
        up_safety: float = 0.9,
        floor_s: float = 48.0,
        floor_weight: float = 0.5,
        default_kbps: float = 500.0,
    ) -> None:
        self._samples: deque[float] = deque(maxlen=max(window, memory))
        self._probing = True  # until the first segment arrives
        self._probe: DownloadSample | None = None  # the first playlist's download
        self._window = window
        self._horizon = horizon
        self._recovery = recovery
        self._up_safety = up_safety
        self._floor_s = floor_s
        self._floor_weight = floor_weight
        self._default_kbps = default_kbps

    def estimate_kbps(self) -> float:
        """The short-term estimate, for the next segment."""
        if not self._samples:
            return self._default_kbps
        return _harmonic(list(self._samples)[-self._window :])

    def longer_term_kbps(self) -> float:
        """The mean of all the samples kept, which the lookahead moves towards."""
        samples = self._samples
        return sum(samples) / len(samples) if samples else self._default_kbps

    def choose(self, state: PlayerState) -> int:
        if state.last_rung is None and self._probe is not None:
            return first_rung(state, self._probe)
        estimate = self.estimate_kbps()
        bitrates, last = state.bitrates_kbps, state.last_rung
        allowed = [
            rung
            for rung, bitrate in enumerate(bitrates)
            if rung == 0 or last is None or rung <= last or bitrate <= self._up_safety * estimate
        ]
        ahead = self._ahead(estimate, self.longer_term_kbps())
        return max(allowed, key=lambda rung: self._outlook(state, rung, ahead))

    def _ahead(self, estimate: float, longer: float) -> list[float]:
        """The bandwidth expected for each segment of the lookahead."""
        keep, ahead = 1.0, []
        for _ in range(self._horizon):
            ahead.append(keep * estimate + (1.0 - keep) * longer)
            keep *= 1.0 - self._recovery
        return ahead

    def _outlook(self, state: PlayerState, rung: int, ahead: list[float]) -> float:
        """The predicted score of the next ``horizon`` segments, all at ``rung``."""
        bitrates = state.bitrates_kbps
        bitrate, mu = bitrates[rung], bitrates[-1]
        last = bitrates[rung if state.last_rung is None else state.last_rung]
        score = bitrate * self._horizon - abs(bitrate - last)
        room = state.max_buffer_s - state.segment_s
        buffer = state.buffer_s
        for step, kbps in enumerate(ahead):
            fetch_s = bitrate * state.segment_s / max(kbps, 1e-9)
            if state.playing or step:
                buffer = min(buffer, room)
                left = buffer - fetch_s
                below = max(0.0, self._floor_s - max(0.0, left))
                score -= mu * (max(0.0, -left) + self._floor_weight * below / self._horizon)
            buffer = max(0.0, buffer - fetch_s) + state.segment_s
        return score

    def observe(self, sample: DownloadSample) -> None:
        if sample.segment_s > 0 and self._probing:
            self._probing = False
            self._probe = None  # the next track's first segment goes by what the link gave
            self._samples.clear()
        elif sample.segment_s == 0 and self._probing:
            self._probe = sample
        self._samples.append(max(sample.kbps, 1e-9))


def first_rung(state: PlayerState, probe: DownloadSample) -> int:
    """The first segment's rung, from the bandwidth probe alone.

    The link's rate is the probe's once its bytes flowed; the rung it carries is the highest
    within it. A first segment at rung r scores its bitrate, less the top bitrate per second
    of startup (the probe's latency, then the transfer at that rate), less the switch to the
    carried rung that comes next. Below the carried rung that is linear in the bitrate, so the
    choice is one end: the carried rung when a top-rung segment would take under 2 s at that
    rate, else the lowest. A fast link starts high at once, a slow one low and quickly.
    """
    bitrates = state.bitrates_kbps
    kbps = max(probe.transfer_kbps, 1e-9)
    carried, mu = bitrates[highest_below(bitrates, kbps)], bitrates[-1]
    latency = min(max(probe.first_byte_s, 0.0), probe.seconds)

    def value(rung: int) -> float:
        startup = latency + bitrates[rung] * state.segment_s / kbps
        return bitrates[rung] - mu * startup - abs(bitrates[rung] - carried)

    return max(range(len(bitrates)), key=value)


def _harmonic(values: Iterable[float]) -> float:
    items = list(values)
    return len(items) / sum(1.0 / max(v, 1e-9) for v in items)


RULES: dict[str, Callable[[], AbrRule]] = {
    "throughput": ThroughputRule,
    "bola": BolaRule,
    "hlsjs": HlsJsRule,
    "robustmpc": RobustMpcRule,
    "cadenza": CadenzaRule,
}
DEFAULT_RULE = "cadenza"


def make_rule(name: str) -> AbrRule:
    """A fresh rule, with no history, by its name in ``RULES``."""
    return RULES[name]()
