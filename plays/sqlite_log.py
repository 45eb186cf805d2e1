"""The embedded play log: a SQLite file in WAL mode, no server needed.

Every locator worker process opens the file and appends; SQLite serialises their writes (a
writer waits up to ``BUSY_MS`` for another). ``events.seq`` orders the log and ``events.id`` is
unique, so an event sent twice is stored once. A consumer group's position is the last
sequence number it acknowledged: it reads from there, so whatever it read but did not
acknowledge before dying is read again. One consumer per group: two would read the same events.

The file holds about ``max_events`` events (``sqlite:///PATH?max_events=N``, ten million by
default): every ``TRIM_EVERY`` batches a writer deletes the oldest beyond that, read or not, as
Redis trims a stream with ``MAXLEN``. Size it to hold what the consumers may fall behind by.
"""

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qsl

from cadenza.errors import ConfigError
from cadenza.plays import PlayEvent
from plays.log import MAX_READ, Entry

T = TypeVar("T")
BUSY_MS = 5000
POLL_S = 0.05  # how often a blocked read looks for new events
DEFAULT_MAX_EVENTS = 10_000_000
TRIM_EVERY = 1000  # batches appended by one process between trims

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS groups (name TEXT PRIMARY KEY, position INTEGER NOT NULL);
"""


class SqliteLog:
    """The log in one SQLite file; its calls run on one thread of their own."""

    def __init__(self, path: Path, max_events: int = DEFAULT_MAX_EVENTS) -> None:
        self.path = path
        self.max_events = max_events
        self._appends = 0
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="plays-sqlite")
        self._db: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, location: str) -> "SqliteLog":
        """The log at ``location``: ``PATH`` or ``PATH?max_events=N``."""
        path, _, query = location.partition("?")
        options = dict(parse_qsl(query))
        try:
            max_events = int(options.pop("max_events", DEFAULT_MAX_EVENTS))
        except ValueError:
            max_events = 0
        if options or max_events < 1:
            raise ConfigError(f"play log {location!r}: the one option is max_events (>= 1)")
        log = cls(Path(path), max_events)
        await log._run(log._connect)
        return log

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at each checkpoint, never torn
        db.executescript(SCHEMA)
        self._db = db

    async def _run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work)

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "the log is not open"
        return self._db

    async def append(self, events: Sequence[PlayEvent]) -> int:
        rows = [(e.id, json.dumps(e.to_json(), separators=(",", ":"))) for e in events]

        self._appends += 1
        trim = self._appends % TRIM_EVERY == 0

        def insert() -> int:
            with _transaction(self.db):
                before = self.db.total_changes
                self.db.executemany("INSERT OR IGNORE INTO events (id, body) VALUES (?, ?)", rows)
                added = self.db.total_changes - before
                if trim:
                    self.db.execute(
                        "DELETE FROM events WHERE seq <= (SELECT max(seq) FROM events) - ?",
                        (self.max_events,),
                    )
                return added

        return await self._run(insert)

    async def read(self, group: str, consumer: str, count: int, block_s: float) -> list[Entry]:
        count = max(1, min(count, MAX_READ))
        deadline = time.monotonic() + max(0.0, block_s)
        while True:
            rows = await self._run(lambda: self._after(group, count))
            if rows or time.monotonic() >= deadline:
                return [Entry(str(seq), PlayEvent.from_json(json.loads(b))) for seq, b in rows]
            await asyncio.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))

    def _after(self, group: str, count: int) -> list[tuple[int, str]]:
        position = self._position(group)
        return self.db.execute(
            "SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (position, count)
        ).fetchall()

    def _position(self, group: str) -> int:
        row = self.db.execute("SELECT position FROM groups WHERE name = ?", (group,)).fetchone()
        return int(row[0]) if row else 0

    async def ack(self, group: str, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        last = max(int(e.position) for e in entries)

        def advance() -> None:
            self.db.execute(
                "INSERT INTO groups (name, position) VALUES (?, ?) ON CONFLICT (name) "
                "DO UPDATE SET position = max(position, excluded.position)",
                (group, last),
            )

        await self._run(advance)

    async def lag(self, group: str) -> int:
        def count() -> int:
            row = self.db.execute(
                "SELECT count(*) FROM events WHERE seq > ?", (self._position(group),)
            ).fetchone()
            return int(row[0])

        return await self._run(count)

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self.db.close)
            self._db = None
        self._thread.shutdown(wait=True)


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): the write lock is taken up front."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
