"""The edge's metrics, and one exposition for the whole edge from its workers' own."""

import asyncio
import time
from pathlib import Path

import aiohttp
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from bench.stub_origin import create_app as create_stub_origin
from edge.metrics import EdgeMetrics, sum_expositions
from tests.loopback import serve
from tests.processes import start_service


def _samples(exposition: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition.decode())
        for s in family.samples
    }


def test_one_worker_s_exposition_is_the_sum_of_itself_alone():
    metrics = EdgeMetrics()
    metrics.served(200, "HIT")
    metrics.first_byte("MISS", 0.02)
    own = metrics.exposition(100, 5000)
    assert sum_expositions(own, []) == own


def test_counters_and_histograms_are_summed_and_the_shared_disk_counted_once():
    a, b = EdgeMetrics(), EdgeMetrics()
    a.served(200, "HIT")
    a.served(200, "HIT")
    b.served(200, "HIT")
    b.served(404, "MISS")  # a label set only the other worker has
    a.first_byte("HIT", 0.001)
    b.first_byte("HIT", 0.3)
    b.bytes_served.inc(1000)
    a_text, b_text = a.exposition(100, 5000), b.exposition(50, 5000)
    total = _samples(sum_expositions(a_text, [b_text]))
    assert total["cadenza_edge_requests_total", (("cache", "HIT"), ("status", "200"))] == 3
    assert total["cadenza_edge_requests_total", (("cache", "MISS"), ("status", "404"))] == 1
    assert total["cadenza_edge_bytes_served_total", ()] == 1000
    assert total["cadenza_edge_cache_bytes", (("tier", "memory"),)] == 150
    assert total["cadenza_edge_cache_bytes", (("tier", "disk"),)] == 5000
    hit = (("cache", "HIT"),)
    assert total["cadenza_edge_first_byte_seconds_count", hit] == 2
    assert total["cadenza_edge_first_byte_seconds_sum", hit] == 0.301
    assert total["cadenza_edge_first_byte_seconds_bucket", (*hit, ("le", "0.001"))] == 1
    assert total["cadenza_edge_first_byte_seconds_bucket", (*hit, ("le", "+Inf"))] == 2
    created = ("cadenza_edge_requests_created", (("cache", "HIT"), ("status", "200")))
    assert total[created] == min(_samples(a_text)[created], _samples(b_text)[created])


@given(st.lists(st.lists(st.sampled_from([200, 206, 304, 404]), max_size=30), max_size=5))
def test_every_request_of_every_worker_is_counted_once(workers):
    expositions = []
    for statuses in [[200], *workers]:
        metrics = EdgeMetrics()
        for status in statuses:
            metrics.served(status, "HIT")
        expositions.append(metrics.exposition(0, 0))
    total = _samples(sum_expositions(expositions[0], expositions[1:]))
    counted = sum(v for (name, _), v in total.items() if name == "cadenza_edge_requests_total")
    assert counted == 1 + sum(len(statuses) for statuses in workers)


def test_the_event_stream_is_as_late_as_the_latest_worker():
    a, b = EdgeMetrics(), EdgeMetrics()
    a.events_answered_at.set(1000.0)
    b.events_answered_at.set(900.0)
    total = _samples(sum_expositions(a.exposition(0, 0), [b.exposition(0, 0)]))
    assert total["cadenza_edge_events_answered_timestamp_seconds", ()] == 900.0
    never = _samples(sum_expositions(a.exposition(0, 0), [EdgeMetrics().exposition(0, 0)]))
    assert never["cadenza_edge_events_answered_timestamp_seconds", ()] == 0.0


REQUESTS = 300


async def test_every_scrape_of_a_two_worker_edge_counts_every_request(tmp_path: Path):
    origin_runner, origin = await serve(create_stub_origin(10_000, 0))
    edge = await asyncio.to_thread(
        start_service, "edge", "--listen", "127.0.0.1:0", "--origin", origin,
        "--allow-unsigned", "--workers", "2", "--cache-dir", tmp_path / "cache",
    )  # fmt: skip
    try:
        # A connection per request, many at once: the kernel spreads them over both workers.
        connector = aiohttp.TCPConnector(force_close=True, limit=20)
        async with aiohttp.ClientSession(connector=connector) as client:

            async def get(n: int) -> int:
                path = f"/tracks/0123456789abcdef/v1/aac_96/seg_{n % 10:05d}.m4s"
                async with client.get(edge.url + path) as response:
                    await response.read()
                    return response.status

            statuses = await asyncio.gather(*(get(n) for n in range(REQUESTS)))
            assert statuses == [200] * REQUESTS
            for _ in range(6):
                async with client.get(edge.url + "/metrics") as response:
                    total = _samples(await response.read())
                served = sum(
                    value
                    for (name, labels), value in total.items()
                    if name == "cadenza_edge_requests_total" and ("cache", "NONE") not in labels
                )
                assert served == REQUESTS
            # Both workers follow the origin's event stream; the scrape shows the later one.
            answered = ("cadenza_edge_events_answered_timestamp_seconds", ())
            deadline = time.monotonic() + 10
            while total[answered] == 0:
                assert time.monotonic() < deadline, "no worker's event stream ever answered"
                await asyncio.sleep(0.2)
                async with client.get(edge.url + "/metrics") as response:
                    total = _samples(await response.read())
            assert total[answered] <= time.time()
    finally:
        await asyncio.to_thread(edge.stop)
        await origin_runner.cleanup()


@given(st.lists(st.floats(min_value=0, max_value=20, allow_nan=False), max_size=30))
def test_lane_hit_times_fold_into_the_histogram_as_observations_would(times: list[float]):
    bounds = [0.0005, 0.001, 0.025, 5.0]  # exact bucket bounds belong to their bucket (le)
    folded, observed = EdgeMetrics(), EdgeMetrics()
    for seconds in [*times, *bounds]:
        folded.hit_first_byte(seconds)
        observed.first_byte("HIT", seconds)
    name = "cadenza_edge_first_byte_seconds"

    def histogram(metrics: EdgeMetrics) -> dict[tuple[str, str], float]:
        text = metrics.exposition(0, 0).decode()
        return {
            (sample.name, sample.labels.get("le", "")): sample.value
            for family in text_string_to_metric_families(text)
            if family.name == name
            for sample in family.samples
            if not sample.name.endswith("_created")
        }

    got, want = histogram(folded), histogram(observed)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert abs(got[key] - value) < 1e-9, key
