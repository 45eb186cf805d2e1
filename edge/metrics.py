"""The edge's Prometheus metrics, one registry per app."""

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class EdgeMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "cadenza_edge_requests", "Requests by status and cache result", ["status", "cache"],
            registry=r,
        )  # fmt: skip
        self.bytes_served = Counter("cadenza_edge_bytes_served", "Body bytes sent", registry=r)
        self.origin_fetches = Counter(
            "cadenza_edge_origin_fetches",
            "Fetches from the origin by result",
            ["result"],
            registry=r,
        )
        self.peer_fetches = Counter(
            "cadenza_edge_peer_fetches",
            "Fills from the worker that owns the object, by result",
            ["result"],
            registry=r,
        )
        self.origin_bytes = Counter(
            "cadenza_edge_origin_bytes", "Bytes read from origin", registry=r
        )
        self.coalesced = Counter(
            "cadenza_edge_coalesced_waiters", "Misses that joined a fetch under way", registry=r
        )
        self.prefetches = Counter(
            "cadenza_edge_prefetches",
            "Readahead and pre-positioning fetches by outcome: issued, used (a client asked for "
            "the object before it left memory), wasted (evicted unused)",
            ["outcome"],
            registry=r,
        )
        self.evictions = Counter("cadenza_edge_evictions", "Objects evicted", registry=r)
        self.cache_bytes = Gauge("cadenza_edge_cache_bytes", "Bytes held", ["tier"], registry=r)
        self.latency = Histogram(
            "cadenza_edge_first_byte_seconds",
            "Time to the response's first byte by cache result",
            ["cache"],
            registry=r,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.lane_requests = Counter(
            "cadenza_edge_lane_requests",
            "Responses written by the lean lane (edge.front), not by aiohttp; also in "
            "cadenza_edge_requests",
            registry=r,
        )
        self.lane_answered = 0  # the same count, for /status
        # Labelled children looked up once: ``labels()`` costs more than the hit path can spare.
        self._served: dict[tuple[int, str], Any] = {}
        self._first_byte: dict[str, Any] = {}

    def served(self, status: int, cache: str) -> None:
        child = self._served.get((status, cache))
        if child is None:
            child = self._served[status, cache] = self.requests.labels(str(status), cache)
        child.inc()

    def first_byte(self, cache: str, seconds: float) -> None:
        child = self._first_byte.get(cache)
        if child is None:
            child = self._first_byte[cache] = self.latency.labels(cache)
        child.observe(seconds)

    def lane_served(self) -> None:
        self.lane_answered += 1
        self.lane_requests.inc()
