"""Hot objects as in-memory files for sendfile: their bytes, their budget, their lifetime."""

import gc
import os

from edge.freshness import CacheControl, Stored
from edge.memory import Entry, make_entry
from edge.zerocopy import REWRITE_AFTER, SMALLEST, Pages

HEAD = b"HTTP/1.1 200 OK\r\nAge: 0\r\n\r\n"


def entry(size: int, fill: bytes = b"x") -> Entry:
    return make_entry(200, fill * size, (), Stored(3600.0, 0.0, 0.0, CacheControl(max_age=3600)))


def contents(fd: int) -> bytes:
    return os.pread(fd, os.fstat(fd).st_size + 1, 0)


def fd_of(pages: Pages, one: Entry, head: bytes = HEAD) -> int | None:
    where = pages.file(one, head)
    return None if where is None else where[0]


def test_a_file_holds_the_head_and_the_body_and_is_made_once():
    pages = Pages(1 << 20)
    one = entry(SMALLEST, b"a")
    where = pages.file(one, HEAD)
    assert where is not None and where[1:] == (0, True)
    assert contents(where[0]) == HEAD + one.body
    assert pages.file(one, HEAD) == where
    assert (len(pages), pages.bytes) == (1, len(HEAD) + SMALLEST)
    pages.close()
    assert (len(pages), pages.bytes) == (0, 0)


def test_another_head_sends_the_body_alone_until_the_file_is_worth_rewriting():
    pages = Pages(1 << 20)
    one = entry(SMALLEST, b"a")
    fd = fd_of(pages, one)
    later = HEAD.replace(b"Age: 0", b"Age: 1")
    for _ in range(REWRITE_AFTER - 1):  # the file's first answer was one
        assert pages.file(one, later) == (fd, len(HEAD), False)
    assert os.pread(fd, SMALLEST, len(HEAD)) == one.body
    rewritten = pages.file(one, later)
    assert rewritten is not None and rewritten[1:] == (0, True)
    assert contents(rewritten[0]) == later + one.body
    assert (len(pages), pages.bytes) == (1, len(later) + SMALLEST)  # the old file is closed
    assert pages.file(one, later) == rewritten
    pages.close()


def test_small_bodies_and_a_zero_budget_are_copied():
    assert Pages(1 << 20).file(entry(SMALLEST - 1), HEAD) is None
    assert Pages(0).file(entry(SMALLEST), HEAD) is None
    assert Pages(SMALLEST + len(HEAD) - 1).file(entry(SMALLEST), HEAD) is None


def test_the_least_recently_sent_go_first_when_the_budget_is_full():
    pages = Pages(2 * (SMALLEST + len(HEAD)))
    a, b, c = entry(SMALLEST, b"a"), entry(SMALLEST, b"b"), entry(SMALLEST, b"c")
    fd_a = fd_of(pages, a)
    fd_of(pages, b)
    assert fd_of(pages, a) == fd_a  # a is now the more recent
    fd_c = fd_of(pages, c)
    assert fd_c is not None and contents(fd_c) == HEAD + c.body
    assert (len(pages), pages.bytes) == (2, 2 * (SMALLEST + len(HEAD)))
    assert fd_of(pages, a) == fd_a and contents(fd_a) == HEAD + a.body  # kept; b was closed
    fd_b_again = fd_of(pages, b)
    assert fd_b_again is not None and contents(fd_b_again) == HEAD + b.body
    assert pages.bytes <= 2 * (SMALLEST + len(HEAD))
    pages.close()


def test_files_are_bounded_by_count_too():
    pages = Pages(1 << 30, most_files=2)
    entries = [entry(SMALLEST, bytes([65 + i])) for i in range(3)]
    fds = [fd_of(pages, e) for e in entries]
    assert None not in fds and len(pages) == 2
    assert fd_of(pages, entries[2]) == fds[2]  # the newest kept, the oldest closed
    assert Pages(1 << 30, most_files=0).file(entries[0], HEAD) is None
    assert Pages(1 << 30).most_files >= 1  # a quarter of this process's descriptors
    pages.close()


def test_an_entry_that_dies_takes_its_file_along():
    pages = Pages(1 << 20)
    one = entry(SMALLEST)
    assert fd_of(pages, one) is not None
    del one
    gc.collect()
    assert (len(pages), pages.bytes) == (0, 0)
    again = entry(SMALLEST, b"z")  # may reuse the dead one's id: it gets its own bytes
    fd = fd_of(pages, again)
    assert fd is not None and contents(fd) == HEAD + again.body
    pages.close()
