"""Eviction policies: byte-budget invariants for all, LRU against a model, each one's rules."""

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from edge.policy import (
    DEFAULT_POLICY,
    LRU,
    POLICIES,
    S3FIFO,
    FrequencySketch,
    Policy,
    WTinyLFU,
    make_policy,
)

KEYS = st.sampled_from([f"k{i}" for i in range(12)])


def test_make_policy_knows_each_name_and_names_them_on_a_typo():
    assert isinstance(make_policy("lru", 10), LRU)
    assert isinstance(make_policy("s3fifo", 10), S3FIFO)
    assert isinstance(make_policy("wtinylfu", 10), WTinyLFU)
    assert DEFAULT_POLICY in POLICIES
    with pytest.raises(ValueError, match="lru, s3fifo, wtinylfu"):
        make_policy("arc", 10)
    with pytest.raises(ValueError, match="at least 0 bytes"):
        make_policy("lru", -1)


@pytest.mark.parametrize("name", POLICIES)
def test_an_object_larger_than_the_capacity_is_declined(name):
    policy = make_policy(name, 100)
    assert policy.admit("small", 60) == []
    assert policy.admit("big", 101) == ["big"]
    assert "big" not in policy and "small" in policy and policy.used == 60


@pytest.mark.parametrize("name", POLICIES)
def test_remove_forgets_a_key_and_ignores_an_unknown_one(name):
    policy = make_policy(name, 100)
    policy.admit("a", 30)
    policy.admit("b", 30)
    policy.remove("a")
    policy.remove("never")
    assert "a" not in policy and not policy.get("a")
    assert len(policy) == 1 and policy.used == 30


@pytest.mark.parametrize("name", POLICIES)
def test_admitting_a_held_key_again_replaces_its_size(name):
    policy = make_policy(name, 100)
    policy.admit("a", 30)
    policy.admit("a", 50)
    assert len(policy) == 1 and policy.used == 50


@pytest.mark.parametrize("name", POLICIES)
def test_a_negative_size_is_refused(name):
    with pytest.raises(ValueError, match="negative size"):
        make_policy(name, 100).admit("a", -1)


def test_lru_evicts_the_least_recently_read_first():
    policy = LRU(300)
    for key in ("a", "b", "c"):
        policy.admit(key, 100)
    assert policy.get("a")
    assert policy.admit("d", 150) == ["b", "c"]
    assert policy.used == 250


class PolicyMachine(RuleBasedStateMachine):
    """Random operations on every policy, checked against the byte-budget invariants.

    LRU is also checked against a model: a list of (key, size), least recent first.
    """

    def __init__(self) -> None:
        super().__init__()
        self.policies: dict[str, Policy] = {}
        self.sizes: dict[str, int] = {}  # the last size admitted for each key
        self.model: list[tuple[str, int]] = []

    @initialize(capacity=st.integers(0, 400))
    def start(self, capacity):
        self.policies = {name: make_policy(name, capacity) for name in POLICIES}
        self.capacity = capacity

    @rule(key=KEYS)
    def get(self, key):
        for policy in self.policies.values():
            held = key in policy
            assert policy.get(key) == held
        for i, (held_key, _) in enumerate(self.model):
            if held_key == key:
                self.model.append(self.model.pop(i))
                break

    @rule(key=KEYS, size=st.integers(0, 150))
    def admit(self, key, size):
        self.sizes[key] = size
        evictions = {}
        for name, policy in self.policies.items():
            evicted = evictions[name] = policy.admit(key, size)
            assert len(set(evicted)) == len(evicted)
            assert all(gone not in policy for gone in evicted)
            assert (key in policy) != (key in evicted)
        assert evictions["lru"] == self.model_admit(key, size)

    def model_admit(self, key: str, size: int) -> list[str]:
        self.model = [e for e in self.model if e[0] != key]
        if size > self.capacity:
            return [key]
        evicted = []
        while sum(s for _, s in self.model) + size > self.capacity:
            evicted.append(self.model.pop(0)[0])
        self.model.append((key, size))
        return evicted

    @rule(key=KEYS)
    def remove(self, key):
        for policy in self.policies.values():
            policy.remove(key)
            assert key not in policy
        self.model = [e for e in self.model if e[0] != key]

    @invariant()
    def bytes_add_up_within_the_budget(self):
        for policy in self.policies.values():
            held = [k for k in self.sizes if k in policy]
            assert policy.used == sum(self.sizes[k] for k in held)
            assert len(policy) == len(held)
            assert policy.used <= policy.capacity
        lru = self.policies["lru"]
        assert lru.used == sum(s for _, s in self.model)
        assert all(k in lru for k, _ in self.model) and len(lru) == len(self.model)


TestPolicyMachine = PolicyMachine.TestCase
TestPolicyMachine.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)


def request(policy, key: str, size: int = 10) -> bool:
    """One request as a tier makes it: a read, and an admission after a miss."""
    if policy.get(key):
        return True
    policy.admit(key, size)
    return False


def test_s3fifo_one_hit_wonders_leave_through_the_small_queue_where_lru_loses_the_hot_set():
    s3fifo, lru = S3FIFO(1000), LRU(1000)
    for policy in (s3fifo, lru):
        for i in range(20):
            request(policy, f"hot{i}")
            request(policy, f"hot{i}")
    wonders = [f"once{i}" for i in range(500)]
    for key in wonders:
        lru.admit(key, 10)
        for gone in s3fifo.admit(key, 10):
            assert gone.startswith("once") and s3fifo.in_ghost(gone)
        assert not s3fifo.in_main(key)
    assert all(s3fifo.in_main(f"hot{i}") for i in range(20))
    assert not any(f"hot{i}" in lru for i in range(20))


def test_s3fifo_promotes_an_object_read_again_in_the_small_queue_and_ejects_an_unread_one():
    policy = S3FIFO(1000)
    policy.admit("read", 10)
    policy.admit("unread", 10)
    assert policy.get("read")
    for i in range(99):
        policy.admit(f"filler{i}", 10)
    assert policy.in_main("read")
    assert "unread" not in policy


def test_s3fifo_sends_a_ghost_hit_straight_to_main():
    policy = S3FIFO(1000)
    for i in range(10):  # a main queue, so that the ghost queue has room
        request(policy, f"hot{i}")
        request(policy, f"hot{i}")
    policy.admit("back", 10)
    for i in range(200):
        if "back" in policy.admit(f"filler{i}", 10):
            break
    assert "back" not in policy and policy.in_ghost("back")
    policy.admit("back", 10)
    assert policy.in_main("back") and not policy.in_ghost("back")


def test_s3fifo_main_reinserts_an_object_read_there_and_evicts_unread_ones():
    policy = S3FIFO(1000)
    for i in range(20):
        request(policy, f"hot{i}")
        request(policy, f"hot{i}")
    for i in range(100):
        policy.admit(f"filler{i}", 10)  # the hot set moves to main, unread since
    assert policy.get("hot0") and policy.get("hot0")
    for i in range(1000):  # objects read in small move to main and push it past its share
        request(policy, f"new{i}")
        request(policy, f"new{i}")
        if "hot19" not in policy:
            break
    assert policy.in_main("hot0")
    assert not any(f"hot{i}" in policy for i in range(1, 20))


def test_sketch_doorkeeper_takes_the_first_access_and_aging_halves_the_counts():
    sketch = FrequencySketch(64)
    assert sketch.estimate("a") == 0
    sketch.increment("a")
    assert sketch.estimate("a") == 1
    for _ in range(4):
        sketch.increment("a")
    assert sketch.estimate("a") == 5
    for _ in range(30):
        sketch.increment("a")
    assert sketch.estimate("a") == 16  # 4-bit counters, plus the doorkeeper's bit
    for i in range(10 * 64 - 35):
        sketch.increment(f"other{i}")
    assert sketch.estimate("a") == 7  # counters 15 -> 7, doorkeeper cleared


def test_wtinylfu_grows_its_sketch_with_the_number_of_objects():
    policy = WTinyLFU(100_000)
    for i in range(1000):
        request(policy, f"k{i}", 10)
    assert policy.sketch.width >= len(policy) == 1000


def test_wtinylfu_keeps_a_frequent_set_through_a_scan_where_lru_loses_it():
    tinylfu, lru = WTinyLFU(1000), LRU(1000)
    for policy in (tinylfu, lru):
        for _ in range(5):
            for i in range(90):  # most of the cache, so that the sketch has its final width
                request(policy, f"hot{i}")
        for i in range(1000):
            request(policy, f"scan{i}")
    assert all(f"hot{i}" in tinylfu for i in range(90))
    assert not any(f"hot{i}" in lru for i in range(90))


def test_wtinylfu_admits_a_candidate_more_frequent_than_mains_victim():
    policy = WTinyLFU(1000)
    for _ in range(2):
        for i in range(100):
            request(policy, f"old{i}")  # each seen once since the sketch last grew
    for _ in range(4):
        assert not policy.get("popular")  # misses count too
    policy.admit("popular", 10)
    request(policy, "next")  # pushes the popular object out of the 1% window
    assert "popular" in policy
    request(policy, "another")
    assert "next" not in policy  # seen once: loses its duel against main's victim
