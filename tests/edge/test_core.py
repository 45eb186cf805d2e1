"""The music request decision that the lean lane and the aiohttp handlers share."""

import time

from hypothesis import given
from hypothesis import strategies as st

from cadenza.events import TAKEDOWN, Event
from cadenza.tokens import TokenClaims, sign
from edge.core import Admitted, Refused, admit, serves_from_cache
from edge.freshness import CacheControl, Stored
from edge.memory import make_entry
from edge.purge import Denials

KEYS = {"k1": b"a-test-secret-of-32-characters!!"}
TRACK = "0123456789abcdef"
SEGMENT = f"/tracks/{TRACK}/v0123456789ab/aac_96/seg_00001.m4s"
NOW = 1_800_000_000.0


def token(acl: str = f"/tracks/{TRACK}/", expires: float = NOW + 60) -> str:
    return sign(TokenClaims(acl, int(expires), "k1", "SE"), KEYS["k1"])


def test_a_signed_request_is_admitted_as_its_object_without_token_or_query():
    admitted = admit(f"/p/{token()}{SEGMENT}?CMCD=bl%3D5", KEYS, False, Denials(), NOW)
    assert isinstance(admitted, Admitted)
    assert admitted.key == SEGMENT.lstrip("/") and admitted.path == SEGMENT
    assert admitted.acl == f"/tracks/{TRACK}/"


def test_refusals():
    assert admit(SEGMENT, KEYS, False, Denials(), NOW) == Refused(
        403, "a signed path token (/p/{token}/...) is required"
    )
    assert isinstance(admit(SEGMENT, KEYS, True, Denials(), NOW), Admitted)
    expired = admit(f"/p/{token(expires=NOW - 1)}{SEGMENT}", KEYS, False, Denials(), NOW)
    assert expired == Refused(403, "token refused: expired")
    other = admit(f"/p/{token('/tracks/fedcba9876543210/')}{SEGMENT}", KEYS, False, Denials(), NOW)
    assert other == Refused(403, "token refused: wrong_acl")
    assert admit("/tracks/../etc/passwd", KEYS, True, Denials(), NOW).status == 400  # type: ignore[union-attr]
    denials = Denials()
    denials.apply([Event(1, TAKEDOWN, TRACK)])
    assert admit(SEGMENT, KEYS, True, denials, NOW) == Refused(
        410, "this track has been withdrawn here"
    )


@given(st.text(max_size=200))
def test_any_path_is_admitted_or_refused_never_an_exception(path: str):
    assert isinstance(admit(path, KEYS, True, Denials(), time.time()), Admitted | Refused)


def test_fresh_objects_are_served_from_the_cache():
    entry = make_entry(200, b"x", (), Stored(10, 0, NOW, CacheControl(max_age=10)))
    assert serves_from_cache(entry, NOW + 9)
    assert not serves_from_cache(entry, NOW + 10)
    assert not serves_from_cache(None, NOW)
