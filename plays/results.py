"""The consumers' results: one SQLite file that the consumers write and the locator reads.

Each consumer applies a batch of events in one transaction together with the ids of the
events it applied (``seen``) and its position in the log, and acknowledges the batch to the
log only after the commit. An event delivered again (the consumer died between commit and
acknowledgement, or a player sent it twice) finds its id in ``seen`` and changes nothing:
at-least-once delivery, exactly-once results.

- ``history``: one row per play of a listener (anonymous plays have none): the track, when it
  began, the audio heard, and how it ended.
- ``streams``: per day (UTC, of the event that crossed the line), track, label and territory,
  the plays in which at least ``STREAM_MS`` were heard, each play counted once (``streamed``).
- ``popularity``: per edge and track, plays decayed with a half-life, as ``score`` at ``at``.
"""

import math
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cadenza.plays import STREAM_MS, PlayEvent

KINDS = ("history", "streams", "popularity")
BUSY_S = 10.0
MAX_HISTORY = 500  # plays one history answer lists at most
MAX_GROWTH = 64.0
# Event ids (and streamed plays) are remembered this long after the newest event applied: longer
# than any event can come late (the locator's reporting window, an offline licence's 30 days).
REMEMBER_S = 45 * 24 * 3600.0
FORGET_EVERY = 1000  # batches between two sweeps of what is remembered
UNKNOWN_LABEL = ""  # a track the catalog does not know (any more)

SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    consumer TEXT NOT NULL, id TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (consumer, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_age ON seen (consumer, at);
CREATE TABLE IF NOT EXISTS positions (
    consumer TEXT PRIMARY KEY, position TEXT NOT NULL, events INTEGER NOT NULL,
    batches INTEGER NOT NULL, updated REAL
);
CREATE TABLE IF NOT EXISTS history (
    listener TEXT NOT NULL, play_id TEXT NOT NULL, track_id TEXT NOT NULL,
    version TEXT NOT NULL, territory TEXT NOT NULL, started_at REAL NOT NULL,
    last_at REAL NOT NULL, played_ms INTEGER NOT NULL, state TEXT NOT NULL,
    offline INTEGER NOT NULL, PRIMARY KEY (listener, play_id)
);
CREATE INDEX IF NOT EXISTS history_recent ON history (listener, started_at);
CREATE TABLE IF NOT EXISTS streamed (play_id TEXT PRIMARY KEY, at REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS streamed_age ON streamed (at);
CREATE TABLE IF NOT EXISTS streams (
    day TEXT NOT NULL, track_id TEXT NOT NULL, label TEXT NOT NULL, territory TEXT NOT NULL,
    streams INTEGER NOT NULL, PRIMARY KEY (day, track_id, label, territory)
);
CREATE TABLE IF NOT EXISTS labels (track_id TEXT PRIMARY KEY, label TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS popularity (
    edge TEXT NOT NULL, track_id TEXT NOT NULL, score REAL NOT NULL, at REAL NOT NULL,
    half_life REAL NOT NULL, PRIMARY KEY (edge, track_id)
);
"""


def connect(path: Path) -> sqlite3.Connection:
    """The results file, made if new (WAL: the locator reads while a consumer writes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=BUSY_S, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA)
    return db


def day_of(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


def decayed(score: float, at: float, now: float, half_life: float) -> float:
    """``score`` counted at ``at``, as it is worth at ``now`` (more if ``now`` is earlier, up
    to ``2 ** MAX_GROWTH`` times: a clock far ahead must not overflow)."""
    return score * math.pow(2.0, min(MAX_GROWTH, -(now - at) / half_life))


@dataclass(frozen=True)
class Applied:
    new: int  # events applied
    repeated: int  # events already applied before (dropped by id)


def apply(
    db: sqlite3.Connection,
    consumer: str,
    kind: str,
    events: Sequence[PlayEvent],
    position: str,
    *,
    labels: Mapping[str, str] | None = None,
    half_life: float = 3600.0,
) -> Applied:
    """Apply ``events`` for ``consumer`` (one of KINDS) in one transaction with their ids and
    the consumer's ``position``; ``labels`` names the label of every track (streams)."""
    if kind not in KINDS:
        raise ValueError(f"no consumer kind {kind!r}; one of {', '.join(KINDS)}")
    new = 0
    db.execute("BEGIN IMMEDIATE")
    try:
        for e in events:
            cursor = db.execute(
                "INSERT OR IGNORE INTO seen (consumer, id, at) VALUES (?, ?, ?)",
                (consumer, e.id, e.at),
            )
            if cursor.rowcount != 1:
                continue
            new += 1
            if kind == "history":
                _history(db, e)
            elif kind == "streams":
                _stream(db, e, (labels or {}).get(e.track_id, UNKNOWN_LABEL))
            else:
                _popularity(db, e, half_life)
        db.execute(
            "INSERT INTO positions (consumer, position, events, batches, updated) "
            "VALUES (?, ?, ?, 1, ?) ON CONFLICT (consumer) DO UPDATE SET "
            "position = excluded.position, events = events + excluded.events, "
            "batches = batches + 1, updated = excluded.updated",
            (consumer, position, new, time.time()),
        )
        if events and _sweep_due(db, consumer):
            _forget(db, consumer, max(e.at for e in events) - REMEMBER_S)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return Applied(new, len(events) - new)


def _sweep_due(db: sqlite3.Connection, consumer: str) -> bool:
    row = db.execute("SELECT batches FROM positions WHERE consumer = ?", (consumer,)).fetchone()
    return bool(row[0] % FORGET_EVERY == 0)


def _forget(db: sqlite3.Connection, consumer: str, before: float) -> None:
    """Forget the ids of events older than ``before``: none can come again."""
    db.execute("DELETE FROM seen WHERE consumer = ? AND at < ?", (consumer, before))
    db.execute("DELETE FROM streamed WHERE at < ?", (before,))


def _history(db: sqlite3.Connection, e: PlayEvent) -> None:
    if not e.listener:
        return
    db.execute(
        "INSERT INTO history (listener, play_id, track_id, version, territory, started_at, "
        "last_at, played_ms, state, offline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (listener, play_id) DO UPDATE SET "
        "started_at = min(started_at, excluded.started_at), "
        "played_ms = max(played_ms, excluded.played_ms), "
        "state = CASE WHEN excluded.last_at >= last_at THEN excluded.state ELSE state END, "
        "last_at = max(last_at, excluded.last_at)",
        (e.listener, e.play_id, e.track_id, e.version, e.territory, e.at, e.at, e.played_ms,
         "playing" if e.kind in ("start", "progress") else e.kind, int(e.offline)),
    )  # fmt: skip


def _stream(db: sqlite3.Connection, e: PlayEvent, label: str) -> None:
    if not e.is_stream:
        return
    first = db.execute(
        "INSERT OR IGNORE INTO streamed (play_id, at) VALUES (?, ?)", (e.play_id, e.at)
    )
    if first.rowcount != 1:
        return  # this play was counted by an earlier event
    db.execute(
        "INSERT INTO streams (day, track_id, label, territory, streams) VALUES (?, ?, ?, ?, 1) "
        "ON CONFLICT (day, track_id, label, territory) DO UPDATE SET streams = streams + 1",
        (day_of(e.at), e.track_id, label, e.territory),
    )


def _popularity(db: sqlite3.Connection, e: PlayEvent, half_life: float) -> None:
    if e.kind != "start":
        return  # a play counts once, when it starts
    row = db.execute(
        "SELECT score, at FROM popularity WHERE edge = ? AND track_id = ?", (e.edge, e.track_id)
    ).fetchone()
    score, at = (0.0, e.at) if row is None else (float(row[0]), float(row[1]))
    if e.at >= at:
        score, at = decayed(score, at, e.at, half_life) + 1.0, e.at
    else:  # an event that arrives late (offline) adds what it is worth at the later time
        score += decayed(1.0, e.at, at, half_life)
    db.execute(
        "INSERT OR REPLACE INTO popularity (edge, track_id, score, at, half_life) "
        "VALUES (?, ?, ?, ?, ?)",
        (e.edge, e.track_id, score, at, half_life),
    )


# -- readers (the locator, the report) --------------------------------------------------------


def history(db: sqlite3.Connection, listener: str, limit: int) -> list[dict[str, Any]]:
    """The listener's plays, the latest first."""
    rows = db.execute(
        "SELECT play_id, track_id, version, territory, started_at, last_at, played_ms, state, "
        "offline FROM history WHERE listener = ? ORDER BY started_at DESC, play_id LIMIT ?",
        (listener, max(1, min(limit, MAX_HISTORY))),
    ).fetchall()
    names = ("play_id", "track_id", "version", "territory", "started_at", "last_at",
             "played_ms", "state", "offline")  # fmt: skip
    return [
        {**dict(zip(names, row, strict=True)), "offline": bool(row[8]),
         "stream": row[6] >= STREAM_MS}
        for row in rows
    ]  # fmt: skip


def hot(
    db: sqlite3.Connection, edges: Iterable[str], n: int, now: float
) -> list[tuple[str, float]]:
    """The ``n`` most played tracks on ``edges`` at ``now``, best first (ties: smaller id)."""
    edges = list(edges)
    if not edges or n < 1:
        return []
    marks = ",".join("?" * len(edges))
    total: dict[str, float] = {}
    for track_id, score, at, half_life in db.execute(
        f"SELECT track_id, score, at, half_life FROM popularity WHERE edge IN ({marks})", edges
    ):
        total[track_id] = total.get(track_id, 0.0) + decayed(score, at, now, half_life)
    return sorted(total.items(), key=lambda item: (-item[1], item[0]))[:n]


def streams(db: sqlite3.Connection, label: str, month: str) -> list[dict[str, Any]]:
    """A label's streams in ``month`` (YYYY-MM) per day, track and territory."""
    rows = db.execute(
        "SELECT day, track_id, territory, streams FROM streams WHERE label = ? AND day LIKE ? "
        "ORDER BY day, track_id, territory",
        (label, f"{month}-%"),
    ).fetchall()
    return [{"day": d, "track_id": t, "territory": c, "streams": s} for d, t, c, s in rows]


def known_labels(db: sqlite3.Connection, track_ids: Iterable[str]) -> dict[str, str]:
    ids = list(track_ids)
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = db.execute(f"SELECT track_id, label FROM labels WHERE track_id IN ({marks})", ids)
    return dict(rows.fetchall())


def remember_labels(db: sqlite3.Connection, labels: Mapping[str, str]) -> None:
    db.executemany("INSERT OR REPLACE INTO labels (track_id, label) VALUES (?, ?)", labels.items())
