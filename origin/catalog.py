"""The origin's record of labels, tracks, versions, uploads, rights and the event log edges follow.

One SQLite file in WAL mode. A single worker thread owns the connection, so the event loop never
waits on disk, and each write method is one ``BEGIN IMMEDIATE`` transaction. A version is staged
with its manifest, its objects are recorded as they arrive, and it can be published only once
every object matches the manifest.

Repeated calls: publishing the current version again or repeating a takedown changes nothing and
returns the seq of the event that made it so; publishing an older published version makes it
current again (a new event). ``set_territories`` always appends an event. Territories given to
``stage_version`` apply only when it creates the track, so an upload never widens rights.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from cadenza import layout
from origin import lifecycle, rights
from origin.errors import Conflict, Forbidden, LabelExists, NotFound, OriginError
from origin.lifecycle import Action, VersionFacts

SCHEMA_VERSION = 1
MAX_PAGE = 1000
KEY_PREFIX = "cdz_"
LABEL_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_MANIFEST = 50_000  # objects in one version
MAX_OBJECT_SIZE = 1 << 62

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

T = TypeVar("T")
Json = dict[str, Any]
Manifest = dict[str, dict[str, Any]]


class Catalog:
    """The catalog's async face; open it with ``await Catalog.open(path)`` and close it."""

    def __init__(
        self,
        db: sqlite3.Connection,
        worker: ThreadPoolExecutor,
        clock: Callable[[], float],
        last_seq: int,
    ) -> None:
        self._db = db
        self._worker = worker
        self._clock = clock
        self._last_seq = last_seq  # the newest event this process has seen committed
        self._changed = asyncio.Event()  # replaced by a fresh one each time it is set
        self._closed = False

    @classmethod
    async def open(cls, path: Path, clock: Callable[[], float] = time.time) -> Catalog:
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cadenza-catalog")
        try:
            db, last_seq = await asyncio.get_running_loop().run_in_executor(worker, _connect, path)
        except BaseException:
            worker.shutdown(wait=False)
            raise
        return cls(db, worker, clock, last_seq)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._changed.set()  # long-polls end now
        try:
            await asyncio.get_running_loop().run_in_executor(self._worker, self._db.close)
        finally:
            self._worker.shutdown(wait=True)

    async def add_label(self, name: str) -> str:
        """Create a label and return its API key; only the key's SHA-256 is stored."""
        if not LABEL_NAME.fullmatch(name):
            raise ValueError(
                f"label name {name!r} must be 1 to 64 of a-z, 0-9, '_' and '-', "
                "starting with a letter or digit"
            )
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        await self._write(lambda db, now: _add_label(db, now, name, _digest(key)))
        return key

    async def label_for_key(self, api_key: str) -> str | None:
        digest = _digest(api_key)
        return await self._read(lambda db: _label_for_key(db, digest))

    async def stage_version(
        self,
        label: str,
        track_id: str,
        version: str,
        metadata: Json,
        manifest: Manifest,
        territories: list[str] | None,
    ) -> list[str]:
        """Record a version to upload; returns the manifest paths not uploaded yet, sorted."""
        _check_ids(track_id, version)
        listed = _json_or_null(_territory_list(territories))

        def stage(db: sqlite3.Connection, now: float) -> list[str]:
            # Checked in the catalog's thread: a large manifest never holds up the event loop.
            checked = _checked_manifest(manifest)
            lifecycle.master_playlist(metadata, checked)  # what publish will write must render
            text = _dumps(metadata, "metadata")
            return _stage(db, now, label, track_id, version, text, checked, listed)

        return await self._write(stage)

    async def record_object(
        self, track_id: str, version: str, path: str, size: int, sha256: str
    ) -> None:
        entry = {"size": size, "sha256": sha256.lower()}
        await self._write(lambda db, now: _record_object(db, track_id, version, path, entry))

    async def expected_object(
        self, label: str, track_id: str, version: str, path: str
    ) -> Json | None:
        """The manifest entry ``{size, sha256}`` of ``path`` for an upload by ``label``, or None."""

        def entry(db: sqlite3.Connection) -> Json | None:
            _owned_track(db, label, track_id)
            return _manifest(db, track_id, version).get(path)

        return await self._read(entry)

    async def missing_objects(self, track_id: str, version: str) -> list[str]:
        return await self._read(lambda db: _missing(db, track_id, version))

    async def publish(self, label: str, track_id: str, version: str) -> int:
        """Make a fully uploaded version the track's current one; returns the event's seq."""
        return await self._write(lambda db, now: _publish(db, now, label, track_id, version))

    async def is_published(self, track_id: str, version: str) -> bool:
        row = await self._read(lambda db: _version_row(db, track_id, version))
        return row is not None and row["state"] == "published"

    async def version(self, track_id: str, version: str) -> Json | None:
        """``{state, metadata, manifest, missing}`` of a declared version, or None."""
        return await self._read(lambda db: _version_json(db, track_id, version))

    async def published_versions(self) -> list[tuple[str, str]]:
        """Every (track_id, version) that was ever published, sorted."""
        return await self._read(_published_versions)

    async def current_versions(self) -> dict[str, str | None]:
        """Every track's current version (None before its first publish)."""
        return await self._read(_current_versions)

    async def forget_object(self, track_id: str, version: str, path: str) -> None:
        """Mark an object as not uploaded (it was found missing or damaged in storage)."""
        await self._write(lambda db, now: _forget_object(db, track_id, version, path))

    async def track(self, track_id: str) -> Json | None:
        found, _ = await self._read(lambda db: _tracks(db, None, 1, None, track_id))
        return found[0] if found else None

    async def tracks(
        self, label: str | None = None, limit: int = 100, after: str | None = None
    ) -> tuple[list[Json], str | None]:
        """One page of tracks ordered by id, and the cursor of the next page (None at the end)."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit {limit} must be between 1 and {MAX_PAGE}")
        return await self._read(lambda db: _tracks(db, label, limit, after, None))

    async def rights(self, track_id: str, territory: str) -> Json:
        code = rights.normalise_territory(territory)
        territories, takedowns = await self._read(lambda db: _rights_of(db, track_id))
        licensed, reason = rights.decide(territories, takedowns, code)
        return {"track_id": track_id, "territory": code, "licensed": licensed, "reason": reason}

    async def set_territories(self, track_id: str, territories: list[str] | None) -> int:
        listed = _territory_list(territories)
        return await self._write(lambda db, now: _set_territories(db, now, track_id, listed))

    async def takedown(self, track_id: str, territory: str | None) -> int:
        """Withdraw a track in one territory, or everywhere when ``territory`` is None."""
        code = None if territory is None else rights.normalise_territory(territory)
        return await self._write(lambda db, now: _takedown(db, now, track_id, code))

    async def events(self, after: int, limit: int = MAX_PAGE) -> list[Json]:
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit {limit} must be between 1 and {MAX_PAGE}")
        return await self._read(lambda db: _events(db, after, limit))

    async def wait_for_events(
        self, after: int, timeout: float, limit: int = MAX_PAGE
    ) -> list[Json]:
        """Events after ``after`` as soon as there are any, or [] after ``timeout`` seconds.

        Events already stored are returned at once, whoever wrote them. While waiting, writes
        through this Catalog end the wait at once; writes by another process (a CLI takedown)
        are seen when the timeout ends, so callers poll with short timeouts.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        found = await self.events(after, limit)
        while not found and self._last_seq <= after and not self._closed:
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                break
        if found or self._closed:
            return found
        return await self.events(after, limit)

    async def last_seq(self) -> int:
        return await self._read(_last_seq)

    async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise RuntimeError("the catalog is closed")
        return await asyncio.get_running_loop().run_in_executor(self._worker, query, self._db)

    async def _write(self, change: Callable[[sqlite3.Connection, float], T]) -> T:
        loop = asyncio.get_running_loop()
        now = self._clock()

        def transaction(db: sqlite3.Connection) -> T:
            result, last = _in_transaction(db, lambda: (change(db, now), _last_seq(db)))
            # Scheduled before the caller resumes, and even if the caller was cancelled; a
            # closed loop has nobody waiting.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._advance, last)
            return result

        return await self._read(transaction)

    def _advance(self, last_seq: int) -> None:
        if last_seq > self._last_seq:
            self._last_seq = last_seq
            self._changed.set()
            self._changed = asyncio.Event()


def _connect(path: Path) -> tuple[sqlite3.Connection, int]:
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
        _in_transaction(db, lambda: _create_schema(db, path))
        return db, _last_seq(db)
    except sqlite3.Error as e:
        db.close()
        raise OriginError(f"the catalog {path} is unusable ({e}); check the data folder") from e
    except BaseException:
        db.close()
        raise


def _create_schema(db: sqlite3.Connection, path: Path) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    found = db.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    if found is None:
        for statement in SCHEMA:
            db.execute(statement)
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
    elif found > SCHEMA_VERSION:
        raise OriginError(
            f"the catalog {path} has schema version {found}, newer than this Cadenza "
            f"({SCHEMA_VERSION}); upgrade Cadenza"
        )


def _in_transaction(db: sqlite3.Connection, work: Callable[[], T]) -> T:
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work()
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return result


def _add_label(db: sqlite3.Connection, now: float, name: str, digest: str) -> None:
    if db.execute("SELECT 1 FROM labels WHERE name = ?", (name,)).fetchone():
        raise LabelExists(f"label {name!r} already exists; choose another name")
    db.execute("INSERT INTO labels VALUES (?, ?, ?)", (name, digest, now))


def _label_for_key(db: sqlite3.Connection, digest: str) -> str | None:
    row = db.execute("SELECT name, key_sha256 FROM labels WHERE key_sha256 = ?", (digest,))
    found = row.fetchone()
    if found is None or not hmac.compare_digest(found["key_sha256"], digest):
        return None
    return str(found["name"])


def _stage(
    db: sqlite3.Connection,
    now: float,
    label: str,
    track_id: str,
    version: str,
    metadata: str,
    manifest: Manifest,
    territories: str | None,
) -> list[str]:
    if not db.execute("SELECT 1 FROM labels WHERE name = ?", (label,)).fetchone():
        raise NotFound(f"no label {label!r}; create it with 'cadenza origin add-label'")
    if _track_row(db, track_id) is None:
        db.execute(
            "INSERT INTO tracks (track_id, label, territories, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (track_id, label, territories, now, now),
        )
    _owned_track(db, label, track_id)
    lifecycle.transition(_facts(db, track_id, version), Action.DECLARE)
    row = _version_row(db, track_id, version)
    if row is None:
        db.execute(
            "INSERT INTO versions (track_id, version, state, metadata, manifest, created_at)"
            " VALUES (?, ?, 'staged', ?, ?, ?)",
            (track_id, version, metadata, _dumps(manifest), now),
        )
    elif json.loads(row["manifest"]) != manifest:
        raise Conflict(
            f"version {version} of track {track_id} was staged with another manifest; "
            "changed content needs a new version"
        )
    return _missing(db, track_id, version)


def _record_object(
    db: sqlite3.Connection, track_id: str, version: str, path: str, entry: Json
) -> None:
    expected = _manifest(db, track_id, version).get(path)
    lifecycle.transition(_facts(db, track_id, version), Action.STORE)
    if expected is None:
        raise Conflict(f"{path} is not in the manifest of track {track_id} version {version}")
    if expected != entry:
        raise Conflict(
            f"{path} of track {track_id} version {version} has {entry['size']} bytes with "
            f"SHA-256 {entry['sha256']}, but the manifest says {expected['size']} bytes with "
            f"{expected['sha256']}; upload the file again"
        )
    db.execute(
        "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?)",
        (track_id, version, path, entry["size"], entry["sha256"]),
    )


def _missing(db: sqlite3.Connection, track_id: str, version: str) -> list[str]:
    manifest = _manifest(db, track_id, version)
    rows = db.execute(
        "SELECT path, size, sha256 FROM objects WHERE track_id = ? AND version = ?",
        (track_id, version),
    )
    stored = {r["path"]: {"size": r["size"], "sha256": r["sha256"]} for r in rows}
    return sorted(path for path, entry in manifest.items() if stored.get(path) != entry)


def _publish(db: sqlite3.Connection, now: float, label: str, track_id: str, version: str) -> int:
    _owned_track(db, label, track_id)
    row = _version_row(db, track_id, version)
    if row is None:
        raise NotFound(f"track {track_id} has no version {version}; stage it first")
    facts = _facts(db, track_id, version)
    lifecycle.transition(facts, Action.PUBLISH)
    data = {"version": version}
    if facts.stored == "published" and facts.current:
        seq = _event_seq(db, "published", track_id, None, data)
        if seq is not None:
            return seq
    db.execute(
        "UPDATE versions SET state = 'published', published_at = ifnull(published_at, ?)"
        " WHERE track_id = ? AND version = ?",
        (now, track_id, version),
    )
    metadata = json.loads(row["metadata"])
    tags = metadata.get("tags") or {}
    db.execute(
        "UPDATE tracks SET current_version = ?, title = ?, artist = ?, album = ?, isrc = ?,"
        " upc = ?, duration = ?, loudness = ?, updated_at = ? WHERE track_id = ?",
        (
            version,
            *(tags.get(tag) for tag in ("title", "artist", "album", "isrc", "upc")),
            metadata.get("duration"),
            _json_or_null(metadata.get("loudness")),
            now,
            track_id,
        ),
    )
    return _append_event(db, now, "published", track_id, None, data)


def _facts(db: sqlite3.Connection, track_id: str, version: str) -> VersionFacts:
    track, row = _track_row(db, track_id), _version_row(db, track_id, version)
    withdrawn = track is not None and bool(
        db.execute(
            "SELECT 1 FROM takedowns WHERE track_id = ? AND territory IS NULL", (track_id,)
        ).fetchone()
    )
    return VersionFacts(
        track_id=track_id,
        version=version,
        stored=None if row is None else str(row["state"]),
        missing=tuple(_missing(db, track_id, version)) if row is not None else (),
        withdrawn=withdrawn,
        current=track is not None and track["current_version"] == version,
    )


def _version_json(db: sqlite3.Connection, track_id: str, version: str) -> Json | None:
    row = _version_row(db, track_id, version)
    if row is None:
        return None
    state = lifecycle.state_of(_facts(db, track_id, version))
    return {
        "state": str(state),
        "metadata": json.loads(row["metadata"]),
        "manifest": json.loads(row["manifest"]),
        "missing": _missing(db, track_id, version),
    }


def _published_versions(db: sqlite3.Connection) -> list[tuple[str, str]]:
    rows = db.execute(
        "SELECT track_id, version FROM versions WHERE state = 'published' ORDER BY 1, 2"
    )
    return [(r["track_id"], r["version"]) for r in rows]


def _current_versions(db: sqlite3.Connection) -> dict[str, str | None]:
    rows = db.execute("SELECT track_id, current_version FROM tracks ORDER BY track_id")
    return {r["track_id"]: r["current_version"] for r in rows}


def _forget_object(db: sqlite3.Connection, track_id: str, version: str, path: str) -> None:
    db.execute(
        "DELETE FROM objects WHERE track_id = ? AND version = ? AND path = ?",
        (track_id, version, path),
    )


def _set_territories(
    db: sqlite3.Connection, now: float, track_id: str, territories: list[str] | None
) -> int:
    _existing_track(db, track_id)
    db.execute(
        "UPDATE tracks SET territories = ?, updated_at = ? WHERE track_id = ?",
        (_json_or_null(territories), now, track_id),
    )
    return _append_event(db, now, "territories", track_id, None, {"territories": territories})


def _takedown(db: sqlite3.Connection, now: float, track_id: str, territory: str | None) -> int:
    _existing_track(db, track_id)
    done = db.execute(
        "SELECT 1 FROM takedowns WHERE track_id = ? AND territory IS ?", (track_id, territory)
    ).fetchone()
    seq = _event_seq(db, "takedown", track_id, territory, {}) if done else None
    if seq is not None:
        return seq
    db.execute("INSERT OR IGNORE INTO takedowns VALUES (?, ?, ?)", (track_id, territory, now))
    db.execute("UPDATE tracks SET updated_at = ? WHERE track_id = ?", (now, track_id))
    return _append_event(db, now, "takedown", track_id, territory, {})


def _tracks(
    db: sqlite3.Connection, label: str | None, limit: int, after: str | None, only: str | None
) -> tuple[list[Json], str | None]:
    where: list[str] = []
    args: list[str] = []
    for clause, value in (("label = ?", label), ("track_id > ?", after), ("track_id = ?", only)):
        if value is not None:
            where.append(clause)
            args.append(value)
    sql = "SELECT * FROM tracks" + (" WHERE " + " AND ".join(where) if where else "")
    rows = db.execute(sql + " ORDER BY track_id LIMIT ?", (*args, limit + 1)).fetchall()
    page = rows[:limit]
    takedowns = _takedowns(db, [r["track_id"] for r in page])
    found = [_track_json(r, takedowns.get(r["track_id"], [])) for r in page]
    return found, (page[-1]["track_id"] if len(rows) > limit else None)


def _takedowns(db: sqlite3.Connection, track_ids: list[str]) -> dict[str, list[str | None]]:
    marks = ", ".join("?" * len(track_ids))
    rows = db.execute(
        f"SELECT track_id, territory FROM takedowns WHERE track_id IN ({marks})"
        " ORDER BY track_id, territory",
        track_ids,
    )
    found: dict[str, list[str | None]] = {}
    for row in rows:
        found.setdefault(row["track_id"], []).append(row["territory"])
    return found


def _track_json(row: sqlite3.Row, takedowns: list[str | None]) -> Json:
    fields = ("track_id", "label", "title", "artist", "album", "isrc", "upc", "duration")
    return {
        **{name: row[name] for name in fields},
        "loudness": _loads_or_none(row["loudness"]),
        "current_version": row["current_version"],
        "territories": _loads_or_none(row["territories"]),
        "takedowns": takedowns,
        "withdrawn": rights.GLOBAL in takedowns,
    }


def _rights_of(
    db: sqlite3.Connection, track_id: str
) -> tuple[frozenset[str] | None, frozenset[str | None]]:
    listed = _loads_or_none(_existing_track(db, track_id)["territories"])
    takedowns = _takedowns(db, [track_id]).get(track_id, [])
    return (None if listed is None else frozenset(listed)), frozenset(takedowns)


def _events(db: sqlite3.Connection, after: int, limit: int) -> list[Json]:
    rows = db.execute(
        "SELECT seq, kind, track_id, territory, data, created_at FROM events"
        " WHERE seq > ? ORDER BY seq LIMIT ?",
        (after, limit),
    )
    return [
        {
            "seq": r["seq"],
            "kind": r["kind"],
            "track_id": r["track_id"],
            "territory": r["territory"],
            "data": json.loads(r["data"]),
            "at": r["created_at"],
        }
        for r in rows
    ]


def _append_event(
    db: sqlite3.Connection, now: float, kind: str, track_id: str, territory: str | None, data: Json
) -> int:
    cursor = db.execute(
        "INSERT INTO events (kind, track_id, territory, data, created_at) VALUES (?, ?, ?, ?, ?)",
        (kind, track_id, territory, _dumps(data), now),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _event_seq(
    db: sqlite3.Connection, kind: str, track_id: str, territory: str | None, data: Json
) -> int | None:
    row = db.execute(
        "SELECT max(seq) FROM events WHERE track_id = ? AND kind = ? AND territory IS ?"
        " AND data = ?",
        (track_id, kind, territory, _dumps(data)),
    ).fetchone()
    return None if row[0] is None else int(row[0])


def _last_seq(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT ifnull(max(seq), 0) FROM events").fetchone()[0])


def _track_row(db: sqlite3.Connection, track_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = db.execute(
        "SELECT * FROM tracks WHERE track_id = ?", (track_id,)
    ).fetchone()
    return row


def _existing_track(db: sqlite3.Connection, track_id: str) -> sqlite3.Row:
    row = _track_row(db, track_id)
    if row is None:
        raise NotFound(f"no track {track_id!r} in the catalog")
    return row


def _owned_track(db: sqlite3.Connection, label: str, track_id: str) -> sqlite3.Row:
    row = _existing_track(db, track_id)
    if row["label"] != label:
        raise Forbidden(f"track {track_id} belongs to another label than {label!r}")
    return row


def _version_row(db: sqlite3.Connection, track_id: str, version: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = db.execute(
        "SELECT * FROM versions WHERE track_id = ? AND version = ?", (track_id, version)
    ).fetchone()
    return row


def _manifest(db: sqlite3.Connection, track_id: str, version: str) -> Manifest:
    row = _version_row(db, track_id, version)
    if row is None:
        raise NotFound(f"track {track_id!r} has no version {version!r}; stage it first")
    manifest: Manifest = json.loads(row["manifest"])
    return manifest


def _digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def _dumps(value: Any, what: str = "value") -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"the {what} is not plain JSON ({e})") from e


def _json_or_null(value: Any) -> str | None:
    """JSON text, or SQL NULL for None (a worldwide territory list, an unmeasured loudness)."""
    return None if value is None else _dumps(value)


def _loads_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _check_ids(track_id: str, version: str) -> None:
    if not layout.TRACK_ID.fullmatch(track_id):
        raise ValueError(f"track id {track_id!r} is not 16 characters of a-z and 0-9")
    if not layout.VERSION.fullmatch(version):
        raise ValueError(f"version {version!r} is not 'v' and 12 hexadecimal digits")


def _checked_manifest(manifest: Manifest) -> Manifest:
    """The manifest with hashes in lower case; ValueError for an unsafe path or a bad entry."""
    if not manifest:
        raise ValueError("the manifest is empty; a version needs at least one object")
    if len(manifest) > MAX_MANIFEST:
        raise ValueError(f"the manifest lists {len(manifest)} objects, more than {MAX_MANIFEST}")
    checked: Manifest = {}
    for path, entry in manifest.items():
        pure = PurePosixPath(path)
        if pure.is_absolute() or str(pure) != path or {".", ".."} & set(pure.parts):
            raise ValueError(f"manifest path {path!r} is not a plain relative path")
        if not isinstance(entry, dict):
            raise ValueError(f"manifest entry {path!r} needs a size in bytes and a SHA-256")
        size, sha256 = entry.get("size"), str(entry.get("sha256", "")).lower()
        valid_size = type(size) is int and 0 <= size <= MAX_OBJECT_SIZE
        if not valid_size or not SHA256.fullmatch(sha256):
            raise ValueError(f"manifest entry {path!r} needs a size in bytes and a SHA-256")
        checked[path] = {"size": size, "sha256": sha256}
    return checked


def _territory_list(territories: list[str] | None) -> list[str] | None:
    if territories is None:
        return rights.WORLDWIDE
    if not isinstance(territories, list) or not all(isinstance(c, str) for c in territories):
        raise ValueError(f"territories {territories!r} must be a list of codes such as 'DE'")
    return sorted({rights.normalise_territory(code) for code in territories})
