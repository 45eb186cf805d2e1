"""Shared HTTP rules: ranges, validators, gzip negotiation, content types, safe paths."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadenza.http import (
    ByteRange,
    RangeNotSatisfiable,
    accepts_gzip,
    authority,
    content_type,
    etag_for,
    host_port,
    if_range_allows,
    none_match,
    object_key,
    parse_range,
)

SHA = "ab" * 32


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-99", 1000, ByteRange(0, 100)),
        ("bytes=100-", 1000, ByteRange(100, 1000)),
        ("bytes=-100", 1000, ByteRange(900, 1000)),
        ("bytes=-5000", 1000, ByteRange(0, 1000)),
        ("bytes=990-5000", 1000, ByteRange(990, 1000)),
        ("bytes=0-0", 1, ByteRange(0, 1)),
        ("BYTES = 5-9", 10, ByteRange(5, 10)),  # units are case-insensitive; spaces tolerated
        ("bytes=0-9,20-29", 100, None),  # several disjoint ranges: the whole object
        ("items=0-9", 100, None),  # unknown unit: ignored
        ("bytes=9-3", 100, None),  # invalid: ignored
        ("bytes=abc", 100, None),
        ("bytes=-", 100, None),
        ("", 100, None),
        (None, 100, None),
    ],
)
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    "header",
    [
        "bytes=1000-",  # starts at the end
        "bytes=5000-6000",
        "bytes=-0",
        "bytes=0-10,5-20",  # overlapping
        "bytes=0-1,2-3,4-5,6-7,8-9",  # more than four
    ],
)
def test_unsatisfiable_or_abusive_ranges(header):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


HUGE = "9" * 5000  # past Python's default limit for int(str): 4,300 digits


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"bytes=0-{HUGE}", ByteRange(0, 1000)),  # the rest of the object
        (f"bytes=-{HUGE}", ByteRange(0, 1000)),  # a suffix longer than the object: all of it
        (f"bytes=0-{'0' * 5000}7", ByteRange(0, 8)),  # leading zeros do not count
        (f"bytes=10-{2**64}", ByteRange(10, 1000)),
        (f"bytes={HUGE}-1", None),  # last before first: ignored
        ("bytes=٣-٩", None),  # digits of other scripts are not byte positions
    ],
)
def test_numbers_of_any_length_are_bounded(header, expected):
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize(
    "header", [f"bytes={HUGE}-", f"bytes={2**64}-{2**65}", f"bytes={HUGE}-{HUGE}"]
)
def test_a_start_past_64_bits_is_416(header):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


def _reference(first: str, last: str, size: int) -> tuple[int, int] | str | None:
    """RFC 9110's single range with unbounded integers, as the outcome parse_range must match."""
    if not first and not last:
        return None
    if first and last and int(last) < int(first):
        return None
    if not first:
        suffix = int(last)
        return (max(0, size - suffix), size) if suffix > 0 and size > 0 else "416"
    if int(first) >= size:
        return "416"
    return (int(first), size if not last else min(int(last) + 1, size))


_DIGITS = st.text("0123456789", max_size=40) | st.sampled_from(["", "0", HUGE, "0" * 30 + "5"])


@given(_DIGITS, _DIGITS, st.integers(0, (1 << 63) - 1))  # no object reaches 2**63 bytes
def test_parse_range_matches_unbounded_integers(first, last, size):
    if max(len(first.lstrip("0")), len(last.lstrip("0"))) > 4000:
        first, last = first[:4000], last[:4000]  # the reference needs int(); see the test above
    got: tuple[int, int] | str | None
    try:
        found = parse_range(f"bytes={first}-{last}", size)
        got = None if found is None else (found.start, found.end)
    except RangeNotSatisfiable:
        got = "416"
    assert got == _reference(first, last, size)


def test_an_empty_object_has_no_satisfiable_range():
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-", 0)


@given(st.integers(1, 10_000), st.integers(0, 20_000), st.integers(0, 20_000))
def test_a_served_range_lies_within_the_object(size, a, b):
    first, last = min(a, b), max(a, b)
    try:
        got = parse_range(f"bytes={first}-{last}", size)
    except RangeNotSatisfiable:
        assert first >= size
        return
    assert got is not None
    assert 0 <= got.start < got.end <= size
    assert got.start == first and got.end == min(last + 1, size)
    assert got.content_range(size) == f"bytes {got.start}-{got.end - 1}/{size}"


def test_etags_are_strong_and_differ_by_encoding():
    assert etag_for(SHA) == f'"{SHA[:32]}"'
    assert etag_for(SHA, "-gz") != etag_for(SHA)


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ("*", True),
        (f'"{SHA[:32]}"', True),
        (f'W/"{SHA[:32]}"', True),  # If-None-Match uses the weak comparison
        (f'"other", "{SHA[:32]}"', True),
        ('"other"', False),
    ],
)
def test_none_match(header, matches):
    assert none_match(header, etag_for(SHA)) is matches


def test_if_range_needs_the_same_strong_etag():
    etag = etag_for(SHA)
    assert if_range_allows(None, etag)
    assert if_range_allows(etag, etag)
    assert not if_range_allows('"stale"', etag)
    assert not if_range_allows("Wed, 21 Oct 2015 07:28:00 GMT", etag)


@pytest.mark.parametrize(
    ("header", "gzip"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8", True),
        ("gzip;q=0", False),
        ("*", True),
        ("identity", False),
        ("", False),
        (None, False),
    ],
)
def test_accepts_gzip(header, gzip):
    assert accepts_gzip(header) is gzip


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("master.m3u8", "application/vnd.apple.mpegurl"),
        ("init.mp4", "audio/mp4"),
        ("seg_00001.m4s", "audio/mp4"),
        ("cover.jpg", "image/jpeg"),
        ("metadata.json", "application/json"),
        ("other.bin", "application/octet-stream"),
    ],
)
def test_content_types(name, kind):
    assert content_type(name) == kind


def test_safe_paths_become_keys():
    assert object_key("/tracks/abc/master.m3u8") == "tracks/abc/master.m3u8"
    assert object_key("/tracks/abc/v1/aac_256/seg_00001.m4s?x=1") == (
        "tracks/abc/v1/aac_256/seg_00001.m4s"
    )


@pytest.mark.parametrize(
    "raw",
    [
        "/tracks/../etc/passwd",
        "/tracks/abc/../../etc/passwd",
        "/tracks/%2e%2e/etc/passwd",
        "/tracks/abc%2f..%2f..%2fetc",
        "/tracks/abc%5c..%5cetc",
        "/tracks/abc\\..\\etc",
        "/tracks//etc/passwd",
        "/tracks/abc/./x",
        "/tracks/abc/x%00.m4s",
        "/tracks/abc/x\x00.m4s",
        "/etc/passwd",
        "/tracks/",
        "/tracks/abc/" + "a" * 1100,
        "/tracks/.hidden",
    ],
)
def test_unsafe_paths_are_refused(raw):
    assert object_key(raw) is None


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://127.0.0.1:8081", "127.0.0.1:8081"),
        ("https://edge.example", "edge.example:443"),
        ("http://edge.example", "edge.example:80"),
        ("http://[::1]:9000", "[::1]:9000"),
    ],
)
def test_the_address_a_url_connects_to(url, address):
    assert host_port(url) == address


def test_a_port_out_of_range_is_a_value_error():
    with pytest.raises(ValueError):
        authority("http://127.0.0.1:99999")
