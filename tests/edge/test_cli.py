"""``cadenza edge`` as a process: it starts, answers its status, and stops on SIGTERM."""

import asyncio
import json
import signal
import sys
import urllib.request
from pathlib import Path

import aiohttp

from bench.processes import start
from bench.stub_origin import body_for
from tests.processes import cadenza, start_service

CONFIG = Path(__file__).parents[2] / "configs" / "edge-eu-west.toml"


def test_the_edge_starts_reports_status_and_stops_on_sigterm(tmp_path: Path):
    edge = start_service(
        "edge", "--config", CONFIG, "--listen", "127.0.0.1:0", "--origin", "http://127.0.0.1:9",
        "--allow-unsigned", "--cache-dir", tmp_path / "cache",
    )  # fmt: skip
    try:
        assert edge.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{edge.url}/status", timeout=10) as response:
            status = json.loads(response.read())
        assert (status["region"], status["healthy"]) == ("eu-west", True)
        assert (status["latitude"], status["longitude"]) == (48.86, 2.35)
    finally:
        assert edge.stop(signal.SIGTERM) == 0


def test_help_explains_the_edge():
    result = cadenza("edge", "--help")
    assert result.returncode == 0
    for text in ("--origin", "--allow-unsigned", "--region", "/status", "CADENZA_TOKEN_KEYS"):
        assert text in result.stdout


def test_workers_share_one_origin_fetch_and_one_status(tmp_path: Path):
    """64 connections spread over two workers: one origin fetch, every body complete."""
    origin = start(
        [sys.executable, "-m", "bench.stub_origin", "--delay", "0.3", "--size", "122880"]
    )
    edge = start_service(
        "edge", "--listen", "127.0.0.1:0", "--origin", origin.url, "--workers", "2",
        "--allow-unsigned", "--cache-dir", tmp_path / "cache",
    )  # fmt: skip
    path = "/tracks/0123456789abcdef/v1/aac_160/seg_00001.m4s"
    try:
        results = asyncio.run(_stampede(edge.url + path, 64))
        assert results == [(200, body_for(path, 122880))] * 64
        with urllib.request.urlopen(f"{origin.url}/_stats", timeout=10) as response:
            assert json.loads(response.read())[path] == 1
        with urllib.request.urlopen(f"{edge.url}/status", timeout=10) as response:
            status = json.loads(response.read())
        assert status["workers"] == 2
        assert status["hits"] + status["misses"] == 64
    finally:
        assert edge.stop(signal.SIGTERM) == 0
        origin.stop()


async def _stampede(url: str, count: int) -> list[tuple[int, bytes]]:
    async def one(client: aiohttp.ClientSession) -> tuple[int, bytes]:
        async with client.get(url) as response:
            return response.status, await response.read()

    # A connection each, so the kernel spreads them over the workers.
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as client:
        return await asyncio.gather(*(one(client) for _ in range(count)))
