"""Every rule picks a valid rung, tops out on a fast link, bottoms out on a slow one."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from player.abr import (
    DEFAULT_MAX_BUFFER_S,
    DEFAULT_RULE,
    MIN_TRANSFER_S,
    RULES,
    BolaRule,
    CadenzaRule,
    DownloadSample,
    Ewma,
    HlsJsRule,
    PlayerState,
    RobustMpcRule,
    ThroughputRule,
    first_rung,
    highest_below,
    make_rule,
)
from player.simulate import ladder_bitrates, playlist, simulate
from player.traces import Period, Trace, step_trace

LADDER = ladder_bitrates()
TOP = len(LADDER) - 1
TRACK = playlist([240.0], 6.0)


def steady(kbps: float, latency_s: float = 0.05) -> Trace:
    return Trace(f"{kbps:g} kbit/s", (Period(60.0, kbps, latency_s),))


def state(buffer_s: float, last: int | None = TOP, playing: bool = True) -> PlayerState:
    return PlayerState(LADDER, buffer_s, 30.0, 6.0, last, playing)


ladders = st.lists(st.integers(8, 2000), min_size=1, max_size=6, unique=True).map(
    lambda rates: tuple(float(r) for r in sorted(rates))
)
samples = st.builds(
    DownloadSample,
    st.floats(1.0, 1e7),
    st.floats(0.001, 120.0),
    st.sampled_from([2.0, 6.0]),
    st.integers(0, 5),
)


@pytest.mark.parametrize("name", list(RULES))
@given(
    ladder=ladders,
    history=st.lists(samples, max_size=8),
    buffer_s=st.floats(0.0, 30.0),
    last=st.none() | st.integers(0, 5),
)
def test_every_rule_always_returns_a_rung_of_the_ladder(name, ladder, history, buffer_s, last):
    rule = make_rule(name)
    for sample in history:
        rule.observe(sample)
    last = None if last is None else min(last, len(ladder) - 1)
    choice = rule.choose(PlayerState(ladder, buffer_s, 30.0, 6.0, last, last is not None))
    assert 0 <= choice < len(ladder)


@pytest.mark.parametrize("name", list(RULES))
def test_on_a_fast_link_every_rule_reaches_the_top_rung_and_stays(name):
    result = simulate(make_rule(name), steady(5000.0), LADDER, TRACK)
    assert result.rungs[-30:] == (TOP,) * 30
    assert result.stall_s == 0.0


@pytest.mark.parametrize("name", list(RULES))
def test_on_a_link_slower_than_every_rung_every_rule_takes_the_lowest(name):
    result = simulate(make_rule(name), steady(40.0), LADDER, TRACK)
    assert result.rungs[-30:] == (0,) * 30


@pytest.mark.parametrize("name", ["throughput", "cadenza"])  # BOLA goes by the buffer alone
def test_a_link_between_rungs_settles_below_it(name):
    result = simulate(make_rule(name), steady(200.0), LADDER, TRACK)
    assert set(result.rungs[-20:]) <= {1, 2}


@pytest.mark.parametrize("max_buffer_s", [30.0, DEFAULT_MAX_BUFFER_S])
def test_cadenza_is_back_on_the_top_rung_within_10_s_of_the_step_recovery(max_buffer_s):
    low_s = max_buffer_s + 30.0  # longer than the buffer lasts
    result = simulate(CadenzaRule(), step_trace(low_s=low_s), LADDER, TRACK, max_buffer_s)
    back_at = 30.0 + low_s
    after = [(t, r) for t, r in zip(result.requests_s, result.rungs, strict=True) if t >= back_at]
    top = [t for t, r in after if r == TOP]
    assert top and top[0] - back_at <= 10.0
    assert 0 in result.rungs  # it did go down while the link was at 30 kbit/s


def test_cadenza_rides_out_a_short_dip_high_up_when_its_buffer_is_deep():
    # 30 s at 30 kbit/s after 30 s at 1 Mbit/s: the deep buffer covers it.
    result = simulate(CadenzaRule(), step_trace(), LADDER, TRACK, DEFAULT_MAX_BUFFER_S)
    assert result.stall_s == 0.0 and min(result.rungs) >= TOP - 1
    assert result.rungs.count(TOP) >= 35


def test_the_default_rule_is_registered_and_each_call_makes_a_fresh_rule():
    assert DEFAULT_RULE == "cadenza"
    assert set(RULES) == {"throughput", "bola", "hlsjs", "robustmpc", "cadenza"}
    first, second = make_rule("throughput"), make_rule("throughput")
    assert first is not second
    first.observe(DownloadSample(1e6, 1.0, 6.0, 0))
    assert isinstance(second, ThroughputRule) and second.estimate_kbps() == 500.0


def test_an_ewma_is_not_pulled_towards_zero_by_its_start():
    mean = Ewma(half_life_s=3.0)
    assert mean.value is None
    mean.add(0.5, 800.0)
    assert mean.value == pytest.approx(800.0)
    mean.add(3.0, 400.0)  # one half-life later the old sample has half the weight
    assert 400.0 < mean.value < 800.0


def test_throughput_trusts_the_lower_of_its_two_averages():
    rule = ThroughputRule()
    rule.observe(DownloadSample(1_250_000, 5.0, 6.0, 0))  # 2000 kbit/s
    assert rule.choose(state(10.0)) == TOP
    rule.observe(DownloadSample(225_000, 15.0, 6.0, 0))  # 120 kbit/s: the fast average drops
    assert rule.estimate_kbps() < 200.0
    assert rule.choose(state(10.0)) == 1


def test_bola_picks_by_buffer_between_its_minimum_and_its_target():
    rule = BolaRule()
    choices = [rule.choose(state(b)) for b in (0.0, 9.9, 10.1, 17.0, 23.9, 24.1, 30.0)]
    assert choices[:2] == [0, 0] and choices[2] >= 1
    assert choices[-2:] == [TOP, TOP]
    assert choices == sorted(choices)


def test_bola_with_two_rungs_switches_halfway():
    rule = BolaRule(min_buffer_s=10.0, target_buffer_s=20.0)
    two = PlayerState((64.0, 128.0), 14.9, 30.0, 6.0, 0, True)
    assert rule.choose(two) == 0
    assert rule.choose(PlayerState((64.0, 128.0), 15.1, 30.0, 6.0, 0, True)) == 1


def test_cadenza_holds_the_top_rung_through_a_dip_when_the_buffer_is_full():
    rule = CadenzaRule()
    for _ in range(3):
        rule.observe(DownloadSample(24_000, 1.0, 6.0, TOP))  # 192 kbit/s, below the top rung
    full = DEFAULT_MAX_BUFFER_S - 6.0
    assert rule.choose(PlayerState(LADDER, full, DEFAULT_MAX_BUFFER_S, 6.0, TOP, True)) == TOP
    assert rule.choose(state(2.0)) < TOP


def test_cadenza_does_not_switch_up_beyond_its_estimate():
    rule = CadenzaRule()
    for _ in range(3):
        rule.observe(DownloadSample(21_250, 1.0, 6.0, 1))  # 170 kbit/s
    assert rule.choose(state(24.0, last=1)) == 1  # 160 is above 0.9 * 170


def test_hlsjs_switches_up_only_within_its_up_factor_and_down_within_its_factor():
    rule = HlsJsRule()
    for _ in range(20):
        rule.observe(DownloadSample(30_000, 1.0, 6.0, 1))  # 240 kbit/s, steady
    assert rule.estimate_kbps() == pytest.approx(240.0)
    # Up from rung 1: 0.7 x 240 = 168 admits 160 but not 256.
    assert rule.choose(state(20.0, last=1)) == 2
    # At the top already: 0.95 x 240 = 228 is still below 256, so it steps down to 160.
    assert rule.choose(state(20.0, last=TOP)) == 2


def test_hlsjs_takes_a_rung_whose_fetch_ends_before_the_buffer_runs_dry():
    rule = HlsJsRule()
    for _ in range(20):
        rule.observe(DownloadSample(50_000, 1.0, 6.0, 0))  # 400 kbit/s
    # 6 s at 256 kbit/s takes 0.1 + 1536 / 380 = 4.1 s: with 3 s buffered it would stall.
    assert rule.choose(state(3.0, last=TOP)) == 2
    assert rule.choose(state(5.0, last=TOP)) == TOP


def test_hlsjs_budgets_its_first_choice_by_the_probe_without_safety_factors():
    rule = HlsJsRule()
    rule.observe(DownloadSample(1_700, 0.05, 0.0, 0))  # the playlist: 272 kbit/s in 50 ms
    first = PlayerState(LADDER, 0.0, 120.0, 6.0, None, False)
    # 4 s less the probe's 50 ms: 96 kbit/s x 6 s at 272 kbit/s (2.2 s) fits, 160 (3.6 s) too,
    # 256 exceeds the estimate itself.
    assert rule.choose(first) == 2


def mpc_score(estimate, state, rungs):
    """A sequence of rungs scored as RobustMpcRule's model scores it."""
    bitrates, mu = state.bitrates_kbps, state.bitrates_kbps[-1]
    room = state.max_buffer_s - state.segment_s
    score, buffer, last = 0.0, state.buffer_s, state.last_rung
    for step, rung in enumerate(rungs):
        level = min(buffer, room) if state.playing or step else buffer
        fetch = bitrates[rung] * state.segment_s / estimate
        stall = max(0.0, fetch - level) if state.playing or step else 0.0
        change = abs(bitrates[rung] - bitrates[last]) if last is not None else 0.0
        score += bitrates[rung] - change - mu * stall
        buffer, last = max(0.0, level - fetch) + state.segment_s, rung
    return score


@settings(max_examples=60, deadline=None)
@given(
    kbps=st.lists(st.floats(20.0, 3000.0), min_size=1, max_size=6),
    buffer_s=st.floats(0.0, 40.0),
    last=st.none() | st.integers(0, TOP),
)
def test_robustmpc_finds_the_best_sequence_as_trying_every_one_does(kbps, buffer_s, last):
    rule = RobustMpcRule()
    for rate in kbps:
        rule.choose(state(10.0))
        rule.observe(DownloadSample(rate * 125.0 * 6.0, 6.0, 6.0, 0))
    now = PlayerState(LADDER, buffer_s, 60.0, 6.0, last, last is not None)
    estimate = rule.estimate_kbps()
    every = list(itertools.product(range(len(LADDER)), repeat=5))
    best = max(mpc_score(estimate, now, rungs) for rungs in every)
    choice = rule.choose(now)
    # The rule's first rung starts a sequence that scores the best.
    from_choice = max(mpc_score(estimate, now, rungs) for rungs in every if rungs[0] == choice)
    assert from_choice == pytest.approx(best, abs=1e-6)


def test_robustmpc_discounts_its_prediction_by_its_recent_errors():
    rule = RobustMpcRule()
    rule.choose(state(10.0))
    rule.observe(DownloadSample(300 * 125.0 * 6.0, 6.0, 6.0, 0))  # predicted 500, saw 300
    assert rule.estimate_kbps() == pytest.approx(300.0 / (1.0 + 200.0 / 300.0))


def test_cadenza_expects_a_slow_spell_to_pass_when_its_buffer_is_deep():
    rule = CadenzaRule()
    for _ in range(7):
        rule.observe(DownloadSample(1_000 * 125.0, 1.0, 6.0, TOP))  # 1000 kbit/s for a while
    for _ in range(3):
        rule.observe(DownloadSample(150 * 125.0, 1.0, 6.0, TOP))  # then 150 kbit/s
    assert rule.estimate_kbps() == pytest.approx(150.0)
    assert rule.longer_term_kbps() > 250.0
    deep = PlayerState(LADDER, 100.0, DEFAULT_MAX_BUFFER_S, 6.0, TOP, True)
    shallow = PlayerState(LADDER, 6.0, DEFAULT_MAX_BUFFER_S, 6.0, TOP, True)
    assert rule.choose(deep) == TOP
    assert rule.choose(shallow) <= 1


PROBE_BYTES = 1_700.0  # the lowest rung's media playlist of a four-minute track


def probe(kbps: float, latency_s: float = 0.1) -> DownloadSample:
    """The probe's download on a link of ``kbps`` after ``latency_s``."""
    return DownloadSample(PROBE_BYTES, latency_s + PROBE_BYTES * 8 / 1000 / kbps, 0.0, 0, latency_s)


def test_a_transfer_rate_leaves_the_latency_out_and_has_a_shortest_time():
    sample = probe(1_000.0)  # 13.6 kbit in 13.6 ms after 100 ms
    assert sample.kbps == pytest.approx(13.6 / 0.1136)
    assert sample.transfer_kbps == pytest.approx(1_000.0)
    instant = DownloadSample(PROBE_BYTES, 0.1, 0.0, 0, 0.1)  # the body came with the head
    assert instant.transfer_kbps == pytest.approx(13.6 / MIN_TRANSFER_S)
    unmeasured = DownloadSample(PROBE_BYTES, 0.2, 0.0, 0)
    assert unmeasured.transfer_kbps == unmeasured.kbps


def test_cadenza_starts_a_fast_link_at_the_top_and_a_slow_one_at_the_bottom_at_once():
    # Before, a probe that took 114 ms read as 120 kbit/s, and every play began at the bottom.
    for kbps, first in [(1_500.0, TOP), (1_000.0, TOP), (600.0, 0), (200.0, 0), (40.0, 0)]:
        rule = CadenzaRule()
        rule.observe(probe(kbps))
        assert rule.choose(state(0.0, None, playing=False)) == first, kbps


def test_once_a_segment_has_arrived_the_probe_no_longer_picks_a_tracks_first_rung():
    rule = CadenzaRule()
    rule.observe(probe(3_000.0))
    rule.observe(DownloadSample(48 * 125.0 * 6.0, 6.0, 6.0, 0, 0.1))  # then 48 kbit/s
    # The next track of a queue starts afresh (no last rung) on the link as it has become.
    assert rule.choose(state(6.0, None, playing=False)) == 0


@given(
    kbps=st.floats(1.0, 20_000.0),
    faster=st.floats(1.0, 4.0),
    latency_s=st.floats(0.0, 2.0),
    ladder=ladders,
)
def test_the_first_rung_is_the_lowest_or_the_one_the_link_carries_and_rises_with_the_link(
    kbps, faster, latency_s, ladder
):
    at = PlayerState(ladder, 0.0, 30.0, 6.0, None, False)
    slow, fast = probe(kbps, latency_s), probe(kbps * faster, latency_s)
    first = first_rung(at, slow)
    # Above the rung the link carries a first segment only takes longer; below it, it costs
    # the switch up as well as bitrate: the best is one end or the other.
    assert first in {0, highest_below(ladder, slow.transfer_kbps)}
    assert first_rung(at, fast) >= first


@pytest.mark.parametrize(("kbps", "first"), [(3_000.0, TOP), (300.0, 0)])
def test_cadenza_played_with_a_probe_begins_where_the_link_allows(kbps, first):
    link = steady(kbps, latency_s=0.1)
    result = simulate(CadenzaRule(), link, LADDER, TRACK, DEFAULT_MAX_BUFFER_S, PROBE_BYTES)
    assert result.rungs[0] == first and result.stall_s == 0.0


@pytest.mark.parametrize("rates", [[1_000.0, 100.0] * 5, [100.0, 1_000.0] * 5])
def test_cadenza_expects_a_bursty_link_to_give_its_mean(rates: list[float]):
    """3G comes in bursts: a link that alternates between 1,000 and 100 kbit/s gives 550 on
    average, which 30 s of buffer can count on at 160 kbit/s. Its harmonic mean (182), with the
    last sample as the short-term estimate, made the rule step down to 48 or 96."""
    rule = CadenzaRule()
    for rate in rates:
        rule.observe(DownloadSample(rate * 125.0 * 6.0, 6.0, 6.0, 2))
    assert rule.longer_term_kbps() == pytest.approx(550.0)
    assert rule.choose(PlayerState(LADDER, 30.0, DEFAULT_MAX_BUFFER_S, 6.0, 2, True)) == 2


def test_cadenzas_short_term_estimate_is_the_harmonic_mean_of_the_last_samples():
    rule = CadenzaRule()
    for rate in (900.0, 600.0, 600.0, 300.0):
        rule.observe(DownloadSample(rate * 125.0 * 6.0, 6.0, 6.0, 1))
    assert rule.estimate_kbps() == pytest.approx(3 / (1 / 600 + 1 / 600 + 1 / 300))
