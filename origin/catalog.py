"""The origin's record of labels, tracks, versions, uploads, rights and the event log edges follow.

``Catalog`` is the async face of the catalog modules: ``database`` (the SQLite file, schema and
transactions), ``labels``, ``versions``, ``takedowns`` (rights) and ``event_log``. A single
worker thread owns the connection, so the event loop never waits on disk, and each write method
is one ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from cadenza.events import Event
from origin import database, event_log, labels, lifecycle, rights, takedowns, versions
from origin.database import Manifest

MAX_PAGE = 1000
T = TypeVar("T")
Json = dict[str, Any]


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
        if not labels.LABEL_NAME.fullmatch(name):
            raise ValueError(
                f"label name {name!r} must be 1 to 64 of a-z, 0-9, '_' and '-', "
                "starting with a letter or digit"
            )
        key = labels.KEY_PREFIX + secrets.token_urlsafe(32)
        await self._write(lambda db, now: labels.add_label(db, now, name, labels.key_digest(key)))
        return key

    async def label_for_key(self, api_key: str) -> str | None:
        digest = labels.key_digest(api_key)
        return await self._read(lambda db: labels.label_for_key(db, digest))

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
        versions.check_ids(track_id, version)
        listed = database.json_or_null(takedowns.territory_list(territories))

        def stage(db: sqlite3.Connection, now: float) -> list[str]:
            # Checked in the catalog's thread: a large manifest never holds up the event loop.
            checked = versions.checked_manifest(manifest)
            lifecycle.master_playlist(metadata, checked)  # what publish will write must render
            text = database.dumps(metadata, "metadata")
            return versions.stage(db, now, label, track_id, version, text, checked, listed)

        return await self._write(stage)

    async def record_object(
        self, track_id: str, version: str, path: str, size: int, sha256: str
    ) -> None:
        entry = {"size": size, "sha256": sha256.lower()}
        await self._write(
            lambda db, now: versions.record_object(db, track_id, version, path, entry)
        )

    async def expected_object(
        self, label: str, track_id: str, version: str, path: str
    ) -> Json | None:
        """The manifest entry ``{size, sha256}`` of ``path`` for an upload by ``label``, or None."""

        def entry(db: sqlite3.Connection) -> Json | None:
            database.owned_track(db, label, track_id)
            return database.manifest_of(db, track_id, version).get(path)

        return await self._read(entry)

    async def missing_objects(self, track_id: str, version: str) -> list[str]:
        return await self._read(lambda db: versions.missing(db, track_id, version))

    async def publish(self, label: str, track_id: str, version: str) -> int:
        """Make a fully uploaded version the track's current one; returns the event's seq."""
        return await self._write(
            lambda db, now: versions.publish(db, now, label, track_id, version)
        )

    async def is_published(self, track_id: str, version: str) -> bool:
        row = await self._read(lambda db: database.version_row(db, track_id, version))
        return row is not None and row["state"] == "published"

    async def version(self, track_id: str, version: str) -> Json | None:
        """``{state, metadata, manifest, missing}`` of a declared version, or None."""
        return await self._read(lambda db: versions.version_json(db, track_id, version))

    async def published_versions(self) -> list[tuple[str, str]]:
        """Every (track_id, version) that was ever published, sorted."""
        return await self._read(versions.published_versions)

    async def current_versions(self) -> dict[str, str | None]:
        """Every track's current version (None before its first publish)."""
        return await self._read(versions.current_versions)

    async def forget_object(self, track_id: str, version: str, path: str) -> None:
        """Mark an object as not uploaded (it was found missing or damaged in storage)."""
        await self._write(lambda db, now: versions.forget_object(db, track_id, version, path))

    async def track(self, track_id: str) -> Json | None:
        found, _ = await self._read(lambda db: versions.tracks_page(db, None, 1, None, track_id))
        return found[0] if found else None

    async def tracks(
        self, label: str | None = None, limit: int = 100, after: str | None = None
    ) -> tuple[list[Json], str | None]:
        """One page of tracks ordered by id, and the cursor of the next page (None at the end)."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit {limit} must be between 1 and {MAX_PAGE}")
        return await self._read(lambda db: versions.tracks_page(db, label, limit, after, None))

    async def rights(self, track_id: str, territory: str) -> Json:
        code = rights.normalise_territory(territory)
        territories, withdrawn_in = await self._read(lambda db: takedowns.rights_of(db, track_id))
        licensed, reason = rights.decide(territories, withdrawn_in, code)
        return {"track_id": track_id, "territory": code, "licensed": licensed, "reason": reason}

    async def set_territories(self, track_id: str, territories: list[str] | None) -> int:
        listed = takedowns.territory_list(territories)
        return await self._write(
            lambda db, now: takedowns.set_territories(db, now, track_id, listed)
        )

    async def takedown(self, track_id: str, territory: str | None) -> int:
        """Withdraw a track in one territory, or everywhere when ``territory`` is None."""
        code = None if territory is None else rights.normalise_territory(territory)
        return await self._write(lambda db, now: takedowns.takedown(db, now, track_id, code))

    async def events(self, after: int, limit: int = MAX_PAGE) -> list[Event]:
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit {limit} must be between 1 and {MAX_PAGE}")
        return await self._read(lambda db: event_log.read(db, after, limit))

    async def wait_for_events(
        self, after: int, timeout: float, limit: int = MAX_PAGE
    ) -> list[Event]:
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
        return await self._read(event_log.last_seq)

    async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise RuntimeError("the catalog is closed")
        return await asyncio.get_running_loop().run_in_executor(self._worker, query, self._db)

    async def _write(self, change: Callable[[sqlite3.Connection, float], T]) -> T:
        loop = asyncio.get_running_loop()
        now = self._clock()

        def transaction(db: sqlite3.Connection) -> T:
            result, last = database.in_transaction(
                db, lambda: (change(db, now), event_log.last_seq(db))
            )
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
    db = database.connect(path)
    return db, event_log.last_seq(db)
