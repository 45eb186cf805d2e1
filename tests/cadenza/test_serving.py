"""Serving with several workers on one port, and draining in-flight responses on SIGTERM.

The edge is the service under test (a process of its own); its origin is a fake on loopback.
"""

import asyncio
import json
import shutil
import signal
import tempfile
import urllib.request
from pathlib import Path

import aiohttp
from aiohttp import web

from edge.peers import FOLDER_PREFIX
from tests.processes import Service, start_service

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
