"""Publishing: the catalog switch and the master playlist as one ordered step per track.

Publishes of one track run one at a time, in this process (``TrackLocks``) and across the
origin replicas that share a PostgreSQL catalog (``Catalog.hold_track``), and each writes the
master that the catalog's switch made current, so the last switch is always the master's
version. The catalog commits first: a crash between the two leaves a master one version behind,
which a retried publish (idempotent) or the origin's start-up check (``write_master`` for every
track) puts right.
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from cadenza import layout
from origin import lifecycle
from origin.catalog import Catalog
from origin.errors import NotFound
from origin.storage import Storage


class TrackLocks:
    """One lock per track, dropped again once nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, track_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(track_id, (asyncio.Lock(), 0))
        self._locks[track_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[track_id]
            if users == 1:
                del self._locks[track_id]
            else:
                self._locks[track_id] = (lock, users - 1)


@contextlib.asynccontextmanager
async def holding(catalog: Catalog, locks: TrackLocks, track_id: str) -> AsyncIterator[None]:
    """The track's turn to publish or rewrite its master, among all the catalog's origins."""
    async with locks.hold(track_id), catalog.hold_track(track_id):
        yield


async def publish(
    catalog: Catalog, storage: Storage, locks: TrackLocks, label: str, track_id: str, version: str
) -> int:
    """Make ``version`` current and its master live; returns the catalog event's seq."""
    async with holding(catalog, locks, track_id):
        found = await catalog.version(track_id, version)
        if found is None:
            raise NotFound(f"track {track_id} has no version {version}; stage it first")
        # Rendered before the switch: metadata that cannot make a master never gets published.
        master = lifecycle.master_playlist(found["metadata"])
        # Written at declaration, unless the origin died right after the catalog's commit.
        await write_metadata(storage, track_id, version, found["metadata"])
        seq = await catalog.publish(label, track_id, version)
        await _put_master(storage, track_id, master)
        return seq


async def write_master(
    catalog: Catalog, storage: Storage, locks: TrackLocks, track_id: str
) -> bool:
    """Make the stored master name the catalog's current version; True when it was rewritten."""
    async with holding(catalog, locks, track_id):
        expected = await expected_master(catalog, track_id)
        if expected is None:
            return False
        key = str(layout.master_path(track_id))
        if await read_object(storage, key) == expected:
            return False
        await _put_master(storage, track_id, expected)
        return True


async def expected_master(catalog: Catalog, track_id: str) -> bytes | None:
    """The master the catalog calls for, or None before the track's first publish."""
    track = await catalog.track(track_id)
    current = None if track is None else track["current_version"]
    if current is None:
        return None
    found = await catalog.version(track_id, current)
    assert found is not None  # a foreign key ties the current version to its row
    return lifecycle.master_playlist(found["metadata"])


async def read_object(storage: Storage, key: str) -> bytes | None:
    if await storage.stat(key) is None:
        return None
    return b"".join([chunk async for chunk in storage.read(key)])


async def write_metadata(
    storage: Storage, track_id: str, version: str, metadata: dict[str, Any]
) -> None:
    """Store the version's ``metadata.json`` (written by the origin, never uploaded) once."""
    key = f"{layout.version_prefix(track_id, version)}/{layout.METADATA}"
    if await storage.stat(key) is None:
        await storage.put(key, once(metadata_bytes(metadata)))


def metadata_bytes(metadata: dict[str, Any]) -> bytes:
    return (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode()


async def _put_master(storage: Storage, track_id: str, master: bytes) -> None:
    await storage.put(str(layout.master_path(track_id)), once(master))


async def once(data: bytes) -> AsyncIterator[bytes]:
    yield data
