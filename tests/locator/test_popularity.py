"""Hot lists: decayed play counts per region, in bounded memory, against a brute-force model."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locator.popularity import HotTracks

HOUR = 3600.0


def test_top_orders_by_plays_and_breaks_ties_by_track_id():
    hot = HotTracks()
    for track, plays in (("b", 3), ("a", 1), ("c", 3), ("d", 2)):
        for _ in range(plays):
            hot.record("eu", track, now=0.0)
    assert hot.top("eu", 3, now=0.0) == [("b", 3.0), ("c", 3.0), ("d", 2.0)]
    assert hot.top("eu", 0, now=0.0) == [] and hot.top("us", 5, now=0.0) == []


def test_a_play_is_worth_half_after_one_half_life():
    hot = HotTracks(half_life_s=HOUR)
    hot.record("eu", "t", now=100.0)
    assert math.isclose(hot.score("eu", "t", now=100.0 + HOUR), 0.5)
    assert math.isclose(hot.score("eu", "t", now=100.0 + 3 * HOUR), 0.125)
    assert hot.score("eu", "other", now=0.0) == 0.0 and hot.score("us", "t", now=0.0) == 0.0


def test_an_old_burst_falls_below_a_steady_recent_track():
    hot = HotTracks(half_life_s=HOUR)
    for _ in range(100):
        hot.record("eu", "burst", now=0.0)
    for minute in range(181):
        hot.record("eu", "steady", now=60.0 * minute)
        if minute == 60:
            assert [t for t, _ in hot.top("eu", 2, now=HOUR)] == ["burst", "steady"]
    assert [t for t, _ in hot.top("eu", 2, now=3 * HOUR)] == ["steady", "burst"]


def test_regions_are_independent():
    hot = HotTracks()
    hot.record("eu", "a", now=0.0)
    hot.record("us", "b", now=0.0, plays=5)
    assert hot.top("eu", 5, now=0.0) == [("a", 1.0)]
    assert hot.top("us", 5, now=0.0) == [("b", 5.0)]
    assert hot.regions() == ["eu", "us"] and len(hot) == 2


def test_memory_stays_bounded_and_a_frequent_track_survives_a_long_tail():
    hot = HotTracks(max_tracks=10)
    for i in range(3000):
        hot.record("eu", "hit" if i % 3 == 0 else f"tail{i}", now=float(i))
        assert len(hot) <= 10
    assert hot.top("eu", 1, now=3000.0)[0][0] == "hit"


def test_counts_stay_finite_over_many_half_lives():
    hot = HotTracks(half_life_s=1.0)
    for second in range(2000):
        hot.record("eu", "a", now=float(second))
    assert math.isclose(hot.score("eu", "a", now=1999.0), 2.0, rel_tol=1e-9)  # 1 + 1/2 + ...


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="must be positive"):
        HotTracks(half_life_s=0)
    with pytest.raises(ValueError, match="must be positive"):
        HotTracks(max_tracks=0)
    with pytest.raises(ValueError, match="finite"):
        HotTracks().record("eu", "a", now=math.nan)
    with pytest.raises(ValueError, match="at least 0"):
        HotTracks().record("eu", "a", now=0.0, plays=-1)


PLAYS = st.lists(
    st.tuples(
        st.sampled_from(["eu", "us"]),
        st.sampled_from([f"t{i}" for i in range(30)]),
        st.floats(0, 50 * HOUR),
    ),
    max_size=200,
)


def _truth(plays, region: str, now: float, half_life: float) -> dict[str, float]:
    scores: dict[str, float] = {}
    for r, track, t in plays:
        if r == region:
            scores[track] = scores.get(track, 0.0) + 2 ** ((t - now) / half_life)
    return scores


@settings(max_examples=200, deadline=None)
@given(PLAYS, st.floats(0, 10 * HOUR), st.sampled_from([60.0, HOUR]))
def test_scores_match_a_brute_force_sum_when_nothing_is_evicted(plays, later, half_life):
    """Plays come in any order; the scores are read at or after the last one."""
    now = max((t for _, _, t in plays), default=0.0) + later
    hot = HotTracks(half_life_s=half_life, max_tracks=100)
    for region, track, t in plays:
        hot.record(region, track, t)
    for region in ("eu", "us"):
        truth = _truth(plays, region, now, half_life)
        top = hot.top(region, 100, now)
        assert {t for t, _ in top} == set(truth)
        for track, score in top:
            assert math.isclose(score, truth[track], rel_tol=1e-6, abs_tol=1e-300)


@settings(max_examples=200, deadline=None)
@given(PLAYS, st.integers(1, 8))
def test_space_saving_keeps_every_track_above_its_share(plays, max_tracks):
    plays = sorted(plays, key=lambda p: p[2])
    now = plays[-1][2] if plays else 0.0
    hot = HotTracks(half_life_s=HOUR, max_tracks=max_tracks)
    for region, track, t in plays:
        hot.record(region, track, t)
    for region in ("eu", "us"):
        truth = _truth(plays, region, now, HOUR)
        held = dict(hot.top(region, max_tracks + 1, now))
        assert len(held) <= max_tracks
        total = sum(truth.values())
        for track, score in held.items():  # counts overestimate, never under
            assert score >= truth.get(track, 0.0) * (1 - 1e-9)
        for track, score in truth.items():
            if score > total / max_tracks * (1 + 1e-9):
                assert track in held
