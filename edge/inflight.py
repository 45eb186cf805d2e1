"""One origin fetch per missing object, with every waiter streamed the bytes as they arrive.

A ``Fill`` is an object being fetched: the fetcher appends chunks and finally finishes or
fails it; any number of readers stream it from the start while it grows. A reader of a failed
fill gets ``FillFailed`` after the bytes it already has, so a truncated origin answer is never
delivered as if complete. ``Inflight`` is the table that makes concurrent misses share a fill.
No sockets here: the edge's fetcher feeds a fill from the origin's response.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from cadenza.errors import CadenzaError


class FillFailed(CadenzaError):
    """The origin fetch behind a fill failed or was cut short."""


class Fill:
    def __init__(self, key: str) -> None:
        self.key = key
        self.chunks: list[bytes] = []
        self.size = 0
        self.done = False
        self.error: BaseException | None = None
        self.readers = 0
        self.head: Any = None  # what the fetcher knows once the origin answered
        self.retain = True  # False: a lone reader's stream, each chunk dropped once read
        self.consumed = 0  # bytes read and dropped (retain False)
        self._changed = asyncio.Event()
        self._started = asyncio.Event()
        self._read = asyncio.Event()

    def start(self, head: Any) -> None:
        """The origin answered: readers may now send what ``head`` says (status, headers)."""
        self.head = head
        self._started.set()

    def append(self, chunk: bytes) -> None:
        if self.done or self.error is not None:
            raise RuntimeError(f"fill {self.key} is closed")
        if chunk:
            self.chunks.append(chunk)
            self.size += len(chunk)
            self._wake()

    def finish(self) -> None:
        self.done = True
        self._started.set()
        self._wake()

    def fail(self, error: BaseException) -> None:
        if not self.done:
            self.error = error
            self._started.set()
            self._wake()

    def body(self) -> bytes:
        """The whole object, once finished."""
        if not self.done or not self.retain:
            raise RuntimeError(f"fill {self.key} is not complete")
        return b"".join(self.chunks)

    def stop_retaining(self) -> None:
        """From now on, keep each chunk only until it is read: for an answer too large to
        store that only one reader streams; the fetcher then waits for ``room``."""
        self.retain = False

    async def room(self, limit: int) -> None:
        """Wait until at most ``limit`` bytes are buffered unread (always true when retained)."""
        while not self.retain and self.size - self.consumed > limit and self.readers:
            self._read.clear()
            await self._read.wait()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def started(self) -> Any:
        """The fetcher's head, once the origin answered; raises FillFailed if it never did."""
        await self._started.wait()
        if self.head is None:
            raise FillFailed(f"origin fetch of {self.key} failed: {self.error}") from self.error
        return self.head

    async def stream(self) -> AsyncIterator[bytes]:
        """Every chunk from the first, as soon as it is appended."""
        self.readers += 1
        try:
            index = 0
            while True:
                changed = self._changed
                while index < len(self.chunks):
                    yield self.chunks[index]
                    if not self.retain:
                        self.consumed += len(self.chunks[index])
                        self.chunks[index] = b""
                        self._read.set()
                    index += 1
                if self.error is not None:
                    raise FillFailed(
                        f"origin fetch of {self.key} failed: {self.error}"
                    ) from self.error
                if self.done:
                    return
                await changed.wait()
        finally:
            self.readers -= 1
            self._read.set()  # a reader that leaves frees the fetcher's wait for room


Fetcher = Callable[[Fill], Awaitable[None]]


class Inflight:
    """Fills in progress by key; the first miss starts the fetch, later misses join it."""

    def __init__(self) -> None:
        self._fills: dict[str, Fill] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.coalesced = 0  # misses that joined a fetch already under way

    def __contains__(self, key: str) -> bool:
        return key in self._fills

    def join(self, key: str, fetch: Fetcher) -> tuple[Fill, bool]:
        """The fill for ``key`` and whether this call started its fetch."""
        fill = self._fills.get(key)
        if fill is not None:
            self.coalesced += 1
            return fill, False
        fill = Fill(key)
        self._fills[key] = fill
        task = asyncio.create_task(self._run(fill, fetch), name=f"fetch {key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return fill, True

    async def _run(self, fill: Fill, fetch: Fetcher) -> None:
        try:
            await fetch(fill)
            if not fill.done and fill.error is None:
                fill.fail(FillFailed("the fetcher returned without finishing"))
        except asyncio.CancelledError:
            fill.fail(FillFailed("the fetch was cancelled"))
            raise
        except Exception as e:  # the fill carries the failure to every reader
            fill.fail(e)
        finally:
            self._fills.pop(fill.key, None)

    async def close(self) -> None:
        """Cancel every fetch under way and wait for them to end."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
