"""Whether an edge is up, judged from its status polls with hysteresis against flapping.

Pure: the poller passes each outcome and the time; this module keeps the state. An edge is
unknown, not up, until its first successful poll, and up from then: a locator that restarts
sends players to its edges as soon as it has heard from them once. After that it takes
``fall`` consecutive failures (2) to mark an edge down and ``rise`` consecutive successes (2)
to mark it up again, so one lost poll never moves players and an edge that comes back must
stay back. Polling every half second, players leave a dead edge within about a second.

``parse_status`` reads the JSON document that an edge's ``GET /status`` returns.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

State = Literal["unknown", "up", "down"]
DEFAULT_FALL = 2
DEFAULT_RISE = 2


@dataclass(frozen=True)
class CacheTier:
    bytes: int
    objects: int


@dataclass(frozen=True)
class EdgeStatus:
    """What an edge reports about itself in ``GET /status``."""

    draining: bool
    region: str
    latitude: float
    longitude: float
    capacity_bps: float
    active_requests: int
    egress_bps: float
    hit_ratio: float
    memory: CacheTier | None = None
    disk: CacheTier | None = None
    pid: int | None = None  # the process that answered
    workers: int = 1  # processes whose figures the status sums


def parse_status(doc: object) -> EdgeStatus:
    """The status in ``doc``, a decoded JSON document; ValueError naming the first bad field.

    Fields this module does not know are ignored, so edges can report more than locators read.
    """
    if not isinstance(doc, Mapping):
        raise ValueError(f"edge status must be a JSON object, got {type(doc).__name__}")
    state = _text(doc, "state")
    if state not in ("healthy", "draining"):
        raise ValueError(f"edge status field 'state' must be 'healthy' or 'draining': {state!r}")
    healthy = doc.get("healthy", state == "healthy")
    if healthy is not (state == "healthy"):
        raise ValueError(f"edge status fields 'healthy' {healthy!r} and 'state' disagree")
    region = _text(doc, "region")
    if not region:
        raise ValueError("edge status field 'region' is empty")
    cache = doc.get("cache", {})
    if not isinstance(cache, Mapping):
        raise ValueError("edge status field 'cache' must be an object")
    return EdgeStatus(
        draining=state == "draining",
        region=region,
        latitude=_number(doc, "latitude", -90, 90),
        longitude=_number(doc, "longitude", -180, 180),
        capacity_bps=_positive(doc, "capacity_bps"),
        active_requests=_count(doc, "active_requests"),
        egress_bps=_number(doc, "egress_bps", 0, math.inf),
        hit_ratio=_number(doc, "hit_ratio", 0, 1) if "hit_ratio" in doc else 0.0,
        memory=_tier(cache, "memory"),
        disk=_tier(cache, "disk"),
        pid=_count(doc, "pid") if "pid" in doc else None,
        workers=_count(doc, "workers", least=1) if "workers" in doc else 1,
    )


def _value(doc: Mapping[str, Any], key: str, where: str) -> object:
    if key not in doc:
        raise ValueError(f"{where} lacks the field {key!r}")
    return doc[key]


def _text(doc: Mapping[str, Any], key: str, where: str = "edge status") -> str:
    value = _value(doc, key, where)
    if not isinstance(value, str):
        raise ValueError(f"{where} field {key!r} must be a string: {value!r:.40}")
    return value


def _number(
    doc: Mapping[str, Any], key: str, low: float, high: float, where: str = "edge status"
) -> float:
    value = _value(doc, key, where)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and low <= value <= high)
    ):
        raise ValueError(
            f"{where} field {key!r} must be a number in [{low}, {high}]: {value!r:.40}"
        )
    return float(value)


def _positive(doc: Mapping[str, Any], key: str) -> float:
    value = _number(doc, key, 0, math.inf)
    if value <= 0:
        raise ValueError(f"edge status field {key!r} must be positive: {value!r}")
    return value


def _count(doc: Mapping[str, Any], key: str, where: str = "edge status", least: int = 0) -> int:
    value = _value(doc, key, where)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{where} field {key!r} must be a whole number >= {least}: {value!r:.40}")
    return value


def _tier(cache: Mapping[str, Any], name: str) -> CacheTier | None:
    tier = cache.get(name)
    if tier is None:
        return None
    where = f"edge status cache tier {name!r}"
    if not isinstance(tier, Mapping):
        raise ValueError(f"{where} must be an object")
    return CacheTier(_count(tier, "bytes", where), _count(tier, "objects", where))


class EdgeHealth:
    """The hysteresis of one edge; ``healthy`` says whether to send players to it."""

    def __init__(self, *, fall: int = DEFAULT_FALL, rise: int = DEFAULT_RISE) -> None:
        if fall < 1 or rise < 1:
            raise ValueError(f"fall {fall} and rise {rise} must be at least 1 poll")
        self.fall, self.rise = fall, rise
        self.state: State = "unknown"
        self.status: EdgeStatus | None = None  # from the last successful poll
        self.transitions = 0  # changes of state, leaving "unknown" included
        self.last_change: float | None = None
        self.last_success: float | None = None
        self._streak = 0  # consecutive outcomes that disagree with the state

    @property
    def healthy(self) -> bool:
        return self.state == "up"

    @property
    def draining(self) -> bool:
        """Whether the edge said it is draining: it serves its players but wants no new ones."""
        return self.status is not None and self.status.draining

    def observe_success(self, status: EdgeStatus, now: float) -> bool:
        """A poll that returned ``status``; True if the edge came up."""
        self.status = status
        self.last_success = now
        if self.state == "up":
            self._streak = 0
            return False
        self._streak += 1
        if self.state == "unknown" or self._streak >= self.rise:
            return self._change("up", now)
        return False

    def observe_failure(self, now: float) -> bool:
        """A poll that failed (refused, timed out, bad status); True if the edge went down."""
        if self.state == "down":
            self._streak = 0
            return False
        self._streak += 1
        if self.state == "unknown" or self._streak >= self.fall:
            return self._change("down", now)
        return False

    def to_json(self) -> dict[str, Any]:
        """The whole state, for the locator's other workers (``from_json`` reads it back)."""
        return {
            "fall": self.fall, "rise": self.rise, "state": self.state,
            "status": None if self.status is None else _status_json(self.status),
            "transitions": self.transitions, "last_change": self.last_change,
            "last_success": self.last_success, "streak": self._streak,
        }  # fmt: skip

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "EdgeHealth":
        """The health that ``to_json`` wrote (by this same program: not checked again)."""
        health = cls(fall=doc["fall"], rise=doc["rise"])
        health.state = doc["state"]
        status = doc["status"]
        if status is not None:
            memory, disk = status.get("memory"), status.get("disk")
            health.status = EdgeStatus(
                **{
                    **status,
                    "memory": None if memory is None else CacheTier(**memory),
                    "disk": None if disk is None else CacheTier(**disk),
                }
            )
        health.transitions = doc["transitions"]
        health.last_change = doc["last_change"]
        health.last_success = doc["last_success"]
        health._streak = doc["streak"]
        return health

    def _change(self, state: State, now: float) -> bool:
        self.state = state
        self._streak = 0
        self.transitions += 1
        self.last_change = now
        return True


def _status_json(status: EdgeStatus) -> dict[str, Any]:
    """``dataclasses.asdict``, without its deep copies: the poller publishes every edge's."""
    doc = dict(vars(status))
    for tier in ("memory", "disk"):
        if doc[tier] is not None:
            doc[tier] = dict(vars(doc[tier]))
    return doc
