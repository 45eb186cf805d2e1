"""What the locator's workers share: every worker's plays in the load bound, one fleet health."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadenza.status import EdgeStatus
from locator.decision import EdgeView
from locator.fleet import Fleet
from locator.shares import AssignmentTable, HealthBoard, SharedFleet, SharedState

EDGES = ["a", "b", "c"]


def test_every_worker_s_plays_count_for_every_reader():
    table = AssignmentTable(EDGES, workers=2, window=10)
    first, second = table.row(0, now=0), table.row(1, now=0)
    first.add("a", 1.0)
    second.add("a", 1.5)
    second.add("b", 2.0)
    seen = table.counts()
    assert (seen["a"], seen.get("b"), seen.get("c"), seen.get("nowhere", 7)) == (2, 1, 0, 7)
    assert dict(seen) == {"a": 2, "b": 1, "c": 0} and len(seen) == 3


def test_plays_leave_the_window_second_by_second_even_without_new_ones():
    table = AssignmentTable(EDGES, workers=2, window=10)
    busy, idle = table.row(0, now=0), table.row(1, now=0)
    for t in (0.0, 0.5, 5.0):
        idle.add("a", t)
    busy.add("a", 9.0)
    assert table.counts()["a"] == 4
    idle.trim(10.5)  # the idle worker's own timer
    assert table.counts()["a"] == 2
    busy.add("b", 30.0)
    idle.trim(30.0)
    assert dict(table.counts()) == {"a": 0, "b": 1, "c": 0}


def test_a_replacement_worker_takes_over_its_row_and_repairs_a_half_written_count():
    buffer = bytearray(AssignmentTable.size(len(EDGES), 2, window=10))
    table = AssignmentTable(EDGES, workers=2, window=10, buffer=buffer)
    row = table.row(1, now=0)
    row.add("c", 3.0)
    row.add("c", 3.2)
    table.words[row._totals + 2] -= 1  # killed between its two writes
    again = AssignmentTable(EDGES, workers=2, window=10, buffer=buffer).row(1, now=4.0)
    assert table.counts()["c"] == 2
    again.add("c", 5.0)
    assert table.counts()["c"] == 3


def test_bad_tables_are_refused():
    with pytest.raises(ValueError, match="distinct"):
        AssignmentTable(["a", "a"], workers=1)
    with pytest.raises(ValueError, match="bytes"):
        AssignmentTable(EDGES, workers=2, buffer=bytearray(8))
    with pytest.raises(ValueError, match="worker 2"):
        AssignmentTable(EDGES, workers=2).row(2, now=0)


@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.sampled_from(EDGES), st.floats(0, 1)),
        max_size=60,
    ),
    st.integers(1, 8),
)
def test_the_table_counts_what_every_worker_added_in_the_window(plays, window):
    """A model: the plays of the last ``window`` whole seconds, whoever made them."""
    table = AssignmentTable(EDGES, workers=3, window=window)
    rows = [table.row(w, now=0) for w in range(3)]
    made: list[tuple[int, str]] = []
    now = 0.0
    for worker, edge, step in plays:
        now += step * 3  # the clock moves on, sometimes across whole windows
        rows[worker].add(edge, now)
        made.append((int(now), edge))
        for row in rows:
            row.trim(now)
        second = int(now)
        for e in EDGES:
            expected = sum(1 for s, x in made if x == e and second - window < s <= second)
            assert table.counts()[e] == expected


def test_the_board_hands_the_latest_document_to_readers_once():
    board = HealthBoard(64)
    assert board.read(0) is None and board.sequence == 0
    board.publish(b'{"a": 1}')
    sequence, document = board.read(0) or (0, b"")
    assert document == b'{"a": 1}' and sequence == board.sequence
    assert board.read(sequence) is None
    board.publish(b"{}")
    assert board.read(sequence) == (board.sequence, b"{}")
    with pytest.raises(ValueError, match="exceeds"):
        board.publish(b"x" * 65)


def test_a_document_being_written_is_not_read_and_the_next_publisher_recovers():
    board = HealthBoard(64)
    board.publish(b"old")
    board._header[0] += 1  # a publisher killed mid-write: the sequence stays odd
    assert board.read(0) is None
    board.publish(b"new")
    assert board.read(0) == (board.sequence, b"new") and board.sequence % 2 == 0


STATUS = {
    "healthy": True, "state": "healthy", "region": "eu-west", "latitude": 48.86,
    "longitude": 2.35, "capacity_bps": 1e9, "active_requests": 2, "egress_bps": 4e8,
    "hit_ratio": 0.5, "cache": {"memory": {"bytes": 1, "objects": 1}},
}  # fmt: skip


def _fleet() -> Fleet:
    return Fleet([EdgeView(e, "eu-west", f"http://127.0.0.1:{n + 1}", 48.86, 2.35, 1e9)
                  for n, e in enumerate(EDGES)])  # fmt: skip


def test_workers_that_do_not_poll_see_what_the_poller_published():
    state = SharedState.allocate(EDGES, workers=2)
    poller = SharedFleet(_fleet(), state.health, polling=True)
    follower = SharedFleet(_fleet(), state.health, polling=False)
    assert not any(v.healthy for v in follower.current().views)
    poller.fleet.health["a"].observe_success(EdgeStatus.from_json(STATUS), 1.0)
    poller.fleet.health["b"].observe_failure(1.0)
    poller.publish()
    assert follower.current().views == poller.current().views
    assert follower.current().healthy_ids() == {"a"}
    assert follower.current().views[0].load == 0.4


def test_a_replacement_poller_carries_on_from_the_last_publication():
    state = SharedState.allocate(EDGES, workers=2)
    poller = SharedFleet(_fleet(), state.health, polling=True)
    health = poller.fleet.health["a"]
    health.observe_success(EdgeStatus.from_json(STATUS), 1.0)
    health.observe_failure(2.0)  # one failure of the two that take it down
    poller.publish()
    again = SharedFleet(_fleet(), state.health, polling=True).fleet.health["a"]
    assert again.healthy and json.dumps(again.to_json()) == json.dumps(health.to_json())
    assert again.observe_failure(3.0)  # the second failure: down, as if nothing had restarted
