"""The edge's ``GET /status`` document: what an edge says about itself, and how the locator
reads it. One type on both sides, so a field the edge renames cannot silently drop out of the
locator's decisions.

``EdgeStatus.to_json`` is what the edge answers; ``EdgeStatus.from_json`` reads any decoded
JSON document, raising ValueError naming the first bad field. Fields it does not know are
ignored, so edges can report more than locators read.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]


@dataclass(frozen=True)
class CacheTier:
    bytes: int
    objects: int


@dataclass(frozen=True)
class EdgeStatus:
    """One edge (all its workers' figures summed) or one worker of it."""

    draining: bool
    region: str
    latitude: float
    longitude: float
    capacity_bps: float
    active_requests: int
    egress_bps: float
    hit_ratio: float = 0.0
    memory: CacheTier | None = None
    disk: CacheTier | None = None
    pid: int | None = None  # the process that answered
    workers: int = 1  # processes whose figures the status sums
    hits: int = 0
    misses: int = 0
    lane_requests: int = 0  # answered by the lean lane (edge.front)
    pids: tuple[int, ...] = ()  # every worker's, when the figures are summed
    id: str = ""  # the edge's id in the fleet ("" when it was given none)
    edge_pid: int | None = None  # the process to signal: the workers' parent, if any

    def to_json(self) -> Json:
        doc: Json = {
            "healthy": not self.draining,
            "state": "draining" if self.draining else "healthy",
            "id": self.id,
            "region": self.region,
            "edge_pid": self.edge_pid,
            "pid": self.pid,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "capacity_bps": self.capacity_bps,
            "active_requests": self.active_requests,
            "egress_bps": self.egress_bps,
            "hit_ratio": self.hit_ratio,
            "hits": self.hits,
            "misses": self.misses,
            "lane_requests": self.lane_requests,
            "workers": self.workers,
            "cache": {
                name: {"bytes": tier.bytes, "objects": tier.objects}
                for name, tier in (("memory", self.memory), ("disk", self.disk))
                if tier is not None
            },
        }
        for name in ("pid", "edge_pid"):
            if doc[name] is None:
                del doc[name]
        if self.pids:
            doc["pids"] = list(self.pids)
        return doc

    @classmethod
    def from_json(cls, doc: object) -> "EdgeStatus":
        """The status in ``doc``; ValueError naming the first bad field."""
        if not isinstance(doc, Mapping):
            raise ValueError(f"edge status must be a JSON object, got {type(doc).__name__}")
        state = _text(doc, "state")
        if state not in ("healthy", "draining"):
            raise ValueError(
                f"edge status field 'state' must be 'healthy' or 'draining': {state!r}"
            )
        healthy = doc.get("healthy", state == "healthy")
        if healthy is not (state == "healthy"):
            raise ValueError(f"edge status fields 'healthy' {healthy!r} and 'state' disagree")
        region = _text(doc, "region")
        if not region:
            raise ValueError("edge status field 'region' is empty")
        cache = doc.get("cache", {})
        if not isinstance(cache, Mapping):
            raise ValueError("edge status field 'cache' must be an object")
        edge_id = doc.get("id", "")
        if not isinstance(edge_id, str):
            raise ValueError(f"edge status field 'id' must be a string: {edge_id!r:.40}")
        pids = doc.get("pids", [])
        if not isinstance(pids, list):
            raise ValueError("edge status field 'pids' must be a list")
        return cls(
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
            hits=_count(doc, "hits") if "hits" in doc else 0,
            misses=_count(doc, "misses") if "misses" in doc else 0,
            lane_requests=_count(doc, "lane_requests") if "lane_requests" in doc else 0,
            pids=tuple(_count({"pids": p}, "pids") for p in pids),
            id=edge_id,
            edge_pid=_count(doc, "edge_pid") if "edge_pid" in doc else None,
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
