"""The catalog's database: connection, schema, transactions and shared row lookups.

Every other catalog module is a set of functions of an open ``Connection``; this module and
``database_pg`` are the only ones that open one or run a transaction. The default is one SQLite
file in WAL mode; a ``postgresql://`` URL selects PostgreSQL (``database_pg``), which origin
replicas share. Both take the same SQL: a common dialect with ``?`` placeholders, results read
by column name. The caller (``origin.catalog``) runs everything on one worker thread.
"""

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from origin.errors import Forbidden, NotFound, OriginError

SCHEMA_VERSION = 1
T = TypeVar("T")
Manifest = dict[str, dict[str, Any]]
Row = Any  # a result row, read by column name: sqlite3.Row or a dict


class Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the catalog modules use of a connection: both engines' connections have it."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor: ...
    def close(self) -> None: ...


SCHEMA = (
    """CREATE TABLE labels (
        name TEXT PRIMARY KEY,
        key_sha256 TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL)""",
    """CREATE TABLE tracks (
        track_id TEXT PRIMARY KEY,
        label TEXT NOT NULL REFERENCES labels (name),
        title TEXT, artist TEXT, album TEXT, isrc TEXT, upc TEXT, duration REAL,
        loudness TEXT,
        current_version TEXT,
        territories TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        FOREIGN KEY (track_id, current_version) REFERENCES versions (track_id, version))""",
    "CREATE INDEX tracks_by_label ON tracks (label, track_id)",
    """CREATE TABLE versions (
        track_id TEXT NOT NULL REFERENCES tracks (track_id),
        version TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('staged', 'published')),
        metadata TEXT NOT NULL,
        manifest TEXT NOT NULL,
        created_at REAL NOT NULL,
        published_at REAL,
        PRIMARY KEY (track_id, version))""",
    """CREATE TABLE objects (
        track_id TEXT NOT NULL,
        version TEXT NOT NULL,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        PRIMARY KEY (track_id, version, path),
        FOREIGN KEY (track_id, version) REFERENCES versions (track_id, version))""",
    """CREATE TABLE takedowns (
        track_id TEXT NOT NULL REFERENCES tracks (track_id),
        territory TEXT,
        created_at REAL NOT NULL)""",
    # NULL (a global takedown) is distinct from every value in a plain UNIQUE index.
    "CREATE UNIQUE INDEX takedowns_scope ON takedowns (track_id, ifnull(territory, ''))",
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        track_id TEXT REFERENCES tracks (track_id),
        territory TEXT,
        data TEXT NOT NULL,
        created_at REAL NOT NULL)""",
    "CREATE INDEX events_by_track ON events (track_id, kind)",
)


POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")  # a catalog URL of either selects it


def connect(where: Path | str, create: bool = True) -> Connection:
    """The catalog at ``where``: a SQLite file, or a PostgreSQL URL. ``create`` makes (or
    checks) the schema; a second connection to a PostgreSQL catalog skips that."""
    if isinstance(where, str):
        from origin import database_pg  # psycopg is loaded only by origins that use it

        if not create:
            return database_pg.PgConnection(where)
        return database_pg.connect(where, SCHEMA_VERSION)
    return _connect_sqlite(where)


MIN_SQLITE = (3, 39)  # IS NOT DISTINCT FROM; RETURNING and NULLS FIRST came before it


def _connect_sqlite(path: Path) -> sqlite3.Connection:
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise OriginError(
            f"the catalog needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer, and Python "
            f"here uses {sqlite3.sqlite_version}; use a newer Python or a PostgreSQL catalog"
        )
    try:
        db = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as e:
        raise OriginError(f"cannot open the catalog {path} ({e}); check the data folder") from e
    try:
        db.row_factory = sqlite3.Row
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise OriginError(f"the catalog {path} cannot use WAL mode (got {mode!r})")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")  # a CLI in another process may be writing
        in_transaction(db, lambda: create_schema(db, str(path)))
        return db
    except sqlite3.Error as e:
        db.close()
        raise OriginError(f"the catalog {path} is unusable ({e}); check the data folder") from e
    except BaseException:
        db.close()
        raise


def create_schema(
    db: Connection, where: str, schema: Sequence[str] = SCHEMA, version: int = SCHEMA_VERSION
) -> None:
    """Create the schema in an empty catalog; refuse one made by a newer Cadenza.

    Later schema versions add their migrations here, each applied in the same transaction."""
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    found = db.execute("SELECT max(version) AS found FROM schema_version").fetchone()["found"]
    if found is None:
        for statement in schema:
            db.execute(statement)
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    elif found > version:
        raise OriginError(
            f"the catalog {where} has schema version {found}, newer than this Cadenza "
            f"({version}); upgrade Cadenza"
        )


def in_transaction(db: Connection, work: Callable[[], T]) -> T:
    """Run ``work`` as one write transaction; writers take turns, as with one SQLite file."""
    if not isinstance(db, sqlite3.Connection):
        from origin import database_pg

        assert isinstance(db, database_pg.PgConnection)
        return db.in_transaction(work)
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work()
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return result


def in_snapshot(db: Connection, work: Callable[[], T]) -> T:
    """Run the reads of ``work`` on one consistent snapshot of the catalog."""
    if isinstance(db, sqlite3.Connection):
        return work()  # one connection per process, and this process's writes are serial
    from origin import database_pg

    assert isinstance(db, database_pg.PgConnection)
    return db.in_snapshot(work)


def event_appended(db: Connection, seq: int) -> None:
    """Tell the other processes sharing the catalog, once the transaction commits."""
    if not isinstance(db, sqlite3.Connection):
        from origin import database_pg

        assert isinstance(db, database_pg.PgConnection)
        db.notify(seq)


def track_row(db: Connection, track_id: str) -> Row | None:
    return db.execute("SELECT * FROM tracks WHERE track_id = ?", (track_id,)).fetchone()


def existing_track(db: Connection, track_id: str) -> Row:
    row = track_row(db, track_id)
    if row is None:
        raise NotFound(f"no track {track_id!r} in the catalog")
    return row


def owned_track(db: Connection, label: str, track_id: str) -> Row:
    row = existing_track(db, track_id)
    if row["label"] != label:
        raise Forbidden(f"track {track_id} belongs to another label than {label!r}")
    return row


def version_row(db: Connection, track_id: str, version: str) -> Row | None:
    return db.execute(
        "SELECT * FROM versions WHERE track_id = ? AND version = ?", (track_id, version)
    ).fetchone()


def manifest_of(db: Connection, track_id: str, version: str) -> Manifest:
    row = version_row(db, track_id, version)
    if row is None:
        raise NotFound(f"track {track_id!r} has no version {version!r}; stage it first")
    manifest: Manifest = json.loads(row["manifest"])
    return manifest


def dumps(value: Any, what: str = "value") -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"the {what} is not plain JSON ({e})") from e


def json_or_null(value: Any) -> str | None:
    """JSON text, or SQL NULL for None (a worldwide territory list, an unmeasured loudness)."""
    return None if value is None else dumps(value)


def loads_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)
