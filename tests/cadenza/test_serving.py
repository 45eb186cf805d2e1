"""Serving with several workers on one port: draining in-flight responses on SIGTERM, dead
workers replaced, restarts bounded.

The edge is the service under test (a process of its own); its origin is a fake on loopback.
"""

import asyncio
import json
import os
import resource
import shutil
import signal
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from bench.stub_origin import body_for
from bench.stub_origin import create_app as create_stub_origin
from cadenza.serving import Restarts
from edge.peers import FOLDER_PREFIX
from tests.loopback import serve
from tests.processes import Service, cadenza, start_service

SEGMENT = "/tracks/0123456789abcdef/v0123456789ab/aac_96/seg_00001.m4s"
BODY = b"\x42" * 200_000


async def _slow_origin() -> tuple[web.AppRunner, str]:
    async def segment(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.Response(body=BODY, headers={"Cache-Control": "public, max-age=60"})

    app = web.Application()
    app.router.add_get("/tracks/{tail:.*}", segment)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


def _start_edge(origin: str, cache: Path) -> Service:
    return start_service(
        "edge", "--listen", "127.0.0.1:0", "--origin", origin, "--allow-unsigned",
        "--workers", "2", "--cache-dir", cache,
    )  # fmt: skip


async def _worker_pids(edge: Service) -> set[object]:
    """Any worker answers for all of them (see edge.peers)."""
    status = await asyncio.to_thread(_status, edge.url)
    pids = set(status["pids"])  # type: ignore[call-overload]
    assert status["workers"] == 2 and len(pids) == 2, status
    return pids


def _status(url: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{url}/status", timeout=10) as response:
        status: dict[str, object] = json.loads(response.read())
        return status


async def test_two_workers_share_the_port_and_drain_on_sigterm(tmp_path: Path):
    origin_runner, origin = await _slow_origin()
    edge = await asyncio.to_thread(_start_edge, origin, tmp_path / "cache")
    try:
        pids = await _worker_pids(edge)
        async with aiohttp.ClientSession() as client:
            pending = asyncio.create_task(client.get(edge.url + SEGMENT))
            await asyncio.sleep(0.3)  # the request is now waiting on the slow origin
            edge.process.send_signal(signal.SIGTERM)
            response = await asyncio.wait_for(pending, 10)
            assert response.status == 200
            assert await response.read() == BODY
        assert await asyncio.to_thread(edge.process.wait, 15) == 0
        assert all(_gone(pid) for pid in pids)
    finally:
        await asyncio.to_thread(edge.stop)
        await origin_runner.cleanup()


async def test_a_service_lifts_its_open_files_limit_to_the_hard_limit(tmp_path: Path):
    """Each connection takes a descriptor: started under a soft limit of 256, the edge and its
    workers run with the hard limit."""
    origin_runner, origin = await _slow_origin()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))  # inherited by the edge
    try:
        edge = _start_edge(origin, tmp_path / "cache")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        pids = await _worker_pids(edge)
        for pid in {edge.pid, *pids}:
            limits = Path(f"/proc/{pid}/limits").read_text().splitlines()
            line = next(row for row in limits if row.startswith("Max open files"))
            assert line.split()[3:5] == [str(hard), str(hard)], line
    finally:
        await asyncio.to_thread(edge.stop)
        await origin_runner.cleanup()


def _gone(pid: object) -> bool:
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "zombie" in status.read_text()


async def test_workers_die_with_a_killed_parent(tmp_path: Path):
    origin_runner, origin = await _slow_origin()
    edge = await asyncio.to_thread(_start_edge, origin, tmp_path / "cache")
    try:
        pids = await _worker_pids(edge)
        await asyncio.to_thread(edge.stop, signal.SIGKILL)
        deadline = asyncio.get_running_loop().time() + 10
        while not all(_gone(pid) for pid in pids):
            assert asyncio.get_running_loop().time() < deadline, "workers outlived their parent"
            await asyncio.sleep(0.05)
        # A killed edge cannot remove its peer folder; the next edge would. Do it here.
        for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}{edge.pid}-*"):
            shutil.rmtree(folder)
    finally:
        await asyncio.to_thread(edge.stop)
        await origin_runner.cleanup()


@given(st.lists(st.floats(min_value=0, max_value=100), min_size=1, max_size=20))
def test_early_deaths_back_off_and_give_up_while_settled_ones_restart_at_once(lives):
    restarts = Restarts(settled=10, attempts=4, first_delay=0.25, max_delay=1.0)
    early = 0
    previous = 0.0
    for lived in lives:
        delay = restarts.delay(3, lived)
        if lived >= 10:
            early = 0
            assert delay == 0.0
        else:
            early += 1
            if early >= 4:
                assert delay is None
                return
            assert delay is not None and previous <= delay <= 1.0 and delay > 0
        previous = 0.0 if delay == 0.0 else delay


def test_each_worker_has_its_own_count_of_early_deaths():
    restarts = Restarts(settled=10, attempts=2)
    assert restarts.delay(0, 1.0) == restarts.first_delay
    assert restarts.delay(1, 1.0) == restarts.first_delay
    assert restarts.delay(0, 50.0) == 0.0
    assert restarts.delay(0, 1.0) == restarts.first_delay  # the settled life reset worker 0
    assert restarts.delay(1, 1.0) is None


@dataclass
class Load:
    """Clients in a loop of GETs, each on its own keep-alive connection, none retrying a failed
    request (aiohttp's client would retry a GET once on a reused connection, hiding failures)."""

    url: str
    paths: list[str]
    ok: int = 0
    failed: int = 0
    running: bool = True
    homes: list[int] = field(default_factory=list)  # the worker of each client's connection

    async def client(self, first: int) -> None:
        reader, writer = await _connect(self.url)
        _, status = await _get(reader, writer, "/status")
        self.homes.append(json.loads(status)["pid"])
        try:
            for n in range(first, first + 100_000):  # bounded; stopped by ``running``
                if not self.running:
                    return
                path = self.paths[n % len(self.paths)]
                try:
                    code, body = await _get(reader, writer, path)
                    good = code == 200 and body == body_for(path, 40_000)
                except (OSError, asyncio.IncompleteReadError, TimeoutError):
                    good = False
                if good:
                    self.ok += 1
                else:
                    self.failed += 1
                    writer.close()
                    reader, writer = await _connect(self.url)
        finally:
            writer.close()


CLIENTS = 8


async def _until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_a_killed_worker_is_replaced_while_the_other_serves(tmp_path: Path):
    origin_runner, origin = await serve(create_stub_origin(40_000, 0))
    edge = await asyncio.to_thread(_start_edge, origin, tmp_path / "cache")
    paths = [f"/tracks/0123456789abcdef/v1/aac_96/seg_{n:05d}.m4s" for n in range(8)]
    load = Load(edge.url, paths)
    clients = [asyncio.create_task(load.client(i)) for i in range(CLIENTS)]
    try:
        assert len(await _worker_pids(edge)) == 2
        await _until(lambda: _at_least(load, 200), 30, "no load served before the kill")
        # The worker holding the most client connections, some of them mid-request.
        victim = Counter(load.homes).most_common(1)[0][0]
        os.kill(victim, signal.SIGKILL)
        served_before = load.ok

        async def replaced() -> bool:
            status = await asyncio.to_thread(_status, edge.url)
            now = set(status["pids"])  # type: ignore[call-overload]
            return len(now) == 2 and victim not in now

        await _until(replaced, 30, "the killed worker was not replaced")
        failed_during = load.failed
        assert load.ok > served_before  # the other worker served on meanwhile
        # The request in flight on each connection of the killed worker fails, at most one per
        # connection it held; once replaced, nothing fails.
        assert failed_during <= Counter(load.homes)[victim], (failed_during, load.ok)
        served_after = load.ok
        await _until(lambda: _at_least(load, served_after + 400), 30, "no load after replacing")
        assert load.failed == failed_during
        assert edge.process.poll() is None
        homes = Counter(load.homes)[victim]
        print(f"killed a worker with {homes} of {CLIENTS} connections; failed: {failed_during}")
    finally:
        load.running = False
        await asyncio.wait_for(asyncio.gather(*clients, return_exceptions=True), 20)
        await asyncio.to_thread(edge.stop)
        await origin_runner.cleanup()


async def _at_least(load: Load, count: int) -> bool:
    return load.ok >= count


def test_a_worker_that_cannot_start_stops_the_service_with_a_clear_error(tmp_path: Path):
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the disk tier should be\n")
    done = cadenza(
        "edge", "--listen", "127.0.0.1:0", "--origin", "http://127.0.0.1:9", "--allow-unsigned",
        "--workers", "2", "--cache-dir", not_a_folder, timeout=60,
        env={**_env(), "CADENZA_EDGE_ORIGIN_WAIT_SECONDS": "0"},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "listening on" not in done.stdout
    assert "times within 10 s of starting" in done.stderr, done.stderr[-2000:]


HEAD_TIMEOUT = 0.5
KEEPALIVE_TIMEOUT = 3.0
TIMEOUTS = (
    f"head_timeout_seconds = {HEAD_TIMEOUT}\nkeepalive_timeout_seconds = {KEEPALIVE_TIMEOUT}\n"
)
WAIT = 15.0  # far beyond both timeouts: a connection still open by then was never closed


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CADENZA_")}


def _start_with_timeouts(kind: str, tmp_path: Path, upstream: str) -> Service:
    config = tmp_path / f"{kind}.toml"
    if kind == "origin":
        config.write_text(TIMEOUTS)
        extra: tuple[str | Path, ...] = ("--data-dir", tmp_path / "origin")
    elif kind == "locator":
        config.write_text(
            f'origin = "{upstream}"\n{TIMEOUTS}[token_keys]\nk1 = "0123456789abcdef-secret"\n'
            f'[[edge]]\nid = "e1"\nregion = "r"\nurl = "{upstream}"\nlatitude = 0\nlongitude = 0\n'
        )
        extra = ()
    else:
        config.write_text(f'origin = "{upstream}"\nworkers = 1\nallow_unsigned = true\n{TIMEOUTS}')
        extra = ("--cache-dir", tmp_path / "cache")
    return start_service(kind, "--config", config, "--listen", "127.0.0.1:0", *extra, env=_env())


async def _connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return await asyncio.wait_for(asyncio.open_connection(host, int(port)), WAIT)


async def _get(reader, writer, path: str) -> tuple[int, bytes]:
    """One whole request and its response on a kept-alive connection: status and body."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(v) for n, _, v in (h.partition(":") for h in lines) if n.lower() == "content-length"
    )
    return int(lines[0].split()[1]), await asyncio.wait_for(reader.readexactly(length), WAIT)


async def _exchange(reader, writer, path: str) -> int:
    return (await _get(reader, writer, path))[0]


async def _trickle(reader, writer) -> bytes:
    """Send a request head a byte per 100 ms, never ending it; what the server answers."""
    answer = asyncio.create_task(reader.read())  # to the end of the stream
    head = b"GET /metrics HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"z" * 150
    try:
        for byte in head:
            if answer.done():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.1)
        return await asyncio.wait_for(answer, WAIT)
    except (ConnectionError, TimeoutError):
        return b""
    finally:
        answer.cancel()


SERVICES = ("origin", "locator", "edge")
PROBES = {"origin": "/metrics", "locator": "/metrics", "edge": "/status"}


async def test_every_service_bounds_request_heads_and_idle_connections(tmp_path: Path):
    origin_runner, upstream = await serve(create_stub_origin(1000, 0))
    services: dict[str, Service] = {}
    try:
        for kind in SERVICES:
            services[kind] = await asyncio.to_thread(_start_with_timeouts, kind, tmp_path, upstream)
        for kind, service in services.items():
            path = PROBES[kind]
            if kind != "edge":  # the edge's lean lane has its own timers (edge.front)
                # Connects and sends nothing: closed at the head deadline, without an answer.
                reader, writer = await _connect(service.url)
                assert await asyncio.wait_for(reader.read(), WAIT) == b"", kind
                writer.close()
                # Trickles the first request head: closed at the deadline with a 408.
                reader, writer = await _connect(service.url)
                answer = await _trickle(reader, writer)
                assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), (kind, answer)
                writer.close()
            # After a whole request (on the edge, one its lane hands to aiohttp), a trickled
            # head is bounded alike.
            reader, writer = await _connect(service.url)
            assert await _exchange(reader, writer, path) == 200, kind
            answer = await _trickle(reader, writer)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), (kind, answer)
            writer.close()
            # Idle after a response: open past the head deadline, closed after the keep-alive.
            reader, writer = await _connect(service.url)
            assert await _exchange(reader, writer, path) == 200, kind
            await asyncio.sleep(HEAD_TIMEOUT * 2)
            assert await _exchange(reader, writer, path) == 200, kind
            assert await asyncio.wait_for(reader.read(), WAIT) == b"", kind
            writer.close()
    finally:
        for service in services.values():
            await asyncio.to_thread(service.stop)
        await origin_runner.cleanup()
