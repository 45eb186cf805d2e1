"""The simulator follows its model to the letter, and the optimum bounds every rule from above."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from encoder.ladder import DEFAULT_LADDER, Ladder, Rung
from player.abr import RULES, DownloadSample, PlayerState, make_rule
from player.simulate import Content, ladder_bitrates, optimum, playlist, qoe, simulate
from player.traces import Period, Trace, load_trace
from tests.player.test_traces import shared_traces


class Fixed:
    """Requests a given sequence of rungs."""

    def __init__(self, rungs):
        self.rungs = list(rungs)

    def choose(self, state: PlayerState) -> int:
        return self.rungs.pop(0)

    def observe(self, sample: DownloadSample) -> None:
        pass


class Watching(Fixed):
    """``Fixed``, keeping every download it is shown."""

    def __init__(self, rungs):
        super().__init__(rungs)
        self.seen: list[DownloadSample] = []

    def observe(self, sample: DownloadSample) -> None:
        self.seen.append(sample)


def trace(*periods):
    return Trace("test", tuple(Period(*p) for p in periods))


def segments(*durations):
    return Content(tuple(durations), (1.0,) * len(durations))


def test_a_steady_rung_on_a_steady_link_plays_without_stalling():
    result = simulate(Fixed([1, 1, 1]), trace((60.0, 960.0, 0.0)), (48, 96), segments(6, 6, 6))
    assert result.requests_s == pytest.approx((0.0, 0.6, 1.2))  # 576 kbit at 960 kbit/s
    assert result.startup_s == pytest.approx(0.6)
    assert (result.stall_s, result.stalls, result.switches) == (0.0, 0, 0)
    assert result.qoe == pytest.approx(3 * 96 - 96 * 0.6)  # the startup counts as a stall
    assert result.mean_kbps == 96


def test_a_segment_late_past_the_buffer_stalls_playback_for_the_difference():
    link = trace((1.0, 960.0, 0.0), (10.0, 0.0, 0.0), (100.0, 960.0, 0.0))
    result = simulate(Fixed([0, 0]), link, (96,), segments(6, 6))
    # The second segment goes out at 0.6 s, gets 384 kbit before the outage, the rest at 11 s.
    assert result.stall_s == pytest.approx(11.2 - 0.6 - 6.0)
    assert result.stalls == 1
    assert result.qoe == pytest.approx(2 * 96 - 96 * (4.6 + 0.6))


def test_the_player_waits_while_the_next_segment_would_overfill_the_buffer():
    result = simulate(
        Fixed([0] * 4), trace((60.0, 960.0, 0.0)), (96,), segments(6, 6, 6, 6), max_buffer_s=12.0
    )
    assert result.requests_s == pytest.approx((0.0, 0.6, 6.6, 12.6))


def test_a_probe_goes_first_and_the_rule_sees_it_as_a_playlist():
    rule = Watching([0, 0])
    result = simulate(rule, trace((60.0, 800.0, 0.0)), (96,), segments(6, 6), probe_bytes=2_000)
    assert rule.seen[0] == DownloadSample(2_000, 0.02, 0.0, 0)  # 16 kbit at 800 kbit/s
    assert result.requests_s == pytest.approx((0.02, 0.74))
    assert result.startup_s == pytest.approx(0.02 + 0.72)


def test_every_download_the_rule_sees_carries_its_time_to_the_first_byte():
    rule = Watching([0, 0])
    simulate(rule, trace((60.0, 800.0, 0.1)), (96,), segments(6, 6), probe_bytes=2_000)
    seen = rule.seen
    assert [s.first_byte_s for s in seen] == pytest.approx([0.1, 0.1, 0.1])
    assert seen[0].seconds == pytest.approx(0.12)  # 16 kbit at 800 kbit/s, after the latency
    assert seen[0].transfer_kbps == pytest.approx(800.0)


def test_extra_bytes_come_with_each_tracks_first_segment():
    content = playlist([12.0, 6.0], 6.0, track_start_bytes=1_000)
    assert content.extra_bytes == (1_000, 0.0, 1_000)
    assert content.nbytes((96.0,), 0, 0) == 96 * 125 * 6 + 1_000
    assert content.nbytes((96.0,), 1, 0) == 96 * 125 * 6
    with pytest.raises(ValueError, match="extra bytes"):
        Content((6.0,), (1.0,), (1.0, 2.0))


def test_a_slow_first_segment_costs_as_a_stall_does():
    # At the onset of an outage a heavy first segment only moves silence into the startup.
    link = trace((0.5, 1000.0, 0.0), (20.0, 0.0, 0.0), (100.0, 1000.0, 0.0))
    light = simulate(Fixed([0, 0, 0]), link, (48, 256), segments(6, 6, 6))
    heavy = simulate(Fixed([1, 0, 0]), link, (48, 256), segments(6, 6, 6))
    assert heavy.stall_s < light.stall_s and heavy.startup_s > light.startup_s
    assert optimum(link, (48, 256), segments(6, 6, 6), resolution_s=0.0) == pytest.approx(
        max(light.qoe, heavy.qoe, brute_force(link, (48, 256), segments(6, 6, 6), 30.0))
    )


def test_the_score_is_bitrate_less_stalls_at_the_top_rate_less_switches():
    assert qoe((48, 96, 160), [0, 2, 1], 0.5) == 48 + 160 + 96 - 160 * 0.5 - 112 - 64


def test_the_mean_bitrate_weighs_segments_by_duration():
    result = simulate(Fixed([1, 0]), trace((60.0, 5000.0, 0.0)), (48, 96), playlist([9.0], 6.0))
    assert result.mean_kbps == pytest.approx((96 * 6 + 48 * 3) / 9)
    assert result.switches == 1
    assert result.qoe == pytest.approx(96 + 48 - 48 - 96 * 576 / 5000)


def test_a_playlist_cuts_each_track_and_varies_sizes_the_same_way_every_time():
    content = playlist([14.0, 12.0], 6.0, variation=0.1, seed=3)
    assert content.durations_s == (6.0, 6.0, 2.0, 6.0, 6.0)
    assert all(0.9 <= f <= 1.1 for f in content.size_factors)
    assert content == playlist([14.0, 12.0], 6.0, variation=0.1, seed=3)
    assert playlist([12.0], 6.0).size_factors == (1.0, 1.0)
    assert content.nbytes((100.0,), 2, 0) == 100 * 125 * 2.0 * content.size_factors[2]


def test_the_default_ladder_gives_its_lossy_bitrates_ascending():
    assert ladder_bitrates() == (48.0, 96.0, 160.0, 256.0)
    with_flac = Ladder((*DEFAULT_LADDER.rungs, Rung("flac", "flac", None)))
    assert ladder_bitrates(with_flac) == (48.0, 96.0, 160.0, 256.0)


def test_bad_inputs_are_refused():
    link = trace((60.0, 960.0, 0.0))
    with pytest.raises(ValueError, match="chose rung 2"):
        simulate(Fixed([2]), link, (48, 96), segments(6))
    with pytest.raises(ValueError, match="ascending"):
        simulate(Fixed([0]), link, (96, 48), segments(6))
    with pytest.raises(ValueError, match="longest segment"):
        optimum(link, (48, 96), segments(6), max_buffer_s=4.0)


def brute_force(link, bitrates, content, max_buffer_s, probe_bytes=0.0):
    return max(
        simulate(Fixed(rungs), link, bitrates, content, max_buffer_s, probe_bytes).qoe
        for rungs in itertools.product(range(len(bitrates)), repeat=len(content.durations_s))
    )


links = st.lists(
    st.tuples(
        st.floats(0.5, 15.0),
        st.sampled_from([0.0, 20.0, 60.0, 150.0, 400.0, 1500.0]),
        st.sampled_from([0.0, 0.05, 0.3]),
    ),
    min_size=1,
    max_size=5,
).filter(lambda ps: any(p[1] > 0 for p in ps))
ladders = st.sampled_from([(48.0, 256.0), (48.0, 96.0, 160.0), (64.0, 128.0, 320.0)])
contents = st.builds(
    lambda count, variation, seed, extra: playlist(
        [4.0 * (count - 1), 4.0], 4.0, variation, seed, track_start_bytes=extra
    ),
    st.integers(3, 5),
    st.sampled_from([0.0, 0.3]),
    st.integers(0, 9),
    st.sampled_from([0.0, 2_500.0]),
)


@settings(max_examples=40, deadline=None)
@given(links, ladders, contents, st.sampled_from([8.0, 12.0, 30.0]), st.sampled_from([0, 1_700]))
def test_the_exact_optimum_equals_brute_force_on_tiny_cases(
    ps, bitrates, content, max_buffer_s, probe
):
    link = trace(*ps)
    best = brute_force(link, bitrates, content, max_buffer_s, probe)
    exact = optimum(link, bitrates, content, max_buffer_s, resolution_s=0.0, probe_bytes=probe)
    assert exact == pytest.approx(best, abs=1e-6)
    assert optimum(link, bitrates, content, max_buffer_s, probe_bytes=probe) >= best - 1e-6


def test_on_a_hand_made_case_the_rounded_optimum_is_close_to_the_exact_one():
    link = trace((3.0, 900.0, 0.1), (5.0, 40.0, 0.1), (4.0, 300.0, 0.2))
    content = playlist([36.0], 6.0, variation=0.2, seed=1)
    exact = brute_force(link, (48.0, 96.0, 160.0), content, 18.0)
    rounded = optimum(link, (48.0, 96.0, 160.0), content, 18.0)
    assert exact <= rounded <= exact + 160 * 0.001 * len(content.durations_s) * 2


@settings(max_examples=60, deadline=None)
@given(
    links,
    st.sampled_from([(48.0, 96.0, 160.0, 256.0), (48.0, 256.0)]),
    st.integers(3, 12),
    st.sampled_from([12.0, 30.0]),
)
def test_no_rule_beats_the_optimum(ps, bitrates, count, max_buffer_s):
    link = trace(*ps)
    content = playlist([6.0 * count], 6.0)
    best = optimum(link, bitrates, content, max_buffer_s)
    for name in RULES:
        assert simulate(make_rule(name), link, bitrates, content, max_buffer_s).qoe <= best + 1e-6


def test_no_rule_beats_the_optimum_on_real_3g_traces():
    folder = shared_traces("3g")
    content = playlist([240.0], 6.0)
    bitrates = ladder_bitrates()
    for name in ("report.2010-09-14_2303CEST", "report.2011-01-29_1800CET"):
        link = load_trace(folder / f"{name}.json")
        scores = {r: simulate(make_rule(r), link, bitrates, content).qoe for r in RULES}
        best = optimum(link, bitrates, content, reached=max(scores.values()))
        assert all(score <= best for score in scores.values())
        assert best == optimum(link, bitrates, content)  # a known score only prunes
