"""Egress over a sliding window and the hit ratio, with the clock passed in."""

from hypothesis import given
from hypothesis import strategies as st

from edge.load import Egress, HitRatio


def test_egress_is_averaged_over_the_window_and_forgets_old_seconds():
    egress = Egress(window=10)
    egress.add(1000, now=100.2)
    egress.add(1000, now=100.9)
    egress.add(3000, now=105.0)
    assert egress.bits_per_second(105.5) == 5000 * 8 / 10
    assert egress.bits_per_second(111.0) == 3000 * 8 / 10
    assert egress.bits_per_second(200.0) == 0


@given(st.lists(st.tuples(st.integers(0, 10**6), st.floats(0, 1000)), max_size=50))
def test_egress_never_counts_more_than_was_sent(sends):
    egress = Egress(window=10)
    now = 0.0
    for nbytes, step in sends:
        now += step
        egress.add(nbytes, now)
    assert 0 <= egress.bits_per_second(now) <= sum(n for n, _ in sends) * 8 / 10


def test_hit_ratio():
    ratio = HitRatio()
    assert ratio.ratio == 0
    for hit in (True, True, False, True):
        ratio.record(hit)
    assert ratio.ratio == 0.75
