"""Track and version ids: stable across runs and releases, distinct where the input differs."""

import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadenza.layout import TRACK_ID, VERSION
from encoder.identity import CHUNK, sha256_file, track_id, version_id
from encoder.probe import Tags

SHA_A = "ab" * 32
SHA_B = "cd" * 32
SINNERMAN = Tags(
    title="Sinnerman", artist="Nina Simone", album="Pastel Blues", track_number=7, isrc=None
)


def test_published_ids_never_change() -> None:
    # These ids name published objects; a change here orphans every track already published.
    assert track_id(Tags(isrc="USRC17607839"), SHA_A) == "da6f179e9265463b"
    assert track_id(SINNERMAN, SHA_A) == "d117aebfa8689cec"
    assert track_id(Tags(), SHA_A) == "7f96f8f8936f4777"
    assert version_id(SHA_A, "ladder") == "v5c5d20b09823"


def test_ids_match_the_layout() -> None:
    for tags in (Tags(isrc="USRC17607839"), SINNERMAN, Tags()):
        assert TRACK_ID.fullmatch(track_id(tags, SHA_A))
    assert VERSION.fullmatch(version_id(SHA_A, "ladder"))


def test_isrc_identifies_the_recording_whatever_else_differs() -> None:
    first = Tags(title="Sinnerman", artist="Nina Simone", isrc="USRC17607839")
    remaster = Tags(title="Sinnerman (2006 Remaster)", album="Best of", isrc="USRC17607839")
    assert track_id(first, SHA_A) == track_id(remaster, SHA_B)
    assert track_id(first, SHA_A) != track_id(Tags(isrc="USRC17607840"), SHA_A)


def test_isrc_and_tags_name_different_tracks() -> None:
    with_isrc = Tags(title="Sinnerman", artist="Nina Simone", isrc="USRC17607839")
    assert track_id(with_isrc, SHA_A) != track_id(SINNERMAN, SHA_A)


def test_tags_ignore_case_and_surrounding_whitespace() -> None:
    shouted = Tags(
        title=" SINNERMAN ", artist="nina simone\t", album="PASTEL BLUES", track_number=7
    )
    assert track_id(shouted, SHA_B) == track_id(SINNERMAN, SHA_A)


def test_tags_casefold_beyond_lowercase() -> None:
    assert track_id(Tags(title="Straße", artist="A"), SHA_A) == track_id(
        Tags(title="STRASSE", artist="a"), SHA_B
    )


@pytest.mark.parametrize(
    "other",
    [
        Tags(title="Sinnerman", artist="Nina Simone", album="Pastel Blues", track_number=8),
        Tags(title="Sinnerman", artist="Nina Simone", album="Live", track_number=7),
        Tags(title="Sinnerman", artist="Nina Simone", track_number=7),
        Tags(title="Sinnerman", artist="Nina Simone", album="Pastel Blues"),
        Tags(title="Sinnerman", artist="Hozier", album="Pastel Blues", track_number=7),
        Tags(title="Sinner man", artist="Nina Simone", album="Pastel Blues", track_number=7),
    ],
)
def test_any_identifying_tag_changes_the_id(other: Tags) -> None:
    assert track_id(other, SHA_A) != track_id(SINNERMAN, SHA_A)


def test_fields_do_not_run_into_each_other() -> None:
    a = Tags(title="b c", artist="a")
    b = Tags(title="c", artist="a", album="b")
    assert track_id(a, SHA_A) != track_id(b, SHA_A)


@pytest.mark.parametrize(
    "tags",
    [Tags(), Tags(title="Sinnerman"), Tags(artist="Nina Simone", album="Pastel Blues")],
)
def test_without_artist_and_title_the_content_decides(tags: Tags) -> None:
    assert track_id(tags, SHA_A) == track_id(Tags(), SHA_A)
    assert track_id(tags, SHA_A) != track_id(tags, SHA_B)


def test_version_changes_with_source_or_ladder() -> None:
    base = version_id(SHA_A, "ladder-1")
    assert version_id(SHA_A, "ladder-1") == base
    assert version_id(SHA_B, "ladder-1") != base
    assert version_id(SHA_A, "ladder-2") != base


_SHAS = st.text("0123456789abcdef", min_size=64, max_size=64)


@given(_SHAS, _SHAS, st.text(max_size=50), st.text(max_size=50))
def test_versions_differ_when_inputs_do(sha_a: str, sha_b: str, fp_a: str, fp_b: str) -> None:
    same = (sha_a, fp_a) == (sha_b, fp_b)
    assert (version_id(sha_a, fp_a) == version_id(sha_b, fp_b)) == same
    assert VERSION.fullmatch(version_id(sha_a, fp_a))


@given(
    st.from_regex(r"[A-Z]{2}[A-Z0-9]{3}[0-9]{7}", fullmatch=True),
    st.builds(Tags, title=st.text(max_size=10), artist=st.text(max_size=10)),
    _SHAS,
)
def test_isrc_outweighs_tags_and_content(isrc: str, tags: Tags, sha: str) -> None:
    assert track_id(Tags(isrc=isrc, title=tags.title, artist=tags.artist), sha) == track_id(
        Tags(isrc=isrc), SHA_A
    )


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, 2 * CHUNK + 17])
def test_sha256_file_matches_hashlib(tmp_path: Path, size: int) -> None:
    data = (bytes(range(251)) * (size // 251 + 1))[:size]
    path = tmp_path / "master.wav"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
