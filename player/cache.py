"""The player's local cache: the immutable media objects of recent plays, on disk, LRU by size.

A track played again, or a rung played twice, comes from the device instead of the network.
Only what never changes is kept: media playlists, init segments and segments under
``tracks/{track_id}/{version}/`` (the content layout's immutable part), keyed by that path
without the play's token or query, since tokens change with every play. Master playlists, which
name the current version, are never cached.

``SizeLru`` is the pure core: which keys to keep under a bound on their total size, least
recently used out first. ``LocalCache`` is its shell on disk: every object is written aside and
renamed into place (``cadenza.fsio``), so a crash never leaves a half-written object readable;
temporary files left by a crash are removed when the cache is opened, and the recency order is
rebuilt from the files' modification times, which a hit refreshes.

Several players may share one folder: each keeps its own view and a file another evicted is a
miss, so the bound holds per process and is restored whenever a player opens the cache.
"""

import contextlib
import os
import re
import time
import urllib.parse
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

from cadenza.fsio import TEMP_PREFIX, write_atomic

MB = 1 << 20
DEFAULT_MAX_BYTES = 512 * MB
OBJECTS = "objects"
PRIVATE_FILE = 0o600
# tracks/{track_id}/{version}/ and one to four path segments of safe names (never "." or "..").
_KEY = re.compile(r"tracks/[a-z0-9]{16}/v[0-9a-f]{12}(?:/[A-Za-z0-9_][A-Za-z0-9._-]{0,127}){1,4}")
_TRACKS = "/tracks/"


class ObjectSource(Protocol):
    """Where a player looks for a media object before the network: the local cache, or the
    offline store of downloaded tracks."""

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, data: bytes) -> None: ...


class Layers:
    """Several sources looked at in order (the offline store, then the local cache); what the
    network brings is kept in the last."""

    def __init__(self, *sources: ObjectSource) -> None:
        if not sources:
            raise ValueError("layers need at least one source")
        self.sources = sources

    def get(self, key: str) -> bytes | None:
        for source in self.sources:
            data = source.get(key)
            if data is not None:
                return data
        return None

    def put(self, key: str, data: bytes) -> None:
        self.sources[-1].put(key, data)


def object_key(url: str) -> str | None:
    """The cache key of a media object's URL: its path from ``tracks/``, without scheme, host,
    token (``/p/{token}``) or query; None when the object is not immutable (a master playlist,
    anything outside ``tracks/{track_id}/{version}/``)."""
    path = urllib.parse.urlsplit(url).path
    start = path.find(_TRACKS)
    if start < 0:
        return None
    key = path[start + 1 :]
    return key if _KEY.fullmatch(key) else None


class SizeLru:
    """Which objects to keep: the most recently used whose sizes add up to at most
    ``max_bytes``. Pure: the shell tells it of uses and additions, and deletes what it evicts."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"a cache bound must not be negative, not {max_bytes}")
        self.max_bytes = max_bytes
        self.total = 0
        self._sizes: OrderedDict[str, int] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._sizes

    def __len__(self) -> int:
        return len(self._sizes)

    def keys(self) -> list[str]:
        """Least recently used first."""
        return list(self._sizes)

    def admits(self, size: int) -> bool:
        """Whether an object of ``size`` bytes may be kept at all (it fits the bound alone)."""
        return 0 <= size <= self.max_bytes

    def touch(self, key: str) -> None:
        """``key`` was used: it is now the most recent."""
        self._sizes.move_to_end(key)

    def add(self, key: str, size: int) -> list[str]:
        """Keep ``key`` (``size`` bytes) as the most recent; the keys evicted to make room,
        least recent first. ValueError when the object is bigger than the whole bound."""
        if not self.admits(size):
            raise ValueError(f"{size} bytes do not fit a cache of {self.max_bytes} bytes")
        self.remove(key)
        self._sizes[key] = size
        self.total += size
        evicted = []
        while self.total > self.max_bytes:
            old, old_size = self._sizes.popitem(last=False)
            self.total -= old_size
            evicted.append(old)
        return evicted

    def remove(self, key: str) -> None:
        size = self._sizes.pop(key, None)
        if size is not None:
            self.total -= size


class LocalCache:
    """Media objects on disk under ``root``, at most ``max_bytes`` in all, LRU by size."""

    def __init__(self, root: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = root
        self.lru = SizeLru(max_bytes)
        self.hits = 0
        self.misses = 0
        self._last_stamp = 0
        self._load()

    def _path(self, key: str) -> Path:
        return self.root / OBJECTS / key

    def _load(self) -> None:
        """Rebuild the recency order from the files, dropping crash leftovers and evicting
        down to the bound (which may have been lowered since)."""
        objects = self.root / OBJECTS
        found = []
        for folder, _dirs, files in os.walk(objects):
            for name in files:
                path = Path(folder, name)
                if name.startswith(TEMP_PREFIX):
                    path.unlink(missing_ok=True)
                    continue
                key = path.relative_to(objects).as_posix()
                with contextlib.suppress(FileNotFoundError):
                    info = path.stat()
                    if _KEY.fullmatch(key):
                        found.append((info.st_mtime_ns, key, info.st_size))
        for stamp, key, size in sorted(found):
            self._last_stamp = max(self._last_stamp, stamp)
            evicted = self.lru.add(key, size) if self.lru.admits(size) else [key]
            for old in evicted:
                self._path(old).unlink(missing_ok=True)

    def get(self, key: str) -> bytes | None:
        """The object, or None on a miss (never stored, evicted, or deleted by another player)."""
        if key not in self.lru:
            self.misses += 1
            return None
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self.lru.remove(key)
            self.misses += 1
            return None
        self.lru.touch(key)
        with contextlib.suppress(OSError):
            self._stamp(path)
        self.hits += 1
        return data

    def _stamp(self, path: Path) -> None:
        """The file's modification time says when it was last used, for the recency order of
        the next player that opens the cache: strictly increasing, finer than the clock."""
        self._last_stamp = max(time.time_ns(), self._last_stamp + 1)
        os.utime(path, ns=(self._last_stamp, self._last_stamp))

    def put(self, key: str, data: bytes) -> None:
        """Keep ``data`` as ``key``, evicting the least recently used beyond the bound; an
        object bigger than the whole bound is not kept."""
        if not _KEY.fullmatch(key):
            raise ValueError(f"{key!r} is not the key of an immutable media object")
        if not self.lru.admits(len(data)):
            return
        write_atomic(self._path(key), data, PRIVATE_FILE)
        self._stamp(self._path(key))
        for old in self.lru.add(key, len(data)):
            self._path(old).unlink(missing_ok=True)
