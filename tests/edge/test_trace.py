"""The synthetic music trace, Belady's OPT (by brute force on tiny traces) and the simulator."""

import hashlib
import re
from collections import Counter
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.policy import make_policy
from edge.trace import (
    RUNGS,
    TraceModel,
    belady,
    belady_misses,
    catalog_bytes,
    footprint,
    generate,
    generate_marked,
    simulate,
    zipf_weights,
)

TRACE_DIGESTS = {  # of TraceModel(tracks=50, requests=5000, zipf=..., seed=3)
    0.7: "543d69803dacebf095eef878397fae306f65e3f2299bb50ac95e1d9a1288bf6f",
    0.9: "25401f23e1b40280f87164f2750e2a3690ad5ceac8295eaa80e24c85a79746bf",
}
KEY = re.compile(r"tracks/([a-z0-9]{16})/v[0-9a-f]{12}/(aac_\d+)/seg_(\d{5})\.m4s")
BITRATES = dict(RUNGS)


def parse(key: str) -> tuple[str, str, int]:
    match = KEY.fullmatch(key)
    assert match, key
    return match[1], match[2], int(match[3])


def test_the_same_seed_gives_the_same_trace_and_another_seed_another():
    model = TraceModel(tracks=100, requests=5000, seed=7)
    assert list(generate(model)) == list(generate(model))
    assert list(generate(model)) != list(generate(TraceModel(tracks=100, requests=5000, seed=8)))


def test_keys_follow_the_content_layout_and_sizes_the_rung_bitrate():
    for key, size in generate(TraceModel(tracks=50, requests=3000)):
        _, rung, _ = parse(key)
        assert 0 < size <= BITRATES[rung] * 125 * 6  # 6 s at the rung's bitrate, less at the end


def test_full_segments_are_six_seconds_at_the_rung_bitrate():
    sizes = Counter(size for _, size in generate(TraceModel(tracks=50, requests=3000)))
    assert {192_000, 120_000, 72_000, 36_000} <= set(sizes)
    assert sizes.most_common(1)[0][0] == 192_000  # most players are on the top rung


def test_track_popularity_is_zipf():
    model = TraceModel(tracks=200, requests=200_000, zipf=1.0, seed=3)
    starts = Counter(parse(key)[0] for key, _ in generate(model) if key.endswith("seg_00000.m4s"))
    ranked = [count for _, count in starts.most_common()]
    sessions = sum(ranked)
    weights = zipf_weights(200, 1.0)
    expected_top = sum(weights[:20]) / sum(weights)  # the top 10% of tracks
    assert abs(sum(ranked[:20]) / sessions - expected_top) < 0.03
    assert ranked[0] / ranked[9] > 5  # rank 1 against rank 10: 10x expected


def test_a_uniform_exponent_spreads_plays_evenly():
    model = TraceModel(tracks=50, requests=100_000, zipf=0.0, seed=3)
    starts = Counter(parse(key)[0] for key, _ in generate(model) if key.endswith("seg_00000.m4s"))
    assert len(starts) == 50
    assert max(starts.values()) < 2 * min(starts.values())


def test_one_session_at_a_time_plays_segments_in_order_from_zero_and_a_quarter_skip_early():
    model = TraceModel(tracks=100, requests=60_000, concurrency=1, seed=5)
    sessions: list[list[tuple[str, str, int]]] = []
    for key, _ in generate(model):
        track, rung, index = parse(key)
        if index == 0:
            sessions.append([])
        else:
            previous_track, previous_rung, previous_index = sessions[-1][-1]
            assert (track, index) == (previous_track, previous_index + 1)
            order = [name for name, _ in RUNGS]
            assert abs(order.index(rung) - order.index(previous_rung)) <= 1
        sessions[-1].append((track, rung, index))
    finished = sessions[:-1]
    early = sum(len(s) <= 5 for s in finished) / len(finished)  # stopped within 30 s
    assert 0.2 < early < 0.3
    assert all(len(s) >= 18 for s in finished if len(s) > 5)  # the others play ~to the end
    switched = sum(len({rung for _, rung, _ in s}) > 1 for s in finished) / len(finished)
    assert switched < 0.5


def test_interleaved_sessions_each_request_a_segment_after_the_one_before():
    seen: set[tuple[str, int]] = set()
    for key, _ in generate(TraceModel(tracks=100, requests=20_000, seed=2)):
        track, _, index = parse(key)
        assert index == 0 or (track, index - 1) in seen
        seen.add((track, index))


def test_the_trace_drawn_for_a_model_is_the_one_drawn_before_readahead_was_marked():
    for zipf, digest in TRACE_DIGESTS.items():
        requests = generate(TraceModel(tracks=50, requests=5000, zipf=zipf, seed=3))
        text = "".join(f"{key} {size}\n" for key, size in requests)
        assert hashlib.sha256(text.encode()).hexdigest() == digest


def test_readahead_marks_each_next_segment_at_the_rung_of_the_session_before():
    model = TraceModel(tracks=100, requests=60_000, concurrency=1, seed=5)
    marked = list(generate_marked(model))
    assert [(key, size) for key, size, _ in marked] == list(generate(model))
    previous: tuple[str, int] | None = None
    for key, _, ahead in marked:
        _, rung, index = parse(key)
        follows = index > 0 and previous == (rung, index - 1)
        assert ahead == follows
        previous = (rung, index)
    waited = [parse(key)[2] for key, _, ahead in marked if not ahead]
    assert 0 < sum(index > 0 for index in waited) < len(waited)  # rung switches, and starts


def test_the_footprint_is_part_of_the_catalog():
    model = TraceModel(tracks=30, requests=20_000)
    requests = list(generate(model))
    assert 0 < footprint(requests) <= catalog_bytes(model)


def brute_force_misses(keys: list[str], capacity: int) -> int:
    """The fewest misses of any choice of evictions (or of declining), unit sizes."""

    @cache
    def fewest(i: int, held: frozenset[str]) -> int:
        if i == len(keys):
            return 0
        key = keys[i]
        if key in held:
            return fewest(i + 1, held)
        choices = [fewest(i + 1, held)]  # decline
        if len(held) < capacity:
            choices.append(fewest(i + 1, held | {key}))
        else:
            choices += [fewest(i + 1, (held - {victim}) | {key}) for victim in held]
        return 1 + min(choices)

    return fewest(0, frozenset())


@settings(max_examples=300, deadline=None)
@given(
    keys=st.lists(st.sampled_from("abcde"), max_size=12),
    capacity=st.integers(1, 3),
)
def test_belady_with_unit_sizes_is_optimal(keys, capacity):
    requests = [(key, 1) for key in keys]
    assert belady_misses(requests, capacity) == brute_force_misses(keys, capacity)


@settings(max_examples=200, deadline=None)
@given(
    requests=st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(1, 5)), max_size=40),
    capacity=st.integers(0, 12),
)
def test_belady_with_sizes_counts_every_request_and_at_least_the_compulsory_misses(
    requests, capacity
):
    sizes = dict(requests)
    requests = [(key, sizes[key]) for key, _ in requests]  # one size per key
    outcome = belady(requests, capacity)
    assert outcome.misses >= len(sizes)
    assert outcome.hits + outcome.misses == len(requests)
    assert outcome.hit_bytes + outcome.miss_bytes == sum(size for _, size in requests)
    if capacity >= sum(sizes.values()):
        assert outcome.misses == len(sizes)


def test_belady_declines_what_will_never_be_requested_again():
    requests = [("a", 1), ("b", 1), ("c", 1), ("a", 1), ("b", 1)]
    assert belady_misses(requests, 2) == 3


def test_simulate_counts_hits_and_misses_in_requests_and_bytes():
    requests = [("a", 10), ("b", 20), ("a", 10), ("c", 30), ("a", 10), ("b", 20)]
    assert simulate(make_policy("lru", 40), requests) == (2, 4, 20, 80, 4)


def test_a_miss_marked_ahead_is_not_waited_on():
    requests = [("a", 10), ("b", 10), ("a", 10), ("c", 10)]
    ahead = [False, True, False, True]
    assert simulate(make_policy("lru", 10), requests, ahead).waited == 2
    assert belady(requests, 10, ahead) == (1, 3, 10, 30, 1)  # keeps "a", declines "b"


def test_on_a_music_trace_opt_and_both_policies_beat_lru():
    requests = list(generate(TraceModel(tracks=200, requests=20_000, seed=4)))
    capacity = footprint(requests) // 10
    opt = belady_misses(requests, capacity)
    lru = simulate(make_policy("lru", capacity), requests).misses
    distinct = len(set(key for key, _ in requests))
    assert distinct <= opt < lru < len(requests)
    for name in ("s3fifo", "wtinylfu", "music"):
        assert simulate(make_policy(name, capacity), requests).misses < lru


def test_zipf_weights_fall_as_a_power_of_rank():
    weights = zipf_weights(4, 1.0)
    assert weights == [1.0, 0.5, 1 / 3, 0.25]
