"""RFC 9111 rules for the edge: directives, storability, freshness lifetime, age, stale-if-error."""

import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.freshness import (
    CacheControl,
    Stored,
    current_age,
    freshness_lifetime,
    parse_cache_control,
    parse_http_date,
    request_directives,
    storable,
)

IMMUTABLE = "public, max-age=31536000, immutable"


def http_date(t: float) -> str:
    return email.utils.formatdate(t, usegmt=True)


def test_parse_the_origins_headers():
    assert parse_cache_control(IMMUTABLE) == CacheControl(
        public=True, immutable=True, max_age=31536000
    )
    assert parse_cache_control("public, max-age=10") == CacheControl(public=True, max_age=10)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("No-Store", CacheControl(no_store=True)),
        (
            'private="Set-Cookie", max-age=5',
            CacheControl(max_age=5, private_fields=("set-cookie",)),
        ),
        ("private, max-age=5", CacheControl(private=True, max_age=5)),
        ('no-cache="X-A, x-b"', CacheControl(no_cache_fields=("x-a", "x-b"))),
        ("max-age=99999999999999999999", CacheControl(max_age=2**31)),
        ("max-stale", CacheControl(max_stale=2**31)),
        (
            "max-stale=5, min-fresh=2, only-if-cached",
            CacheControl(max_stale=5, min_fresh=2, only_if_cached=True),
        ),
        ("max-age=5, max-age=50", CacheControl(max_age=5)),  # first wins
        ("max-age=abc", CacheControl(max_age=0)),  # invalid: stale
        ('max-age="7"', CacheControl(max_age=7)),
        ("s-maxage=3, max-age=9", CacheControl(s_maxage=3, max_age=9)),
        ("max-age=60, stale-if-error=300", CacheControl(max_age=60, stale_if_error=300)),
        ("proxy-revalidate", CacheControl(must_revalidate=True)),
        ('foo="a,b", no-cache', CacheControl(no_cache=True)),
        ("", CacheControl()),
        (None, CacheControl()),
        (" , ,", CacheControl()),
    ],
)
def test_parse_cache_control(header, expected):
    assert parse_cache_control(header) == expected


@pytest.mark.parametrize(
    ("status", "method", "header", "authorized", "ok"),
    [
        (200, "GET", IMMUTABLE, False, True),
        (200, "HEAD", "max-age=10", False, False),  # only GET answers are stored
        (200, "GET", "no-store", False, False),
        (200, "GET", "private, max-age=60", False, False),
        (200, "POST", "max-age=60", False, False),
        (200, "GET", "max-age=60", True, False),  # authorized responses need public or s-maxage
        (200, "GET", "public, max-age=60", True, True),
        (404, "GET", "", False, True),
        (502, "GET", "max-age=60", False, True),  # explicit freshness: any final status
        (502, "GET", "", False, False),
        (206, "GET", "", False, False),  # the edge stores whole objects only
        (304, "GET", "max-age=60", False, False),
        (418, "GET", "", False, False),
        (418, "GET", "max-age=60", False, True),
    ],
)
def test_storable(status, method, header, authorized, ok):
    assert storable(status, method, parse_cache_control(header), authorized=authorized) is ok


def test_freshness_lifetime_precedence():
    now = 1_700_000_000.0
    headers = {"date": http_date(now), "expires": http_date(now + 120)}
    assert freshness_lifetime(parse_cache_control("s-maxage=5, max-age=50"), headers) == 5
    assert freshness_lifetime(parse_cache_control("max-age=50"), headers) == 50
    assert freshness_lifetime(parse_cache_control(""), headers) == 120
    assert freshness_lifetime(parse_cache_control(""), {"expires": "0"}) == 0
    assert freshness_lifetime(parse_cache_control(""), {}) == 0


def test_invalid_expires_is_in_the_past_not_the_future():
    now = 1_700_000_000.0
    for bad in (
        "0",
        "-1",
        "tomorrow",
        "Thu, 01 Dec 2094 16:00:00 XYZ",
        "Mon, 32 Dec 2094 10:00:00 GMT",
    ):
        headers = {"date": http_date(now), "expires": bad}
        assert freshness_lifetime(CacheControl(), headers, 200, now) == 0


def test_heuristic_freshness_is_a_tenth_of_the_time_since_last_modified_capped_at_a_day():
    now = 1_700_000_000.0
    headers = {"date": http_date(now), "last-modified": http_date(now - 1000)}
    assert freshness_lifetime(CacheControl(), headers, 200, now) == 100
    assert freshness_lifetime(CacheControl(), headers, 404, now) == 100
    assert freshness_lifetime(CacheControl(), headers, 418, now) == 0  # not heuristically cacheable
    old = {"date": http_date(now), "last-modified": http_date(now - 10**8)}
    assert freshness_lifetime(CacheControl(), old, 200, now) == 86400


@pytest.mark.parametrize(
    "text",
    ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"],
)
def test_the_three_http_date_forms(text):
    assert parse_http_date(text) == 784111777


@pytest.mark.parametrize(
    "text",
    ["", "0", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT",
     "Foo, 06 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT", "1994-11-06T08:49:37Z",
     "Sun, 06 Nov 1994 08:49:37 GMT trailing"],
)  # fmt: skip
def test_anything_else_is_not_a_date(text):
    assert parse_http_date(text) is None


@given(st.integers(0, 2**33))
def test_imf_fixdate_round_trips(seconds):
    assert parse_http_date(http_date(seconds)) == seconds


def test_request_directives_and_pragma():
    assert request_directives(None, "no-cache") == CacheControl(no_cache=True)
    assert request_directives("max-age=5", "no-cache") == CacheControl(max_age=5)
    assert request_directives(None, None) == CacheControl()


def test_what_a_request_accepts():
    stored = Stored(lifetime=10, age_at_response=0, response_time=0.0, cc=CacheControl(max_age=10))
    assert stored.satisfies(CacheControl(), 5)
    assert not stored.satisfies(CacheControl(no_cache=True), 5)
    assert not stored.satisfies(CacheControl(max_age=4), 5)
    assert not stored.satisfies(CacheControl(min_fresh=6), 5)
    assert not stored.satisfies(CacheControl(), 11)
    assert stored.satisfies(CacheControl(max_stale=2), 11)
    assert stored.satisfies(CacheControl(max_stale=2**31), 1000)
    strict = Stored(10, 0, 0.0, CacheControl(max_age=10, must_revalidate=True))
    assert not strict.satisfies(CacheControl(max_stale=2**31), 11)


def test_current_age_counts_age_header_transit_and_residence():
    now = 1_700_000_000.0
    headers = {"date": http_date(now - 10), "age": "30"}
    # request sent at now-2, answer at now-1, asked again at now+5
    assert current_age(headers, now - 2, now - 1, now + 5) == pytest.approx(30 + 1 + 6)
    # the apparent age (response time - Date) wins when larger
    assert current_age({"date": http_date(now - 100)}, now, now, now) == pytest.approx(100)
    assert current_age({"age": "bogus"}, now, now, now + 3) == pytest.approx(3)


def test_stored_response_fresh_then_stale_then_stale_if_error():
    cc = parse_cache_control("max-age=10, stale-if-error=60")
    stored = Stored(lifetime=10, age_at_response=2, response_time=100.0, cc=cc)
    assert stored.fresh(107.9)
    assert not stored.fresh(108.0)
    assert stored.usable_on_error(108.0 + 59, grace=0)
    assert not stored.usable_on_error(108.0 + 60, grace=0)
    plain = Stored(10, 0, 100.0, parse_cache_control("max-age=10"))
    assert plain.usable_on_error(115, grace=10) and not plain.usable_on_error(120, grace=10)
    strict = Stored(10, 0, 100.0, parse_cache_control("max-age=10, must-revalidate"))
    assert not strict.usable_on_error(111, grace=3600)


@given(st.integers(0, 10**9), st.floats(0, 10**6), st.floats(0, 10**6))
def test_a_response_is_fresh_exactly_while_younger_than_its_lifetime(max_age, age, wait):
    stored = Stored(float(max_age), age, 0.0, CacheControl(max_age=max_age))
    assert stored.fresh(wait) is (age + wait < max_age)
    assert stored.age(wait) >= stored.age(0)


@given(
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.booleans(),
)
def test_a_response_is_fresh_until_fresh_until(lifetime, age, received, now, no_cache):
    stored = Stored(float(lifetime), float(age), float(received), CacheControl(no_cache=no_cache))
    assert stored.fresh(float(now)) is (float(now) < stored.fresh_until())
