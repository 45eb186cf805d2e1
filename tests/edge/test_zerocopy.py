"""Hot objects as in-memory files for sendfile: their bytes, their budget, their lifetime."""

import gc
import os

from edge.freshness import CacheControl, Stored
from edge.memory import Entry, make_entry
from edge.zerocopy import SMALLEST, Pages


def entry(size: int, fill: bytes = b"x") -> Entry:
    return make_entry(200, fill * size, (), Stored(3600.0, 0.0, 0.0, CacheControl(max_age=3600)))


def contents(fd: int) -> bytes:
    return os.pread(fd, os.fstat(fd).st_size + 1, 0)


def test_a_file_holds_the_body_and_is_made_once():
    pages = Pages(1 << 20)
    one = entry(SMALLEST, b"a")
    fd = pages.fd(one)
    assert fd is not None and contents(fd) == one.body
    assert pages.fd(one) == fd
    assert (len(pages), pages.bytes) == (1, SMALLEST)
    pages.close()
    assert (len(pages), pages.bytes) == (0, 0)


def test_small_bodies_and_a_zero_budget_are_copied():
    assert Pages(1 << 20).fd(entry(SMALLEST - 1)) is None
    assert Pages(0).fd(entry(SMALLEST)) is None
    assert Pages(SMALLEST - 1).fd(entry(SMALLEST)) is None


def test_the_least_recently_sent_go_first_when_the_budget_is_full():
    pages = Pages(2 * SMALLEST)
    a, b, c = entry(SMALLEST, b"a"), entry(SMALLEST, b"b"), entry(SMALLEST, b"c")
    fd_a = pages.fd(a)
    pages.fd(b)
    assert pages.fd(a) == fd_a  # a is now the more recent
    fd_c = pages.fd(c)
    assert fd_c is not None and contents(fd_c) == c.body
    assert (len(pages), pages.bytes) == (2, 2 * SMALLEST)
    assert pages.fd(a) == fd_a and contents(fd_a) == a.body  # kept; b was closed
    fd_b_again = pages.fd(b)
    assert fd_b_again is not None and contents(fd_b_again) == b.body
    assert pages.bytes <= 2 * SMALLEST
    pages.close()


def test_files_are_bounded_by_count_too():
    pages = Pages(1 << 30, most_files=2)
    entries = [entry(SMALLEST, bytes([65 + i])) for i in range(3)]
    fds = [pages.fd(e) for e in entries]
    assert None not in fds and len(pages) == 2
    assert pages.fd(entries[2]) == fds[2]  # the newest kept, the oldest closed
    assert Pages(1 << 30, most_files=0).fd(entries[0]) is None
    assert Pages(1 << 30).most_files >= 1  # a quarter of this process's descriptors
    pages.close()


def test_an_entry_that_dies_takes_its_file_along():
    pages = Pages(1 << 20)
    one = entry(SMALLEST)
    assert pages.fd(one) is not None
    del one
    gc.collect()
    assert (len(pages), pages.bytes) == (0, 0)
    again = entry(SMALLEST, b"z")  # may reuse the dead one's id: it gets its own bytes
    fd = pages.fd(again)
    assert fd is not None and contents(fd) == again.body
    pages.close()
