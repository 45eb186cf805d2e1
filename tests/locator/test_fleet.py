"""The locator's state between requests: health into decision inputs, assignments, rights
answers, play sessions and the pathway priority of a steering manifest."""

from hypothesis import given
from hypothesis import strategies as st

from cadenza.status import EdgeStatus
from locator.decision import EdgeView
from locator.fleet import (
    Assignments,
    Fleet,
    Rights,
    RightsCache,
    Session,
    Sessions,
    pathway_priority,
    rights_from_origin,
)
from locator.geo import Location

EDGES = [
    EdgeView("a", "eu-west", "http://127.0.0.1:1", 48.86, 2.35, 1e9),
    EdgeView("b", "us-east", "http://127.0.0.1:2", 38.9, -77.0, 1e9),
]


def status(active: int = 3, egress: float = 2e8, state: str = "healthy") -> dict:
    return {
        "healthy": state == "healthy",
        "state": state,
        "region": "eu-west",
        "latitude": 48.86,
        "longitude": 2.35,
        "capacity_bps": 1e9,
        "active_requests": active,
        "egress_bps": egress,
        "hit_ratio": 0.5,
        "cache": {"memory": {"bytes": 1, "objects": 1}, "disk": {"bytes": 1, "objects": 1}},
    }


def test_edges_are_unavailable_until_polled_then_carry_their_load():
    fleet = Fleet(EDGES)
    assert [v.healthy for v in fleet.views] == [False, False]
    fleet.health["a"].observe_success(EdgeStatus.from_json(status()), 1.0)
    fleet.health["b"].observe_success(EdgeStatus.from_json(status(state="draining")), 1.0)
    assert fleet.views[0].healthy is False  # views change only on refresh
    fleet.refresh()
    a, b = fleet.views
    assert (a.healthy, a.active_requests, a.egress_bps, a.load) == (True, 3, 2e8, 0.2)
    assert (b.healthy, b.draining) == (True, True)
    assert fleet.healthy_ids() == {"a", "b"}


def test_assignments_count_the_last_window_only():
    assigned = Assignments(window=10)
    for t in (0.0, 0.5, 5.0):
        assigned.add("a", t)
    assigned.add("b", 9.0)
    assert assigned.counts(9.5) == {"a": 3, "b": 1}
    assert assigned.counts(10.5) == {"a": 1, "b": 1}
    assert assigned.counts(30) == {"a": 0, "b": 0}


@given(st.lists(st.floats(min_value=0, max_value=100), max_size=50))
def test_assignments_never_count_more_than_was_added(times: list[float]):
    assigned = Assignments(window=10)
    for t in sorted(times):
        assigned.add("a", t)
    assert assigned.counts(max(times, default=0)).get("a", 0) <= len(times)


def test_rights_answers_expire_and_are_forgotten_on_events():
    cache = RightsCache(ttl=30, limit=3)
    ok = Rights(200, "worldwide")
    cache.put("t1", "FR", ok, now=0)
    assert cache.get("t1", "FR", now=29) == ok
    assert cache.get("t1", "FR", now=30) is None
    cache.put("t1", "DE", ok, now=0)
    cache.put("t2", "DE", ok, now=0)
    cache.forget(["t1"])
    assert cache.get("t1", "DE", now=1) is None and cache.get("t2", "DE", now=1) == ok
    for n in range(5):
        cache.put(f"x{n}", "FR", ok, now=0)
    assert cache.get("t2", "DE", now=1) is None  # the oldest went beyond the limit


def test_the_origins_rights_answers_map_to_play_statuses():
    assert rights_from_origin(404, None) == Rights(404, "unknown track")
    assert rights_from_origin(200, {"licensed": True, "reason": "worldwide"}).status == 200
    assert rights_from_origin(200, {"licensed": False, "reason": "withdrawn"}).status == 410
    assert rights_from_origin(200, {"licensed": False, "reason": "taken_down"}).status == 451
    assert rights_from_origin(200, {"licensed": False, "reason": "not_licensed"}).status == 451


def test_sessions_expire_and_stay_bounded():
    sessions = Sessions(limit=2)
    here = Location(48.86, 2.35, "eu-west", "FR")
    for n in range(3):
        sessions.add(f"s{n}", Session("t", here, ("a", "b"), expires=100.0 + n))
    assert sessions.get("s0", now=1) is None and len(sessions) == 2
    assert sessions.get("s1", now=1) is not None
    assert sessions.get("s1", now=101) is None


def test_dead_edges_leave_the_priority_and_draining_ones_go_last():
    session = Session("t", Location(0, 0), ("a", "b", "c"), expires=1e12)
    assert pathway_priority(session, {"a", "b", "c"}, set()) == ["a", "b", "c"]
    assert pathway_priority(session, {"b", "c"}, set()) == ["b", "c"]
    assert pathway_priority(session, {"a", "b", "c"}, {"a"}) == ["b", "c", "a"]
    assert pathway_priority(session, set(), set()) == ["a", "b", "c"]
