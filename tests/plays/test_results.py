"""The consumers' results: exactly once by event id, the 30 s rule, decayed popularity."""

import math

from hypothesis import given
from hypothesis import strategies as st

from plays import results
from tests.plays.events import AT, TRACK, event, play


def _db(tmp_path):
    return results.connect(tmp_path / "results.sqlite3")


def test_a_batch_applied_twice_counts_once(tmp_path):
    db = _db(tmp_path)
    events = play(2.0) + play(0.2)  # a stream (start, 3 progress, end) and a skip under 30 s
    first = results.apply(db, "streams", "streams", events, "7", labels={TRACK: "acme"})
    again = results.apply(db, "streams", "streams", events, "7", labels={TRACK: "acme"})
    assert (first.new, again.new, again.repeated) == (len(events), 0, len(events))
    rows = results.streams(db, "acme", "2026-11")
    assert rows == [{"day": "2026-11-18", "track_id": TRACK, "territory": "FR", "streams": 1}]
    assert results.streams(db, "other", "2026-11") == []


def test_a_play_is_one_stream_however_many_of_its_events_pass_30_s(tmp_path):
    db = _db(tmp_path)
    for e in play(5.0):  # each event alone, as several batches
        results.apply(db, "streams", "streams", [e], "1", labels={TRACK: "acme"})
    assert [r["streams"] for r in results.streams(db, "acme", "2026-11")] == [1]


def test_history_has_one_row_per_play_with_what_was_heard(tmp_path):
    db = _db(tmp_path)
    whole, skipped = play(1.0), play(0.1, start=AT + 300)
    anonymous = play(1.0, listener="")
    results.apply(db, "history", "history", [*reversed(whole), *skipped, *anonymous], "3")
    plays = results.history(db, "ann", 10)
    assert [(p["state"], p["played_ms"], p["stream"]) for p in plays] == [
        ("skip", 6_000, False),
        ("end", 60_000, True),
    ]
    assert plays[1]["started_at"] == AT
    assert results.history(db, "nobody", 10) == []


def test_popularity_counts_starts_and_decays_with_the_half_life(tmp_path):
    db = _db(tmp_path)
    starts = [event(at=AT), event(at=AT), event(at=AT + 3600, track="ffffffffffffffff")]
    results.apply(db, "popularity", "popularity", starts, "3", half_life=3600)
    top = results.hot(db, ["eu-west-1"], 10, AT + 3600)
    assert [(t, round(s, 6)) for t, s in top] == [(TRACK, 1.0), ("ffffffffffffffff", 1.0)]
    assert results.hot(db, ["us-east-1"], 10, AT) == []


@given(st.floats(0, 1e6), st.floats(0, 1e6), st.floats(0, 1e5), st.floats(1, 1e5))
def test_decay_halves_each_half_life_and_composes(score, at, step, half_life):
    once = results.decayed(score, at, at + 2 * step, half_life)
    twice = results.decayed(results.decayed(score, at, at + step, half_life), at + step,
                            at + 2 * step, half_life)  # fmt: skip
    assert math.isclose(once, twice, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(results.decayed(score, at, at + half_life, half_life), score / 2,
                        rel_tol=1e-9, abs_tol=1e-12)  # fmt: skip


def test_ids_are_forgotten_once_no_event_can_come_again(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "FORGET_EVERY", 2)
    db = _db(tmp_path)
    old = play(1.0)
    results.apply(db, "streams", "streams", old, "1", labels={TRACK: "acme"})
    later = play(1.0, start=AT + results.REMEMBER_S + 3600)
    results.apply(db, "streams", "streams", later, "2", labels={TRACK: "acme"})  # sweeps
    kept = {row[0] for row in db.execute("SELECT id FROM seen")}
    assert kept == {e.id for e in later}
    assert db.execute("SELECT count(*) FROM streamed").fetchone()[0] == 1
