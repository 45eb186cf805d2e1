import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from origin.rights import (
    GLOBAL,
    LICENSED,
    LICENSED_WORLDWIDE,
    NOT_LICENSED,
    TAKEN_DOWN,
    WITHDRAWN,
    WORLDWIDE,
    decide,
    is_licensed,
    normalise_territory,
)

codes = st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=2)
territory_lists = st.none() | st.frozensets(codes, max_size=8)
takedown_sets = st.frozensets(st.none() | codes, max_size=4)
cased = st.text(alphabet=string.ascii_letters, min_size=2, max_size=2)


@pytest.mark.parametrize(("raw", "code"), [("de", "DE"), ("De", "DE"), ("dE", "DE"), ("US", "US")])
def test_normalise_upper_cases_two_letters(raw, code):
    assert normalise_territory(raw) == code


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "D",
        "DEU",
        "D1",
        "12",
        " DE",
        "DE ",
        "D-",
        "ÄB",
        "ǅA",
        "\uff24\uff25",
        "de\n",
        "\x00\x00",
    ],
)
def test_normalise_refuses_anything_but_two_ascii_letters(raw):
    with pytest.raises(ValueError, match="two-letter ISO 3166-1"):
        normalise_territory(raw)


@given(cased)
def test_normalise_accepts_every_pair_of_ascii_letters(raw):
    assert normalise_territory(raw) == raw.upper()


@given(st.text(max_size=4).filter(lambda s: not (len(s) == 2 and s.isascii() and s.isalpha())))
def test_normalise_refuses_every_other_text(raw):
    with pytest.raises(ValueError):
        normalise_territory(raw)


@pytest.mark.parametrize(
    ("territories", "takedowns", "territory", "licensed", "reason"),
    [
        (WORLDWIDE, frozenset(), "DE", True, LICENSED_WORLDWIDE),
        (frozenset({"DE", "AT"}), frozenset(), "DE", True, LICENSED),
        (frozenset({"DE", "AT"}), frozenset(), "FR", False, NOT_LICENSED),
        (frozenset(), frozenset(), "DE", False, NOT_LICENSED),
        (WORLDWIDE, frozenset({"DE"}), "DE", False, TAKEN_DOWN),
        (WORLDWIDE, frozenset({"DE"}), "FR", True, LICENSED_WORLDWIDE),
        (frozenset({"DE"}), frozenset({"DE"}), "DE", False, TAKEN_DOWN),
        (WORLDWIDE, frozenset({GLOBAL}), "DE", False, WITHDRAWN),
        (frozenset({"DE"}), frozenset({GLOBAL, "DE"}), "DE", False, WITHDRAWN),
        (frozenset({"DE"}), frozenset({GLOBAL}), "FR", False, WITHDRAWN),
        (WORLDWIDE, frozenset(), "de", True, LICENSED_WORLDWIDE),
        (frozenset({"DE"}), frozenset({"DE"}), "de", False, TAKEN_DOWN),
    ],
)
def test_decide(territories, takedowns, territory, licensed, reason):
    assert decide(territories, takedowns, territory) == (licensed, reason)
    assert is_licensed(territories, takedowns, territory) is licensed


@pytest.mark.parametrize("territory", ["", "DEU", "1A"])
def test_bad_territory_is_refused_even_when_worldwide(territory):
    with pytest.raises(ValueError):
        is_licensed(WORLDWIDE, frozenset(), territory)


@given(territory_lists, takedown_sets, codes)
def test_matches_the_rule_as_stated(territories, takedowns, territory):
    listed = territories is None or territory in territories
    taken_down = None in takedowns or territory in takedowns
    assert is_licensed(territories, takedowns, territory) is (listed and not taken_down)


@given(territory_lists, takedown_sets, codes)
def test_a_global_takedown_denies_everywhere(territories, takedowns, territory):
    assert decide(territories, takedowns | {GLOBAL}, territory) == (False, WITHDRAWN)


@given(codes)
def test_worldwide_without_takedowns_allows_everywhere(territory):
    assert is_licensed(WORLDWIDE, frozenset(), territory)


@given(territory_lists, takedown_sets, codes, codes)
def test_a_takedown_elsewhere_changes_nothing_here(territories, takedowns, here, elsewhere):
    if here == elsewhere:
        return
    assert is_licensed(territories, takedowns | {elsewhere}, here) is is_licensed(
        territories, takedowns, here
    )


@given(territory_lists, takedown_sets, takedown_sets, codes)
def test_more_takedowns_never_grant(territories, takedowns, more, territory):
    if is_licensed(territories, takedowns | more, territory):
        assert is_licensed(territories, takedowns, territory)


@given(st.frozensets(codes, max_size=8), st.frozensets(codes, max_size=8), takedown_sets, codes)
def test_more_territories_never_revoke(territories, more, takedowns, territory):
    if is_licensed(territories, takedowns, territory):
        assert is_licensed(territories | more, takedowns, territory)
        assert is_licensed(WORLDWIDE, takedowns, territory)


@given(territory_lists, takedown_sets, cased)
def test_the_asked_territory_is_case_insensitive(territories, takedowns, territory):
    assert decide(territories, takedowns, territory) == decide(
        territories, takedowns, territory.upper()
    )


@given(territory_lists, takedown_sets, codes)
def test_the_reason_agrees_with_the_verdict(territories, takedowns, territory):
    licensed, reason = decide(territories, takedowns, territory)
    assert reason in {WITHDRAWN, TAKEN_DOWN, NOT_LICENSED, LICENSED_WORLDWIDE, LICENSED}
    assert licensed is (reason in {LICENSED_WORLDWIDE, LICENSED})
