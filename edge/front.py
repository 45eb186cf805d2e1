"""The edge's client port: memory hits answered straight from bytes, everything else by aiohttp.

aiohttp's request machinery costs about as much CPU as the kernel's copy of a 120 KB segment.
So every connection starts in a lean HTTP/1.1 lane that answers at once what it can: GET and
HEAD of a fresh object held in memory, by path token or unsigned where allowed. At the first
request it cannot answer (a miss, a bad token, ``/status``, anything unusual or malformed) it
hands the connection, with every byte it has not consumed, to aiohttp's own protocol, which
serves it from then on. Responses stay in order: what the lane answered was written before the
hand-off. ``parse_head`` is pure; ``Front`` and ``FrontProtocol`` are the shell.
"""

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import cast
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import CIMultiDict

from cadenza import http
from cadenza.tokens import TokenError, split_token_path, verify
from edge import app as edge_app
from edge.access_log import LOGGER, access_record
from edge.answer import entry_answer
from edge.cmcd import from_request

MAX_HEAD = 8192
IDLE_SECONDS = 75.0
_REASONS = {
    200: "OK", 206: "Partial Content", 304: "Not Modified", 412: "Precondition Failed",
    416: "Range Not Satisfiable",
}  # fmt: skip
_BODILESS = (b"content-length", b"transfer-encoding")
_VERSIONS = ("HTTP/1.1", "HTTP/1.0")


@dataclass(frozen=True)
class Head:
    method: str
    target: str
    headers: CIMultiDict[str]
    keep_alive: bool
    http10: bool


def parse_head(raw: bytes) -> Head | None:
    """A GET or HEAD request head without a body, or None for anything else (aiohttp's job)."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    request_line, _, rest = text.partition("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or parts[0] not in ("GET", "HEAD") or parts[2] not in _VERSIONS:
        return None
    headers: CIMultiDict[str] = CIMultiDict()
    for line in rest.split("\r\n") if rest else ():
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or line[0] in " \t":
            return None  # obsolete folding, spaces before the colon: let aiohttp refuse it
        headers.add(name, value.strip())
    if any(name.encode().lower() in _BODILESS for name in headers):
        return None
    http10 = parts[2] == "HTTP/1.0"
    connection = headers.get("Connection", "").lower()
    keep_alive = "keep-alive" in connection if http10 else "close" not in connection
    return Head(parts[0], parts[1], headers, keep_alive, http10)


class Front:
    """Makes the client port's protocols and closes the idle ones when the edge stops."""

    def __init__(self, app: web.Application, server: web.Server) -> None:
        self.app = app
        self.server = server
        self.connections: set[FrontProtocol] = set()
        self._date = (0, "")

    def __call__(self) -> asyncio.Protocol:
        return FrontProtocol(self)

    def close(self) -> None:
        for connection in list(self.connections):
            connection.close()

    def date(self) -> str:
        second = int(time.time())
        if self._date[0] != second:
            self._date = (second, formatdate(second, usegmt=True))
        return self._date[1]

    def answer(self, head: Head, transport: asyncio.WriteTransport) -> bool:
        """Answer ``head`` from memory if it is a fresh hit; False leaves it to aiohttp."""
        started = time.perf_counter()
        app = self.app
        raw_path, _, query = head.target.partition("?")
        if not raw_path.startswith(("/tracks/", "/p/")):
            return False
        settings = app[edge_app.SETTINGS]
        try:
            token, path = split_token_path(raw_path)
            claims = verify(token, settings.token_keys, path, time.time()) if token else None
        except TokenError:
            return False
        key = http.object_key(path)
        if key is None or (claims is None and not settings.allow_unsigned):
            return False
        memory = app[edge_app.MEMORY]
        entry = memory.peek(key)
        now = time.time()
        if entry is None or entry.status != 200 or not entry.stored.fresh(now):
            return False
        if app[edge_app.DENIALS].denied(key, claims.territory if claims else None):
            return False
        memory.get(key)  # the policy hears of the hit
        edge_app.record_hit(app, key)
        app[edge_app.PLAYS].record(key)
        params = dict(parse_qsl(query)) if query else {}
        edge_app.readahead(app, key, path, params, head.headers, claims.acl if claims else None)
        status, headers, body = entry_answer(entry, head.headers, "HIT", now)
        length = len(body) if status in (200, 206) else 0
        sent = 0 if head.method == "HEAD" else length
        lines = [f"HTTP/1.1 {status} {_REASONS[status]}"]
        if "date" not in entry.fields:
            lines.append(f"Date: {self.date()}")
        lines += [f"{name}: {value}" for name, value in headers]
        if status != 304:
            lines.append(f"Content-Length: {length}")
        if head.http10 and head.keep_alive:
            lines.append("Connection: keep-alive")
        elif not head.keep_alive:
            lines.append("Connection: close")
        response_head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if sent:
            transport.writelines((response_head, body))
        else:
            transport.write(response_head)
        metrics = app[edge_app.METRICS]
        metrics.served(status, "HIT")
        metrics.first_byte("HIT", time.perf_counter() - started)
        edge_app.count(app, sent)
        _log(head, raw_path, status, sent, time.perf_counter() - started, params)
        return True


def _log(head: Head, raw_path: str, status: int, nbytes: int, seconds: float,
         params: dict[str, str]) -> None:  # fmt: skip
    logger = logging.getLogger(LOGGER)
    if logger.isEnabledFor(logging.INFO):
        cmcd = from_request(params, head.headers)
        record = access_record(head.method, raw_path, status, nbytes, seconds, "HIT", cmcd)
        logger.info(json.dumps(record, separators=(",", ":")))


class FrontProtocol(asyncio.Protocol):
    """One client connection: in the lean lane until a request needs aiohttp."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.paused = False
        self.idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.front.connections.add(self)
        self._arm()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.paused:
            self._serve()

    def _serve(self) -> None:
        transport = self.transport
        assert transport is not None
        while not self.paused and not transport.is_closing():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    self._hand_off()
                return
            head = parse_head(bytes(self.buffer[:end]))
            if head is None or not self.front.answer(head, transport):
                self._hand_off()
                return
            del self.buffer[: end + 4]
            if not head.keep_alive:
                transport.close()
                return
            self._arm()

    def _hand_off(self) -> None:
        """aiohttp takes the connection over, with the bytes not yet consumed."""
        transport = self.transport
        assert transport is not None
        self._disarm()
        self.front.connections.discard(self)
        handler: Callable[[], asyncio.Protocol] = self.front.server
        protocol = handler()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self.buffer:
            protocol.data_received(bytes(self.buffer))
        self.buffer.clear()

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
        self._disarm()
        self.front.connections.discard(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _arm(self) -> None:
        self._disarm()
        self.idle = asyncio.get_running_loop().call_later(IDLE_SECONDS, self.close)

    def _disarm(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
            self.idle = None
