"""The client port's lean lane: memory hits from bytes, every other request handed to aiohttp.

Every test says who answered: the lane's own count (``lane_requests`` in /status,
``cadenza_edge_lane_requests_total``) moves only for responses the lane wrote.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bench.stub_origin import body_for
from bench.stub_origin import create_app as create_origin
from cadenza.tokens import TokenClaims, sign
from edge.access_log import LOGGER
from edge.app import MEMORY, METRICS, create_app
from edge.front import Front
from edge.settings import EdgeSettings
from tests.loopback import serve

SIZE = 50_000
TRACK = "0123456789abcdef"
SEGMENT = f"/tracks/{TRACK}/v0/aac_160/seg_00001.m4s"
KEYS = {"k1": b"front-test-secret-0123456789"}
WAIT = 10.0  # seconds any one read may take before the test fails


@dataclass
class Edge:
    host: str
    port: int
    app: web.Application

    @property
    def lane(self) -> int:
        """Responses the lane wrote so far."""
        return int(self.app[METRICS].lane_answered)


@contextlib.asynccontextmanager
async def running_edge(tmp_path: Path, size: int = SIZE, **overrides: Any) -> AsyncIterator[Edge]:
    """An edge app behind the lane on an ephemeral port, with the stand-in origin behind it."""
    origin_runner, origin_url = await serve(create_origin(size, 0.0))
    settings = EdgeSettings(
        origin=origin_url, cache_dir=tmp_path / "cache", token_keys=KEYS, allow_unsigned=True,
        readahead_seconds=0, preposition_interval=0, **overrides,
    )  # fmt: skip
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    assert runner.server is not None
    front = Front(app, runner.server)
    server = await asyncio.get_running_loop().create_server(front, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    try:
        yield Edge(host, port, app)
    finally:
        server.close()
        front.close()
        await asyncio.wait_for(runner.cleanup(), WAIT)
        await asyncio.wait_for(origin_runner.cleanup(), WAIT)


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    async with running_edge(tmp_path) as running:
        yield running


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


async def read_answer(reader: asyncio.StreamReader, head_request: bool = False) -> Answer:
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = 0 if head_request else int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), WAIT)
    return Answer(status, headers, body)


def request(path: str, *extra: str, method: str = "GET", version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {path} {version}", "Host: edge", *extra, "", ""]
    return "\r\n".join(lines).encode()


async def hit_ready(edge: Edge, path: str = SEGMENT) -> None:
    """Fetch once (a miss, aiohttp's), then wait until the object is in memory."""
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(request(path, "Connection: close"))
    assert (await read_answer(reader)).status == 200
    writer.close()
    deadline = time.monotonic() + WAIT
    while edge.app[MEMORY].peek(path.lstrip("/")) is None:
        assert time.monotonic() < deadline, "never stored"
        await asyncio.sleep(0.01)


async def closed(reader: asyncio.StreamReader) -> bool:
    """True once the edge has closed the connection (and sent nothing more)."""
    return await asyncio.wait_for(reader.read(), WAIT) == b""


async def test_a_miss_goes_to_aiohttp_and_a_hit_is_answered_alike_from_memory(edge: Edge):
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(request(SEGMENT))
    miss = await read_answer(reader)
    assert (miss.status, miss.headers["x-cache"], miss.body) == (
        200,
        "MISS",
        body_for(SEGMENT, SIZE),
    )
    await hit_ready(edge)
    lane = edge.lane
    writer.write(request(SEGMENT))  # the same connection, now aiohttp's: still served
    again = await read_answer(reader)
    assert (again.status, again.headers["x-cache"]) == (200, "HIT")
    writer.close()
    assert edge.lane == lane
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(request(SEGMENT))
    lean = await read_answer(reader)
    writer.close()
    assert edge.lane == lane + 1
    assert (lean.status, lean.body) == (200, body_for(SEGMENT, SIZE))
    for name in ("etag", "cache-control", "content-type", "x-cache", "accept-ranges",
                 "access-control-allow-origin", "age", "date"):  # fmt: skip
        assert name in lean.headers, name
        if name not in ("date", "age"):
            assert lean.headers[name] == again.headers[name], name


async def test_pipelined_requests_are_answered_in_order_across_the_hand_off(edge: Edge):
    await hit_ready(edge)
    other = SEGMENT.replace("00001", "00002")
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(
        request(SEGMENT) + b"\r\n" + request(SEGMENT, method="HEAD") + request(other)
        + request("/status")
    )  # fmt: skip
    first, head, miss, status = (
        await read_answer(reader), await read_answer(reader, head_request=True),
        await read_answer(reader), await read_answer(reader),
    )  # fmt: skip
    writer.close()
    assert (first.status, first.headers["x-cache"], first.body) == (
        200,
        "HIT",
        body_for(SEGMENT, SIZE),
    )
    assert (head.status, head.headers["content-length"], head.body) == (200, str(SIZE), b"")
    assert (miss.status, miss.headers["x-cache"], miss.body) == (200, "MISS", body_for(other, SIZE))
    assert status.status == 200 and b'"lane_requests": 2' in status.body
    assert edge.lane == 2  # the hit and the HEAD; the miss and /status were aiohttp's


async def test_conditional_and_range_hits_from_memory(edge: Edge):
    await hit_ready(edge)
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(request(SEGMENT))
    etag = (await read_answer(reader)).headers["etag"]
    writer.write(request(SEGMENT, f"If-None-Match: {etag}"))
    not_modified = await read_answer(reader)
    writer.write(request(SEGMENT, "Range: bytes=10-19"))
    part = await read_answer(reader)
    writer.write(request(SEGMENT, f"Range: bytes={SIZE}-"))
    unsatisfiable = await read_answer(reader)
    writer.close()
    assert (not_modified.status, not_modified.body) == (304, b"")
    assert (part.status, part.body) == (206, body_for(SEGMENT, SIZE)[10:20])
    assert part.headers["content-range"] == f"bytes 10-19/{SIZE}"
    assert (unsatisfiable.status, unsatisfiable.headers["content-range"]) == (
        416,
        f"bytes */{SIZE}",
    )
    assert edge.lane == 4


async def test_tokens_are_checked_in_the_lean_lane_and_refusals_come_from_aiohttp(edge: Edge):
    await hit_ready(edge)
    claims = TokenClaims(f"/tracks/{TRACK}/", int(time.time()) + 60, "k1", "FR")
    token = sign(claims, KEYS["k1"])
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(request(f"/p/{token}{SEGMENT}"))
    signed = await read_answer(reader)
    assert edge.lane == 1
    writer.write(request(f"/p/{tampered}{SEGMENT}"))
    refused = await read_answer(reader)
    writer.close()
    assert (signed.status, signed.headers["x-cache"]) == (200, "HIT")
    assert refused.status == 403 and b"token refused" in refused.body
    assert edge.lane == 1


async def test_connection_close_is_honoured_by_the_lane(edge: Edge):
    await hit_ready(edge)
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(request(SEGMENT, "Connection: close"))
    answer = await read_answer(reader)
    assert answer.status == 200 and answer.headers["connection"] == "close"
    assert await closed(reader)
    writer.close()
    assert edge.lane == 1


async def test_http_1_0_is_left_to_aiohttp_which_closes_after_it(edge: Edge):
    await hit_ready(edge)
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(request(SEGMENT, version="HTTP/1.0"))
    answer = await read_answer(reader)
    assert (answer.status, answer.headers["x-cache"]) == (200, "HIT")
    assert await closed(reader)
    writer.close()
    assert edge.lane == 0


# Requests llhttp refuses, which the hand-written lane used to accept (the first hung 75 s).
MALFORMED = {
    "bare LF line ends": b"GET %s HTTP/1.1\nHost: edge\n\n",
    "LF inside a value": b"GET %s HTTP/1.1\r\nHost: edge\r\nX: a\nGET /status HTTP/1.1\r\n\r\n",
    "CR inside a value": b"GET %s HTTP/1.1\r\nHost: edge\r\nX: a\rb\r\n\r\n",
    "NUL inside a value": b"GET %s HTTP/1.1\r\nHost: edge\r\nX: a\x00b\r\n\r\n",
    "DEL inside a value": b"GET %s HTTP/1.1\r\nHost: edge\r\nX: a\x7fb\r\n\r\n",
    "a name that is no token": b"GET %s HTTP/1.1\r\nHost: edge\r\nX(y): a\r\n\r\n",
    "a space before the colon": b"GET %s HTTP/1.1\r\nHost: edge\r\nX : a\r\n\r\n",
    "obsolete line folding": b"GET %s HTTP/1.1\r\nHost: edge\r\nX: a\r\n b\r\n\r\n",
    "a control character in the target": b"GET %s\x01 HTTP/1.1\r\nHost: edge\r\n\r\n",
    "no Host": b"GET %s HTTP/1.1\r\n\r\n",
    "two Hosts": b"GET %s HTTP/1.1\r\nHost: edge\r\nHost: other\r\n\r\n",
    "two Content-Lengths": b"GET %s HTTP/1.1\r\nHost: edge\r\nContent-Length: 0\r\n"
    b"Content-Length: 0\r\n\r\n",
    "a value over aiohttp's limit": b"GET %s HTTP/1.1\r\nHost: edge\r\nX: "
    + b"a" * 9000
    + b"\r\n\r\n",
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_requests_get_aiohttp_s_400_at_once_and_one_answer_only(
    edge: Edge, raw: bytes
):
    await hit_ready(edge)
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(request(SEGMENT))
    hit = await read_answer(reader)
    writer.write(raw.replace(b"%s", SEGMENT.encode()))
    refused = await read_answer(reader)
    assert (hit.status, refused.status) == (200, 400)
    assert await closed(reader)  # nothing after the 400: no second request was read
    writer.close()
    assert edge.lane == 1


async def test_an_over_size_head_in_pieces_gets_a_400(edge: Edge):
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(f"GET {SEGMENT} HTTP/1.1\r\nHost: edge\r\nX: ".encode())
    for _ in range(10):
        writer.write(b"a" * 1000)
        await writer.drain()
    writer.write(b"\r\n\r\n")
    assert (await read_answer(reader)).status == 400
    assert await closed(reader)
    writer.close()


async def test_a_slow_reader_gets_every_pipelined_answer_in_order(edge: Edge):
    other = SEGMENT.replace("00001", "00003")
    await hit_ready(edge)
    await hit_ready(edge, other)
    lane = edge.lane
    paths = [SEGMENT, other] * 40  # 4 MB of answers to one write: the lane must pause
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(b"".join(request(path) for path in paths))
    bodies = [(await read_answer(reader)).body for _ in paths]
    writer.close()
    assert bodies == [body_for(path, SIZE) for path in paths]
    assert edge.lane == lane + len(paths)


async def test_an_incomplete_head_gets_408_once_head_timeout_passes(tmp_path: Path):
    async with running_edge(tmp_path, head_timeout=0.2) as edge:
        reader, writer = await asyncio.open_connection(edge.host, edge.port)
        writer.write(f"GET {SEGMENT} HTTP/1.1\r\nHost: ed".encode())
        answer = await read_answer(reader)
        assert (answer.status, answer.headers["connection"]) == (408, "close")
        assert b"did not arrive within 0.2 s" in answer.body
        assert await closed(reader)
        writer.close()
        silent_reader, silent = await asyncio.open_connection(edge.host, edge.port)
        assert await closed(silent_reader)  # no request at all: closed without a word
        silent.close()


async def test_an_idle_connection_is_closed_after_keepalive_timeout(tmp_path: Path):
    async with running_edge(tmp_path, keepalive_timeout=0.2) as edge:
        await hit_ready(edge)
        reader, writer = await asyncio.open_connection(edge.host, edge.port)
        writer.write(request(SEGMENT))
        assert (await read_answer(reader)).status == 200
        assert await closed(reader)
        writer.close()
        assert edge.lane == 1


async def test_lean_hits_are_counted_and_logged(edge: Edge, caplog: pytest.LogCaptureFixture):
    await hit_ready(edge)
    caplog.set_level(logging.INFO, logger=LOGGER)
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(request(SEGMENT + "?CMCD=sid%3D%22s1%22"))
    assert (await read_answer(reader)).status == 200
    writer.write(request("/status"))
    status = await read_answer(reader)
    writer.close()
    assert b'"lane_requests": 1' in status.body and b'"hits": 1' in status.body
    registry = edge.app[METRICS].registry
    assert registry.get_sample_value("cadenza_edge_lane_requests_total") == 1.0
    assert (
        registry.get_sample_value("cadenza_edge_requests_total", {"status": "200", "cache": "HIT"})
        == 1.0
    )
    assert registry.get_sample_value("cadenza_edge_bytes_served_total") >= 2 * SIZE
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert any('"cache":"HIT"' in line and '"sid":"s1"' in line for line in lines)
