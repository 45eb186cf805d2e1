"""The offline store: downloaded tracks with their licences, this device's id, and the journal
of offline play events waiting to be reported.

Unlike the local cache (``player.cache``) nothing here is evicted: a track stays until
``cadenza offline remove``, and plays only while its licence is valid. Layout under the root::

    device                        this device's id, made once
    objects/tracks/{id}/{version}/...   media playlist, init and segments of the chosen rung
    tracks/{track_id}.json        the track's entry: licence, rung, what to play it with
    events/{play_id}.json         the events of one offline play, until the locator took them

Every file is written aside and renamed into place, and a track's entry is written only after
all of its objects: a download cut short leaves no playable track, only objects that the next
``cadenza offline add`` overwrites.
"""

import contextlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cadenza import layout
from cadenza.errors import InputError
from cadenza.fsio import TEMP_PREFIX, make_dirs, write_atomic
from cadenza.licences import DEVICE, Licence, LicenceError, unverified_licence
from cadenza.plays import PlayEvent, PlayEventError

OBJECTS = "objects"
TRACKS = "tracks"
EVENTS = "events"
DEVICE_FILE = "device"
PRIVATE_FILE = 0o600
MAX_ENTRY_BYTES = 1 << 20
_PLAY_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_KEY = re.compile(r"tracks/[a-z0-9]{16}/v[0-9a-f]{12}(?:/[A-Za-z0-9_][A-Za-z0-9._-]{0,127}){1,4}")


class StoreError(InputError):
    """The store does not hold what was asked for; the message says what to run."""


@dataclass(frozen=True)
class OfflineTrack:
    """A downloaded track: its licence and the one rung kept, as its variant described it."""

    track_id: str
    licence: str  # the locator's licence text
    playlist: str  # the object key of the rung's media playlist
    bandwidth: int  # the variant's, bits/s
    average_bandwidth: int | None
    codecs: str | None
    session_data: Mapping[str, str] = field(default_factory=dict)  # loudness and the like
    bytes: int = 0  # of the objects kept

    @property
    def terms(self) -> Licence:
        """What the licence says (unverified: the player holds no keys)."""
        return unverified_licence(self.licence)

    @property
    def version(self) -> str:
        return self.playlist.split("/")[2]

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["session_data"] = dict(self.session_data)
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> "OfflineTrack":
        if not isinstance(doc, dict):
            raise ValueError("a track entry is a JSON object")
        entry = cls(**doc)
        if not layout.TRACK_ID.fullmatch(entry.track_id) or not _KEY.fullmatch(entry.playlist):
            raise ValueError("a track entry names a bad track id or playlist")
        if entry.terms.track_id != entry.track_id or entry.terms.version != entry.version:
            raise ValueError("a track entry's licence is for another track or version")
        return entry


class OfflineStore:
    """The store under ``root``; folders are made as they are first written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._read: dict[str, tuple[int, int]] = {}  # play id: its journal file as read

    # -- the device --------------------------------------------------------------------------

    def device_id(self) -> str:
        """This device's id, made on first use and kept: two processes asking at once get the
        same one (the first link wins)."""
        path = self.root / DEVICE_FILE
        try:
            return self._read_device(path)
        except FileNotFoundError:
            pass
        make_dirs(self.root)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=self.root)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(16) + "\n")
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # the first device id made wins
        finally:
            Path(tmp).unlink(missing_ok=True)
        return self._read_device(path)

    @staticmethod
    def _read_device(path: Path) -> str:
        device = path.read_text().strip()
        if not DEVICE.fullmatch(device):
            raise StoreError(f"{path} does not hold a device id; remove it to make a new one")
        return device

    # -- media objects (an ObjectSource for the player) --------------------------------------

    def get(self, key: str) -> bytes | None:
        if not _KEY.fullmatch(key):
            return None
        try:
            return (self.root / OBJECTS / key).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: str, data: bytes) -> None:
        """Objects enter the store only through ``keep``, in a download: a play keeps nothing."""

    def keep(self, key: str, data: bytes) -> None:
        if not _KEY.fullmatch(key):
            raise ValueError(f"{key!r} is not the key of an immutable media object")
        write_atomic(self.root / OBJECTS / key, data, PRIVATE_FILE)

    # -- tracks ------------------------------------------------------------------------------

    def save(self, entry: OfflineTrack) -> None:
        """Make ``entry`` playable (after its objects are kept); replaces an older one, whose
        objects of another version are removed."""
        old = self.track(entry.track_id)
        data = json.dumps(entry.to_json(), indent=1).encode()
        write_atomic(self.root / TRACKS / f"{entry.track_id}.json", data, PRIVATE_FILE)
        if old is not None and old.version != entry.version:
            shutil.rmtree(self.root / OBJECTS / layout.TRACKS / entry.track_id / old.version,
                          ignore_errors=True)  # fmt: skip

    def track(self, track_id: str) -> OfflineTrack | None:
        """The entry of ``track_id``, or None when it is not downloaded."""
        if not layout.TRACK_ID.fullmatch(track_id):
            return None
        path = self.root / TRACKS / f"{track_id}.json"
        try:
            if path.stat().st_size > MAX_ENTRY_BYTES:
                raise StoreError(f"{path} is too big to be a track entry; remove the track")
            return OfflineTrack.from_json(json.loads(path.read_bytes()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, LicenceError) as e:
            raise StoreError(
                f"the entry {path} is damaged ({e}); run 'cadenza offline remove {track_id}' "
                "and add the track again"
            ) from None

    def tracks(self) -> list[OfflineTrack]:
        folder = self.root / TRACKS
        names = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        return [t for t in map(self.track, names) if t is not None]

    def remove(self, track_id: str) -> bool:
        """Forget the track and delete its objects; False when it was not downloaded."""
        if not layout.TRACK_ID.fullmatch(track_id):
            return False
        path = self.root / TRACKS / f"{track_id}.json"
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        shutil.rmtree(self.root / OBJECTS / layout.TRACKS / track_id, ignore_errors=True)
        return True

    # -- the journal of offline plays --------------------------------------------------------

    def journal(self, events: list[PlayEvent]) -> None:
        """Write the events of one play so far (all of one ``play_id``), replacing the last
        write: a play killed mid-way leaves the events it had made."""
        play_ids = {e.play_id for e in events}
        if len(play_ids) != 1:
            raise ValueError("a journal entry holds the events of exactly one play")
        data = json.dumps([e.to_json() for e in events]).encode()
        write_atomic(self.root / EVENTS / f"{play_ids.pop()}.json", data, PRIVATE_FILE)

    def pending(self) -> list[tuple[str, list[PlayEvent]]]:
        """Every play's journaled events, by play id, oldest play first."""
        folder = self.root / EVENTS
        if not folder.is_dir():
            return []
        found = []
        for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns):
            if not _PLAY_ID.fullmatch(path.stem):
                continue
            try:
                info = path.stat()  # each write is a new file (renamed into place)
                stamp = (info.st_ino, info.st_mtime_ns)
                events = [PlayEvent.from_json(doc) for doc in json.loads(path.read_bytes())]
            except FileNotFoundError:
                continue  # settled by another process meanwhile
            except (ValueError, TypeError, PlayEventError) as e:
                raise StoreError(f"the journal {path} is damaged ({e}); move it away") from None
            self._read[path.stem] = stamp
            found.append((path.stem, events))
        return found

    def settle(self, play_ids: list[str]) -> None:
        """The locator took these plays' events (as ``pending`` read them): drop them from the
        journal, unless a play still going on journaled more since, which the next report
        sends again with the rest (the locator drops what it already has by id)."""
        for play_id in play_ids:
            if not _PLAY_ID.fullmatch(play_id):
                continue
            path = self.root / EVENTS / f"{play_id}.json"
            with contextlib.suppress(FileNotFoundError):
                info = path.stat()
                if (info.st_ino, info.st_mtime_ns) == self._read.get(play_id):
                    path.unlink()
