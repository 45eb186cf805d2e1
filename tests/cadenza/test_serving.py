"""Serving with several workers on one port, and draining in-flight responses on SIGTERM.

The edge is the service under test (a process of its own); its origin is a fake on loopback.
"""

import asyncio
import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
from aiohttp import web

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


def _start_edge(origin: str, cache: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "cadenza", "edge", "--listen", "127.0.0.1:0", "--origin", origin,
         "--allow-unsigned", "--workers", "2", "--cache-dir", str(cache)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening on" in line, line
    return process, line.rsplit(" ", 1)[-1].strip()


def _status(url: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{url}/status", timeout=10) as response:
        status: dict[str, object] = json.loads(response.read())
        return status


async def test_two_workers_share_the_port_and_drain_on_sigterm(tmp_path: Path):
    origin_runner, origin = await _slow_origin()
    process, url = await asyncio.to_thread(_start_edge, origin, tmp_path / "cache")
    try:
        pids = set()
        for _ in range(40):
            pids.add((await asyncio.to_thread(_status, url))["pid"])
            if len(pids) == 2:
                break
        assert len(pids) == 2, "both workers should answer"
        async with aiohttp.ClientSession() as client:
            pending = asyncio.create_task(client.get(url + SEGMENT))
            await asyncio.sleep(0.3)  # the request is now waiting on the slow origin
            process.send_signal(signal.SIGTERM)
            response = await asyncio.wait_for(pending, 10)
            assert response.status == 200
            assert await response.read() == BODY
        assert await asyncio.to_thread(process.wait, 15) == 0
        for pid in pids:
            assert (
                not Path(f"/proc/{pid}").exists()
                or "zombie" in Path(f"/proc/{pid}/status").read_text()
            )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()
        await origin_runner.cleanup()


def _gone(pid: object) -> bool:
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "zombie" in status.read_text()


async def test_workers_die_with_a_killed_parent(tmp_path: Path):
    origin_runner, origin = await _slow_origin()
    process, url = await asyncio.to_thread(_start_edge, origin, tmp_path / "cache")
    try:
        pids = set()
        for _ in range(40):
            pids.add((await asyncio.to_thread(_status, url))["pid"])
            if len(pids) == 2:
                break
        process.kill()
        await asyncio.to_thread(process.wait, 10)
        deadline = asyncio.get_running_loop().time() + 10
        while not all(_gone(pid) for pid in pids):
            assert asyncio.get_running_loop().time() < deadline, "workers outlived their parent"
            await asyncio.sleep(0.05)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()
        await origin_runner.cleanup()
