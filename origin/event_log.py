"""The event log edges and locators follow: rows of the catalog, so their order is the commit
order (publishes, takedowns, territory changes), read as ``cadenza.events.Event``."""

import json
import sqlite3
from typing import Any

from cadenza.events import Event
from origin import database

Json = dict[str, Any]


def read(db: sqlite3.Connection, after: int, limit: int) -> list[Event]:
    rows = db.execute(
        "SELECT seq, kind, track_id, territory, data, created_at FROM events"
        " WHERE seq > ? ORDER BY seq LIMIT ?",
        (after, limit),
    )
    return [
        Event(
            seq=r["seq"],
            kind=r["kind"],
            track_id=r["track_id"],
            territory=r["territory"],
            data=json.loads(r["data"]),
            at=r["created_at"],
        )
        for r in rows
    ]


def append_event(
    db: sqlite3.Connection, now: float, kind: str, track_id: str, territory: str | None, data: Json
) -> int:
    cursor = db.execute(
        "INSERT INTO events (kind, track_id, territory, data, created_at) VALUES (?, ?, ?, ?, ?)",
        (kind, track_id, territory, database.dumps(data), now),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def event_seq(
    db: sqlite3.Connection, kind: str, track_id: str, territory: str | None, data: Json
) -> int | None:
    row = db.execute(
        "SELECT max(seq) FROM events WHERE track_id = ? AND kind = ? AND territory IS ?"
        " AND data = ?",
        (track_id, kind, territory, database.dumps(data)),
    ).fetchone()
    return None if row[0] is None else int(row[0])


def last_seq(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT ifnull(max(seq), 0) FROM events").fetchone()[0])
