"""One Prometheus exposition for a service from its workers' own: a scrape lands on any worker
of a multi-worker service (they share one port), and each answers for the whole service.

Pure: the expositions in, their sum out. Counters and histograms add up sample by sample;
gauges too, but for those a service names as shared by its workers (counted once) and
timestamps that every worker must have passed (the oldest).
"""

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

SampleKey = tuple[str, tuple[tuple[str, str], ...]]


def sum_expositions(
    own: bytes,
    others: Iterable[bytes],
    shared: frozenset[SampleKey] = frozenset(),
    oldest: frozenset[str] = frozenset(),
) -> bytes:
    """One exposition from the workers': counters and histograms summed, gauges summed but for
    the ``shared`` ones (taken from ``own``) and the ``oldest`` ones (the smallest: a time that
    every worker must have passed), creation times the earliest.
    """
    families = list(text_string_to_metric_families(own.decode()))
    where: dict[SampleKey, tuple[Metric, int]] = {}
    for family in families:
        for i, sample in enumerate(family.samples):
            where[_key(sample.name, sample.labels)] = (family, i)
    by_name = {family.name: family for family in families}
    for text in others:
        for theirs in text_string_to_metric_families(text.decode()):
            if theirs.name not in by_name:
                by_name[theirs.name] = theirs
                families.append(theirs)
                for i, sample in enumerate(theirs.samples):
                    where[_key(sample.name, sample.labels)] = (theirs, i)
                continue
            family = by_name[theirs.name]
            for sample in theirs.samples:
                key = _key(sample.name, sample.labels)
                if key not in where:
                    where[key] = (family, len(family.samples))
                    family.samples.append(sample)
                    continue
                owner, i = where[key]
                mine = owner.samples[i]
                if sample.name.endswith("_created") or sample.name in oldest:
                    value = min(mine.value, sample.value)
                elif owner.type == "gauge" and key in shared:
                    continue
                else:
                    value = mine.value + sample.value
                owner.samples[i] = mine._replace(value=value)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


def _key(name: str, labels: dict[str, str]) -> SampleKey:
    return name, tuple(sorted(labels.items()))


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)
