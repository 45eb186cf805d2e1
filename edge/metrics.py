"""The edge's Prometheus metrics: one registry per worker, summed over the workers when scraped.

Any worker may take a scrape (they share one port), so each answers for the whole edge: its own
exposition plus every other worker's, fetched over the peer sockets and added up sample by
sample (``sum_expositions``, pure).
"""

import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from cadenza import expositions
from cadenza.expositions import SampleKey

# Gauges of what the workers share: counted once, not once per worker.
SHARED: frozenset[SampleKey] = frozenset({("cadenza_edge_cache_bytes", (("tier", "disk"),))})
# Gauges of when something last happened in a worker: the edge is only as fresh as its stalest
# worker, so the oldest time is kept.
OLDEST: frozenset[str] = frozenset({"cadenza_edge_events_answered_timestamp_seconds"})
FIRST_BYTE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


@dataclass
class EdgeMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        # The hit path's counts wait in plain ints until the registry is collected (a scrape,
        # ``exposition``): a counter's ``inc`` costs more than a memory hit can spare. Registered
        # first, so that the counters are brought up to date before they are read.
        self._pending_served: dict[tuple[int, str], int] = {}
        self._pending_lane = 0
        self._pending_replays = 0
        self._pending_bytes = 0
        # First-byte times of memory hits, as counts per histogram bucket and their sum.
        self._pending_hit_times = [0] * (len(FIRST_BYTE_BUCKETS) + 1)
        self._pending_hit_seconds = 0.0
        r.register(_BeforeCollection(self._fold))
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
        # Parents and origin replicas (edge.upstreams): labelled by configured URLs, so bounded.
        self.upstream_fetches = Counter(
            "cadenza_edge_upstream_fetches",
            "Fetches from parent edges and origins by kind, upstream and result",
            ["kind", "upstream", "result"],
            registry=r,
        )
        self.upstream_bytes = Counter(
            "cadenza_edge_upstream_bytes", "Body bytes read from parents and origins", ["kind"],
            registry=r,
        )  # fmt: skip
        self.failovers = Counter(
            "cadenza_edge_upstream_failovers",
            "Fetches moved on to the next upstream, by the kind and upstream that failed",
            ["kind", "upstream"],
            registry=r,
        )
        self.coalesced = Counter(
            "cadenza_edge_coalesced_waiters", "Misses that joined a fetch under way", registry=r
        )
        self.prefetches = Counter(
            "cadenza_edge_prefetches",
            "Readahead fetches by outcome: issued, used (a client asked for the object before "
            "it left memory), wasted (evicted unused)",
            ["outcome"],
            registry=r,
        )
        self.preposition_objects = Counter(
            "cadenza_edge_preposition_objects",
            "Objects pre-positioning fetched (warmed), then asked for by a player (used) or not "
            "within two rounds (wasted)",
            ["outcome"],
            registry=r,
        )
        self.preposition_bytes = Counter(
            "cadenza_edge_preposition_bytes",
            "Bytes of cadenza_edge_preposition_objects, by the same outcomes",
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
            buckets=FIRST_BYTE_BUCKETS,
        )
        self.lane_requests = Counter(
            "cadenza_edge_lane_requests",
            "Responses written by the lean lane (edge.front), not by aiohttp; also in "
            "cadenza_edge_requests",
            registry=r,
        )
        self.lane_answered = 0  # the same count, for /status
        self.lane_replays = Counter(
            "cadenza_edge_lane_replays",
            "Lean-lane responses to request bytes that came before within the same second, "
            "answered as then without parsing them again; also in cadenza_edge_lane_requests",
            registry=r,
        )
        self.lane_replayed = 0
        self.events_answered_at = Gauge(
            "cadenza_edge_events_answered_timestamp_seconds",
            "When the origin's event stream last answered this edge (Unix time; 0: never); "
            "the oldest of the workers'",
            registry=r,
        )
        # Labelled children looked up once: ``labels()`` costs more than the hit path can spare.
        self._served: dict[tuple[int, str], Any] = {}
        self._first_byte: dict[str, Any] = {}

    def exposition(self, memory_bytes: int, disk_bytes: int) -> bytes:
        """This worker's metrics in Prometheus' text format, with the tiers' sizes as of now."""
        self.cache_bytes.labels("memory").set(memory_bytes)
        self.cache_bytes.labels("disk").set(disk_bytes)
        return generate_latest(self.registry)

    def served(self, status: int, cache: str) -> None:
        key = (status, cache)
        pending = self._pending_served
        if key in pending:
            pending[key] += 1
            return
        if key not in self._served:  # the sample exists from the first answer on, as before
            self._served[key] = self.requests.labels(str(status), cache)
        pending[key] = 1

    def sent(self, nbytes: int) -> None:
        """Body bytes sent to a client."""
        self._pending_bytes += nbytes

    def first_byte(self, cache: str, seconds: float) -> None:
        child = self._first_byte.get(cache)
        if child is None:
            child = self._first_byte[cache] = self.latency.labels(cache)
        child.observe(seconds)

    def hit_first_byte(self, seconds: float) -> None:
        """``first_byte("HIT", seconds)`` for the lean lane, whose hits cost microseconds: the
        observation waits in a plain count until the registry is collected."""
        self._pending_hit_times[bisect_left(FIRST_BYTE_BUCKETS, seconds)] += 1
        self._pending_hit_seconds += seconds

    def events_answered(self) -> None:
        self.events_answered_at.set(time.time())

    def prepositioned(self, outcome: str, nbytes: int) -> None:
        """A warmed object's outcome: warmed, used or wasted (edge.preposition.WarmLedger)."""
        self.preposition_objects.labels(outcome).inc()
        self.preposition_bytes.labels(outcome).inc(nbytes)

    def lane_served(self) -> None:
        self.lane_answered += 1
        self._pending_lane += 1

    def lane_replay(self) -> None:
        """A lane response replayed (``edge.front.Front.replay``); ``lane_served`` counts it too."""
        self.lane_replayed += 1
        self._pending_replays += 1

    def _fold(self) -> None:
        """Add the counts made since the last collection to their counters."""
        for key, n in self._pending_served.items():
            self._served[key].inc(n)
        self._pending_served.clear()
        if self._pending_lane:
            self.lane_requests.inc(self._pending_lane)
            self._pending_lane = 0
        if self._pending_replays:
            self.lane_replays.inc(self._pending_replays)
            self._pending_replays = 0
        if self._pending_bytes:
            self.bytes_served.inc(self._pending_bytes)
            self._pending_bytes = 0
        if self._pending_hit_seconds or any(self._pending_hit_times):
            child = self._first_byte.get("HIT")
            if child is None:
                child = self._first_byte["HIT"] = self.latency.labels("HIT")
            # What ``observe`` does per observation (prometheus_client's Histogram), per bucket.
            for bucket, n in zip(child._buckets, self._pending_hit_times, strict=True):
                if n:
                    bucket.inc(n)
            child._sum.inc(self._pending_hit_seconds)
            self._pending_hit_times = [0] * len(self._pending_hit_times)
            self._pending_hit_seconds = 0.0


class _BeforeCollection(Collector):
    """Runs ``action`` whenever its registry is collected, ahead of the collectors after it."""

    def __init__(self, action: Callable[[], None]) -> None:
        self.action = action

    def collect(self) -> Iterable[Metric]:
        self.action()
        return []

    def describe(self) -> Iterable[Metric]:
        return []


def sum_expositions(
    own: bytes, others: Iterable[bytes], shared: frozenset[SampleKey] = SHARED
) -> bytes:
    """One exposition for the whole edge (``cadenza.expositions``), its disk counted once and
    the event stream's last answer the oldest of the workers'."""
    return expositions.sum_expositions(own, others, shared, OLDEST)
