"""llhttp's verdicts as the lean lane reads them: which requests are the lane's, where each ends."""

import pytest
from aiohttp.http import HttpProcessingError
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.wire import Head, Limits, head_end, lane_head, request_parser

AIOHTTP = Limits()


def _parse(raw: bytes, limits: Limits = AIOHTTP) -> list[Head | None]:
    messages, _, _ = request_parser(limits).feed_data(raw)
    return [lane_head(message) for message, _ in messages]


def test_a_bodiless_get_or_head_of_http_1_1_is_the_lanes():
    [head] = _parse(b"GET /tracks/a?CMCD=x HTTP/1.1\r\nHost: e\r\nRange: bytes=0-1\r\n\r\n")
    assert head is not None
    assert (head.method, head.target, head.keep_alive) == ("GET", "/tracks/a?CMCD=x", True)
    assert head.headers["range"] == "bytes=0-1"
    [closing] = _parse(b"HEAD / HTTP/1.1\r\nhost: e\r\nConnection: close\r\n\r\n")
    assert closing is not None and (closing.method, closing.keep_alive) == ("HEAD", False)


@pytest.mark.parametrize(
    "raw",
    [
        b"POST /tracks/a HTTP/1.1\r\nHost: e\r\n\r\n",
        b"GET /tracks/a HTTP/1.1\r\nHost: e\r\nContent-Length: 0\r\n\r\n",
        b"GET /tracks/a HTTP/1.1\r\nHost: e\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET /tracks/a HTTP/1.1\r\nHost: e\r\nExpect: 100-continue\r\n\r\n",
        b"GET /tracks/a HTTP/1.1\r\nHost: e\r\nUpgrade: h2c\r\n\r\n",
        b"GET /tracks/a HTTP/1.0\r\n\r\n",
        b"GET /tracks/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"GET http://e/tracks/a HTTP/1.1\r\nHost: e\r\n\r\n",
        b"GET /tracks/a#b HTTP/1.1\r\nHost: e\r\n\r\n",
    ],
)
def test_bodies_other_methods_and_versions_and_odd_targets_are_aiohttps(raw: bytes):
    assert _parse(raw) == [None]


@pytest.mark.parametrize(
    "raw",
    [
        b"GET / HTTP/1.1\nHost: e\n\n",
        b"GET / HTTP/1.1\r\nHost: e\r\nX: a\nGET /x HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: e\r\nX: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: e\r\nX: a\x00b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: e\r\nX: a\x7fb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: e\r\nX(y): a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: e\r\nX : a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: e\r\nX: a\r\n folded\r\n\r\n",
        b"GET /a\x01b HTTP/1.1\r\nHost: e\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: e\r\nHost: f\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: e\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: e\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: e\r\n\r\n",
    ],
)
def test_llhttp_refuses_what_aiohttp_refuses(raw: bytes):
    with pytest.raises(HttpProcessingError):
        _parse(raw)


def test_the_limits_are_the_ones_given():
    raw = b"GET / HTTP/1.1\r\nHost: e\r\nX: " + b"a" * 100 + b"\r\n\r\n"
    assert _parse(raw, Limits(max_field_size=200)) != []
    with pytest.raises(HttpProcessingError):
        _parse(raw, Limits(max_field_size=50))
    with pytest.raises(HttpProcessingError):
        _parse(raw, Limits(max_headers=1))


def test_a_head_ends_at_its_first_blank_line_past_the_empty_lines_before_it():
    one = b"GET / HTTP/1.1\r\nHost: e\r\n\r\n"
    assert head_end(one) == len(one)
    assert head_end(b"\r\n\n\r" + one) == 4 + len(one)
    assert head_end(one + one, len(one)) == 2 * len(one)
    assert head_end(one[:-1]) == -1
    assert head_end(b"\r\n") == -1


_TCHAR = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-!#$%&'*+.^_`|~"
_TOKEN = st.text(_TCHAR, min_size=1, max_size=12)
_VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
_PATH = st.text("abcdefghijklmnopqrstuvwxyz0123456789/._-~%=&?", max_size=40)
_SEPARATOR = st.sampled_from([b"", b"\r\n", b"\n", b"\r\n\r\n", b"\r\r\n"])


@st.composite
def _requests(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    """Valid bodiless heads, pipelined with the empty lines llhttp skips; where each ends."""
    raw = b""
    ends = []
    for _ in range(draw(st.integers(1, 5))):
        method = draw(st.sampled_from(["GET", "HEAD"]))
        fields = draw(st.lists(st.tuples(_TOKEN, _VALUE), max_size=4))
        lines = [f"{method} /{draw(_PATH)} HTTP/1.1", "Host: e"]
        lines += [f"X-{name}: {value}" for name, value in fields]
        raw += draw(_SEPARATOR) + ("\r\n".join(lines) + "\r\n\r\n").encode()
        ends.append(len(raw))
    return raw, ends


@given(_requests())
@settings(max_examples=300, deadline=None)
def test_the_ends_found_are_where_llhttp_found_the_requests(case: tuple[bytes, list[int]]):
    raw, ends = case
    heads = _parse(raw)
    assert len(heads) == len(ends) and all(head is not None for head in heads)
    start, found = 0, []
    for _ in ends:
        start = head_end(raw, start)
        found.append(start)
    assert found == ends
