"""Play sessions signed into their steering URL: any worker reads them, nobody forges them."""

import re

from hypothesis import given
from hypothesis import strategies as st

from locator.fleet import Session
from locator.sessions import MAX_SESSION_LENGTH, read_session, session_id

KEYS = {"k1": b"locator-test-secret-0123456789", "k2": b"another-secret-0123456789"}
SESSION = Session("0123456789abcdef", ("eu-west-1", "eu-west-2", "us-east-1"), 1000.0)


def test_a_session_reads_back_until_it_expires():
    text = session_id(SESSION, "k1", KEYS["k1"])
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", text)  # a path segment as it is
    assert read_session(text, KEYS, now=999.5) == SESSION
    assert read_session(text, KEYS, now=1000.0) is None


def test_a_session_of_a_rotated_key_still_reads_and_one_of_a_removed_key_does_not():
    text = session_id(SESSION, "k2", KEYS["k2"])
    assert read_session(text, KEYS, now=0) == SESSION
    assert read_session(text, {"k1": KEYS["k1"]}, now=0) is None


def test_changed_forged_or_oversized_sessions_are_not_sessions():
    text = session_id(SESSION, "k1", KEYS["k1"])
    kid, payload, mac = text.split(".")
    other = session_id(Session("ffffffffffffffff", ("x",), 10**12), "k1", KEYS["k1"])
    assert read_session(f"{kid}.{other.split('.')[1]}.{mac}", KEYS, now=0) is None
    assert read_session(f"k2.{payload}.{mac}", KEYS, now=0) is None
    assert read_session(text[:-1], KEYS, now=0) is None
    assert read_session("no-such-session", KEYS, now=0) is None
    assert read_session("k1." + "A" * MAX_SESSION_LENGTH + ".x", KEYS, now=0) is None
    forged = session_id(SESSION, "k1", b"not-the-locator-s-secret-0123")
    assert read_session(forged, KEYS, now=0) is None


@given(
    st.text(alphabet="abcdef0123456789", min_size=16, max_size=16),
    st.lists(st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True), min_size=1, max_size=3),
    st.integers(1, 2**40),
)
def test_every_session_reads_back(track_id: str, pathways: list[str], expires: int):
    session = Session(track_id, tuple(pathways), float(expires))
    assert read_session(session_id(session, "k1", KEYS["k1"]), KEYS, now=0) == session


@given(st.text(max_size=80))
def test_any_text_is_a_session_or_none(text: str):
    assert read_session(text, KEYS, now=0) is None
