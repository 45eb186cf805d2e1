"""Offline licences: signed, bound to one listener, device, track version and territory."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadenza.licences import (
    Licence,
    LicenceError,
    check_valid,
    read_licence,
    sign_licence,
    unverified_licence,
)

SECRET = b"cadenza-test-secret-0123456789ab"
KEYS = {"k1": SECRET}
LICENCE = Licence(
    kid="k1", issued=1_767_225_600, expires=1_769_817_600, territory="SE",
    track_id="0123456789abcdef", version="v0123456789ab", listener="alice", device="device-0001",
)  # fmt: skip


def test_a_signed_licence_reads_back():
    text = sign_licence(LICENCE, SECRET)
    assert read_licence(text, KEYS) == LICENCE
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")


def test_any_changed_character_or_other_key_is_refused():
    text = sign_licence(LICENCE, SECRET)
    for n in range(0, len(text), 7):
        changed = text[:n] + ("A" if text[n] != "A" else "B") + text[n + 1 :]
        with pytest.raises(LicenceError):
            read_licence(changed, KEYS)
    with pytest.raises(LicenceError, match="not active"):
        read_licence(text, {"k2": SECRET})
    with pytest.raises(LicenceError, match="signature"):
        read_licence(text, {"k1": b"another-secret-of-enough-bytes"})
    for bad in ("", "x", "a.b", "x" * 2000):
        with pytest.raises(LicenceError, match="form"):
            read_licence(bad, KEYS)


def test_an_expired_licence_says_to_go_online():
    check_valid(LICENCE, LICENCE.expires - 1)
    with pytest.raises(LicenceError, match="go online") as caught:
        check_valid(LICENCE, LICENCE.expires)
    assert caught.value.status == 403


@pytest.mark.parametrize(
    ("field", "value"),
    [("kid", ""), ("issued", -1), ("expires", 1), ("territory", "se"), ("track_id", "x"),
     ("version", "v1"), ("listener", "a b"), ("device", "short"), ("device", "a|b" * 4)],
)  # fmt: skip
def test_licences_refuse_fields_outside_the_format(field: str, value: object):
    with pytest.raises(ValueError):
        Licence(**{**LICENCE.__dict__, field: value})


@given(
    expires=st.integers(LICENCE.issued, 2**40 - 1),
    listener=st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    device=st.from_regex(r"[A-Za-z0-9_-]{8,64}", fullmatch=True),
)
def test_any_licence_round_trips(expires: int, listener: str, device: str):
    licence = Licence(**{**LICENCE.__dict__, "expires": expires, "listener": listener,
                         "device": device})  # fmt: skip
    assert read_licence(sign_licence(licence, SECRET), KEYS) == licence


def test_a_player_reads_its_licence_without_the_keys_but_not_a_malformed_one():
    text = sign_licence(LICENCE, SECRET)
    assert unverified_licence(text) == LICENCE
    forged = sign_licence(LICENCE, b"another-secret-that-is-long-enough")
    assert unverified_licence(forged) == LICENCE  # a player cannot tell: the locator can
    with pytest.raises(LicenceError):
        read_licence(forged, KEYS)
    with pytest.raises(LicenceError, match=r"PAYLOAD\.SIGNATURE"):
        unverified_licence("not a licence")
