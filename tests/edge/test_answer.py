"""What a stored object's request is answered: 200, 206, 304 or 416, with the same headers
whichever path (the lean lane or aiohttp) serves it."""

from hypothesis import given
from hypothesis import strategies as st

from edge.answer import entry_answer, public
from edge.freshness import CacheControl, Stored
from edge.memory import Entry

BODY = bytes(range(256)) * 4
HEADERS = {
    "ETag": '"e1"',
    "Cache-Control": "public, max-age=60",
    "Content-Type": "audio/mp4",
    "Date": "Thu, 01 Jan 2026 00:00:00 GMT",
    "Content-Length": "1024",
    ":status": "200",
}
ENTRY = Entry(BODY, public(HEADERS), Stored(60, 5, 1000, CacheControl(max_age=60)), '"e1"')


def test_per_response_headers_and_markers_are_not_repeated():
    assert public(HEADERS) == {
        "ETag": '"e1"', "Cache-Control": "public, max-age=60", "Content-Type": "audio/mp4"
    }  # fmt: skip


def test_a_plain_request_gets_the_whole_object_with_its_age_and_cors():
    status, headers, body = entry_answer(ENTRY, {}, "HIT", now=1010)
    assert (status, body) == (200, BODY)
    assert headers["Age"] == "15" and headers["X-Cache"] == "HIT"
    assert headers["Accept-Ranges"] == "bytes" and headers["Access-Control-Allow-Origin"] == "*"
    assert "Date" not in headers and "Content-Length" not in headers


def test_conditionals_and_ranges():
    assert entry_answer(ENTRY, {"If-None-Match": '"e1"'}, "HIT", 1000)[0] == 304
    assert entry_answer(ENTRY, {"If-None-Match": '"other"'}, "HIT", 1000)[0] == 200
    status, headers, body = entry_answer(ENTRY, {"Range": "bytes=-10"}, "HIT", 1000)
    assert (status, body, headers["Content-Range"]) == (206, BODY[-10:], "bytes 1014-1023/1024")
    status, headers, _ = entry_answer(ENTRY, {"Range": "bytes=2000-"}, "HIT", 1000)
    assert (status, headers["Content-Range"]) == (416, "bytes */1024")
    stale_range = {"Range": "bytes=0-9", "If-Range": '"old"'}
    assert entry_answer(ENTRY, stale_range, "HIT", 1000)[:3:2] == (200, BODY)


@given(st.integers(0, 1023), st.integers(0, 1023))
def test_every_satisfiable_range_is_exactly_its_bytes(first: int, last: int):
    first, last = min(first, last), max(first, last)
    status, headers, body = entry_answer(ENTRY, {"Range": f"bytes={first}-{last}"}, "HIT", 1000)
    assert (status, body) == (206, BODY[first : last + 1])
    assert headers["Content-Range"] == f"bytes {first}-{last}/1024"
