"""Every rule picks a valid rung, tops out on a fast link, bottoms out on a slow one."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from player.abr import (
    DEFAULT_RULE,
    RULES,
    BolaRule,
    CadenzaRule,
    DownloadSample,
    Ewma,
    PlayerState,
    ThroughputRule,
    make_rule,
)
from player.simulate import ladder_bitrates, playlist, simulate
from player.traces import Period, Trace, step_trace

LADDER = ladder_bitrates()
TOP = len(LADDER) - 1
TRACK = playlist([240.0], 6.0)


def steady(kbps: float) -> Trace:
    return Trace(f"{kbps:g} kbit/s", (Period(60.0, kbps, 0.05),))


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


def test_cadenza_is_back_on_the_top_rung_within_10_s_of_the_step_recovery():
    result = simulate(CadenzaRule(), step_trace(), LADDER, TRACK)
    back = [t for t, r in zip(result.requests_s, result.rungs, strict=True) if t >= 60 and r == TOP]
    assert back and back[0] - 60.0 <= 10.0
    assert 0 in result.rungs  # it did go down while the link was at 30 kbit/s


def test_the_default_rule_is_registered_and_each_call_makes_a_fresh_rule():
    assert DEFAULT_RULE == "cadenza" and set(RULES) == {"throughput", "bola", "cadenza"}
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
    assert rule.choose(state(24.0)) == TOP
    assert rule.choose(state(2.0)) < TOP


def test_cadenza_does_not_switch_up_beyond_its_estimate():
    rule = CadenzaRule()
    for _ in range(3):
        rule.observe(DownloadSample(22_500, 1.0, 6.0, 1))  # 180 kbit/s
    assert rule.choose(state(24.0, last=1)) == 1  # 160 is above 0.8 * 180
