"""The origin's Prometheus metrics, one registry per app so tests can run several origins."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass
class OriginMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "cadenza_origin_requests",
            "Requests by route and status",
            ["route", "status"],
            registry=r,
        )
        self.bytes_out = Counter("cadenza_origin_bytes_out", "Body bytes sent", registry=r)
        self.upload_bytes = Counter(
            "cadenza_origin_upload_bytes", "Object bytes stored", registry=r
        )
        self.publishes = Counter(
            "cadenza_origin_publishes", "Publish attempts by result", ["result"], registry=r
        )
        self.storage_seconds = Histogram(
            "cadenza_origin_storage_seconds",
            "Storage operation latency",
            ["op"],
            registry=r,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )

    @contextmanager
    def timed(self, op: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.storage_seconds.labels(op).observe(time.perf_counter() - started)
