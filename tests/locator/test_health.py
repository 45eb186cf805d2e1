"""The up/down hysteresis built on an edge's status polls."""

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadenza.status import EdgeStatus
from locator.health import EdgeHealth

STATUS = EdgeStatus.from_json(
    {"state": "healthy", "region": "eu-west", "latitude": 48.86, "longitude": 2.35,
     "capacity_bps": 1e9, "active_requests": 3, "egress_bps": 2.5e8}
)  # fmt: skip
DRAINING = replace(STATUS, draining=True)


def test_an_edge_is_up_after_its_first_success_and_down_after_two_failures():
    health = EdgeHealth()
    assert (health.state, health.healthy, health.transitions) == ("unknown", False, 0)
    assert health.observe_success(STATUS, now=10.0)
    assert (health.healthy, health.transitions, health.last_change) == (True, 1, 10.0)
    assert not health.observe_failure(now=11.0)
    assert health.healthy
    assert not health.observe_success(STATUS, now=12.0)  # the failure streak starts again
    assert not health.observe_failure(now=13.0)
    assert health.observe_failure(now=14.0)
    assert (health.state, health.transitions, health.last_change) == ("down", 2, 14.0)
    assert health.last_success == 12.0


def test_a_down_edge_needs_two_successes_in_a_row():
    health = EdgeHealth()
    health.observe_failure(now=1.0)
    assert (health.state, health.transitions) == ("down", 1)
    assert not health.observe_success(STATUS, now=2.0)
    assert not health.observe_failure(now=3.0)
    assert not health.observe_success(STATUS, now=4.0)
    assert not health.healthy
    assert health.observe_success(STATUS, now=5.0)
    assert health.healthy and health.last_change == 5.0


def test_draining_follows_the_last_status_and_is_separate_from_up():
    health = EdgeHealth()
    assert not health.draining
    health.observe_success(DRAINING, now=1.0)
    assert health.healthy and health.draining
    health.observe_success(STATUS, now=2.0)
    assert not health.draining


def test_fall_and_rise_are_at_least_one():
    with pytest.raises(ValueError, match="at least 1"):
        EdgeHealth(fall=0)
    health = EdgeHealth(fall=1, rise=1)
    health.observe_success(STATUS, now=0.0)
    assert health.observe_failure(now=1.0) and health.observe_success(STATUS, now=2.0)


@settings(max_examples=300)
@given(st.lists(st.booleans(), max_size=60), st.integers(1, 4), st.integers(1, 4))
def test_the_state_changes_only_after_enough_agreeing_polls(outcomes, fall, rise):
    health = EdgeHealth(fall=fall, rise=rise)
    for i, ok in enumerate(outcomes):
        before = health.state
        changed = health.observe_success(STATUS, i) if ok else health.observe_failure(i)
        assert changed == (health.state != before)
        assert health.healthy == (health.state == "up")
        if changed and before != "unknown":
            needed = rise if ok else fall
            assert len(outcomes[: i + 1]) >= needed
            assert all(o == ok for o in outcomes[i + 1 - needed : i + 1])
        if changed:
            assert health.last_change == i
    assert health.state == "unknown" if not outcomes else health.state != "unknown"
    assert health.transitions <= 1 + len(outcomes) // min(fall, rise)


@settings(max_examples=100)
@given(st.integers(2, 40))
def test_alternating_polls_never_flap(polls):
    health = EdgeHealth()
    for i in range(polls):
        if i % 2:
            health.observe_failure(i)
        else:
            health.observe_success(STATUS, i)
    assert health.healthy and health.transitions == 1
