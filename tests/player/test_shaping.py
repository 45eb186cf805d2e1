"""Holding downloads to a trace: never earlier than the trace allows, on a sped-up clock."""

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from player.shaping import PlayClock, arrival_s, head_arrived, shaped
from player.traces import Period, Trace

STEADY = Trace("steady", (Period(60.0, 800.0, 0.05),))  # 100 kB/s after 50 ms
STEP = Trace("step", (Period(2.0, 800.0, 0.02), Period(3.0, 80.0, 0.2), Period(5.0, 0.0, 0.1)))


def test_a_steady_link_takes_its_latency_then_the_bytes_at_its_rate():
    assert arrival_s(STEADY, 0.0, 0) == pytest.approx(0.05)
    assert arrival_s(STEADY, 3.0, 100_000) == pytest.approx(1.05)
    assert arrival_s(STEADY, 3.0, -5) == pytest.approx(0.05)


@given(
    sent=st.floats(0, 100),
    first=st.integers(0, 2_000_000),
    more=st.integers(0, 2_000_000),
    later=st.floats(0, 20),
)
def test_more_bytes_never_arrive_sooner_nor_does_a_later_request_finish_earlier(
    sent, first, more, later
):
    assert arrival_s(STEP, sent, first) <= arrival_s(STEP, sent, first + more) + 1e-9
    done = sent + arrival_s(STEP, sent, first)
    assert done <= sent + later + arrival_s(STEP, sent + later, first) + 1e-9


def test_the_play_clock_runs_speed_times_the_wall_clock():
    wall = [100.0]
    clock = PlayClock(4.0, wall=lambda: wall[0])
    wall[0] = 102.5
    assert clock.now() == 10.0
    assert clock.wall_seconds(8.0) == 2.0 and clock.wall_seconds(-1.0) == 0.0


@pytest.mark.parametrize("speed", [0.0, -1.0, float("inf"), float("nan")])
def test_a_clock_needs_a_positive_finite_speed(speed):
    with pytest.raises(ValueError):
        PlayClock(speed)


async def _chunks(sizes: list[int]) -> AsyncIterator[bytes]:
    for size in sizes:
        yield bytes(size)


async def test_chunks_are_held_until_the_trace_would_have_delivered_them():
    clock = PlayClock(speed=50.0)  # 1 s of trace is 20 ms of wall time
    sent = clock.now()
    sizes = [1000, 30_000, 30_000, 40_000]
    seen = []
    async for chunk in shaped(_chunks(sizes), STEADY, clock, sent):
        seen.append((len(chunk), clock.now()))
    total = 0
    for size, at in seen:
        total += size
        assert at >= sent + arrival_s(STEADY, sent, total) - 1e-6
    assert [s for s, _ in seen] == sizes
    assert seen[-1][1] - sent < 1.05 + 1.0  # about 1.05 s of trace, with room for a slow machine


async def test_a_shaped_head_arrives_after_the_latency_and_an_unshaped_one_at_once():
    clock = PlayClock(speed=50.0)
    sent = clock.now()
    assert 0.05 - 1e-6 <= await head_arrived(STEADY, clock, sent) < 0.05 + 1.0
    sent = clock.now()
    assert 0.0 <= await head_arrived(None, clock, sent) < 0.5


async def test_without_a_trace_chunks_pass_at_once():
    clock = PlayClock(speed=1.0)
    started = time.monotonic()
    got = [c async for c in shaped(_chunks([10**6] * 5), None, clock, clock.now())]
    assert len(got) == 5 and time.monotonic() - started < 0.5


async def test_the_clock_sleeps_in_its_own_seconds():
    clock = PlayClock(speed=100.0)
    started = time.monotonic()
    await clock.sleep_until(clock.now() + 5.0)  # 50 ms of wall time
    elapsed = time.monotonic() - started
    assert 0.045 <= elapsed < 1.0
    await asyncio.wait_for(clock.sleep(-3.0), timeout=1.0)
