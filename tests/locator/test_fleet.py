"""The locator's state between requests: health into decision inputs (and a snapshot of it for
the other workers), rights answers and the pathway priority of a steering manifest."""

import json

from cadenza.status import EdgeStatus
from locator.decision import EdgeView
from locator.fleet import Fleet, Rights, RightsCache, Session, pathway_priority, rights_from_origin

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


def test_a_snapshot_restores_every_edge_s_health_and_load_elsewhere():
    polled = Fleet(EDGES)
    polled.health["a"].observe_success(EdgeStatus.from_json(status()), 1.0)
    polled.health["b"].observe_failure(1.0)
    polled.refresh()
    elsewhere = Fleet(EDGES)
    elsewhere.restore(json.loads(json.dumps(polled.snapshot())))
    assert elsewhere.views == polled.views
    assert [v.load for v in elsewhere.views] == [v.load for v in polled.views]
    assert elsewhere.health["b"].state == "down" and elsewhere.healthy_ids() == {"a"}
    assert elsewhere.health["a"].status == polled.health["a"].status


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


def test_dead_edges_leave_the_priority_and_draining_ones_go_last():
    session = Session("t", ("a", "b", "c"), expires=1e12)
    assert pathway_priority(session, {"a", "b", "c"}, set()) == ["a", "b", "c"]
    assert pathway_priority(session, {"b", "c"}, set()) == ["b", "c"]
    assert pathway_priority(session, {"a", "b", "c"}, {"a"}) == ["b", "c", "a"]
    assert pathway_priority(session, set(), set()) == ["a", "b", "c"]


def test_rankings_are_kept_while_the_views_stay_the_same_and_dropped_when_they_change():
    fleet = Fleet(EDGES)
    fleet.health["a"].observe_success(EdgeStatus.from_json(status()), 1.0)
    fleet.refresh()
    fleet.rankings[(0.0, 0.0, None)] = []
    fleet.health["a"].observe_success(EdgeStatus.from_json(status()), 2.0)  # the same figures again
    fleet.refresh()
    assert fleet.rankings
    fleet.health["a"].observe_success(EdgeStatus.from_json(status(egress=3e8)), 3.0)
    fleet.refresh()
    assert fleet.rankings == {} and fleet.views[0].egress_bps == 3e8
