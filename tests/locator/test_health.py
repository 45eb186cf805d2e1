"""Edge status documents and the up/down hysteresis built on the polls."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locator.health import CacheTier, EdgeHealth, EdgeStatus, parse_status

# What an edge's GET /status answers (edge/app.py), with every field the locator reads.
DOC = {
    "healthy": True,
    "state": "healthy",
    "region": "eu-west",
    "pid": 4242,
    "latitude": 48.86,
    "longitude": 2.35,
    "capacity_bps": 1e9,
    "active_requests": 3,
    "egress_bps": 2.5e8,
    "hit_ratio": 0.75,
    "hits": 3,
    "misses": 1,
    "workers": 2,
    "cache": {
        "memory": {"bytes": 1024, "objects": 2},
        "disk": {"bytes": 4096, "objects": 5},
    },
}
STATUS = parse_status(DOC)
DRAINING = parse_status(DOC | {"healthy": False, "state": "draining"})


def test_parse_status_reads_every_field():
    assert parse_status(DOC) == EdgeStatus(
        draining=False,
        region="eu-west",
        latitude=48.86,
        longitude=2.35,
        capacity_bps=1e9,
        active_requests=3,
        egress_bps=2.5e8,
        hit_ratio=0.75,
        memory=CacheTier(bytes=1024, objects=2),
        disk=CacheTier(bytes=4096, objects=5),
        pid=4242,
        workers=2,
    )
    assert DRAINING.draining


def test_parse_status_needs_only_the_core_fields_and_ignores_new_ones():
    optional = ("healthy", "pid", "hit_ratio", "cache", "workers")
    core = {k: v for k, v in DOC.items() if k not in optional}
    status = parse_status(core | {"version": "0.2", "capacity_bps": 5})
    assert (status.memory, status.disk, status.pid, status.hit_ratio) == (None, None, None, 0.0)
    assert status.workers == 1
    assert status.capacity_bps == 5.0 and isinstance(status.capacity_bps, float)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"state": "sick"}, "'state' must be 'healthy' or 'draining'"),
        ({"healthy": False}, "disagree"),
        ({"healthy": "yes"}, "disagree"),
        ({"state": None}, "'state' must be a string"),
        ({"region": ""}, "'region' is empty"),
        ({"region": 7}, "'region' must be a string"),
        ({"latitude": 91}, r"'latitude' must be a number in \[-90, 90\]"),
        ({"longitude": "2.35"}, "'longitude' must be a number"),
        ({"capacity_bps": 0}, "'capacity_bps' must be positive"),
        ({"egress_bps": math.nan}, "'egress_bps' must be a number"),
        ({"egress_bps": -1}, "'egress_bps' must be a number"),
        ({"active_requests": -1}, "'active_requests' must be a whole number"),
        ({"active_requests": 1.5}, "'active_requests' must be a whole number"),
        ({"active_requests": True}, "'active_requests' must be a whole number"),
        ({"hit_ratio": 1.5}, "'hit_ratio' must be a number in"),
        ({"pid": "4242"}, "'pid' must be a whole number"),
        ({"workers": 0}, "'workers' must be a whole number >= 1"),
        ({"cache": []}, "'cache' must be an object"),
        ({"cache": {"memory": 5}}, "tier 'memory' must be an object"),
        ({"cache": {"disk": {"bytes": 1}}}, "tier 'disk' lacks the field 'objects'"),
    ],
)
def test_parse_status_names_the_bad_field(change, message):
    with pytest.raises(ValueError, match=message):
        parse_status(DOC | change)


@pytest.mark.parametrize("field", ["state", "region", "latitude", "capacity_bps", "egress_bps"])
def test_parse_status_names_a_missing_field(field):
    with pytest.raises(ValueError, match=f"lacks the field '{field}'"):
        parse_status({k: v for k, v in DOC.items() if k != field})


@pytest.mark.parametrize("doc", [None, [], "healthy", 3])
def test_parse_status_wants_an_object(doc):
    with pytest.raises(ValueError, match="must be a JSON object"):
        parse_status(doc)


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
