"""Rights: each track's licensed territories and its takedowns (one territory, or everywhere).

A repeated takedown changes nothing and returns the seq of the event that made it; a change of
territories always appends an event.
"""

from cadenza import events
from origin import database, event_log, rights
from origin.database import Connection


def territory_list(territories: list[str] | None) -> list[str] | None:
    if territories is None:
        return rights.WORLDWIDE
    if not isinstance(territories, list) or not all(isinstance(c, str) for c in territories):
        raise ValueError(f"territories {territories!r} must be a list of codes such as 'DE'")
    return sorted({rights.normalise_territory(code) for code in territories})


def set_territories(
    db: Connection, now: float, track_id: str, territories: list[str] | None
) -> int:
    database.existing_track(db, track_id)
    db.execute(
        "UPDATE tracks SET territories = ?, updated_at = ? WHERE track_id = ?",
        (database.json_or_null(territories), now, track_id),
    )
    return event_log.append_event(
        db, now, events.TERRITORIES, track_id, None, {"territories": territories}
    )


def takedown(db: Connection, now: float, track_id: str, territory: str | None) -> int:
    database.existing_track(db, track_id)
    done = db.execute(
        "SELECT 1 AS found FROM takedowns WHERE track_id = ? AND territory IS NOT DISTINCT FROM ?",
        (track_id, territory),
    ).fetchone()
    seq = event_log.event_seq(db, events.TAKEDOWN, track_id, territory, {}) if done else None
    if seq is not None:
        return seq
    db.execute(
        "INSERT INTO takedowns VALUES (?, ?, ?) ON CONFLICT DO NOTHING", (track_id, territory, now)
    )
    db.execute("UPDATE tracks SET updated_at = ? WHERE track_id = ?", (now, track_id))
    return event_log.append_event(db, now, events.TAKEDOWN, track_id, territory, {})


def takedowns_of(db: Connection, track_ids: list[str]) -> dict[str, list[str | None]]:
    if not track_ids:
        return {}
    marks = ", ".join("?" * len(track_ids))
    rows = db.execute(
        f"SELECT track_id, territory FROM takedowns WHERE track_id IN ({marks})"
        " ORDER BY track_id, territory NULLS FIRST",
        track_ids,
    )
    found: dict[str, list[str | None]] = {}
    for row in rows:
        found.setdefault(row["track_id"], []).append(row["territory"])
    return found


def rights_of(db: Connection, track_id: str) -> tuple[frozenset[str] | None, frozenset[str | None]]:
    listed = database.loads_or_none(database.existing_track(db, track_id)["territories"])
    found = takedowns_of(db, [track_id]).get(track_id, [])
    return (None if listed is None else frozenset(listed)), frozenset(found)
