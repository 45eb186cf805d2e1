"""Byte-budgeted eviction policies for the edge's memory and disk tiers.

Pure: a policy sees keys and sizes, never bytes, clocks or files; the tier that holds the data
asks it what to keep. Every operation is O(1) amortised (O(log n) for an eviction by ``music``),
and after every call ``used`` is the sum of the sizes of the held keys and never exceeds
``capacity``.

- ``lru``: the baseline.
- ``s3fifo``: S3-FIFO (Yang et al., "FIFO queues are all you need for cache eviction", SOSP
  2023): a small FIFO for ~10% of the bytes that ejects objects not read again while in it,
  a main FIFO with 2-bit frequencies and lazy reinsertion, a ghost FIFO of ejected keys.
- ``wtinylfu``: W-TinyLFU (Einziger, Friedman and Manes, ACM ToS 2017, as Caffeine runs it):
  a 1% window LRU, then an SLRU main space that a newcomer enters only if a count-min sketch
  with aging and a doorkeeper finds it more frequent than the object it would displace.
- ``music`` (``edge.music_policy``): the least expected reads per byte out first, from plays
  counted per track, the share of plays that reach a segment's position and of plays at its
  rung; segments ahead of a play in progress wait for it.

The edge uses ``DEFAULT_POLICY``, ``music``, because it wins on what a music edge sees
(``edge.trace``; ``cadenza bench cache``, medians of 3 seeds, 300,000 requests). Of the
LRU-to-OPT gap in request misses at a cache of 10% of the footprint it closes 54%, 60% and 66%
at Zipf 0.7, 0.8 and 0.9, where S3-FIFO closes 28%, 34% and 41% and W-TinyLFU 27%, 31% and 40%;
at 1% and 5% caches it closes 61 to 76%. Most objects there are segments of long-tail tracks at
one rung, or the first seconds of skipped tracks, requested once or twice far apart: frequency
per object can hardly tell them from the segments of a hit, and recency not at all, while the
plays of their track can, from the first read of each. With the exact popularity of every track
in place of the sketch it would close 65% at Zipf 0.8 (one seed), the most it could learn.
S3-FIFO's small queue ejects such objects after ~10% of the bytes, and its ghost lets one that
comes back within about a main-queue lifetime straight into main (variants measured at 10%: a
ghost sized by bytes closes 0.7 points more; two reads required in the small queue, 10 less).
A hit costs ``music`` about 0.5 µs more than S3-FIFO (a place lookup and a cursor move), which
``cadenza bench edge`` does not resolve from its noise.
"""

import zlib
from collections import OrderedDict
from typing import Protocol

from edge.music_policy import MusicAware

POLICIES = ("lru", "s3fifo", "wtinylfu", "music")
DEFAULT_POLICY = "music"
SMALL_SHARE = 0.1  # of the capacity, for S3-FIFO's small queue (the paper's choice)
MAX_FREQUENCY = 3  # two bits


class Policy(Protocol):
    """What a cache tier asks of its eviction policy. Sizes and capacity are in bytes."""

    capacity: int

    def get(self, key: str) -> bool:
        """True on a hit, False on a miss; either way it counts as an access.

        Call it on every lookup, misses included: W-TinyLFU's admission counts them.
        """
        ...

    def admit(self, key: str, size: int) -> list[str]:
        """Insert ``key`` after a miss; return the keys evicted to make room.

        The result holds ``key`` itself when it is not kept: larger than the capacity, or (for
        W-TinyLFU) less frequent than what it would displace.
        """
        ...

    def remove(self, key: str) -> None:
        """Forget ``key`` (a takedown); nothing happens when it is not held."""
        ...

    def __contains__(self, key: object) -> bool: ...

    def __len__(self) -> int: ...

    @property
    def used(self) -> int: ...


def make_policy(name: str, capacity: int) -> Policy:
    if capacity < 0:
        raise ValueError(f"cache capacity must be at least 0 bytes, got {capacity}")
    if name == "lru":
        return LRU(capacity)
    if name == "s3fifo":
        return S3FIFO(capacity)
    if name == "wtinylfu":
        return WTinyLFU(capacity)
    if name == "music":
        return MusicAware(capacity)
    raise ValueError(f"unknown cache policy {name!r}: choose one of {', '.join(POLICIES)}")


def _check_size(key: str, size: int) -> None:
    if size < 0:
        raise ValueError(f"object {key!r} has a negative size: {size}")


class LRU:
    """Least recently used first out; an ordered dict from key to size, oldest first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._sizes: OrderedDict[str, int] = OrderedDict()
        self._used = 0

    @property
    def used(self) -> int:
        return self._used

    def __contains__(self, key: object) -> bool:
        return key in self._sizes

    def __len__(self) -> int:
        return len(self._sizes)

    def get(self, key: str) -> bool:
        try:
            self._sizes.move_to_end(key)
        except KeyError:
            return False
        return True

    def admit(self, key: str, size: int) -> list[str]:
        _check_size(key, size)
        self.remove(key)
        if size > self.capacity:
            return [key]
        evicted = []
        while self._used + size > self.capacity:
            victim, victim_size = self._sizes.popitem(last=False)
            self._used -= victim_size
            evicted.append(victim)
        self._sizes[key] = size
        self._used += size
        return evicted

    def remove(self, key: str) -> None:
        size = self._sizes.pop(key, None)
        if size is not None:
            self._used -= size


class S3FIFO:
    """S3-FIFO over variable sizes: small and main FIFOs share the byte budget.

    The small queue's share is a target, not a wall (as in the paper): eviction takes from the
    small queue while it holds at least its share, else from main. The ghost queue remembers as
    many keys as main holds objects, so an ejected key goes to main if it comes back within
    about one main-queue lifetime.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._small_target = int(capacity * SMALL_SHARE)
        self._small: OrderedDict[str, int] = OrderedDict()  # key -> size, oldest first
        self._main: OrderedDict[str, int] = OrderedDict()
        self._ghost: OrderedDict[str, None] = OrderedDict()
        self._frequency: dict[str, int] = {}  # every held key, 0..MAX_FREQUENCY
        self._small_used = 0
        self._used = 0

    @property
    def used(self) -> int:
        return self._used

    def __contains__(self, key: object) -> bool:
        return key in self._frequency

    def __len__(self) -> int:
        return len(self._frequency)

    def in_small(self, key: str) -> bool:
        return key in self._small

    def in_main(self, key: str) -> bool:
        return key in self._main

    def in_ghost(self, key: str) -> bool:
        return key in self._ghost

    def get(self, key: str) -> bool:
        frequency = self._frequency.get(key)
        if frequency is None:
            return False
        if frequency < MAX_FREQUENCY:
            self._frequency[key] = frequency + 1
        return True

    def admit(self, key: str, size: int) -> list[str]:
        _check_size(key, size)
        self._drop(key)  # its ghost entry, if any, still counts
        if size > self.capacity:
            return [key]
        evicted = []
        while self._used + size > self.capacity:
            if self._small and (self._small_used >= self._small_target or not self._main):
                victim = self._evict_small()
            else:
                victim = self._evict_main()
            if victim is not None:
                evicted.append(victim)
        self._frequency[key] = 0
        self._used += size
        if key in self._ghost:
            del self._ghost[key]
            self._main[key] = size
        else:
            self._small[key] = size
            self._small_used += size
        return evicted

    def remove(self, key: str) -> None:
        self._ghost.pop(key, None)
        self._drop(key)

    def _drop(self, key: str) -> None:
        if self._frequency.pop(key, None) is None:
            return
        size = self._small.pop(key, None)
        if size is None:
            size = self._main.pop(key)
        else:
            self._small_used -= size
        self._used -= size

    def _evict_small(self) -> str | None:
        """Move the oldest small object to main if it was read there, else evict it."""
        key, size = self._small.popitem(last=False)
        self._small_used -= size
        if self._frequency[key] > 0:
            self._frequency[key] = 0
            self._main[key] = size
            return None
        del self._frequency[key]
        self._used -= size
        self._ghost[key] = None
        while len(self._ghost) > len(self._main):
            self._ghost.popitem(last=False)
        return key

    def _evict_main(self) -> str | None:
        """Reinsert the oldest main object one frequency lower if it was read, else evict it."""
        key = next(iter(self._main))
        frequency = self._frequency[key]
        if frequency > 0:
            self._frequency[key] = frequency - 1
            self._main.move_to_end(key)
            return None
        size = self._main.pop(key)
        del self._frequency[key]
        self._used -= size
        return key


WINDOW_SHARE = 0.01  # of the capacity, for W-TinyLFU's admission window
PROTECTED_SHARE = 0.8  # of the main space, for W-TinyLFU's protected segment
COUNTER_MAX = 15  # four-bit counters
SAMPLE_FACTOR = 10  # the sketch ages after this many accesses per column
DOORKEEPER_BITS = 8  # per access in a sample: about 3% false positives with three probes
GOLDEN_64 = 0x9E3779B97F4A7C15  # spreads a 32-bit CRC over 64 bits
MASK_64 = (1 << 64) - 1
HALVE = bytes(count >> 1 for count in range(256))


class FrequencySketch:
    """TinyLFU's popularity estimate: a count-min sketch of 4-bit counters behind a doorkeeper.

    The doorkeeper, a Bloom filter, absorbs each key's first access in a sample, so one-hit
    wonders never reach the four rows of counters. After ``SAMPLE_FACTOR`` accesses per column
    every counter is halved and the doorkeeper cleared, so the estimate follows recent
    popularity. Keys are hashed with CRC-32 (``hash`` is salted per process), then spread by
    double hashing, so estimates are the same in every run.
    """

    def __init__(self, width: int = 16) -> None:
        self.width = 1 << max(4, (width - 1).bit_length())
        self._counters = bytearray(4 * self.width)
        door_bits = 1 << (DOORKEEPER_BITS * SAMPLE_FACTOR * self.width - 1).bit_length()
        self._door_mask = door_bits - 1
        self._doorkeeper = bytearray(door_bits >> 3)
        self._additions = 0

    def ensure_width(self, entries: int) -> None:
        """Grow (and reset) the sketch when the cache holds more keys than it has columns."""
        if entries > self.width:
            self.__init__(entries)  # type: ignore[misc]

    def increment(self, key: str) -> None:
        low, high = _hash(key)
        bits = self._door_bits(low, high)
        if self._in_doorkeeper(bits):
            counters = self._counters
            for slot in self._slots(low, high):
                if counters[slot] < COUNTER_MAX:
                    counters[slot] += 1
        else:
            door = self._doorkeeper
            for bit in bits:
                door[bit >> 3] |= 1 << (bit & 7)
        self._additions += 1
        if self._additions >= SAMPLE_FACTOR * self.width:
            self._counters = self._counters.translate(HALVE)
            self._doorkeeper = bytearray(len(self._doorkeeper))
            self._additions //= 2

    def estimate(self, key: str) -> int:
        low, high = _hash(key)
        counters = self._counters
        a, b, c, d = self._slots(low, high)
        least = min(counters[a], counters[b], counters[c], counters[d])
        return least + self._in_doorkeeper(self._door_bits(low, high))

    def _slots(self, low: int, high: int) -> tuple[int, int, int, int]:
        """The key's counter in each of the four rows."""
        width = self.width
        mask = width - 1
        return (
            low & mask,
            width + ((low + high) & mask),
            2 * width + ((low + 2 * high) & mask),
            3 * width + ((low + 3 * high) & mask),
        )

    def _door_bits(self, low: int, high: int) -> tuple[int, int, int]:
        mask = self._door_mask
        return high & mask, (high + low) & mask, (high + 2 * low) & mask

    def _in_doorkeeper(self, bits: tuple[int, int, int]) -> bool:
        door = self._doorkeeper
        a, b, c = bits
        return bool(door[a >> 3] >> (a & 7) & door[b >> 3] >> (b & 7) & door[c >> 3] >> (c & 7) & 1)


def _hash(key: str) -> tuple[int, int]:
    mixed = (zlib.crc32(key.encode()) * GOLDEN_64) & MASK_64
    return mixed & 0xFFFFFFFF, (mixed >> 32) | 1


class WTinyLFU:
    """W-TinyLFU (Einziger, Friedman and Manes, 2017) over variable sizes, as in Caffeine.

    New objects enter a window LRU of ~1% of the bytes. Objects pushed out of the window are
    candidates for the main space, an SLRU (probation, then protected for 80% of main's bytes
    after a second hit there). When main is full, a candidate duels main's next victim (the
    least recent of probation, else of protected): the one the sketch finds more frequent stays,
    the victim winning ties; a large candidate may have to win several duels.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._window_target = int(capacity * WINDOW_SHARE)
        self._protected_target = int((capacity - self._window_target) * PROTECTED_SHARE)
        self._window: OrderedDict[str, int] = OrderedDict()
        self._probation: OrderedDict[str, int] = OrderedDict()
        self._protected: OrderedDict[str, int] = OrderedDict()
        self._window_used = self._protected_used = self._used = 0
        self.sketch = FrequencySketch()

    @property
    def used(self) -> int:
        return self._used

    def __contains__(self, key: object) -> bool:
        return key in self._window or key in self._probation or key in self._protected

    def __len__(self) -> int:
        return len(self._window) + len(self._probation) + len(self._protected)

    def get(self, key: str) -> bool:
        self.sketch.increment(key)
        if key in self._window:
            self._window.move_to_end(key)
        elif key in self._protected:
            self._protected.move_to_end(key)
        elif key in self._probation:
            size = self._probation.pop(key)
            self._protected[key] = size
            self._protected_used += size
            while self._protected_used > self._protected_target:
                demoted, demoted_size = self._protected.popitem(last=False)
                self._protected_used -= demoted_size
                self._probation[demoted] = demoted_size
        else:
            return False
        return True

    def admit(self, key: str, size: int) -> list[str]:
        _check_size(key, size)
        self.remove(key)
        if size > self.capacity:
            return [key]
        self._window[key] = size
        self._window_used += size
        self._used += size
        evicted = []
        while self._window_used > self._window_target:
            candidate, candidate_size = self._window.popitem(last=False)
            self._window_used -= candidate_size
            evicted += self._enter_main(candidate, candidate_size)
        while self._used > self.capacity:  # main grew while the window was below its share
            evicted.append(self._evict_victim())
        self.sketch.ensure_width(len(self))
        return evicted

    def remove(self, key: str) -> None:
        for queue in (self._window, self._probation, self._protected):
            size = queue.pop(key, None)
            if size is not None:
                if queue is self._window:
                    self._window_used -= size
                elif queue is self._protected:
                    self._protected_used -= size
                self._used -= size
                return

    def _evict_victim(self) -> str:
        """Evict the least recent object of probation, else protected, else the window."""
        for queue in (self._probation, self._protected, self._window):
            if queue:
                victim, size = queue.popitem(last=False)
                if queue is self._protected:
                    self._protected_used -= size
                elif queue is self._window:
                    self._window_used -= size
                self._used -= size
                return victim
        raise AssertionError("over capacity with nothing held")

    def _enter_main(self, candidate: str, size: int) -> list[str]:
        """Duel main's victims until ``candidate`` fits or loses; return the losers."""
        losers: list[str] = []
        frequency = None
        while self._used > self.capacity:
            queue = self._probation or self._protected
            if not queue:
                break
            victim = next(iter(queue))
            if frequency is None:
                frequency = self.sketch.estimate(candidate)
            if frequency <= self.sketch.estimate(victim):
                self._used -= size
                return [*losers, candidate]
            victim_size = queue.pop(victim)
            if queue is self._protected:
                self._protected_used -= victim_size
            self._used -= victim_size
            losers.append(victim)
        self._probation[candidate] = size
        return losers
