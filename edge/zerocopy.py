"""Hot objects as kernel pages, so the lean lane sends them with ``sendfile`` instead of a copy.

Writing a 120 KB segment from Python copies it into the socket's buffers on every hit, about
half of a memory hit's CPU on loopback. nginx sends from the page cache with ``sendfile``; the
lane does the same with an anonymous in-memory file (``memfd_create``) holding the object's
body, made at the object's first lane hit.

The file holds a response head before the body: the head of the answer it was written for.
While the lane's answers carry the same head (Date and Age change once a second), one
``sendfile`` sends the whole answer; otherwise the lane writes the head and sends the body from
the file, two system calls and two TCP sends where one does. A file is written again, with the
new head, once it has served ``REWRITE_AFTER`` answers: a hot object, hit many times a second,
costs one rewrite a second, and an object hit now and then never pays for one. Files are never
changed once written, so the pages of an answer still in flight stay as they were sent.

The files are bounded by bytes and by count (a quarter of the process's file descriptors,
which connections need more), least recently sent closed first, and closed when their object
leaves memory. Where the platform has no memfd, or the budget is 0, every hit is a copy as
before.
"""

import os
import resource
import weakref
from collections import OrderedDict
from dataclasses import dataclass

from cadenza.serving import MOST_OPEN_FILES
from edge.memory import Entry

SMALLEST = 16 * 1024  # below this a copy costs less than a second system call
# Answers a file serves before a changed head is worth writing it again: a rewrite (a copy of
# the body and three system calls) costs about what a few two-call answers lose.
REWRITE_AFTER = 8


@dataclass(slots=True)
class _File:
    entry: weakref.ref[Entry]
    fd: int
    head: bytes  # the bytes before the body
    size: int  # of the head and the body
    answers: int = 1  # sent from this file, the one it was written for included


class Pages:
    """The memfds of hot memory objects, at most ``budget`` bytes of them."""

    def __init__(self, budget: int, most_files: int | None = None) -> None:
        self.budget = budget if hasattr(os, "memfd_create") else 0
        self.most_files = _descriptors() // 4 if most_files is None else most_files
        self.bytes = 0
        # id(entry) -> its file; least recently sent first.
        self._files: OrderedDict[int, _File] = OrderedDict()

    def __len__(self) -> int:
        return len(self._files)

    def file(self, entry: Entry, head: bytes) -> tuple[int, int, bool] | None:
        """Where to send the answer ``head`` + ``entry.body`` from: a file descriptor, the
        offset to send from and whether the bytes there begin with ``head`` (else they are the
        body alone, and the head goes first by a write). None: copy the answer instead."""
        key = id(entry)
        held = self._files.get(key)
        if held is not None and held.entry() is entry:
            self._files.move_to_end(key)
            held.answers += 1
            if held.head == head:
                return held.fd, 0, True
            if held.answers <= REWRITE_AFTER:
                return held.fd, len(held.head), False
            self._close(key)  # hot: worth a file that begins with the new head
        fd = self._write(entry, head)
        return None if fd is None else (fd, 0, True)

    def _write(self, entry: Entry, head: bytes) -> int | None:
        key = id(entry)
        size = len(head) + len(entry.body)
        if len(entry.body) < SMALLEST or size > self.budget or self.most_files < 1:
            return None
        while self.bytes + size > self.budget or len(self._files) >= self.most_files:
            self._close(next(iter(self._files)))
        try:
            fd = os.memfd_create("cadenza-edge-object", os.MFD_CLOEXEC)
        except OSError:  # out of descriptors or memory: copy, as without the budget
            return None
        try:
            _write_all(fd, head)
            _write_all(fd, entry.body)
        except OSError:
            os.close(fd)
            return None
        # When the entry dies (evicted, refreshed) its file goes too; the callback runs before
        # its id can be reused.
        self._files[key] = _File(weakref.ref(entry, lambda _: self._close(key)), fd, head, size)
        self.bytes += size
        return fd

    def _close(self, key: int) -> None:
        held = self._files.pop(key, None)
        if held is not None:
            os.close(held.fd)
            self.bytes -= held.size

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
