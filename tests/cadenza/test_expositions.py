"""One exposition from several workers' own: counters summed, shared gauges counted once."""

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cadenza.expositions import sum_expositions


def _samples(exposition: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition.decode())
        for s in family.samples
    }


def _worker(plays: dict[str, int], held: float) -> bytes:
    registry = CollectorRegistry()
    counter = Counter("plays", "Plays by region", ["region"], registry=registry)
    for region, n in plays.items():
        counter.labels(region).inc(n)
    Gauge("held", "What the workers share", registry=registry).set(held)
    Gauge("busy", "Each worker's own", registry=registry).set(held / 10)
    return generate_latest(registry)


def test_counters_and_own_gauges_add_up_and_shared_gauges_count_once():
    a, b = _worker({"eu": 2}, 100.0), _worker({"eu": 1, "us": 4}, 100.0)
    total = _samples(sum_expositions(a, [b], shared=frozenset({("held", ())})))
    assert total["plays_total", (("region", "eu"),)] == 3
    assert total["plays_total", (("region", "us"),)] == 4  # only the other worker has it
    assert total["held", ()] == 100.0 and total["busy", ()] == 20.0
    assert sum_expositions(a, []) == a


@given(st.lists(st.dictionaries(st.sampled_from(["eu", "us", "ap"]), st.integers(1, 50)),
                min_size=1, max_size=4))  # fmt: skip
def test_every_worker_s_count_is_counted_once(workers: list[dict[str, int]]):
    texts = [_worker(plays, 0.0) for plays in workers]
    total = _samples(sum_expositions(texts[0], texts[1:]))
    for region in ("eu", "us", "ap"):
        expected = sum(plays.get(region, 0) for plays in workers)
        assert total.get(("plays_total", (("region", region),)), 0) == expected
