"""The music-aware policy: what it learns from keys, what it keeps, and its invariants."""

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from edge.music_policy import (
    MAX_COLUMNS,
    MIN_CURSORS,
    PIN_SHARE,
    MusicAware,
    PlaySketch,
    locate,
)


def segment(track: str, index: int, rung: str = "aac_160", version: str = "v000000000001") -> str:
    return f"tracks/{track}/{version}/{rung}/seg_{index:05d}.m4s"


OTHER_VERSION = "v000000000002"


def request(policy: MusicAware, key: str, size: int = 100) -> bool:
    """One request as a tier makes it: a read, and an admission after a miss."""
    if policy.get(key):
        return True
    policy.admit(key, size)
    return False


def play(policy: MusicAware, track: str, segments: int, rung: str = "aac_160") -> None:
    for index in range(segments):
        request(policy, segment(track, index, rung))


def test_locate_reads_track_rung_and_position_from_the_content_layout():
    stream = "tracks/t1/v000000000001/aac_96"
    assert locate(segment("t1", 12, "aac_96")) == ("t1", "aac_96", 12, stream)
    assert locate(f"{stream}/init.mp4") == ("t1", "aac_96", -1, stream)
    assert locate("tracks/t1/master.m3u8") is None
    assert locate("images/cover.jpg") is None


def test_sketch_counts_and_halves_after_ten_additions_per_column():
    sketch = PlaySketch(16)
    halved = [sketch.increment("popular") for _ in range(159)]
    assert sketch.estimate("popular") == 159 and sketch.estimate("never") == 0
    assert not any(halved) and sketch.increment("popular") and sketch.halvings == 1
    assert sketch.estimate("popular") == 80


def test_sketch_grows_without_losing_counts():
    sketch = PlaySketch(16)
    for _ in range(5):
        sketch.increment("popular")
    sketch.increment("rare")
    sketch.ensure_width(1000)
    assert sketch.width == 1024 and sketch.bytes == 4 * 1024
    assert sketch.estimate("popular") >= 5 and sketch.estimate("rare") >= 1
    assert sketch.estimate("never") <= 1  # copied rows keep every estimate an upper bound


def test_sketch_memory_is_bounded_whatever_the_number_of_objects():
    sketch = PlaySketch()
    sketch.ensure_width(10**9)
    assert sketch.width == MAX_COLUMNS and sketch.bytes == 4 * MAX_COLUMNS


def listen(policy: MusicAware, track: str, segments: int, plays: int = 1) -> None:
    """Plays of another version of ``track``: counted, with no cursor near the held objects."""
    for _ in range(plays):
        for index in range(segments):
            policy.get(segment(track, index, version=OTHER_VERSION))


def test_popularity_is_shared_by_every_segment_of_a_track():
    policy = MusicAware(2000)
    listen(policy, "hit", 2, plays=6)
    listen(policy, "rare", 1)
    policy.admit(segment("hit", 0), 100)  # never read itself
    policy.admit(segment("rare", 0), 100)
    evicted = []
    for i in range(20):
        listen(policy, f"other{i}", 1, plays=3)
        evicted += policy.admit(segment(f"other{i}", 0), 100)
    assert evicted[0] == segment("rare", 0)
    assert segment("hit", 0) in policy


def test_later_segments_are_worth_less_when_plays_are_skipped():
    policy = MusicAware(1000)
    for i in range(40):  # most plays stop within the first segment
        listen(policy, f"skipped{i}", 1)
    listen(policy, "album", 6, plays=3)
    listen(policy, "late", 1)
    for index in (0, 4):
        policy.admit(segment("late", index), 100)
    evicted = []
    for i in range(10):
        evicted += policy.admit(f"tracks/other{i}/master.m3u8", 100)  # never read
    assert evicted[0] == segment("late", 4)
    assert segment("late", 0) in policy


def test_a_larger_object_of_the_same_worth_goes_first():
    policy = MusicAware(1000)
    policy.admit(segment("a", 0, rung="aac_256"), 400)
    policy.admit(segment("a", 0, rung="aac_48"), 100)
    policy.admit(segment("b", 0, rung="aac_48"), 100)
    policy.admit(segment("c", 0, rung="aac_48"), 500)
    assert segment("a", 0, rung="aac_256") not in policy


def test_segments_ahead_of_a_play_in_progress_wait_for_it_and_go_once_it_passed():
    policy = MusicAware(4000)
    play(policy, "track", 10)  # a first play caches ten segments
    for index in range(3):  # a second play has begun
        assert request(policy, segment("track", index))
    for i in range(40):  # cold objects push the cache
        request(policy, segment(f"cold{i}", 0))
    held = [segment("track", i) for i in range(3, 10)]
    assert all(key in policy for key in held)
    assert any(policy.awaited(key) for key in held)
    for index in range(3, 10):  # the second play reads them all
        assert request(policy, segment("track", index))
    for i in range(40, 80):
        request(policy, segment(f"cold{i}", 0))
    assert not any(policy.awaited(key) for key in held)


def test_awaited_objects_never_take_more_than_their_share():
    policy = MusicAware(10_000)
    for track in range(10):
        play(policy, f"t{track}", 10)
        request(policy, segment(f"t{track}", 0))  # a second play of each
    for i in range(200):
        request(policy, segment(f"cold{i}", 0))
        awaited = sum(100 for k in list(policy._sizes) if policy.awaited(k))
        assert awaited <= 10_000 * PIN_SHARE + 100


def test_cursors_are_bounded():
    policy = MusicAware(1000)
    for i in range(3 * MIN_CURSORS):
        policy.get(segment(f"t{i}", 0))
    assert len(policy._cursors) == MIN_CURSORS


TRACK_KEYS = st.builds(
    segment,
    st.sampled_from(["t1", "t2", "t3"]),
    st.integers(0, 6),
    st.sampled_from(["aac_48", "aac_256"]),
) | st.sampled_from(["tracks/t1/master.m3u8", "other/key"])


class MusicMachine(RuleBasedStateMachine):
    """Random reads, admissions and removals, on two twins fed the same operations."""

    @initialize(capacity=st.integers(0, 600))
    def start(self, capacity):
        self.policies = (MusicAware(capacity), MusicAware(capacity))
        self.sizes: dict[str, int] = {}

    @rule(key=TRACK_KEYS)
    def get(self, key):
        answers = {policy.get(key) for policy in self.policies}
        assert answers == {key in self.policies[0]}

    @rule(key=TRACK_KEYS, size=st.integers(0, 250))
    def admit(self, key, size):
        self.sizes[key] = size
        first, second = (policy.admit(key, size) for policy in self.policies)
        assert first == second  # deterministic
        assert len(set(first)) == len(first)
        assert all(gone not in self.policies[0] for gone in first)
        assert (key in self.policies[0]) != (key in first)  # admitted, or refused and said so
        assert (key in first) == (size > self.policies[0].capacity)

    @rule(key=TRACK_KEYS)
    def remove(self, key):
        for policy in self.policies:
            policy.remove(key)
            assert key not in policy

    @invariant()
    def bytes_add_up_within_the_budget(self):
        for policy in self.policies:
            held = [k for k in self.sizes if k in policy]
            assert policy.used == sum(self.sizes[k] for k in held) <= policy.capacity
            assert len(policy) == len(held)


TestMusicMachine = MusicMachine.TestCase
TestMusicMachine.settings = settings(max_examples=200, stateful_step_count=60, deadline=None)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(TRACK_KEYS, st.integers(1, 300)), max_size=300))
def test_a_replay_gives_the_same_evictions(requests):
    def replay() -> list[list[str]]:
        policy = MusicAware(1000)
        return [[] if policy.get(key) else policy.admit(key, size) for key, size in requests]

    assert replay() == replay()
