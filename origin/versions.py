"""Tracks and their versions: declaring, recording uploaded objects, publishing, listing.

Every state change asks ``origin.lifecycle`` first and commits only what it allows. Territories
given when a version is declared apply only when that creates the track, so an upload never
widens rights; publishing the current version again changes nothing and returns the seq of the
event that made it so.
"""

import json
import re
from pathlib import PurePosixPath
from typing import Any

from cadenza import events, layout
from origin import database, event_log, lifecycle, rights, takedowns
from origin.database import Connection, Manifest, Row
from origin.errors import Conflict, NotFound
from origin.lifecycle import Action, VersionFacts

SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_MANIFEST = 50_000  # objects in one version
MAX_OBJECT_SIZE = 1 << 62
Json = dict[str, Any]


def check_ids(track_id: str, version: str) -> None:
    if not layout.TRACK_ID.fullmatch(track_id):
        raise ValueError(f"track id {track_id!r} is not 16 characters of a-z and 0-9")
    if not layout.VERSION.fullmatch(version):
        raise ValueError(f"version {version!r} is not 'v' and 12 hexadecimal digits")


def checked_manifest(manifest: Manifest) -> Manifest:
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


def stage(
    db: Connection,
    now: float,
    label: str,
    track_id: str,
    version: str,
    metadata: str,
    manifest: Manifest,
    territories: str | None,
) -> list[str]:
    if not db.execute("SELECT 1 AS found FROM labels WHERE name = ?", (label,)).fetchone():
        raise NotFound(f"no label {label!r}; create it with 'cadenza origin add-label'")
    if database.track_row(db, track_id) is None:
        db.execute(
            "INSERT INTO tracks (track_id, label, territories, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (track_id, label, territories, now, now),
        )
    database.owned_track(db, label, track_id)
    lifecycle.transition(facts_of(db, track_id, version), Action.DECLARE)
    row = database.version_row(db, track_id, version)
    if row is None:
        db.execute(
            "INSERT INTO versions (track_id, version, state, metadata, manifest, created_at)"
            " VALUES (?, ?, 'staged', ?, ?, ?)",
            (track_id, version, metadata, database.dumps(manifest), now),
        )
    elif json.loads(row["manifest"]) != manifest:
        raise Conflict(
            f"version {version} of track {track_id} was staged with another manifest; "
            "changed content needs a new version"
        )
    return missing(db, track_id, version)


def record_object(db: Connection, track_id: str, version: str, path: str, entry: Json) -> None:
    expected = database.manifest_of(db, track_id, version).get(path)
    lifecycle.transition(facts_of(db, track_id, version), Action.STORE)
    if expected is None:
        raise Conflict(f"{path} is not in the manifest of track {track_id} version {version}")
    if expected != entry:
        raise Conflict(
            f"{path} of track {track_id} version {version} has {entry['size']} bytes with "
            f"SHA-256 {entry['sha256']}, but the manifest says {expected['size']} bytes with "
            f"{expected['sha256']}; upload the file again"
        )
    db.execute(
        "INSERT INTO objects VALUES (?, ?, ?, ?, ?) ON CONFLICT (track_id, version, path)"
        " DO UPDATE SET size = excluded.size, sha256 = excluded.sha256",
        (track_id, version, path, entry["size"], entry["sha256"]),
    )


def missing(db: Connection, track_id: str, version: str) -> list[str]:
    manifest = database.manifest_of(db, track_id, version)
    rows = db.execute(
        "SELECT path, size, sha256 FROM objects WHERE track_id = ? AND version = ?",
        (track_id, version),
    )
    stored = {r["path"]: {"size": r["size"], "sha256": r["sha256"]} for r in rows}
    return sorted(path for path, entry in manifest.items() if stored.get(path) != entry)


def publish(db: Connection, now: float, label: str, track_id: str, version: str) -> int:
    database.owned_track(db, label, track_id)
    row = database.version_row(db, track_id, version)
    if row is None:
        raise NotFound(f"track {track_id} has no version {version}; stage it first")
    facts = facts_of(db, track_id, version)
    lifecycle.transition(facts, Action.PUBLISH)
    data = {"version": version}
    if facts.stored == "published" and facts.current:
        seq = event_log.event_seq(db, events.PUBLISHED, track_id, None, data)
        if seq is not None:
            return seq
    db.execute(
        "UPDATE versions SET state = 'published', published_at = coalesce(published_at, ?)"
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
            database.json_or_null(metadata.get("loudness")),
            now,
            track_id,
        ),
    )
    return event_log.append_event(db, now, events.PUBLISHED, track_id, None, data)


def facts_of(db: Connection, track_id: str, version: str) -> VersionFacts:
    track, row = database.track_row(db, track_id), database.version_row(db, track_id, version)
    withdrawn = track is not None and bool(
        db.execute(
            "SELECT 1 AS found FROM takedowns WHERE track_id = ? AND territory IS NULL",
            (track_id,),
        ).fetchone()
    )
    return VersionFacts(
        track_id=track_id,
        version=version,
        stored=None if row is None else str(row["state"]),
        missing=tuple(missing(db, track_id, version)) if row is not None else (),
        withdrawn=withdrawn,
        current=track is not None and track["current_version"] == version,
    )


def version_json(db: Connection, track_id: str, version: str) -> Json | None:
    row = database.version_row(db, track_id, version)
    if row is None:
        return None
    state = lifecycle.state_of(facts_of(db, track_id, version))
    return {
        "state": str(state),
        "metadata": json.loads(row["metadata"]),
        "manifest": json.loads(row["manifest"]),
        "missing": missing(db, track_id, version),
    }


def published_versions(db: Connection) -> list[tuple[str, str]]:
    rows = db.execute(
        "SELECT track_id, version FROM versions WHERE state = 'published' ORDER BY 1, 2"
    )
    return [(r["track_id"], r["version"]) for r in rows]


def current_versions(db: Connection) -> dict[str, str | None]:
    rows = db.execute("SELECT track_id, current_version FROM tracks ORDER BY track_id")
    return {r["track_id"]: r["current_version"] for r in rows}


def forget_object(db: Connection, track_id: str, version: str, path: str) -> None:
    db.execute(
        "DELETE FROM objects WHERE track_id = ? AND version = ? AND path = ?",
        (track_id, version, path),
    )


def tracks_page(
    db: Connection, label: str | None, limit: int, after: str | None, only: str | None
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
    withdrawn_in = takedowns.takedowns_of(db, [r["track_id"] for r in page])
    found = [track_json(r, withdrawn_in.get(r["track_id"], [])) for r in page]
    return found, (page[-1]["track_id"] if len(rows) > limit else None)


def track_json(row: Row, withdrawn_in: list[str | None]) -> Json:
    fields = ("track_id", "label", "title", "artist", "album", "isrc", "upc", "duration")
    return {
        **{name: row[name] for name in fields},
        "loudness": database.loads_or_none(row["loudness"]),
        "current_version": row["current_version"],
        "territories": database.loads_or_none(row["territories"]),
        "takedowns": withdrawn_in,
        "withdrawn": rights.GLOBAL in withdrawn_in,
    }
