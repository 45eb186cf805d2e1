"""What a stored object's request is answered: 200, 206, 304 or 416, with the same headers
whichever path (the lean lane or aiohttp) serves it."""

from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from edge.answer import entry_answer
from edge.freshness import CacheControl, Stored
from edge.memory import make_entry

BODY = bytes(range(256)) * 4
HEADERS = (
    ("ETag", '"e1"'),
    ("Cache-Control", "public, max-age=60"),
    ("Content-Type", "audio/mp4"),
    ("Date", "Thu, 01 Jan 2026 00:00:00 GMT"),
    ("Last-Modified", "Wed, 31 Dec 2025 00:00:00 GMT"),
)
ENTRY = make_entry(200, BODY, HEADERS, Stored(60, 5, 1000, CacheControl(max_age=60)))


def answer(entry, request, now=1000, **kw):
    status, lines, body = entry_answer(entry, CIMultiDict(request), "HIT", now, **kw)
    return status, CIMultiDict(lines), body


def test_a_plain_request_gets_the_whole_object_with_its_age_and_cors():
    status, headers, body = answer(ENTRY, {}, now=1010)
    assert (status, body) == (200, BODY)
    assert headers["Age"] == "15" and headers["X-Cache"] == "HIT"
    assert headers["Accept-Ranges"] == "bytes" and headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Date"] == "Thu, 01 Jan 2026 00:00:00 GMT"  # the origin's, kept
    assert "Content-Length" not in headers


def test_generic_answers_carry_no_cors_and_repeat_every_stored_line():
    lines = (("Link", "<a>; rel=preload"), ("Link", "<b>; rel=preload"), ("ETag", '"x"'))
    entry = make_entry(200, b"x", lines, Stored(60, 0, 1000, CacheControl(max_age=60)))
    _status, headers, _ = answer(entry, {}, cors=False)
    assert headers.getall("Link") == ["<a>; rel=preload", "<b>; rel=preload"]
    assert "Access-Control-Allow-Origin" not in headers


def test_if_modified_since_is_answered_from_last_modified_without_an_etag_match():
    assert answer(ENTRY, {"If-Modified-Since": "Wed, 31 Dec 2025 00:00:00 GMT"})[0] == 304
    assert answer(ENTRY, {"If-Modified-Since": "Tue, 30 Dec 2025 00:00:00 GMT"})[0] == 200
    assert answer(ENTRY, {"If-Modified-Since": "yesterday"})[0] == 200
    # If-None-Match takes precedence (RFC 9110 13.2.2).
    both = {"If-None-Match": '"other"', "If-Modified-Since": "Wed, 31 Dec 2025 00:00:00 GMT"}
    assert answer(ENTRY, both)[0] == 200


def test_if_match_fails_with_412():
    assert answer(ENTRY, {"If-Match": '"nope"'})[0] == 412
    assert answer(ENTRY, {"If-Match": '"e1"'})[0] == 200


def test_other_statuses_are_repeated_as_stored_whatever_the_conditionals():
    entry = make_entry(404, b"gone", (), Stored(10, 0, 1000, CacheControl()))
    assert answer(entry, {"Range": "bytes=0-1", "If-None-Match": "*"})[::2] == (404, b"gone")


def test_conditionals_and_ranges():
    assert answer(ENTRY, {"If-None-Match": '"e1"'})[0] == 304
    assert answer(ENTRY, {"If-None-Match": '"other"'})[0] == 200
    status, headers, body = answer(ENTRY, {"Range": "bytes=-10"})
    assert (status, body, headers["Content-Range"]) == (206, BODY[-10:], "bytes 1014-1023/1024")
    status, headers, _ = answer(ENTRY, {"Range": "bytes=2000-"})
    assert (status, headers["Content-Range"]) == (416, "bytes */1024")
    stale_range = {"Range": "bytes=0-9", "If-Range": '"old"'}
    assert answer(ENTRY, stale_range)[:3:2] == (200, BODY)


@given(st.integers(0, 1023), st.integers(0, 1023))
def test_every_satisfiable_range_is_exactly_its_bytes(first: int, last: int):
    first, last = min(first, last), max(first, last)
    status, headers, body = answer(ENTRY, {"Range": f"bytes={first}-{last}"})
    assert (status, body) == (206, BODY[first : last + 1])
    assert headers["Content-Range"] == f"bytes {first}-{last}/1024"


def test_the_edges_cors_fields_replace_the_origins():
    lines = (("Access-Control-Allow-Origin", "*"), ("access-control-expose-headers", "ETag"))
    entry = make_entry(200, b"x", lines, Stored(60, 0, 1000, CacheControl(max_age=60)))
    _, headers, _ = answer(entry, {})
    assert headers.getall("Access-Control-Allow-Origin") == ["*"]
    assert len(headers.getall("Access-Control-Expose-Headers")) == 1
