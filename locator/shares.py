"""What the locator's worker processes share: the plays each assigned, and the edges' health.

A play lands on any worker (they share one port), yet the load bound must count the plays
that all of them sent to an edge, and every worker must send players by one view of the
fleet's health. Both live in memory mapped before the workers fork, so that reading them costs
no message and no lock:

- ``AssignmentTable``: one row per worker, written by that worker alone (nothing for a worker
  killed mid-write to leave locked), holding per edge the primaries of each of the last
  ``window`` seconds and their running total. A decision adds up the totals of its nearest
  group's few edges over the rows.
- ``HealthBoard``: one worker polls the edges and publishes their health as a JSON document
  under a sequence number, odd while it is being written (a seqlock); the others reload it
  when the number moves (``SharedFleet``). One poller, not one per worker: the edges are asked
  once per interval, and hysteresis runs once, so no two workers disagree on an edge.

Single aligned 8-byte words are written whole by the processors Cadenza runs on, and each word
has one writer, so a reader sees an old or a new count, never a mix.
"""

import json
import mmap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from locator.fleet import Fleet

ASSIGNMENT_WINDOW = 60  # seconds of primaries that count towards an edge's bounded load
WORD = 8
HEADER_WORDS = 2  # the health board's sequence number and length
READ_ATTEMPTS = 8


def shared_buffer(size: int) -> mmap.mmap:
    """Zeroed memory that processes forked after this call share (MAP_SHARED, anonymous)."""
    return mmap.mmap(-1, max(size, WORD))


class AssignmentTable:
    """Primaries handed out per edge over the last ``window`` whole seconds, by every worker.

    Row layout (8-byte words): ``window`` stamps (one more than the second each slot counts, 0
    for none), then per edge ``window`` slot counts, then per edge the total of its live slots.
    """

    def __init__(
        self,
        edge_ids: Sequence[str],
        workers: int,
        *,
        window: int = ASSIGNMENT_WINDOW,
        buffer: mmap.mmap | bytearray | None = None,
    ) -> None:
        if workers < 1 or window < 1:
            raise ValueError(f"workers {workers} and window {window} must be at least 1")
        self.index = {edge_id: i for i, edge_id in enumerate(edge_ids)}
        if len(self.index) != len(edge_ids):
            raise ValueError("edge ids must be distinct")
        self.edges, self.workers, self.window = len(edge_ids), workers, window
        self.row_words = window + self.edges * window + self.edges
        size = workers * self.row_words * WORD
        if buffer is None:
            buffer = bytearray(size)
        if len(buffer) < size:
            raise ValueError(f"the table needs {size} bytes, the buffer holds {len(buffer)}")
        self.words = memoryview(buffer).cast("B")[:size].cast("q")
        totals = window + self.edges * window
        self._total_rows = tuple(w * self.row_words + totals for w in range(workers))

    @classmethod
    def size(cls, edges: int, workers: int, window: int = ASSIGNMENT_WINDOW) -> int:
        return workers * (window + edges * window + edges) * WORD

    def counts(self) -> "AssignedPlays":
        """Every worker's plays per edge, read as the decision asks for them."""
        return AssignedPlays(self)

    def total(self, edge: int) -> int:
        words = self.words
        return sum(words[row + edge] for row in self._total_rows)

    def row(self, worker: int, now: float) -> "AssignmentRow":
        """The writer of ``worker``'s row; it takes over what a dead predecessor left."""
        if not 0 <= worker < self.workers:
            raise ValueError(f"worker {worker} is not one of {self.workers}")
        return AssignmentRow(self, worker * self.row_words, now)


class AssignedPlays(Mapping[str, int]):
    """A live view of the table: an edge's plays summed over the workers when read."""

    __slots__ = ("_table",)

    def __init__(self, table: AssignmentTable) -> None:
        self._table = table

    def __getitem__(self, edge_id: str) -> int:
        return self._table.total(self._table.index[edge_id])

    def get(self, edge_id: str, default: int | None = 0) -> int | None:  # type: ignore[override]
        i = self._table.index.get(edge_id)
        return default if i is None else self._table.total(i)

    def __iter__(self) -> Iterator[str]:
        return iter(self._table.index)

    def __len__(self) -> int:
        return len(self._table.index)


class AssignmentRow:
    """One worker's row: counts its primaries and ages them out, second by second."""

    def __init__(self, table: AssignmentTable, base: int, now: float) -> None:
        self.table = table
        self.base = base
        self._counts = base + table.window
        self._totals = self._counts + table.edges * table.window
        self._trimmed = -1
        self._rebuild(now)

    def add(self, edge_id: str, now: float) -> None:
        """One primary sent to ``edge_id`` at ``now``; unknown edges are not counted."""
        edge = self.table.index.get(edge_id)
        if edge is None:
            return
        second = int(now)
        if second != self._trimmed:
            self.trim(now)
        window, words = self.table.window, self.table.words
        slot = second % window
        stamp = self.base + slot
        if words[stamp] != second + 1:
            self._clear(slot)
            words[stamp] = second + 1
        cell = self._counts + edge * window + slot
        words[cell] += 1
        words[self._totals + edge] += 1

    def trim(self, now: float) -> None:
        """Forget the seconds that left the window (a worker with no plays calls this too)."""
        second = int(now)
        self._trimmed = second
        words, base = self.table.words, self.base
        for slot in range(self.table.window):
            stamp = words[base + slot]
            if stamp and not second - self.table.window < stamp - 1 <= second:
                self._clear(slot)
                words[base + slot] = 0

    def _clear(self, slot: int) -> None:
        words, window = self.table.words, self.table.window
        for edge in range(self.table.edges):
            cell = self._counts + edge * window + slot
            if words[cell]:
                words[self._totals + edge] -= words[cell]
                words[cell] = 0

    def _rebuild(self, now: float) -> None:
        """Totals recounted from the slots: a worker killed between its two writes left them
        one apart."""
        self.trim(now)
        words, window = self.table.words, self.table.window
        for edge in range(self.table.edges):
            cells = self._counts + edge * window
            words[self._totals + edge] = sum(words[cells : cells + window])


class HealthBoard:
    """The latest health document of the fleet, published by one worker, read by all."""

    def __init__(self, capacity: int, buffer: mmap.mmap | bytearray | None = None) -> None:
        size = HEADER_WORDS * WORD + capacity
        if buffer is None:
            buffer = bytearray(size)
        if len(buffer) < size:
            raise ValueError(f"the board needs {size} bytes, the buffer holds {len(buffer)}")
        self.capacity = capacity
        self._bytes = memoryview(buffer).cast("B")[:size]
        self._header = self._bytes[: HEADER_WORDS * WORD].cast("q")
        self._body = HEADER_WORDS * WORD

    @staticmethod
    def size(capacity: int) -> int:
        return HEADER_WORDS * WORD + capacity

    def publish(self, document: bytes) -> None:
        """Replace the document; ValueError if it is larger than the board."""
        if len(document) > self.capacity:
            raise ValueError(f"a {len(document)}-byte health document exceeds {self.capacity}")
        header = self._header
        writing = header[0] | 1  # odd; a publisher killed mid-write left it odd already
        header[0] = writing
        header[1] = len(document)
        self._bytes[self._body : self._body + len(document)] = document
        header[0] = writing + 1

    @property
    def sequence(self) -> int:
        """Moves on every publication; 0 until the first."""
        return int(self._header[0])

    def read(self, since: int) -> tuple[int, bytes] | None:
        """The document and its sequence number if newer than ``since``; None if not (or if a
        publication is under way, to be read next time)."""
        header = self._header
        for _ in range(READ_ATTEMPTS):
            sequence = header[0]
            if sequence == since or sequence == 0:
                return None
            length = header[1]
            if sequence % 2 or not 0 <= length <= self.capacity:
                continue
            document = bytes(self._bytes[self._body : self._body + length])
            if header[0] == sequence:
                return sequence, document
        return None


@dataclass(frozen=True)
class SharedState:
    """The table and the board of one locator, made before its workers fork."""

    assignments: AssignmentTable
    health: HealthBoard

    @classmethod
    def allocate(cls, edge_ids: Sequence[str], workers: int) -> "SharedState":
        capacity = 4096 + 4096 * len(edge_ids)  # an edge's entry: about 350 bytes
        table_size = AssignmentTable.size(len(edge_ids), workers)
        return cls(
            AssignmentTable(edge_ids, workers, buffer=shared_buffer(table_size)),
            HealthBoard(capacity, shared_buffer(HealthBoard.size(capacity))),
        )


class SharedFleet:
    """The fleet as one worker sees it: its own polls if it is the poller, else the poller's
    latest publication, reloaded as soon as a decision finds it moved."""

    def __init__(self, fleet: Fleet, board: HealthBoard, *, polling: bool) -> None:
        self.fleet = fleet
        self.board = board
        self.polling = polling
        self.sequence = 0
        self.changed = False  # the poller's: polls seen since its last publication
        self.urgent = False  # ... and among them an edge that went up, down or draining
        # A poller that replaces a dead one carries on from its last word (hysteresis included).
        self.current()

    def current(self) -> Fleet:
        found = None if self.polling and self.sequence else self.board.read(self.sequence)
        if found is not None:
            self.sequence, document = found
            self.fleet.restore(json.loads(document))
        return self.fleet

    def publish(self) -> None:
        """The poller's views, refreshed, for every worker."""
        self.fleet.refresh()
        self.board.publish(json.dumps(self.fleet.snapshot(), separators=(",", ":")).encode())
        self.sequence = self.board.sequence
