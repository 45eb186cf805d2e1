"""Hot objects as kernel pages, so the lean lane sends them with ``sendfile`` instead of a copy.

Writing a 120 KB segment from Python copies it into the socket's buffers on every hit, about
half of a memory hit's CPU on loopback. nginx sends from the page cache with ``sendfile``; the
lane does the same with an anonymous in-memory file (``memfd_create``) holding the object's
body, made at the object's first lane hit. The files are bounded by bytes and by count (a
quarter of the process's file descriptors, which connections need more), least recently sent
closed first, and closed when their object leaves memory. Where the platform has no memfd, or
the budget is 0, every hit is a copy as before.
"""

import os
import resource
import weakref
from collections import OrderedDict

from cadenza.serving import MOST_OPEN_FILES
from edge.memory import Entry

SMALLEST = 16 * 1024  # below this a copy costs less than a second system call


class Pages:
    """The memfds of hot memory objects, at most ``budget`` bytes of them."""

    def __init__(self, budget: int, most_files: int | None = None) -> None:
        self.budget = budget if hasattr(os, "memfd_create") else 0
        self.most_files = _descriptors() // 4 if most_files is None else most_files
        self.bytes = 0
        # id(entry) -> (a weak reference to the entry, its memfd, its size); oldest first.
        self._files: OrderedDict[int, tuple[weakref.ref[Entry], int, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._files)

    def fd(self, entry: Entry) -> int | None:
        """A file descriptor whose bytes are ``entry.body``, or None to copy it instead."""
        key = id(entry)
        held = self._files.get(key)
        if held is not None and held[0]() is entry:
            self._files.move_to_end(key)
            return held[1]
        size = len(entry.body)
        if size < SMALLEST or size > self.budget or self.most_files < 1:
            return None
        while self.bytes + size > self.budget or len(self._files) >= self.most_files:
            self._close(next(iter(self._files)))
        try:
            fd = os.memfd_create("cadenza-edge-object", os.MFD_CLOEXEC)
        except OSError:  # out of descriptors or memory: copy, as without the budget
            return None
        try:
            _write_all(fd, entry.body)
        except OSError:
            os.close(fd)
            return None
        # When the entry dies (evicted, refreshed) its file goes too; the callback runs before
        # its id can be reused.
        self._files[key] = (weakref.ref(entry, lambda _: self._close(key)), fd, size)
        self.bytes += size
        return fd

    def _close(self, key: int) -> None:
        held = self._files.pop(key, None)
        if held is not None:
            os.close(held[1])
            self.bytes -= held[2]

    def close(self) -> None:
        for key in list(self._files):
            self._close(key)


def _descriptors() -> int:
    """The process's limit of open files (its soft limit)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else MOST_OPEN_FILES


def _write_all(fd: int, body: bytes) -> None:
    view = memoryview(body)
    while view:
        view = view[os.write(fd, view) :]
