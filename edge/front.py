"""The edge's client port: memory hits answered straight from bytes, everything else by aiohttp.

aiohttp's request machinery costs about as much CPU as the kernel's copy of a 120 KB segment.
So every connection starts in a lean HTTP/1.1 lane that answers at once what it can: GET and
HEAD of a fresh object held in memory, by path token or unsigned where allowed. The lane reads
with aiohttp's own parser (llhttp, see ``edge.wire``), so it accepts exactly the bytes aiohttp
accepts. At the first request it cannot answer (a miss, a bad token, ``/status``, a body,
HTTP/1.0, bytes llhttp refuses, an error of its own) it hands the connection, with every byte
from that request on, to aiohttp's own protocol, which answers it (a 400 for refused bytes) and
serves the connection from then on. Responses stay in order: what the lane answered was written
before the hand-off. The lane keeps its own deadlines: a whole request head within
``head_timeout`` (else 408 and close), an idle connection closed after ``keepalive_timeout``.

Request bytes that came twice, as one whole request from a request's start, have their answer
remembered (``Front.replay``): when the same bytes come again, alone in a read, within the
second and while the object, its freshness, the token and the takedowns hold, the lane gives
that answer again without parsing them (llhttp would read them as it did before).
"""

import asyncio
import json
import logging
import math
import os
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from email.utils import formatdate
from typing import NamedTuple, Protocol, cast
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.http import RawRequestMessage

from cadenza.log import get_logger
from edge import app as edge_app
from edge.access_log import LOGGER, access_record
from edge.answer import entry_answer
from edge.cmcd import from_request
from edge.core import Admitted, Refused, admit, serves_from_cache
from edge.keys import EGRESS, FOR_PEERS
from edge.memory import Entry
from edge.send import count_egress
from edge.wire import Head, Limits, head_end, lane_head, request_parser
from edge.zerocopy import Pages

# Bytes the lane holds before it leaves the connection to aiohttp, whose parser keeps its own
# bounds (a head within aiohttp's limits may be larger; aiohttp then reads it).
MOST_BUFFERED = 64 * 1024
ADMISSIONS = 4096  # paths whose admission the lane remembers (a token's check costs an HMAC)
REPLAYS = 1024  # request byte strings whose answer the lane remembers for the second
REPLAYED_BYTES = 4096  # the longest request remembered
_REASONS = {
    200: "OK", 206: "Partial Content", 304: "Not Modified", 412: "Precondition Failed",
    416: "Range Not Satisfiable",
}  # fmt: skip
lane_logger = get_logger("edge.front")


class Sink(Protocol):
    """Where a response goes: the connection's transport, through ``FrontProtocol``."""

    def write(self, data: bytes) -> None: ...

    def writelines(self, chunks: Iterable[bytes]) -> None: ...

    def sendfile(self, head: bytes, body: bytes, fd: int, offset: int, headed: bool) -> None: ...


class Replay(NamedTuple):
    """A hit the lane answered to a request's exact bytes, and what its answer depends on."""

    second: int  # of the clock when it was answered: a clock set back must not stretch ``until``
    generation: int  # of the takedowns
    until: float  # when the answer's Date or Age would change, or its object or token expire
    head: Head
    raw_path: str
    query: str
    admitted: Admitted
    entry: weakref.ref[Entry]  # not kept alive by its replay once memory lets it go
    response_head: bytes


class Front:
    """Makes the client port's protocols and closes the idle ones when the edge stops."""

    def __init__(self, app: web.Application, server: web.Server) -> None:
        self.app = app
        self.server = server
        self.connections: set[FrontProtocol] = set()
        self._date = (0, "", b"")
        # What every hit reads, looked up once (the application is frozen once it runs).
        self.settings = settings = app[edge_app.SETTINGS]
        self.head_timeout = settings.head_timeout
        self.keepalive_timeout = settings.keepalive_timeout
        self.metrics = app[edge_app.METRICS]
        self.memory = app[edge_app.MEMORY]
        self.denials = app[edge_app.DENIALS]
        self.plays = app[edge_app.PLAYS]
        self.pages = Pages(settings.sendfile_bytes)
        self.egress = None if app[FOR_PEERS] else app[EGRESS]  # a peer's answer is not egress
        # Raw path -> its admission, the takedowns' generation it saw, and until when it holds.
        self.admissions: dict[str, tuple[Admitted, int, float]] = {}
        self.replays: dict[bytes, Replay] = {}
        self.seen: set[int] = set()  # hashes of request bytes answered once: twice is remembered
        self.loop = asyncio.get_running_loop()
        handler = server()  # aiohttp's protocol as this server makes it: the lane keeps its limits
        self.limits = Limits(handler.max_line_size, handler.max_field_size, handler.max_headers)

    def __call__(self) -> asyncio.Protocol:
        return FrontProtocol(self)

    def close(self) -> None:
        for connection in list(self.connections):
            connection.close()
        self.pages.close()

    def date(self) -> str:
        return self._dated()[1]

    def _dated(self) -> tuple[int, str, bytes]:
        """This second's Date value, and its header line as bytes."""
        second = int(time.time())
        if self._date[0] != second:
            value = formatdate(second, usegmt=True)
            self._date = (second, value, f"Date: {value}\r\n".encode())
        return self._date

    def answer(self, head: Head, transport: Sink, raw: bytes | None = None) -> bool:
        """Answer ``head`` from memory if it is a fresh hit; False leaves it to aiohttp. ``raw``:
        the request's bytes, when they came alone from the start of a request."""
        started = time.perf_counter()
        raw_path, _, query = head.target.partition("?")
        if not raw_path.startswith(("/tracks/", "/p/")):
            return False
        now = time.time()
        admitted = self._admit(raw_path, now)
        if admitted is None:
            return False  # aiohttp answers the refusal
        entry = self.memory.peek(admitted.key)
        if entry is None or entry.status != 200 or not serves_from_cache(entry, now):
            return False
        fields = head.headers
        if (
            "Range" in fields
            or "If-None-Match" in fields
            or "If-Modified-Since" in fields
            or "If-Range" in fields
            or "If-Match" in fields
        ):
            status, headers, body = entry_answer(entry, head.headers, "HIT", now)
            response_head = self._render(entry, status, headers, len(body), head.keep_alive)
        else:  # the common case: the whole object, its head rendered once per entry
            status, body = 200, entry.body
            response_head = self._plain(entry, now, head.keep_alive)
            if raw is not None and head.keep_alive and len(raw) <= REPLAYED_BYTES:
                self._remember(raw, head, raw_path, query, admitted, entry, response_head, now)
        self._deliver(head, raw_path, query, admitted, entry, status, body, response_head,
                      transport, now, started)  # fmt: skip
        return True

    def replay(self, raw: bytes, transport: Sink) -> bool:
        """Answer the request ``raw`` as the lane answered the same bytes this second, while
        that answer holds; False when there is none (then the bytes go through the parser)."""
        replay = self.replays.get(raw)
        if replay is None:
            return False
        started = time.perf_counter()
        now = time.time()
        entry = replay.entry()
        if (
            int(now) != replay.second
            or now >= replay.until
            or replay.generation != self.denials.generation
            or entry is None
            or self.memory.peek(replay.admitted.key) is not entry
        ):
            del self.replays[raw]
            return False
        self._deliver(replay.head, replay.raw_path, replay.query, replay.admitted, entry, 200,
                      entry.body, replay.response_head, transport, now, started)  # fmt: skip
        return True

    def _remember(
        self, raw: bytes, head: Head, raw_path: str, query: str, admitted: Admitted,
        entry: Entry, response_head: bytes, now: float,
    ) -> None:  # fmt: skip
        """Keep the answer to ``raw`` for ``replay`` while its head (Date, Age) and its object
        and token hold, once the same bytes came before: where every request differs (a
        player's CMCD data), remembering would cost each hit and save none."""
        seen = self.seen
        if len(seen) >= REPLAYS * 4:
            seen.clear()
        fingerprint = hash(raw)
        if fingerprint not in seen:
            seen.add(fingerprint)
            return
        stored = entry.stored
        age = stored.age(now)
        # Until the second ends (Date), the Age's whole seconds tick, the object turns stale or
        # the token expires, whichever comes first.
        until = min(math.floor(now) + 1, now + math.floor(age) + 1 - age, stored.fresh_until())
        if admitted.claims is not None:
            until = min(until, float(admitted.claims.expires))
        if len(self.replays) >= REPLAYS:
            self.replays.clear()
        self.replays[raw] = Replay(
            int(now), self.denials.generation, until, head, raw_path, query, admitted,
            weakref.ref(entry), response_head,
        )  # fmt: skip

    def _deliver(
        self, head: Head, raw_path: str, query: str, admitted: Admitted,
        entry: Entry, status: int, body: bytes, response_head: bytes, transport: Sink,
        now: float, started: float,
    ) -> None:  # fmt: skip
        """Send a hit's answer, and tell the policy, the counts, readahead and the log of it."""
        key = admitted.key
        self.memory.get(key)  # the policy hears of the hit
        app = self.app
        edge_app.record_hit(app, key)
        self.plays.record(key)
        if edge_app.readahead_due(app, key):  # the query is read only then
            edge_app.start_readahead(app, admitted.path, _params(query), head.headers, admitted.acl)
        sent = len(body) if head.method != "HEAD" and status in (200, 206) else 0
        where = self.pages.file(entry, response_head) if sent and status == 200 else None
        if where is not None:
            transport.sendfile(response_head, body, *where)
        elif sent:
            transport.writelines((response_head, body))
        else:
            transport.write(response_head)
        metrics = self.metrics
        metrics.served(status, "HIT")
        metrics.hit_first_byte(time.perf_counter() - started)
        if self.egress is not None:
            count_egress(metrics, self.egress, sent, now)
        _log(head, raw_path, status, sent, time.perf_counter() - started, query)

    def _admit(self, raw_path: str, now: float) -> Admitted | None:
        """``admit``'s answer for ``raw_path``, remembered while no takedown came and its token
        holds; None for a refusal (aiohttp answers it, and words it)."""
        denials = self.denials
        held = self.admissions.get(raw_path)
        if held is not None and held[1] == denials.generation and now < held[2]:
            return held[0]
        settings = self.settings
        admitted = admit(raw_path, settings.token_keys, settings.allow_unsigned, denials, now)
        if isinstance(admitted, Refused):
            return None
        if len(self.admissions) >= ADMISSIONS:
            self.admissions.clear()
        claims = admitted.claims
        until = float(claims.expires) if claims is not None else float("inf")
        self.admissions[raw_path] = (admitted, denials.generation, until)
        return admitted

    def _render(
        self, entry: Entry, status: int, headers: list[tuple[str, str]], length: int,
        keep_alive: bool,
    ) -> bytes:  # fmt: skip
        lines = [f"HTTP/1.1 {status} {_REASONS[status]}"]
        if "date" not in entry.fields:
            lines.append(f"Date: {self.date()}")
        lines += [f"{name}: {value}" for name, value in headers]
        if status != 304:
            lines.append(f"Content-Length: {length if status in (200, 206) else 0}")
        if not keep_alive:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _plain(self, entry: Entry, now: float, keep_alive: bool) -> bytes:
        """The head of a 200 with the whole object: the same lines as ``entry_answer`` gives,
        the fixed ones rendered at the entry's first hit, Date, Age and the rest per answer."""
        fixed = entry.rendered.get("lane")
        if fixed is None:
            _, lines, _ = entry_answer(entry, {}, "HIT", now)
            text = "".join(f"{n}: {v}\r\n" for n, v in lines if n != "Age")
            fixed = entry.rendered["lane"] = text.encode("latin-1")
        date = b"" if "date" in entry.fields else self._dated()[2]
        tail = b"Age: %d\r\nContent-Length: %d\r\n" % (entry.stored.age(now), len(entry.body))
        close = b"" if keep_alive else b"Connection: close\r\n"
        return b"".join((b"HTTP/1.1 200 OK\r\n", date, fixed, tail, close, b"\r\n"))


_access_logger = logging.getLogger(LOGGER)


def _params(query: str) -> dict[str, str]:
    """A request's query parameters (the last of a repeated name), read only when needed: a
    player's CMCD data make it cost more than the rest of a hit."""
    return dict(parse_qsl(query)) if query else {}


def _log(head: Head, raw_path: str, status: int, nbytes: int, seconds: float,
         query: str) -> None:  # fmt: skip
    logger = _access_logger
    if logger.isEnabledFor(logging.INFO):
        cmcd = from_request(_params(query), head.headers)
        record = access_record(head.method, raw_path, status, nbytes, seconds, "HIT", cmcd)
        logger.info(json.dumps(record, separators=(",", ":")))


class FrontProtocol(asyncio.Protocol):
    """One client connection: in the lean lane until a request needs aiohttp."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.parser = request_parser(front.limits)
        # Bytes not yet answered; ``start`` is where the first of them, a request, begins. The
        # parser has read all of them: ``pending`` holds the requests it found there, in order.
        self.buffer = b""
        self.start = 0
        self.pending: deque[RawRequestMessage] = deque()
        self.refused = False  # llhttp refused the bytes after the pending requests
        self.handed_off = False
        self.transport: asyncio.Transport | None = None
        self.fileno = -1  # the socket's, for sendfile
        self.paused = False
        self.wrote = False
        self.loop = front.loop
        self.reading_head = True  # else idle between requests
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        self.fileno = sock.fileno() if sock is not None else -1
        self.front.connections.add(self)
        self._wait(self.loop.time() + self.front.head_timeout)

    def data_received(self, data: bytes) -> None:
        if (
            self.start == len(self.buffer)  # every byte so far answered: a request begins here
            and not self.pending
            and not self.refused
            and not self.paused
            and len(data) <= REPLAYED_BYTES
            and self._replayed(data)
        ):
            return
        if self.start == len(self.buffer):
            self.buffer, self.start = data, 0
        else:
            self.buffer = self.buffer[self.start :] + data
            self.start = 0
        if not self.refused:
            try:
                messages, upgraded, _ = self.parser.feed_data(data)
            except Exception:  # llhttp refuses the bytes (aiohttp answers 400), or a fault
                self.refused = True
            else:
                self.pending.extend(message for message, _ in messages)
                self.refused = upgraded
        if len(self.buffer) > MOST_BUFFERED:
            self._hand_off()
        elif not self.paused:
            self._serve()

    def _serve(self) -> None:
        try:
            self._serve_pending()
        except Exception:  # a fault of the lane's own: aiohttp answers from the next request on
            lane_logger.exception("the lean lane failed; aiohttp takes the connection")
            if not self.handed_off and self.transport and not self.transport.is_closing():
                self._hand_off()

    def _serve_pending(self) -> None:
        transport = self.transport
        assert transport is not None
        pending = self.pending
        while pending and not self.paused:
            if transport.is_closing():  # the client is gone: nothing to answer, nor to hand off
                return
            head = lane_head(pending[0])
            end = -1 if head is None else head_end(self.buffer, self.start)
            # Bytes that hold one whole request and nothing else, as llhttp read them from a
            # request's start, parse the same way when they come again: their answer may too.
            alone = self.start == 0 and end == len(self.buffer) and len(pending) == 1
            if head is None or end < 0 or not self._answer(head, self.buffer if alone else None):
                self._hand_off()
                return
            pending.popleft()
            self.start = end
            self.front.metrics.lane_served()
            if not head.keep_alive:
                transport.close()
                return
        if self.refused and not pending:
            self._hand_off()
            return
        if self.start == len(self.buffer) or pending:
            # Idle, or whole requests waiting for a slow reader: either way the client's move.
            self.reading_head = False
            self._wait(self.loop.time() + self.front.keepalive_timeout)
        elif not self.reading_head:  # a new request head has begun
            self.reading_head = True
            self._wait(self.loop.time() + self.front.head_timeout)

    def _answer(self, head: Head, raw: bytes | None) -> bool:
        """True once the lane wrote the response; False leaves the request to aiohttp."""
        self.wrote = False
        try:
            return self.front.answer(head, self, raw)
        except Exception:
            # aiohttp answers the request, unless the lane's response has gone out already.
            lane_logger.exception("the lean lane failed on a %s request", head.method)
            return self.wrote

    def _replayed(self, data: bytes) -> bool:
        """True once the lane answered ``data``, one request, as it did the same bytes before;
        else nothing was sent, and the bytes go the usual way."""
        transport = self.transport
        assert transport is not None
        if transport.is_closing():
            return False
        self.wrote = False
        try:
            answered = self.front.replay(data, self)
        except Exception:
            lane_logger.exception("the lean lane failed to replay an answer")
            answered = self.wrote
        if not answered:
            return False
        self.buffer, self.start = b"", 0
        metrics = self.front.metrics
        metrics.lane_served()
        metrics.lane_replay()
        self.reading_head = False
        self._wait(self.loop.time() + self.front.keepalive_timeout)
        return True

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.wrote = True
        self.transport.write(data)

    def writelines(self, chunks: Iterable[bytes]) -> None:
        assert self.transport is not None
        self.wrote = True
        self.transport.writelines(chunks)

    def sendfile(self, head: bytes, body: bytes, fd: int, offset: int, headed: bool) -> None:
        """The answer ``head`` + ``body`` from ``fd``, which holds from ``offset`` the body, or
        with ``headed`` the head and the body: by ``sendfile`` as far as the socket takes it now
        (after writing the head when the file lacks it), the rest copied as ``write`` does (and
        sent when the socket drains)."""
        transport = self.transport
        assert transport is not None
        self.wrote = True
        if not headed:
            transport.write(head)
            head = b""
        count = len(head) + len(body)
        sent = 0
        if self.fileno >= 0 and not transport.get_write_buffer_size():
            try:
                sent = os.sendfile(self.fileno, fd, offset, count)
            except OSError:  # full (EAGAIN) or broken: the transport's write copes as ever
                sent = 0
        if sent < len(head):
            transport.write(head[sent:])
            sent = len(head)
        if sent < count:
            rest = sent - len(head)
            transport.write(memoryview(body)[rest:] if rest else body)

    def _hand_off(self) -> None:
        """aiohttp takes the connection over, with the bytes not yet answered."""
        transport = self.transport
        assert transport is not None
        self.handed_off = True
        self._stop_timer()
        self.front.connections.discard(self)
        unanswered = self.buffer[self.start :]
        self.buffer, self.start = b"", 0
        self.pending.clear()
        handler: Callable[[], asyncio.Protocol] = self.front.server
        protocol = handler()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self.paused:  # aiohttp learns that the reader is slow; reading is its call now
            cast(asyncio.BaseProtocol, protocol).pause_writing()
            transport.resume_reading()
        if unanswered:
            protocol.data_received(unanswered)

    def pause_writing(self) -> None:
        """A slow reader: stop answering (and reading) until its socket drains."""
        self.paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
            self._serve()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        self.front.connections.discard(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _wait(self, deadline: float) -> None:
        """Expire at ``deadline``. One timer per connection, moved only when it must fire sooner."""
        self.deadline = deadline
        if self.timer is None or deadline < self.timer_at:
            self._stop_timer()
            self.timer = self.loop.call_at(deadline, self._expire)
            self.timer_at = deadline

    def _expire(self) -> None:
        self.timer = None
        if self.loop.time() < self.deadline:  # moved later since: wait on
            self._wait(self.deadline)
            return
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.reading_head and self.start < len(self.buffer):
            self._request_timeout(transport)
        transport.close()

    def _request_timeout(self, transport: asyncio.Transport) -> None:
        """Part of a head came, not the rest: say so before closing (RFC 9110 15.5.9)."""
        body = json.dumps(
            {"error": f"the request head did not arrive within {self.front.head_timeout:g} s"}
        ).encode()
        transport.write(
            b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        self.front.metrics.served(408, "NONE")
        self.front.metrics.lane_served()

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
