"""Play events: the one form that players, the locator and the consumers share."""

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadenza.plays import MAX_BATCH, PlayEvent, PlayEventError, batch_from_json

EVENT = {
    "id": uuid.UUID(int=1).hex, "play_id": uuid.UUID(int=2).hex, "kind": "progress",
    "at": 1_767_225_600.5, "track_id": "0123456789abcdef", "version": "v0123456789ab",
    "territory": "SE", "edge": "eu-west-1", "played_ms": 31_000, "rung_kbps": 128, "stalls": 0,
}  # fmt: skip


def test_an_event_round_trips_through_json():
    event = PlayEvent.from_json(EVENT)
    assert event.to_json() == {**EVENT, "offline": False, "credential": "", "listener": ""}
    assert PlayEvent.from_json(event.to_json()) == event
    assert event.is_stream  # 31 s heard
    assert not PlayEvent.from_json({**EVENT, "played_ms": 29_999}).is_stream


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "short"), ("id", "x" * 65), ("id", "a b" * 8), ("id", 7), ("kind", "pause"),
        ("at", float("nan")), ("at", 10.0), ("at", "now"), ("at", True),
        ("track_id", "NOT-A-TRACK"), ("version", "v1"), ("territory", "se"),
        ("edge", "a/b"), ("played_ms", -1), ("played_ms", 1.5), ("played_ms", True),
        ("played_ms", 10**12), ("rung_kbps", 10**6), ("stalls", -3), ("offline", "yes"),
        ("credential", "x" * 5000), ("listener", "a b"),
    ],
)  # fmt: skip
def test_a_bad_field_is_refused_by_name(field: str, value: Any):
    with pytest.raises(PlayEventError, match=f"field {field} ") as caught:
        PlayEvent.from_json({**EVENT, field: value})
    assert caught.value.status == 400


def test_missing_and_unknown_fields_are_refused():
    with pytest.raises(PlayEventError, match="missing"):
        PlayEvent.from_json({k: v for k, v in EVENT.items() if k != "edge"})
    with pytest.raises(PlayEventError, match="unknown play event fields: mood"):
        PlayEvent.from_json({**EVENT, "mood": "happy"})
    with pytest.raises(PlayEventError, match="JSON object"):
        PlayEvent.from_json([EVENT])


def test_a_batch_is_bounded_and_names_its_bad_event():
    assert len(batch_from_json({"events": [EVENT] * 3})) == 3
    for bad in ({}, {"events": {}}, {"events": []}, {"events": [EVENT] * (MAX_BATCH + 1)}, []):
        with pytest.raises(PlayEventError, match="batch"):
            batch_from_json(bad)
    with pytest.raises(PlayEventError, match="event 1: play event field kind"):
        batch_from_json({"events": [EVENT, {**EVENT, "kind": "?"}]})


@given(
    played=st.integers(0, 24 * 3600 * 1000), kbps=st.integers(0, 10_000),
    kind=st.sampled_from(["start", "progress", "end", "skip"]), offline=st.booleans(),
)  # fmt: skip
def test_any_valid_event_round_trips(played: int, kbps: int, kind: str, offline: bool):
    doc = {**EVENT, "played_ms": played, "rung_kbps": kbps, "kind": kind, "offline": offline}
    assert PlayEvent.from_json(PlayEvent.from_json(doc).to_json()).to_json() == {
        **doc, "credential": "", "listener": ""
    }  # fmt: skip


def test_a_credited_event_is_the_same_event_for_its_checked_listener():
    event = PlayEvent.from_json({**EVENT, "credential": "tok.en", "listener": "claimed"})
    credited = event.credited("ann", "SE")
    assert credited.to_json() == {**event.to_json(), "listener": "ann", "territory": "SE",
                                  "credential": ""}  # fmt: skip
    assert credited == PlayEvent.from_json(credited.to_json())
    for listener, territory in (("not ok", "SE"), ("ann", "se")):
        with pytest.raises(PlayEventError):
            event.credited(listener, territory)
