"""What a listener lives through in one play, and its summary.

Pure: the player tells ``Playback`` when each segment arrives, on the play's clock, and it
keeps the buffer as the simulator (``player.simulate``) models it: playback starts when the
first segment arrives and drains the buffer in real time; when the buffer runs dry before the
next segment arrives, playback stalls until it does. Times are on the play's clock (the wall
clock times the play's speed), so a sped-up play reports what a real-time one would.
"""

from collections import Counter
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

STALL_EPSILON_S = 0.001  # shorter gaps are timer jitter, not a stall anyone hears


@dataclass(frozen=True)
class SegmentRecord:
    """One media segment as fetched: which rung, from which pathway (edge), how fast."""

    index: int
    rung: int
    bitrate_kbps: float
    pathway: str
    nbytes: int
    seconds: float  # from request to last byte, latency included
    duration_s: float  # of media
    requested_at_s: float  # since the play began


@dataclass(frozen=True)
class Failure:
    """A request that failed on a pathway; the player moved on to the next one."""

    index: int  # the segment it was for
    pathway: str
    what: str  # "playlist", "init" or "segment"
    error: str
    at_s: float


@dataclass(frozen=True)
class QoE:
    track_id: str
    rule: str
    pathways: tuple[str, ...]  # as the locator ordered them, its first choice first
    duration_s: float  # media played
    startup_s: float  # from asking the locator to the first segment in the buffer
    stalls: int
    stall_s: float
    longest_stall_s: float
    average_kbps: float  # weighted by segment duration
    switches: int
    bytes: int  # playlists, init and media segments
    edge_share: dict[str, float]  # share of segments per pathway (edge id)
    failovers: int
    loudness_gain_db: float
    segments: tuple[SegmentRecord, ...]
    failures: tuple[Failure, ...]
    local_hits: int = 0  # playlists, inits and segments read from the device, not the network

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["pathways"] = list(self.pathways)
        doc["segments"] = [asdict(s) for s in self.segments]
        doc["failures"] = [asdict(f) for f in self.failures]
        return doc

    def render(self) -> str:
        """A few aligned lines for people."""
        shares = ", ".join(f"{edge} {share:.0%}" for edge, share in self.edge_share.items())
        stalls = f"{self.stall_s:.2f} s, longest {self.longest_stall_s:.2f} s"
        rows = [
            ("track", f"{self.track_id} ({self.duration_s:.1f} s, ABR rule {self.rule})"),
            ("startup", f"{self.startup_s:.2f} s"),
            ("stalls", f"{self.stalls} ({stalls})"),
            (
                "bitrate",
                f"{self.average_kbps:.0f} kbit/s on average, {_count(self.switches, 'switch')}",
            ),
            ("bytes", f"{self.bytes:,}"),
            ("edges", f"{shares or '-'} ({_count(self.failovers, 'failover')})"),
            ("loudness", f"{self.loudness_gain_db:+.1f} dB of gain"),
        ]
        if self.local_hits:
            rows.append(("local", f"{_count(self.local_hits, 'object')} read from this device"))
        return "\n".join(f"{name:<10}{value}" for name, value in rows)


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}{'es' if thing.endswith('h') else 's'}"


class Playback:
    """The playback buffer and the play's account, fed segment arrivals on the play's clock."""

    def __init__(self, asked_at_s: float = 0.0) -> None:
        self._asked_at = asked_at_s
        self._startup: float | None = None
        self._buffer = 0.0  # at ``_updated``
        self._updated = asked_at_s
        self.stalls: list[float] = []
        self.segments: list[SegmentRecord] = []
        self.failures: list[Failure] = []
        self.other_bytes = 0
        self.local_hits = 0

    @property
    def playing(self) -> bool:
        return self._startup is not None

    def level(self, now: float) -> float:
        """Media seconds buffered ahead of the playhead."""
        if not self.playing:
            return self._buffer
        return max(0.0, self._buffer - (now - self._updated))

    def ends_at(self) -> float:
        """When the playhead reaches the end of what is buffered."""
        return self._updated + self._buffer

    def arrived(self, now: float, segment: SegmentRecord) -> None:
        """A media segment is in; a gap since the buffer ran dry counts as a stall."""
        if self._startup is None:
            self._startup = now - self._asked_at
        else:
            gap = now - self.ends_at()
            if gap > STALL_EPSILON_S:
                self.stalls.append(gap)
        self._buffer = self.level(now) + segment.duration_s
        self._updated = now
        self.segments.append(segment)

    def failed(self, failure: Failure) -> None:
        self.failures.append(failure)

    def fetched(self, nbytes: int) -> None:
        """Bytes of a playlist or init segment."""
        self.other_bytes += nbytes

    def summary(
        self, track_id: str, rule: str, pathways: tuple[str, ...], loudness_gain_db: float
    ) -> QoE:
        segments = tuple(self.segments)
        duration = sum(s.duration_s for s in segments)
        played = sum(s.bitrate_kbps * s.duration_s for s in segments)
        rungs = [s.rung for s in segments]
        per_edge = Counter(s.pathway for s in segments)
        return QoE(
            track_id=track_id,
            rule=rule,
            pathways=pathways,
            duration_s=duration,
            startup_s=self._startup or 0.0,
            stalls=len(self.stalls),
            stall_s=sum(self.stalls),
            longest_stall_s=max(self.stalls, default=0.0),
            average_kbps=played / duration if duration > 0 else 0.0,
            switches=sum(a != b for a, b in pairwise(rungs)),
            bytes=self.other_bytes + sum(s.nbytes for s in segments),
            edge_share={edge: n / len(segments) for edge, n in per_edge.items()},
            failovers=len(self.failures),
            loudness_gain_db=loudness_gain_db,
            segments=segments,
            failures=tuple(self.failures),
            local_hits=self.local_hits,
        )
