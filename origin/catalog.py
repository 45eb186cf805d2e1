"""The origin's record of labels, tracks, versions, uploads, rights and the event log edges follow.

``Catalog`` is the async face of the catalog modules: ``database`` (the SQLite file or the
PostgreSQL database, schema and transactions), ``labels``, ``versions``, ``takedowns`` (rights)
and ``event_log``. A single worker thread owns the connection, so the event loop never waits on
disk or the network, and each write method is one write transaction. On PostgreSQL reads have
a connection and thread of their own, a third thread listens for the events other replicas
commit, and publishes take a per-track lock that all replicas share (``hold_track``).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cadenza.events import Event
from origin import database, event_log, labels, lifecycle, rights, takedowns, versions
from origin.database import Connection, Manifest
from origin.errors import CatalogUnavailable

MAX_PAGE = 1000
TRACK_LOCK_SECONDS = 30.0  # a publish waits at most this long for another replica's
TRACK_LOCK_POLL = 0.02  # seconds between tries of a lock another replica holds
LISTENER_STOP_SECONDS = 10.0
T = TypeVar("T")
Json = dict[str, Any]


class Catalog:
    """The catalog's async face; open it with ``await Catalog.open(where)`` and close it.

    ``where`` is the SQLite file's path, or a ``postgresql://`` URL (a catalog that several
    origins share)."""

    def __init__(
        self,
        writer: _Session,
        reader: _Session,
        clock: Callable[[], float],
        last_seq: int,
    ) -> None:
        self._writer = writer
        self._reader = reader  # the writer itself on SQLite
        self._clock = clock
        self._last_seq = last_seq  # the newest event this process has seen committed
        self._changed = asyncio.Event()  # replaced by a fresh one each time it is set
        self._closed = False
        self._shared = not isinstance(writer.db, sqlite3.Connection)  # by origin replicas
        self._stop_listening = threading.Event()
        self._listener: threading.Thread | None = None

    @classmethod
    async def open(cls, where: Path | str, clock: Callable[[], float] = time.time) -> Catalog:
        writer = await _Session.open("cadenza-catalog", lambda: database.connect(where))
        try:
            last_seq = await writer.run(
                lambda db: database.in_snapshot(db, lambda: event_log.last_seq(db))
            )
            reader = writer
            if isinstance(where, str):
                # Reads on a connection of their own: a write waiting for its turn behind
                # another replica's transaction holds up no read of this one.
                reader = await _Session.open(
                    "cadenza-catalog-reads", lambda: database.connect(where, create=False)
                )
        except BaseException:
            await writer.close()
            raise
        catalog = cls(writer, reader, clock, last_seq)
        if isinstance(where, str):
            catalog._listen(where)
        return catalog

    def _listen(self, url: str) -> None:
        """Wake long polls at once when another process commits an event."""
        from origin import database_pg

        loop = asyncio.get_running_loop()

        def wake(seq: int) -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop has nobody waiting
                loop.call_soon_threadsafe(self._advance, seq)

        self._listener = threading.Thread(
            target=database_pg.listen,
            args=(url, self._stop_listening, wake),
            name="cadenza-catalog-events",
            daemon=True,
        )
        self._listener.start()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._changed.set()  # long-polls end now
        self._stop_listening.set()
        try:
            await self._writer.close()
        finally:
            if self._reader is not self._writer:
                await self._reader.close()
            if self._listener is not None:
                await asyncio.to_thread(self._listener.join, LISTENER_STOP_SECONDS)

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

        def stage(db: Connection, now: float) -> list[str]:
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

        def entry(db: Connection) -> Json | None:
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
        through this Catalog end the wait at once, and on PostgreSQL so do those of every other
        process (LISTEN/NOTIFY); on SQLite, writes by another process (a CLI takedown) are seen
        when the timeout ends, so callers poll with short timeouts.
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

    @contextlib.asynccontextmanager
    async def hold_track(self, track_id: str) -> AsyncIterator[None]:
        """Hold the track's publish lock that every process sharing this catalog takes.

        Within one process ``publish.TrackLocks`` orders the waiters; this lock orders the
        processes. A no-op on SQLite, whose catalog one origin serves."""
        if not self._shared:
            yield
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TRACK_LOCK_SECONDS
        while not await self._run(self._writer, lambda db: db.try_lock(track_id)):
            if loop.time() >= deadline:
                raise CatalogUnavailable(
                    f"track {track_id} stayed locked by another origin for "
                    f"{TRACK_LOCK_SECONDS:g} s; retry the publish"
                )
            await asyncio.sleep(TRACK_LOCK_POLL)
        try:
            yield
        finally:
            await self._run(self._writer, lambda db: db.unlock(track_id))

    async def _run(self, session: _Session, call: Callable[[Any], T]) -> T:
        if self._closed:
            raise RuntimeError("the catalog is closed")
        return await session.run(call)

    async def _read(self, query: Callable[[Connection], T]) -> T:
        return await self._run(self._reader, lambda db: database.in_snapshot(db, lambda: query(db)))

    async def _write(self, change: Callable[[Connection, float], T]) -> T:
        loop = asyncio.get_running_loop()
        now = self._clock()

        def transaction(db: Connection) -> T:
            result, last = database.in_transaction(
                db, lambda: (change(db, now), event_log.last_seq(db))
            )
            # Scheduled before the caller resumes, and even if the caller was cancelled; a
            # closed loop has nobody waiting.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._advance, last)
            return result

        return await self._run(self._writer, transaction)

    def _advance(self, last_seq: int) -> None:
        if last_seq > self._last_seq:
            self._last_seq = last_seq
            self._changed.set()
            self._changed = asyncio.Event()


@dataclass(frozen=True)
class _Session:
    """A connection and the one thread that uses it."""

    db: Connection
    thread: ThreadPoolExecutor

    @classmethod
    async def open(cls, name: str, connect: Callable[[], Connection]) -> _Session:
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        try:
            db = await asyncio.get_running_loop().run_in_executor(thread, connect)
        except BaseException:
            thread.shutdown(wait=False)
            raise
        return cls(db, thread)

    async def run(self, call: Callable[[Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.thread, call, self.db)

    async def close(self) -> None:
        try:
            await self.run(lambda db: db.close())
        finally:
            self.thread.shutdown(wait=True)
