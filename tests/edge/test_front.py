"""The client port's lean lane: memory hits from bytes, every other request handed to aiohttp.

Every test says who answered: the lane's own count (``lane_requests`` in /status,
``cadenza_edge_lane_requests_total``) moves only for responses the lane wrote.
"""

import asyncio
import contextlib
import hashlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvloop
from aiohttp import web
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bench.stub_origin import body_for
from bench.stub_origin import create_app as create_origin
from cadenza.events import TAKEDOWN, Event
from cadenza.tokens import TokenClaims, sign
from edge.access_log import LOGGER
from edge.app import DENIALS, MEMORY, METRICS, create_app
from edge.front import Front
from edge.settings import EdgeSettings
from edge.zerocopy import REWRITE_AFTER
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
    front: Front

    @property
    def lane(self) -> int:
        """Responses the lane wrote so far."""
        return int(self.app[METRICS].lane_answered)


@contextlib.asynccontextmanager
async def running_edge(
    tmp_path: Path, size: int = SIZE, origin: web.Application | None = None, **overrides: Any
) -> AsyncIterator[Edge]:
    """An edge app behind the lane on an ephemeral port, with ``origin`` (by default the
    stand-in origin) behind it."""
    origin_runner, origin_url = await serve(origin or create_origin(size, 0.0))
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
        yield Edge(host, port, app, front)
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


async def next_second(past: float = 0.05) -> None:
    """Sleep until ``past`` seconds into the next second of the clock."""
    now = time.time()
    await asyncio.sleep(int(now) + 1 + past - now)


async def replayed(
    edge: Edge,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, list[Answer]]:
    """A connection that asked for SEGMENT three times at the start of a second: parsed
    twice, then answered from the lane's replay."""
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    await next_second()
    answers = []
    for _ in range(3):
        writer.write(request(SEGMENT))
        answers.append(await read_answer(reader))
    return reader, writer, answers


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


async def test_a_takedown_ends_lane_answers_at_once(edge: Edge):
    """The lane remembers each path's admission and the answers to repeated bytes, but not
    across a takedown: the object still held in memory is refused by the next request (aiohttp
    answers the 410)."""
    await hit_ready(edge)
    reader, writer, answers = await replayed(edge)
    served = [a.status for a in answers]
    edge.app[DENIALS].apply([Event(7, TAKEDOWN, TRACK)])  # recorded, not yet purged
    assert edge.app[MEMORY].peek(SEGMENT.lstrip("/")) is not None
    writer.write(request(SEGMENT))
    refused = await read_answer(reader)
    writer.close()
    assert (served, refused.status) == ([200, 200, 200], 410)
    assert (edge.lane, edge.app[METRICS].lane_replayed) == (3, 1)


async def test_a_token_that_expires_is_refused_by_the_next_request(edge: Edge):
    await hit_ready(edge)
    expires = int(time.time()) + 2
    token = sign(TokenClaims(f"/tracks/{TRACK}/", expires, "k1", "FR"), KEYS["k1"])
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(request(f"/p/{token}{SEGMENT}"))
    served = await read_answer(reader)
    await asyncio.sleep(max(0.0, expires - time.time()) + 0.05)
    writer.write(request(f"/p/{token}{SEGMENT}"))
    refused = await read_answer(reader)
    writer.close()
    assert (served.status, refused.status) == (200, 403)
    assert b"expired" in refused.body
    assert edge.lane == 1


async def test_the_same_request_bytes_within_a_second_get_the_same_answer_unparsed(edge: Edge):
    """wrk, retries, players of one app: bytes that came twice are remembered, and answered
    again as then (the replay count says so) within the second. Bytes that differ, or come
    with more, are parsed."""
    await hit_ready(edge)
    metrics = edge.app[METRICS]
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    await next_second()
    answers, replays = [], []
    for raw in (
        request(SEGMENT), request(SEGMENT), request(SEGMENT),  # parsed twice, then replayed
        request(SEGMENT, "Accept: */*"),  # other bytes: parsed
        request(SEGMENT) + request(SEGMENT),  # two requests in one read: parsed
        request(SEGMENT),  # replayed
    ):  # fmt: skip
        writer.write(raw)
        answers += [await read_answer(reader) for _ in range(raw.count(b"GET"))]
        replays.append(metrics.lane_replayed)
    await next_second()
    writer.write(request(SEGMENT))  # a new second (a new Date or Age, maybe): parsed again
    later = await read_answer(reader)
    writer.close()
    assert replays == [0, 0, 1, 1, 1, 2]
    assert edge.lane == len(answers) + 1 == 8
    assert all(a.status == 200 and a.body == body_for(SEGMENT, SIZE) for a in [*answers, later])
    first, *again = [a.headers for i, a in enumerate(answers) if i in (0, 1, 2, 6)]
    assert all(headers == first for headers in again)
    assert metrics.lane_replayed == 2
    assert edge.app[METRICS].registry.get_sample_value("cadenza_edge_lane_replays_total") == 2.0


async def test_an_object_gone_from_memory_is_not_replayed(edge: Edge):
    await hit_ready(edge)
    reader, writer, answers = await replayed(edge)
    edge.app[MEMORY].remove(SEGMENT.lstrip("/"))  # evicted, purged or replaced
    writer.write(request(SEGMENT))
    answers.append(await read_answer(reader))
    writer.close()
    assert all(a.status == 200 and a.body == body_for(SEGMENT, SIZE) for a in answers)
    assert (edge.lane, edge.app[METRICS].lane_replayed) == (3, 1)  # then aiohttp's, from disk


def aging_origin(lifetime: int) -> web.Application:
    """An origin whose segments are fresh for ``lifetime`` seconds less the ``Age: 1`` they
    come with, so that they turn stale inside a second, not at its start as ``Date`` would."""

    async def segment(request: web.Request) -> web.Response:
        return web.Response(
            body=body_for(request.path, SIZE),
            headers={"Cache-Control": f"max-age={lifetime}", "Age": "1", "ETag": '"v1"'},
        )

    app = web.Application()
    app.router.add_get("/tracks/{tail:.+}", segment)
    return app


async def test_a_replayed_answer_ends_when_its_object_turns_stale(tmp_path: Path):
    async with running_edge(tmp_path, origin=aging_origin(3)) as edge:
        await next_second(0.1)
        await hit_ready(edge)
        until = edge.app[MEMORY].peek(SEGMENT.lstrip("/")).stored.fresh_until()
        assert 0.05 < until % 1 < 0.6, "the object turns stale inside a second"
        await asyncio.sleep(int(until) + 0.02 - time.time())
        reader, writer = await asyncio.open_connection(edge.host, edge.port)
        parsed = []
        for _ in range(3):  # parsed twice, then replayed
            writer.write(request(SEGMENT))
            parsed.append(await read_answer(reader))
        assert edge.app[METRICS].lane_replayed == 1 and time.time() < until
        await asyncio.sleep(until + 0.02 - time.time())  # the same second, now stale
        writer.write(request(SEGMENT))
        after = await read_answer(reader)
        writer.close()
        assert [a.headers["x-cache"] for a in parsed] == ["HIT"] * 3
        assert after.headers["x-cache"] != "HIT" and after.body == body_for(SEGMENT, SIZE)
        assert edge.app[METRICS].lane_replayed == 1


async def test_hits_are_sent_from_kernel_pages_within_the_budget(tmp_path: Path):
    """sendfile from an in-memory file, not a copy: the bytes are the object's, and the files
    held stay within ``sendfile_bytes`` (here room for one object of two, and its head)."""
    budget = SIZE + 1024
    async with running_edge(tmp_path, sendfile_bytes=budget) as edge:
        other = SEGMENT.replace("00001", "00003")
        await hit_ready(edge)
        await hit_ready(edge, other)
        reader, writer = await asyncio.open_connection(edge.host, edge.port)
        bodies = []
        for path in (SEGMENT, SEGMENT, other):
            writer.write(request(path))
            bodies.append((await read_answer(reader)).body)
        writer.close()
        assert bodies == [body_for(p, SIZE) for p in (SEGMENT, SEGMENT, other)]
        assert edge.lane == 3
        assert len(edge.front.pages) == 1 and SIZE < edge.front.pages.bytes <= budget


async def test_answers_from_a_file_stay_whole_when_their_head_changes(edge: Edge):
    """Age ticks: the lane sends the head and then the body from the file, and writes a hot
    file again with the new head; every answer is the object, its head of its own second."""
    await hit_ready(edge)
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    answers = []
    for count in (2, 2 * REWRITE_AFTER):  # a new file, then one that is worth rewriting
        await asyncio.sleep(1.05)
        for _ in range(count):
            writer.write(request(SEGMENT))
            answers.append(await read_answer(reader))
    writer.close()
    assert {a.status for a in answers} == {200}
    assert all(a.body == body_for(SEGMENT, SIZE) for a in answers)
    ages = [int(a.headers["age"]) for a in answers]
    assert ages == sorted(ages) and ages[-1] > ages[0]
    assert edge.lane == len(answers) and len(edge.front.pages) == 1


async def test_with_no_sendfile_budget_hits_are_copied(tmp_path: Path):
    async with running_edge(tmp_path, sendfile_bytes=0) as edge:
        await hit_ready(edge)
        reader, writer = await asyncio.open_connection(edge.host, edge.port)
        writer.write(request(SEGMENT))
        answer = await read_answer(reader)
        writer.close()
        assert answer.body == body_for(SEGMENT, SIZE) and edge.lane == 1
        assert len(edge.front.pages) == 0


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


# The same bytes to the lane and to aiohttp's own server: the same answers, request by request.

DIFF_SIZE = 2000
HOT = [f"/tracks/{TRACK}/v0/aac_160/seg_{n:05d}.m4s" for n in (1, 2, 3)]
OVER = 8190  # aiohttp's max_line_size and max_field_size


def plain_app() -> web.Application:
    """aiohttp answering every GET and HEAD path with what the stand-in origin has there."""

    async def any_path(request: web.Request) -> web.Response:
        body = body_for(request.path, DIFF_SIZE)
        return web.Response(body=body, headers={"ETag": _etag(body)})

    app = web.Application()
    app.router.add_get("/{tail:.*}", any_path)
    return app


def _etag(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'  # as bench.stub_origin makes it


@dataclass
class Pair:
    loop: asyncio.AbstractEventLoop
    lane: Edge
    plain_port: int


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Both servers on one uvloop loop (the edge's), the lane's segments already in memory."""
    loop = uvloop.new_event_loop()
    stack = contextlib.AsyncExitStack()

    async def start() -> tuple[Edge, int]:
        cache = tmp_path_factory.mktemp("lane")
        edge = await stack.enter_async_context(running_edge(cache, size=DIFF_SIZE))
        runner, url = await serve(plain_app())
        stack.push_async_callback(runner.cleanup)
        for path in HOT:
            await hit_ready(edge, path)
        return edge, int(url.rsplit(":", 1)[1])

    try:
        edge, port = loop.run_until_complete(start())
        yield Pair(loop, edge, port)
    finally:
        loop.run_until_complete(asyncio.wait_for(stack.aclose(), 30))
        loop.close()


@dataclass(frozen=True)
class Sent:
    raw: bytes
    method: str
    ordinary: bool  # valid, HTTP/1.1, a segment in memory, nothing unusual: the lane's to answer


# What may be wrong (or merely unusual) with a request head; the big ones are not pipelined.
FLAWS = (
    "bare LF everywhere",
    "one bare LF",
    "LF in a value",
    "CR in a value",
    "NUL in a value",
    "DEL in a value",
    "control character in a value",
    "obs-fold",
    "name not a token",
    "control character in the target",
    "no Host",
    "two Hosts",
    "two Content-Lengths",
    "Content-Length: 0",
    "chunked, empty body",
    "Connection: close",
    "tab in a value",
    "obs-text in a value",
    "HTTP/1.0",
    "HTTP/1.0 keep-alive",
    "POST",
)
BIG_FLAWS = ("long value", "long target", "many fields")
_ORDINARY = {"tab in a value", "obs-text in a value"}


@st.composite
def a_request(draw: st.DrawFn, big: bool) -> Sent:
    names = list(FLAWS) + list(BIG_FLAWS if big else ())
    flaws = set(draw(st.lists(st.sampled_from(names), max_size=2)) if draw(st.booleans()) else [])
    method = "POST" if "POST" in flaws else draw(st.sampled_from(["GET", "GET", "HEAD"]))
    target = draw(st.sampled_from(HOT)) + draw(st.sampled_from(["", "?x=1", "?CMCD=sid%3D%22a%22"]))
    if "long target" in flaws:
        target += (
            ("&" if "?" in target else "?")
            + "pad="
            + "a" * (OVER - 40 - len(target) + draw(st.integers(0, 60)))
        )
    if "control character in the target" in flaws:
        at = draw(st.integers(1, len(target) - 1))
        target = target[:at] + draw(st.sampled_from(["\x01", "\x7f", "\x1b", "\x00"])) + target[at:]
    version = "HTTP/1.0" if {"HTTP/1.0", "HTTP/1.0 keep-alive"} & flaws else "HTTP/1.1"
    fields = [] if "no Host" in flaws else [("Host", "edge")]
    fields += [("X-Trace", draw(st.text("abcdefgh0123456789-", max_size=12)))]
    value_flaws = {
        "LF in a value": "\n", "CR in a value": "\r", "NUL in a value": "\x00",
        "DEL in a value": "\x7f", "control character in a value": "\x08", "tab in a value": "\t",
        "obs-text in a value": "\xe9\xff",
    }  # fmt: skip
    for flaw, char in value_flaws.items():
        if flaw in flaws:
            tail = draw(st.sampled_from(["b", f"GET {HOT[0]} HTTP/1.1", ""]))
            fields.append(("X-Odd", "a" + char + tail))
    if "two Hosts" in flaws:
        fields.append(("Host", "other"))
    if "two Content-Lengths" in flaws:
        fields += [("Content-Length", "0"), ("Content-Length", "0")]
    if "Content-Length: 0" in flaws:
        fields.append(("Content-Length", "0"))
    if "chunked, empty body" in flaws:
        fields.append(("Transfer-Encoding", "chunked"))
    if "Connection: close" in flaws:
        fields.append(("Connection", "close"))
    if "HTTP/1.0 keep-alive" in flaws:
        fields.append(("Connection", "keep-alive"))
    if "name not a token" in flaws:
        fields.append((draw(st.sampled_from(["X Y", "X(y)", "X/y", "", "X\x01"])), "a"))
    if "long value" in flaws:
        fields.append(("X-Long", "v" * (OVER - 60 + draw(st.integers(0, 120)))))
    if "many fields" in flaws:
        fields += [(f"X-F{n}", "f") for n in range(draw(st.integers(120, 135)))]
    lines = [f"{method} {target} {version}"] + [f"{name}: {value}" for name, value in fields]
    if "obs-fold" in flaws:
        lines.insert(draw(st.integers(2, len(lines))), " folded")
    ends = ["\r\n"] * len(lines) + ["\r\n"]
    if "bare LF everywhere" in flaws:
        ends = ["\n"] * len(ends)
    if "one bare LF" in flaws:
        ends[draw(st.integers(0, len(ends) - 1))] = "\n"
    head = "".join(line + end for line, end in zip([*lines, ""], ends, strict=True))
    raw = head.encode("latin-1") + (b"0\r\n\r\n" if "chunked, empty body" in flaws else b"")
    return Sent(raw, method, flaws <= _ORDINARY)


@st.composite
def a_conversation(draw: st.DrawFn) -> list[tuple[list[bytes], list[Sent]]]:
    """Rounds of bytes: several small requests in one write, or one (maybe big) in pieces."""
    rounds = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            sent = draw(st.lists(a_request(big=False), min_size=1, max_size=4))
            rounds.append(([b"".join(request.raw for request in sent)], sent))
        else:
            one = draw(a_request(big=True))
            cuts = sorted(draw(st.sets(st.integers(1, len(one.raw) - 1), max_size=3)))
            edges = [0, *cuts, len(one.raw)]
            rounds.append(([one.raw[a:b] for a, b in itertools.pairwise(edges)], [one]))
    return rounds


class Client(asyncio.Protocol):
    """Keeps every byte received, even when a reset follows (asyncio's streams drop them)."""

    def __init__(self) -> None:
        self.data = b""
        self.closed = False
        self.changed = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.changed.set()

    def eof_received(self) -> bool:
        self.closed = True
        self.changed.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.changed.set()


def answers_in(data: bytes, methods: list[str]) -> list[tuple]:
    """The whole responses at the start of ``data``: status, and ETag and body digest if not 4xx."""
    found: list[tuple] = []
    start = 0
    for method in methods:
        end = data.find(b"\r\n\r\n", start)
        if end < 0:
            break
        lines = data[start:end].decode("latin-1").split("\r\n")
        fields = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
        status = int(lines[0].split(" ")[1])
        length = 0 if method == "HEAD" and status < 400 else int(fields["content-length"])
        if len(data) < end + 4 + length:
            break
        body = data[end + 4 : end + 4 + length]
        digest = hashlib.sha256(body).hexdigest()[:12]
        found.append((status,) if status >= 400 else (status, fields.get("etag"), digest))
        start = end + 4 + length
    return found


async def converse(port: int, rounds: list[tuple[list[bytes], list[Sent]]]) -> list[tuple]:
    """What came back, response by response; ("closed",) if the server closed before answering."""
    transport, client = await asyncio.get_running_loop().create_connection(
        Client, "127.0.0.1", port
    )
    methods: list[str] = []
    deadline = time.monotonic() + WAIT
    try:
        for pieces, sent in rounds:
            for piece in pieces:
                if client.closed or transport.is_closing():
                    break
                transport.write(piece)
                await asyncio.sleep(0.001)  # let the server read each piece on its own
            methods += [one.method for one in sent]
            while len(found := answers_in(client.data, methods)) < len(methods):
                if client.closed:
                    return [*found, ("closed",)]
                if time.monotonic() > deadline:
                    return [*found, ("no answer",)]
                client.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(client.changed.wait(), 0.5)
        return found
    finally:
        transport.close()


@settings(
    max_examples=250,
    deadline=20_000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rounds=a_conversation())
def test_the_lane_and_aiohttp_answer_the_same_bytes_alike(
    pair: Pair, rounds: list[tuple[list[bytes], list[Sent]]]
):
    lane_before = pair.lane.lane
    by_lane = pair.loop.run_until_complete(converse(pair.lane.port, rounds))
    by_aiohttp = pair.loop.run_until_complete(converse(pair.plain_port, rounds))
    assert by_lane == by_aiohttp
    event("the lane answered" if pair.lane.lane > lane_before else "aiohttp answered")
    event("a 400" if (400,) in by_lane else "no 400")
    sent = [one for _, round_sent in rounds for one in round_sent]
    if all(one.ordinary for one in sent):
        assert pair.lane.lane - lane_before == len(sent)  # the lane answered, not aiohttp


async def test_a_range_of_thousands_of_digits_is_answered_on_hits_and_misses(edge: Edge):
    """Past 64 bits a position is past any object: 416, on the lane's hit and aiohttp's miss
    alike, never a dropped connection or a 500."""
    huge = "9" * 5000
    await hit_ready(edge)
    other = SEGMENT.replace("00001", "00003")
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(request(SEGMENT, f"Range: bytes={huge}-"))
    hit = await read_answer(reader)
    writer.write(request(SEGMENT, f"Range: bytes=0-{huge}"))
    whole = await read_answer(reader)
    writer.write(request(other, f"Range: bytes={huge[:4000]}-{huge[:4000]}"))
    miss = await read_answer(reader)
    writer.close()
    assert (hit.status, hit.headers["content-range"]) == (416, f"bytes */{SIZE}")
    assert (whole.status, whole.body) == (206, body_for(SEGMENT, SIZE))
    assert (miss.status, miss.headers["x-cache"]) == (416, "MISS")
    assert edge.lane == 2
