"""Upstream lists, health, the rendezvous choice of a parent, and Via chains (pure)."""

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadenza.errors import ConfigError
from cadenza.upstreams import (
    MAX_VIA_ENTRIES,
    Health,
    parse_urls,
    passed_through,
    rendezvous,
    split_urls,
    via_after,
    via_names,
)

KEYS = st.from_regex(r"tracks/[a-z0-9]{16}/v[a-z0-9]{4}/aac_96/seg_[0-9]{5}\.m4s", fullmatch=True)
PARENTS = st.lists(
    st.integers(1024, 65535).map(lambda p: f"http://127.0.0.1:{p}"),
    min_size=1,
    max_size=8,
    unique=True,
)


def test_url_lists_from_text_or_toml_arrays():
    assert parse_urls("http://a:1/, https://b", "origin") == "http://a:1,https://b"
    assert parse_urls(["http://a:1", "http://b:2/"], "origin") == "http://a:1,http://b:2"
    assert split_urls(parse_urls("http://a:1,http://b:2", "x")) == ("http://a:1", "http://b:2")
    assert parse_urls("", "parents", allow_empty=True) == "" and split_urls("") == ()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "name at least one URL"),
        ("ftp://a", "is not an http"),
        ("http://a:99999", "is not an http"),
        ("http://a:1,,http://b:2", "'' is not an http"),
        ("http://a:1,http://a:1/", "named twice"),
        (5, "must be a URL, or several"),
        (["http://a:1", 5], "must be a URL, or several"),
        (",".join(f"http://h:{p}" for p in range(1, 40)), "at most 32 URLs"),
    ],
)
def test_bad_url_lists_name_the_setting_and_the_url(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_urls(raw, "origin")


@given(KEYS, PARENTS)
def test_the_choice_is_stable_and_a_permutation(key, parents):
    ranked = rendezvous(key, parents)
    assert sorted(ranked) == sorted(parents)
    assert rendezvous(key, list(reversed(parents))) == ranked  # whatever order they are given


@given(st.lists(KEYS, min_size=1, max_size=50, unique=True), PARENTS, st.data())
def test_removing_a_parent_moves_only_its_own_keys(keys, parents, data):
    gone = data.draw(st.sampled_from(parents))
    rest = [p for p in parents if p != gone]
    for key in keys:
        before = rendezvous(key, parents)
        if rest:
            after = rendezvous(key, rest)
            assert after == [p for p in before if p != gone]  # the order of the rest stands
            if before[0] != gone:
                assert after[0] == before[0]


@given(st.integers(2, 6))
def test_keys_spread_over_the_parents(n):
    parents = [f"http://parent-{i}:8081" for i in range(n)]
    keys = [f"tracks/{t:016x}/v0001/aac_96/seg_{s:05d}.m4s" for t in range(60) for s in range(10)]
    firsts = Counter(rendezvous(k, parents)[0] for k in keys)
    assert set(firsts) == set(parents)
    share = len(keys) / n
    assert all(0.7 * share <= c <= 1.3 * share for c in firsts.values())


def test_health_moves_failed_upstreams_last_until_their_time_is_up():
    health = Health(down_seconds=10)
    urls = ["a", "b", "c"]
    assert health.ordered(urls, 0) == urls
    assert health.failed("a", 100) is True
    assert health.failed("a", 101) is False  # already down: not a change to log again
    assert health.ordered(urls, 105) == ["b", "c", "a"]
    assert health.ordered(urls, 111) == urls
    health.failed("b", 200)
    assert health.succeeded("b") is True and health.succeeded("b") is False
    assert health.ordered(urls, 201) == urls


@given(st.lists(st.sampled_from("abcd"), max_size=12), st.floats(0, 1000))
def test_ordered_is_a_permutation_with_the_up_ones_first(failures, now):
    health = Health(down_seconds=5)
    for n, url in enumerate(failures):
        health.failed(url, now - n)
    ordered = health.ordered(list("abcd"), now)
    assert sorted(ordered) == list("abcd")
    ups = [health.is_up(u, now) for u in ordered]
    assert ups == sorted(ups, reverse=True)


def test_via_chains():
    assert via_names(None) == [] and via_names("") == []
    assert via_names("1.0 fred, 1.1 p.example.net (Apache, x)") == ["fred", "p.example.net"]
    assert via_after(None, "eu-1") == "1.1 eu-1"
    assert via_after("1.1 eu-1", "parent-1") == "1.1 eu-1, 1.1 parent-1"
    assert passed_through("1.1 eu-1, 1.1 parent-1", "eu-1")
    assert not passed_through("1.1 eu-1, 1.1 parent-1", "eu-2")
    assert not passed_through("1.1 eu-10", "eu-1")  # names, not substrings
    long = ", ".join(f"1.1 hop-{i}" for i in range(MAX_VIA_ENTRIES))
    assert passed_through(long, "elsewhere")  # a loop through names this edge does not know


@given(st.lists(st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True), max_size=10))
def test_every_hop_added_is_read_back(names):
    value: str | None = None
    for name in names:
        value = via_after(value, name)
    assert via_names(value) == names
