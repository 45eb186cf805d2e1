"""The edge's status document: what the edge writes, the locator reads, field by field."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadenza.status import CacheTier, EdgeStatus

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
STATUS = EdgeStatus.from_json(DOC)
DRAINING = EdgeStatus.from_json(DOC | {"healthy": False, "state": "draining"})


def test_from_json_reads_every_field():
    assert EdgeStatus.from_json(DOC) == EdgeStatus(
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
        hits=3,
        misses=1,
    )
    assert DRAINING.draining


def test_from_json_needs_only_the_core_fields_and_ignores_new_ones():
    optional = ("healthy", "pid", "hit_ratio", "cache", "workers")
    core = {k: v for k, v in DOC.items() if k not in optional}
    status = EdgeStatus.from_json(core | {"version": "0.2", "capacity_bps": 5})
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
        ({"id": 7}, "'id' must be a string"),
        ({"edge_pid": -1}, "'edge_pid' must be a whole number"),
        ({"cache": []}, "'cache' must be an object"),
        ({"cache": {"memory": 5}}, "tier 'memory' must be an object"),
        ({"cache": {"disk": {"bytes": 1}}}, "tier 'disk' lacks the field 'objects'"),
    ],
)
def test_from_json_names_the_bad_field(change, message):
    with pytest.raises(ValueError, match=message):
        EdgeStatus.from_json(DOC | change)


@pytest.mark.parametrize("field", ["state", "region", "latitude", "capacity_bps", "egress_bps"])
def test_from_json_names_a_missing_field(field):
    with pytest.raises(ValueError, match=f"lacks the field '{field}'"):
        EdgeStatus.from_json({k: v for k, v in DOC.items() if k != field})


@pytest.mark.parametrize("doc", [None, [], "healthy", 3])
def test_from_json_wants_an_object(doc):
    with pytest.raises(ValueError, match="must be a JSON object"):
        EdgeStatus.from_json(doc)


def test_the_document_the_edge_writes_is_the_one_the_locator_reads():
    assert STATUS.to_json() == DOC | {"lane_requests": 0, "id": ""}
    named = EdgeStatus.from_json(DOC | {"id": "eu-west-2", "edge_pid": 4000})
    assert (named.id, named.edge_pid) == ("eu-west-2", 4000)
    assert named.to_json() == DOC | {"lane_requests": 0, "id": "eu-west-2", "edge_pid": 4000}
    assert EdgeStatus.from_json(DRAINING.to_json()) == DRAINING


def test_summed_statuses_carry_every_worker_pid():
    summed = EdgeStatus.from_json(DOC | {"pids": [4242, 4243]})
    assert summed.pids == (4242, 4243) and summed.to_json()["pids"] == [4242, 4243]
    with pytest.raises(ValueError, match="'pids' must be a whole number"):
        EdgeStatus.from_json(DOC | {"pids": ["4242"]})
    with pytest.raises(ValueError, match="'pids' must be a list"):
        EdgeStatus.from_json(DOC | {"pids": 4242})


_counts = st.integers(0, 2**40)
_tiers = st.none() | st.builds(CacheTier, _counts, _counts)


@given(
    st.builds(
        EdgeStatus,
        draining=st.booleans(),
        region=st.text(min_size=1, max_size=20),
        latitude=st.floats(-90, 90),
        longitude=st.floats(-180, 180),
        capacity_bps=st.floats(1e-3, 1e12),
        active_requests=_counts,
        egress_bps=st.floats(0, 1e12),
        hit_ratio=st.floats(0, 1),
        memory=_tiers,
        disk=_tiers,
        pid=st.none() | _counts,
        workers=st.integers(1, 64),
        hits=_counts,
        misses=_counts,
        lane_requests=_counts,
        pids=st.lists(_counts, max_size=8).map(tuple),
        id=st.text(max_size=20),
        edge_pid=st.none() | _counts,
    )
)
def test_every_status_survives_its_json(status):
    assert EdgeStatus.from_json(status.to_json()) == status
