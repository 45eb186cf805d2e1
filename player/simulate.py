"""An offline player: an ABR rule against a network trace, scored, and the best score possible.

The model, the same for every rule and for the optimum, is the player's (``player.session``):
it may first fetch a bandwidth probe (the lowest rung's media playlist), which the rule sees
as a download of ``segment_s`` 0. Then it requests one segment at a time, each as soon as the
previous one has arrived, except that it first waits while the segment would overfill the
buffer's maximum. Every download the rule sees carries its time to the first byte (its
latency) apart, as a real player measures it. A track's first segment carries that track's
playlist and init segment too (``Content.extra_bytes``). Playback starts when the first
segment arrives (the startup delay is scored like a stall) and drains the buffer in real time;
when the buffer runs dry before the next segment arrives, playback stalls until it does. No
sockets, no sleeping.

Score (QoE_lin): the sum over segments of the rung's bitrate, less ``mu`` (the top bitrate) per
second of stall or of startup, less the bitrate change at every switch, all in kbit/s. Silence
before the first note is silence all the same; were startup free, the best play at the onset of
an outage would be a slow first segment that moves the outage's stall into the startup.
"""

import math
import random
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from encoder.ladder import DEFAULT_LADDER, Ladder
from player.abr import DEFAULT_MAX_BUFFER_S, AbrRule, DownloadSample, PlayerState
from player.traces import Trace, download_time, first_byte_s

MAX_BUFFER_S = DEFAULT_MAX_BUFFER_S
RESOLUTION_S = 0.001
_STALL_EPSILON_S = 1e-9


@dataclass(frozen=True)
class Content:
    """What the player fetches: segment durations, each with a size factor (1 = nominal).

    ``extra_bytes``, when given, are fetched along with each segment whatever its rung: a
    track's playlist and init segment before its first segment.
    """

    durations_s: tuple[float, ...]
    size_factors: tuple[float, ...]
    extra_bytes: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.durations_s or len(self.durations_s) != len(self.size_factors):
            raise ValueError("content needs one size factor per segment, and a segment")
        if min(self.durations_s) <= 0 or min(self.size_factors) <= 0:
            raise ValueError("segment durations and size factors must be positive")
        if self.extra_bytes and (
            len(self.extra_bytes) != len(self.durations_s) or min(self.extra_bytes) < 0
        ):
            raise ValueError("extra bytes, when given, are one count (>= 0) per segment")

    def nbytes(self, bitrates: Sequence[float], index: int, rung: int) -> float:
        media = bitrates[rung] * 125.0 * self.durations_s[index] * self.size_factors[index]
        return media + (self.extra_bytes[index] if self.extra_bytes else 0.0)


def playlist(
    track_seconds: Sequence[float],
    segment_s: float,
    variation: float = 0.0,
    seed: int = 0,
    track_start_bytes: float = 0.0,
) -> Content:
    """Tracks played back to back, each cut into ``segment_s`` segments (the last one shorter).

    With ``variation`` v, each segment's size is scaled by a factor drawn uniformly from
    [1 - v, 1 + v] (seeded: the same content every time), as encoders vary around their target.
    ``track_start_bytes`` (a playlist and an init segment) come with each track's first segment.
    """
    durations: list[float] = []
    extra: list[float] = []
    for seconds in track_seconds:
        whole, rest = divmod(seconds, segment_s)
        track = [segment_s] * int(whole) + ([rest] if rest > 1e-9 else [])
        durations += track
        extra += [track_start_bytes] + [0.0] * (len(track) - 1)
    draw = random.Random(seed)
    factors = tuple(1.0 + variation * (2.0 * draw.random() - 1.0) for _ in durations)
    return Content(tuple(durations), factors, tuple(extra) if track_start_bytes else ())


def ladder_bitrates(ladder: Ladder = DEFAULT_LADDER) -> tuple[float, ...]:
    """The ladder's lossy bitrates, ascending; lossless rungs have none and are left out."""
    return tuple(sorted(float(r.bitrate_kbps) for r in ladder.rungs if r.bitrate_kbps))


@dataclass(frozen=True)
class SimResult:
    qoe: float
    rungs: tuple[int, ...]
    requests_s: tuple[float, ...]  # when each segment was requested
    stall_s: float
    stalls: int
    startup_s: float
    mean_kbps: float  # weighted by segment duration
    switches: int


def qoe(bitrates: Sequence[float], rungs: Sequence[int], stall_s: float) -> float:
    played = [bitrates[r] for r in rungs]
    changes = sum(abs(b - a) for a, b in pairwise(played))
    return sum(played) - max(bitrates) * stall_s - changes


def simulate(
    rule: AbrRule,
    trace: Trace,
    bitrates: Sequence[float],
    content: Content,
    max_buffer_s: float = MAX_BUFFER_S,
    probe_bytes: float = 0.0,
) -> SimResult:
    """Play ``content`` over ``trace`` with ``rule`` choosing every segment's rung.

    With ``probe_bytes``, the player first fetches a probe of that size and the rule sees it.
    """
    ladder = _check(bitrates, content, max_buffer_s)
    now = buffer = stall = 0.0
    stalls = 0
    if probe_bytes > 0:
        now = download_time(trace, 0.0, probe_bytes)
        rule.observe(DownloadSample(probe_bytes, now, 0.0, 0, first_byte_s(trace, 0.0)))
    startup = now
    rungs: list[int] = []
    requests: list[float] = []
    for index, duration in enumerate(content.durations_s):
        playing = bool(rungs)
        if playing:
            wait = max(0.0, buffer - (max_buffer_s - duration))
            now, buffer = now + wait, buffer - wait
        state = PlayerState(ladder, buffer, max_buffer_s, duration, _last(rungs), playing)
        rung = rule.choose(state)
        if not 0 <= rung < len(ladder):
            raise ValueError(f"the rule chose rung {rung}; the ladder has {len(ladder)}")
        nbytes = content.nbytes(ladder, index, rung)
        seconds = download_time(trace, now, nbytes)
        if not playing:
            startup += seconds
        elif seconds > buffer:
            stall += seconds - buffer
            stalls += seconds - buffer > _STALL_EPSILON_S
            buffer = 0.0
        else:
            buffer -= seconds
        requests.append(now)
        now, buffer = now + seconds, buffer + duration
        rungs.append(rung)
        first = first_byte_s(trace, requests[-1])
        rule.observe(DownloadSample(nbytes, seconds, duration, rung, first))
    played = sum(ladder[r] * d for r, d in zip(rungs, content.durations_s, strict=True))
    return SimResult(
        qoe=qoe(ladder, rungs, stall + startup),
        rungs=tuple(rungs),
        requests_s=tuple(requests),
        stall_s=stall,
        stalls=stalls,
        startup_s=startup,
        mean_kbps=played / sum(content.durations_s),
        switches=sum(a != b for a, b in pairwise(rungs)),
    )


def _check(bitrates: Sequence[float], content: Content, max_buffer_s: float) -> tuple[float, ...]:
    ladder = tuple(float(b) for b in bitrates)
    if not ladder or min(ladder) <= 0 or list(ladder) != sorted(set(ladder)):
        raise ValueError(f"bitrates must be positive and strictly ascending, got {ladder}")
    if max_buffer_s < max(content.durations_s):
        raise ValueError("the maximum buffer must hold the longest segment")
    return ladder


def _last(rungs: list[int]) -> int | None:
    return rungs[-1] if rungs else None


# A state of the optimum after a segment has arrived: (when the next request goes out, when the
# buffer would run dry, QoE so far).
_State = tuple[float, float, float]


def optimum(
    trace: Trace,
    bitrates: Sequence[float],
    content: Content,
    max_buffer_s: float = MAX_BUFFER_S,
    resolution_s: float = RESOLUTION_S,
    reached: float = -math.inf,
    probe_bytes: float = 0.0,
) -> float:
    """The best QoE of any sequence of rungs, found knowing the whole trace: an upper bound.

    Dynamic programming over (segment, last rung) that keeps, for each, the undominated states
    (t: when the next request goes out, d: when the buffer would run dry, q: QoE so far). X is
    at least as good as Y when t_x <= t_y, d_x <= d_y and q_x + mu * d_x >= q_y + mu * d_y: X
    can send each of Y's later requests no later than Y does (a download sent earlier never
    arrives later; see ``download_time``), its extra stall is at most d_y - d_x, and each
    second of stall moves d a second later too, so its lead in q pays for it. The same argument
    shows that requesting as soon as allowed is never worse than waiting, as the player does.

    Discretisation: every arrival after the first is rounded down to ``resolution_s`` before
    its stall is counted. The rounded state is at least as good as the true one, so rounding
    can only raise the result: it stays an upper bound on every rule's QoE, and with
    ``resolution_s=0`` the search is exact. States that cannot beat ``reached`` (a QoE some
    sequence is known to reach, such as a rule's) even at the top rung from there on, and the
    best steady rung's QoE, are dropped early; this changes the time taken, not the result.
    A probe of ``probe_bytes`` is fetched first, as ``simulate`` does.
    """
    ladder = _check(bitrates, content, max_buffer_s)
    mu = max(ladder)
    durations = content.durations_s
    floor = max(
        reached,
        *(
            simulate(_Steady(rung), trace, ladder, content, max_buffer_s, probe_bytes).qoe
            for rung in range(len(ladder))
        ),
    )
    rooms = [max_buffer_s - d for d in durations[1:]] + [math.inf]
    begin = download_time(trace, 0.0, probe_bytes) if probe_bytes > 0 else 0.0
    fronts: list[list[_State]] = []
    for rung in range(len(ladder)):
        arrival = begin + download_time(trace, begin, content.nbytes(ladder, 0, rung))
        dry = arrival + durations[0]
        fronts.append([(max(arrival, dry - rooms[0]), dry, ladder[rung] - mu * arrival)])
    for index in range(1, len(durations)):
        grown: list[list[_State]] = [[] for _ in ladder]
        for last, front in enumerate(fronts):
            for start, dry, score in front:
                for rung, bitrate in enumerate(ladder):
                    nbytes = content.nbytes(ladder, index, rung)
                    arrival = _round_down(start + download_time(trace, start, nbytes), resolution_s)
                    gain = bitrate - abs(bitrate - ladder[last]) - mu * max(0.0, arrival - dry)
                    later = max(arrival, dry) + durations[index]
                    grown[rung].append((max(arrival, later - rooms[index]), later, score + gain))
        reachable = floor - mu * (len(durations) - 1 - index) - 1e-6
        fronts = [_undominated([s for s in states if s[2] >= reachable], mu) for states in grown]
    return max(score for front in fronts for _, _, score in front)


class _Steady:
    """Always the same rung: the optimum is at least the best of these."""

    def __init__(self, rung: int) -> None:
        self.rung = rung

    def choose(self, state: PlayerState) -> int:
        return self.rung

    def observe(self, sample: DownloadSample) -> None:
        pass


def _round_down(value: float, step: float) -> float:
    return math.floor(value / step) * step if step > 0 else value


def _undominated(states: list[_State], mu: float) -> list[_State]:
    """The states no other state dominates, by sending time, then dry time."""
    kept: list[_State] = []
    # A staircase of kept states: dry times ascending with q + mu * d strictly rising, so the
    # best worth among states drying no later than d is one bisection away.
    dries: list[float] = []
    worths: list[float] = []
    for start, dry, score in sorted(states, key=lambda s: (s[0], s[1], -s[2])):
        worth = score + mu * dry
        at = bisect_right(dries, dry)
        if at and worths[at - 1] >= worth:
            continue
        kept.append((start, dry, score))
        end = at
        while end < len(dries) and worths[end] <= worth:
            end += 1
        dries[at:end], worths[at:end] = [dry], [worth]
    return kept
