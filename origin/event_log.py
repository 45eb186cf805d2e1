"""The event log edges and locators follow: rows of the catalog, so their order is the commit
order (publishes, takedowns, territory changes; on PostgreSQL, writers take turns to keep
it so), read as ``cadenza.events.Event``."""

import json
from typing import Any

from cadenza.events import Event
from origin import database
from origin.database import Connection

Json = dict[str, Any]


def read(db: Connection, after: int, limit: int) -> list[Event]:
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
    db: Connection, now: float, kind: str, track_id: str, territory: str | None, data: Json
) -> int:
    row = db.execute(
        "INSERT INTO events (kind, track_id, territory, data, created_at) VALUES (?, ?, ?, ?, ?)"
        " RETURNING seq",
        (kind, track_id, territory, database.dumps(data), now),
    ).fetchone()
    seq = int(row["seq"])
    database.event_appended(db, seq)
    return seq


def event_seq(
    db: Connection, kind: str, track_id: str, territory: str | None, data: Json
) -> int | None:
    row = db.execute(
        "SELECT max(seq) AS seq FROM events WHERE track_id = ? AND kind = ?"
        " AND territory IS NOT DISTINCT FROM ? AND data = ?",
        (track_id, kind, territory, database.dumps(data)),
    ).fetchone()
    return None if row["seq"] is None else int(row["seq"])


def last_seq(db: Connection) -> int:
    return int(db.execute("SELECT coalesce(max(seq), 0) AS seq FROM events").fetchone()["seq"])
