"""The catalog on PostgreSQL, shared by origin replicas: schema, transactions, locks, wake-ups.

The catalog modules' SQL runs here unchanged (``?`` placeholders become psycopg's ``%s``), on a
synchronous connection that the catalog's worker thread owns, as with SQLite. Three rules make
several processes behave like one:

- Every write transaction first takes one transaction-scoped advisory lock, so writers take
  turns as they do on one SQLite file. Event seqs are therefore committed in seq order: a
  follower that has read up to N never later finds a smaller seq committed behind it.
- An appended event sends ``NOTIFY`` with its seq at commit; every replica LISTENs (``listen``)
  and wakes its long polls at once.
- A publish holds a session-level advisory lock keyed by its track (``try_lock``/``unlock``)
  across the catalog switch and the master's write; a replica that dies releases it with its
  connection.
"""

import contextlib
import functools
import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import conninfo, pq
from psycopg.rows import dict_row

from cadenza.log import get_logger
from origin import database
from origin.errors import CatalogUnavailable, OriginError

logger = get_logger("origin.catalog")
T = TypeVar("T")
IDLE = pq.TransactionStatus.IDLE

CHANNEL = "cadenza_events"
LOCK_SPACE = 0x43445A41  # the first key of every advisory lock Cadenza takes ("CDZA")
TRACK_SPACE = LOCK_SPACE + 1
WRITES = 0  # the second key of the writers' lock
CONNECT_SECONDS = 10
LOCK_WAIT = "30s"  # a writer waits at most this long for its turn, then answers 503
STATEMENT_TIMEOUT = "60s"
LISTEN_TICK = 0.2  # seconds between checks of the listener's stop flag
LISTEN_RETRY = 1.0  # seconds before the listener reconnects to a database that went away

SCHEMA = (
    """CREATE TABLE labels (
        name TEXT PRIMARY KEY,
        key_sha256 TEXT NOT NULL UNIQUE,
        created_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE tracks (
        track_id TEXT PRIMARY KEY,
        label TEXT NOT NULL REFERENCES labels (name),
        title TEXT, artist TEXT, album TEXT, isrc TEXT, upc TEXT, duration DOUBLE PRECISION,
        loudness TEXT,
        current_version TEXT,
        territories TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX tracks_by_label ON tracks (label, track_id)",
    """CREATE TABLE versions (
        track_id TEXT NOT NULL REFERENCES tracks (track_id),
        version TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('staged', 'published')),
        metadata TEXT NOT NULL,
        manifest TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        published_at DOUBLE PRECISION,
        PRIMARY KEY (track_id, version))""",
    # Tracks and versions name each other: the second reference comes once both exist.
    """ALTER TABLE tracks ADD FOREIGN KEY (track_id, current_version)
        REFERENCES versions (track_id, version)""",
    """CREATE TABLE objects (
        track_id TEXT NOT NULL,
        version TEXT NOT NULL,
        path TEXT NOT NULL,
        size BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        PRIMARY KEY (track_id, version, path),
        FOREIGN KEY (track_id, version) REFERENCES versions (track_id, version))""",
    """CREATE TABLE takedowns (
        track_id TEXT NOT NULL REFERENCES tracks (track_id),
        territory TEXT,
        created_at DOUBLE PRECISION NOT NULL)""",
    "CREATE UNIQUE INDEX takedowns_scope ON takedowns (track_id, coalesce(territory, ''))",
    """CREATE TABLE events (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind TEXT NOT NULL,
        track_id TEXT REFERENCES tracks (track_id),
        territory TEXT,
        data TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX events_by_track ON events (track_id, kind)",
)


def describe(url: str) -> str:
    """The database a URL names, for messages: never its password."""
    try:
        parts = conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "PostgreSQL catalog (an unreadable URL)"
    host = parts.get("host") or "the local socket"
    return f"PostgreSQL catalog {parts.get('dbname') or '(default database)'} on {host}"


@functools.lru_cache(maxsize=256)
def _translated(sql: str) -> str:
    if "%" in sql:  # psycopg would read it as a placeholder; the catalog's SQL has none
        raise ValueError(f"catalog SQL may not contain '%': {sql}")
    return sql.replace("?", "%s")


def track_key(track_id: str) -> int:
    """The advisory lock key of a track; a collision only makes two tracks take turns."""
    return int.from_bytes(hashlib.sha256(track_id.encode()).digest()[:4], "big", signed=True)


class PgConnection:
    """One psycopg connection in autocommit mode, reopened when the database dropped it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.where = describe(url)
        self._conn = self._open()

    def _open(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(
                self.url, autocommit=True, row_factory=dict_row, connect_timeout=CONNECT_SECONDS
            )
        except psycopg.Error as e:
            raise CatalogUnavailable(
                f"cannot reach the {self.where} ({_first_line(e)}); "
                "check the catalog URL and that the database is running"
            ) from None
        try:
            conn.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'")
        except BaseException:
            conn.close()
            raise
        return conn

    def _ready(self) -> psycopg.Connection[Any]:
        if self._conn.closed or self._conn.broken:
            logger.warning("reconnecting to the %s", self.where)
            self._conn.close()
            self._conn = self._open()
        return self._conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        return self._conn.execute(_translated(sql), parameters or None)

    def close(self) -> None:
        self._conn.close()

    def in_transaction(self, work: Callable[[], T]) -> T:
        with _unavailable(self.where):
            self._first("BEGIN")
            conn = self._conn
            try:
                conn.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
                conn.execute(f"SELECT pg_advisory_xact_lock({LOCK_SPACE}, {WRITES})")
                result = work()
                conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            return result

    def in_snapshot(self, work: Callable[[], T]) -> T:
        with _unavailable(self.where):
            self._first("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            conn = self._conn
            try:
                result = work()
                conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            return result

    def _first(self, sql: str, parameters: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        """Run a unit's first statement; a connection the server dropped while it was idle (a
        restart, a failover) is reopened and the statement sent again, as it never ran."""
        conn = self._ready()
        try:
            return conn.execute(sql, parameters or None)
        except psycopg.OperationalError:
            if not conn.broken:
                raise
        return self._ready().execute(sql, parameters or None)

    def _rollback(self) -> None:
        # A connection lost mid-transaction rolls back on the server: the first error stands.
        with contextlib.suppress(psycopg.Error):
            if not self._conn.broken and self._conn.info.transaction_status != IDLE:
                self._conn.execute("ROLLBACK")

    def notify(self, seq: int) -> None:
        self.execute("SELECT pg_notify(?, ?)", (CHANNEL, str(seq)))

    def try_lock(self, track_id: str) -> bool:
        """Take the track's publish lock for this session if nobody holds it."""
        with _unavailable(self.where):
            held = "SELECT pg_try_advisory_lock(%s, %s::integer) AS held"
            row = self._first(held, (TRACK_SPACE, track_key(track_id))).fetchone()
        return bool(row and row["held"])

    def unlock(self, track_id: str) -> None:
        with _unavailable(self.where):
            self._conn.execute(
                "SELECT pg_advisory_unlock(%s, %s::integer)", (TRACK_SPACE, track_key(track_id))
            )


@contextlib.contextmanager
def _unavailable(where: str) -> Iterator[None]:
    """Turns a lost or unreachable database into the origin's 503 error."""
    try:
        yield
    except psycopg.OperationalError as e:
        raise CatalogUnavailable(f"the {where} failed ({_first_line(e)}); retry later") from e


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def connect(url: str, version: int) -> PgConnection:
    db = PgConnection(url)
    try:
        db.in_transaction(lambda: database.create_schema(db, db.where, SCHEMA, version))
    except psycopg.Error as e:
        db.close()
        raise OriginError(f"the {db.where} is unusable ({_first_line(e)})") from None
    except BaseException:
        db.close()
        raise
    return db


def last_seq(db: PgConnection) -> int:
    row = db.execute("SELECT coalesce(max(seq), 0) AS seq FROM events").fetchone()
    return int(row["seq"])


def listen(url: str, stop: threading.Event, wake: Callable[[int], None]) -> None:
    """Call ``wake(seq)`` for every event any process commits, until ``stop`` is set.

    Runs on a thread of its own with its own connection. After each (re)connection it wakes
    with the newest seq, as events committed while nobody listened send no notification."""
    where = describe(url)
    while not stop.is_set():
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_SECONDS) as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                row = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
                wake(int(row[0]) if row else 0)
                while not stop.is_set():
                    for note in conn.notifies(timeout=LISTEN_TICK):
                        if note.payload.isdigit():  # another program may share the channel
                            wake(int(note.payload))
        except psycopg.Error as e:
            logger.warning("event listener: the %s failed (%s)", where, _first_line(e))
            stop.wait(LISTEN_RETRY)
