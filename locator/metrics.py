"""The locator's Prometheus metrics, one registry per worker (summed over the workers when
scraped: ``cadenza.expositions``)."""

import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Times every worker must have passed: the oldest of the workers', not their sum.
OLDEST: frozenset[str] = frozenset({"cadenza_locator_events_answered_timestamp_seconds"})


@dataclass
class LocatorMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.decisions = Counter(
            "cadenza_locator_decisions",
            "Play, locate and redirect answers by client region and outcome",
            ["region", "outcome"],
            registry=r,
        )
        self.decision_seconds = Histogram(
            "cadenza_locator_decision_seconds",
            "Time to choose the edges of one request (rights lookups excluded)",
            registry=r,
            buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05),
        )
        self.health_transitions = Counter(
            "cadenza_locator_health_transitions",
            "Edges going up or down",
            ["edge", "state"],
            registry=r,
        )
        self.edges_up = Gauge("cadenza_locator_edges_up", "Edges taking new plays", registry=r)
        self.rights_lookups = Counter(
            "cadenza_locator_rights_lookups",
            "Rights answers by source (cache or origin)",
            ["source"],
            registry=r,
        )
        self.steering_reloads = Counter(
            "cadenza_locator_steering_reloads", "Steering manifests served", registry=r
        )
        self.events_answered_at = Gauge(
            "cadenza_locator_events_answered_timestamp_seconds",
            "When the origin's event stream last answered the locator (Unix time; 0: never)",
            registry=r,
        )
        self.play_events = Counter(
            "cadenza_locator_play_events",
            "Play events reported by players, by outcome: accepted (new in the log), duplicate "
            "(an id logged before), or the reason the batch holding them was refused",
            ["outcome"],
            registry=r,
        )
        # Labelled children looked up once: ``labels()`` costs more than a decision can spare.
        self._decided: dict[tuple[str, str], Any] = {}

    def decided(self, region: str, outcome: str) -> None:
        child = self._decided.get((region, outcome))
        if child is None:
            child = self._decided[region, outcome] = self.decisions.labels(region, outcome)
        child.inc()

    def events_answered(self) -> None:
        self.events_answered_at.set(time.time())
