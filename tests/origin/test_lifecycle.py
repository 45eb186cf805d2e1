"""The version lifecycle: states, every transition, and the master a version's metadata gives."""

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadenza import hls
from origin.errors import Conflict
from origin.lifecycle import Action, State, VersionFacts, master_playlist, state_of, transition

RUNG = {"name": "a96", "codecs": "mp4a.40.2", "peak_bps": 100_000, "average_bps": 96_000}
METADATA: dict[str, Any] = {"version": "v0123456789ab", "rungs": [RUNG], "loudness": None}


def facts(stored: str | None, missing: tuple[str, ...] = (), **flags: bool) -> VersionFacts:
    return VersionFacts(
        "t000000000000001",
        "v0123456789ab",
        stored,
        missing,
        flags.get("withdrawn", False),
        flags.get("current", False),
    )


@pytest.mark.parametrize(
    ("given_facts", "state"),
    [
        (facts(None), None),
        (facts("staged", ("a",)), State.DECLARED),
        (facts("staged"), State.STAGED),
        (facts("published"), State.PUBLISHED),
        (facts("published", withdrawn=True), State.WITHDRAWN),
    ],
)
def test_states(given_facts: VersionFacts, state: State | None):
    assert state_of(given_facts) == state


def test_declare_keeps_every_state_and_starts_one():
    assert transition(facts(None), Action.DECLARE) is State.DECLARED
    assert transition(facts("published"), Action.DECLARE) is State.PUBLISHED


def test_store_needs_a_declared_version():
    with pytest.raises(Conflict, match="not declared"):
        transition(facts(None), Action.STORE)
    # A published version takes an object again: fsck --repair made it re-uploadable.
    assert transition(facts("published", ("a",)), Action.STORE) is State.PUBLISHED


def test_publish_needs_every_object_and_a_track_not_withdrawn():
    assert transition(facts("staged"), Action.PUBLISH) is State.PUBLISHED
    assert transition(facts("published", current=True), Action.PUBLISH) is State.PUBLISHED
    with pytest.raises(Conflict, match="withdrawn"):
        transition(facts("published", withdrawn=True), Action.PUBLISH)
    with pytest.raises(Conflict, match="not declared"):
        transition(facts(None), Action.PUBLISH)


@given(st.lists(st.text("abc/", min_size=1), min_size=1, max_size=30, unique=True))
def test_a_version_with_missing_objects_is_never_published(missing: list[str]):
    with pytest.raises(Conflict) as caught:
        transition(facts("staged", tuple(sorted(missing))), Action.PUBLISH)
    assert caught.value.missing == sorted(missing)
    assert f"{len(missing)} objects are not uploaded" in str(caught.value)


def test_the_master_is_the_one_ingest_writes():
    loud = {**METADATA, "loudness": {"integrated_lufs": -9, "true_peak_dbtp": None, "range_lu": 4}}
    for metadata in (METADATA, loud):
        text = master_playlist(metadata)
        assert text == hls.write_multivariant(hls.version_master(metadata)).encode()
        assert hls.parse_multivariant(text.decode()) == hls.version_master(metadata)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "v1"}, "version"),
        ({"rungs": []}, "rungs"),
        ({"rungs": [RUNG] * 17}, "rungs"),
        ({"rungs": ["a96"]}, "rung 0 must be an object"),
        ({"rungs": [{**RUNG, "name": "../x"}]}, "name"),
        ({"rungs": [{**RUNG, "codecs": 'mp4a"\n#EXT-X-ENDLIST'}]}, "codecs"),
        ({"rungs": [{**RUNG, "peak_bps": True}]}, "peak_bps"),
        ({"rungs": [{**RUNG, "average_bps": 0}]}, "peak_bps"),
        ({"loudness": {"integrated_lufs": float("nan"), "range_lu": 1}}, "integrated_lufs"),
        ({"loudness": {"integrated_lufs": None, "true_peak_dbtp": None}}, "range_lu"),
        ({"loudness": []}, "loudness"),
    ],
)
def test_metadata_a_master_cannot_be_made_of_is_refused(change: dict[str, Any], message: str):
    with pytest.raises(ValueError, match=message):
        master_playlist({**METADATA, **change})


def test_every_rung_playlist_must_be_in_the_manifest():
    master_playlist(METADATA, {"a96/index.m3u8": {}})
    with pytest.raises(ValueError, match=r"a96/index\.m3u8 is not in the manifest"):
        master_playlist(METADATA, {"a96/init.mp4": {}})


@given(
    st.recursive(
        st.none() | st.integers() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_any_json_either_renders_or_is_a_value_error(rungs: Any):
    with contextlib.suppress(ValueError):
        master_playlist({**METADATA, "rungs": rungs})
