"""Coalesced fetches: one fetch per key, every reader streamed as bytes arrive, failures kept."""

import asyncio

import pytest

from edge.inflight import Fill, FillFailed, Inflight


async def _collect(fill: Fill) -> bytes:
    return b"".join([chunk async for chunk in fill.stream()])


async def test_sixty_four_readers_share_one_fetch_and_get_identical_bodies():
    inflight = Inflight()
    release = asyncio.Event()
    fetches = 0

    async def fetch(fill: Fill) -> None:
        nonlocal fetches
        fetches += 1
        fill.start({"Content-Length": "300"})
        for i in range(3):
            await release.wait()
            fill.append(bytes([i]) * 100)
        fill.finish()

    fills = [inflight.join("k", fetch) for _ in range(64)]
    assert [started for _, started in fills] == [True] + [False] * 63
    assert inflight.coalesced == 63
    readers = [asyncio.create_task(_collect(fill)) for fill, _ in fills]
    release.set()
    bodies = await asyncio.wait_for(asyncio.gather(*readers), 5)
    assert fetches == 1
    assert set(bodies) == {b"\x00" * 100 + b"\x01" * 100 + b"\x02" * 100}
    assert "k" not in inflight


async def test_readers_receive_each_chunk_before_the_fetch_ends():
    inflight = Inflight()
    step = asyncio.Event()
    first_seen = asyncio.Event()

    async def fetch(fill: Fill) -> None:
        fill.start({})
        fill.append(b"first")
        await step.wait()
        fill.append(b"second")
        fill.finish()

    fill, _ = inflight.join("k", fetch)
    received = []

    async def read() -> None:
        async for chunk in fill.stream():
            received.append(chunk)
            first_seen.set()

    reader = asyncio.create_task(read())
    await asyncio.wait_for(first_seen.wait(), 5)
    assert received == [b"first"] and not fill.done
    step.set()
    await asyncio.wait_for(reader, 5)
    assert received == [b"first", b"second"]
    assert fill.body() == b"firstsecond"


async def test_a_reader_joining_late_starts_from_the_first_byte():
    inflight = Inflight()
    gate = asyncio.Event()

    async def fetch(fill: Fill) -> None:
        fill.start({})
        fill.append(b"a")
        await gate.wait()
        fill.append(b"b")
        fill.finish()

    fill, _ = inflight.join("k", fetch)
    await asyncio.sleep(0)
    late, started = inflight.join("k", fetch)
    assert late is fill and not started
    gate.set()
    assert await asyncio.wait_for(_collect(late), 5) == b"ab"


async def test_a_truncated_fetch_is_never_delivered_as_complete():
    inflight = Inflight()

    async def fetch(fill: Fill) -> None:
        fill.start({"Content-Length": "10"})
        fill.append(b"12345")
        raise ConnectionResetError("origin went away")

    fill, _ = inflight.join("k", fetch)
    received = []
    with pytest.raises(FillFailed, match="origin went away"):
        async for chunk in fill.stream():
            received.append(chunk)
    assert received == [b"12345"]
    assert not fill.done
    with pytest.raises(RuntimeError):
        fill.body()
    # The failed fill is gone: the next miss starts a new fetch.
    _, started = inflight.join("k", fetch)
    assert started
    await inflight.close()


async def test_a_fetch_that_never_answers_fails_its_waiters():
    inflight = Inflight()

    async def fetch(fill: Fill) -> None:
        raise TimeoutError("no first byte within 2 s")

    fill, _ = inflight.join("k", fetch)
    with pytest.raises(FillFailed, match="no first byte"):
        await asyncio.wait_for(fill.started(), 5)


async def test_a_fetcher_that_forgets_to_finish_fails_the_fill():
    inflight = Inflight()

    async def fetch(fill: Fill) -> None:
        fill.start({})
        fill.append(b"x")

    fill, _ = inflight.join("k", fetch)
    with pytest.raises(FillFailed, match="without finishing"):
        await asyncio.wait_for(_collect(fill), 5)


async def test_close_cancels_fetches_and_fails_their_readers():
    inflight = Inflight()

    async def fetch(fill: Fill) -> None:
        fill.start({})
        await asyncio.Event().wait()

    fill, _ = inflight.join("k", fetch)
    reader = asyncio.create_task(_collect(fill))
    await asyncio.sleep(0)
    await asyncio.wait_for(inflight.close(), 5)
    with pytest.raises(FillFailed, match="cancelled"):
        await asyncio.wait_for(reader, 5)
    assert fill.readers == 0


async def test_a_fill_that_stops_retaining_holds_only_what_its_reader_has_not_read():
    inflight = Inflight()
    held: list[int] = []

    async def fetch(fill: Fill) -> None:
        fill.stop_retaining()
        fill.start({})
        for i in range(20):
            await asyncio.wait_for(fill.room(300), 5)
            held.append(fill.size - fill.consumed)
            fill.append(bytes([i]) * 100)
        fill.finish()

    fill, _ = inflight.join("big", fetch)
    received = bytearray()
    async for chunk in fill.stream():
        received += chunk
        await asyncio.sleep(0)  # a reader slower than its fetcher
    assert bytes(received) == b"".join(bytes([i]) * 100 for i in range(20))
    assert max(held) <= 300
    assert sum(len(c) for c in fill.chunks) == 0
    with pytest.raises(RuntimeError):
        fill.body()
