"""The client port's lean lane: memory hits from bytes, every other request handed to aiohttp."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from bench.stub_origin import body_for
from bench.stub_origin import create_app as create_origin
from cadenza.tokens import TokenClaims, sign
from edge.access_log import LOGGER
from edge.app import MEMORY, METRICS, create_app
from edge.front import Front, parse_head
from edge.settings import EdgeSettings
from tests.loopback import serve

SIZE = 50_000
TRACK = "0123456789abcdef"
SEGMENT = f"/tracks/{TRACK}/v0/aac_160/seg_00001.m4s"
KEYS = {"k1": b"front-test-secret-0123456789"}


def test_a_plain_get_or_head_is_parsed():
    head = parse_head(b"GET /tracks/a?CMCD=x HTTP/1.1\r\nHost: e\r\nRange: bytes=0-1")
    assert head is not None
    assert (head.method, head.target, head.keep_alive, head.http10) == (
        "GET", "/tracks/a?CMCD=x", True, False,
    )  # fmt: skip
    assert head.headers["range"] == "bytes=0-1"
    assert parse_head(b"HEAD / HTTP/1.1\r\nConnection: close").keep_alive is False  # type: ignore[union-attr]
    old = parse_head(b"GET / HTTP/1.0\r\nConnection: Keep-Alive")
    assert old is not None and old.keep_alive and old.http10
    assert parse_head(b"GET / HTTP/1.0").keep_alive is False  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "raw",
    [
        b"POST /tracks/a HTTP/1.1\r\nContent-Length: 1",
        b"GET /tracks/a HTTP/1.1\r\nTransfer-Encoding: chunked",
        b"GET /tracks/a HTTP/1.1\r\nContent-Length: 0",
        b"GET /tracks/a HTTP/2.0",
        b"GET  /tracks/a HTTP/1.1",
        b"GET /tracks/a HTTP/1.1\r\nX: a\r\n folded",
        b"GET /tracks/a HTTP/1.1\r\nBad : spaced",
        b"GET /tracks/\xc3\xa9 HTTP/1.1",
        b"garbage",
    ],
)
def test_anything_else_is_left_to_aiohttp(raw: bytes):
    assert parse_head(raw) is None


@dataclass
class Edge:
    host: str
    port: int
    app: web.Application


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    origin_runner, origin_url = await serve(create_origin(SIZE, 0.0))
    settings = EdgeSettings(
        origin=origin_url, cache_dir=tmp_path / "cache", token_keys=KEYS, allow_unsigned=True,
        readahead_seconds=0,
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
        await asyncio.wait_for(runner.cleanup(), 10)
        await asyncio.wait_for(origin_runner.cleanup(), 10)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


async def _read(reader: asyncio.StreamReader, head_request: bool = False) -> Answer:
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = 0 if head_request else int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), 10)
    return Answer(status, headers, body)


def _get(path: str, *extra: str, method: str = "GET", version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {path} {version}", "Host: edge", *extra, "", ""]
    return "\r\n".join(lines).encode()


async def _hit_ready(edge: Edge, path: str = SEGMENT) -> None:
    """Fetch once (a miss), then wait until the object is in memory."""
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(_get(path, "Connection: close"))
    assert (await _read(reader)).status == 200
    writer.close()
    deadline = time.monotonic() + 5
    while edge.app[MEMORY].peek(path.lstrip("/")) is None:
        assert time.monotonic() < deadline, "never stored"
        await asyncio.sleep(0.01)


async def test_a_miss_goes_to_aiohttp_and_a_hit_is_answered_alike_from_memory(edge: Edge):
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(_get(SEGMENT))
    miss = await _read(reader)
    assert (miss.status, miss.headers["x-cache"], miss.body) == (
        200,
        "MISS",
        body_for(SEGMENT, SIZE),
    )
    await _hit_ready(edge)
    writer.write(_get(SEGMENT))  # the same connection, now aiohttp's: still served
    again = await _read(reader)
    assert (again.status, again.headers["x-cache"]) == (200, "HIT")
    writer.close()
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(_get(SEGMENT))
    lean = await _read(reader)
    writer.close()
    assert (lean.status, lean.body) == (200, body_for(SEGMENT, SIZE))
    for name in ("etag", "cache-control", "content-type", "x-cache", "accept-ranges",
                 "access-control-allow-origin", "age", "date"):  # fmt: skip
        assert name in lean.headers, name
        if name not in ("date", "age"):
            assert lean.headers[name] == again.headers[name], name


async def test_pipelined_requests_are_answered_in_order_across_the_hand_off(edge: Edge):
    await _hit_ready(edge)
    other = SEGMENT.replace("00001", "00002")
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(_get(SEGMENT) + _get(SEGMENT, method="HEAD") + _get(other) + _get("/status"))
    first, head, miss, status = (
        await _read(reader), await _read(reader, head_request=True), await _read(reader),
        await _read(reader),
    )  # fmt: skip
    writer.close()
    assert (first.status, first.headers["x-cache"], first.body) == (
        200,
        "HIT",
        body_for(SEGMENT, SIZE),
    )
    assert (head.status, head.headers["content-length"], head.body) == (200, str(SIZE), b"")
    assert (miss.status, miss.headers["x-cache"], miss.body) == (200, "MISS", body_for(other, SIZE))
    assert status.status == 200 and b'"healthy": true' in status.body


async def test_conditional_and_range_hits_from_memory(edge: Edge):
    await _hit_ready(edge)
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(_get(SEGMENT))
    etag = (await _read(reader)).headers["etag"]
    writer.write(_get(SEGMENT, f"If-None-Match: {etag}"))
    not_modified = await _read(reader)
    writer.write(_get(SEGMENT, "Range: bytes=10-19"))
    part = await _read(reader)
    writer.write(_get(SEGMENT, f"Range: bytes={SIZE}-"))
    unsatisfiable = await _read(reader)
    writer.close()
    assert (not_modified.status, not_modified.body) == (304, b"")
    assert (part.status, part.body) == (206, body_for(SEGMENT, SIZE)[10:20])
    assert part.headers["content-range"] == f"bytes 10-19/{SIZE}"
    assert (unsatisfiable.status, unsatisfiable.headers["content-range"]) == (
        416,
        f"bytes */{SIZE}",
    )


async def test_tokens_are_checked_in_the_lean_lane_and_refusals_come_from_aiohttp(edge: Edge):
    await _hit_ready(edge)
    claims = TokenClaims(f"/tracks/{TRACK}/", int(time.time()) + 60, "k1", "FR")
    token = sign(claims, KEYS["k1"])
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(_get(f"/p/{token}{SEGMENT}"))
    signed = await _read(reader)
    writer.write(_get(f"/p/{tampered}{SEGMENT}"))
    refused = await _read(reader)
    writer.close()
    assert (signed.status, signed.headers["x-cache"]) == (200, "HIT")
    assert refused.status == 403 and b"token refused" in refused.body


async def test_http_1_0_closes_and_bad_requests_get_aiohttp_s_400(edge: Edge):
    await _hit_ready(edge)
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(_get(SEGMENT, version="HTTP/1.0"))
    answer = await _read(reader)
    assert answer.status == 200 and answer.headers["connection"] == "close"
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the edge
    writer.close()
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(b"GET  /tracks/x HTTP/1.1\r\n\r\n")
    assert (await _read(reader)).status == 400
    writer.close()


async def test_lean_hits_are_counted_and_logged(edge: Edge, caplog: pytest.LogCaptureFixture):
    await _hit_ready(edge)
    caplog.set_level(logging.INFO, logger=LOGGER)
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(_get(SEGMENT + "?CMCD=sid%3D%22s1%22"))
    assert (await _read(reader)).status == 200
    writer.close()
    registry = edge.app[METRICS].registry
    assert (
        registry.get_sample_value("cadenza_edge_requests_total", {"status": "200", "cache": "HIT"})
        == 1.0
    )
    assert registry.get_sample_value("cadenza_edge_bytes_served_total") >= 2 * SIZE
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert any('"cache":"HIT"' in line and '"sid":"s1"' in line for line in lines)
