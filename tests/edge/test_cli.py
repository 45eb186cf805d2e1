"""``cadenza edge`` as a process: it starts, answers its status, and stops on SIGTERM."""

import asyncio
import json
import os
import signal
import sys
import urllib.request
from pathlib import Path

import aiohttp

from bench.processes import start
from bench.stub_origin import body_for
from tests.processes import cadenza, start_service

FLEET = """
[[origin]]
url = "{origin}"

[locator]
url = "http://127.0.0.1:9"

[[edge]]
id = "eu-west-2"
region = "eu-west"
url = "http://127.0.0.1:1"
listen = "127.0.0.1:0"
latitude = 50.11
longitude = 8.68
cache_dir = "{cache}"
"""


def test_the_edge_reads_its_part_of_the_fleet_reports_status_and_stops_on_sigterm(
    tmp_path: Path,
):
    origin = start([sys.executable, "-m", "bench.stub_origin"])
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(FLEET.format(origin=origin.url, cache=tmp_path / "cache"))
    edge = start_service(
        "edge", "--fleet", fleet, "--id", "eu-west-2", "--allow-unsigned", "--workers", "2"
    )
    try:
        assert edge.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{edge.url}/status", timeout=10) as response:
            status = json.loads(response.read())
        assert (status["id"], status["region"], status["healthy"]) == ("eu-west-2", "eu-west", True)
        assert (status["latitude"], status["longitude"]) == (50.11, 8.68)
        assert status["edge_pid"] == edge.process.pid  # the process to signal, not a worker
        assert edge.process.pid not in status["pids"]
    finally:
        assert edge.stop(signal.SIGTERM) == 0
        origin.stop()


def test_an_edge_that_cannot_work_says_why_and_exits_2(tmp_path: Path):
    origin = start([sys.executable, "-m", "bench.stub_origin"])
    try:
        base = ("edge", "--listen", "127.0.0.1:0", "--cache-dir", tmp_path / "cache")
        unsigned = cadenza(*base, "--origin", origin.url, env=_env())
        assert unsigned.returncode == 2
        assert "no token keys" in unsigned.stderr and "--allow-unsigned" in unsigned.stderr
        taken = cadenza(
            "edge", "--listen", origin.url.removeprefix("http://"), "--origin", origin.url,
            "--allow-unsigned", "--cache-dir", tmp_path / "cache", env=_env(),
        )  # fmt: skip
        assert taken.returncode == 2 and "cannot listen on" in taken.stderr
    finally:
        origin.stop()
    gone = cadenza(
        *base, "--origin", origin.url, "--allow-unsigned",
        env=_env(CADENZA_EDGE_ORIGIN_WAIT_SECONDS="0.5"),
    )  # fmt: skip
    assert gone.returncode == 2
    assert f"cannot reach the origin at {origin.url}" in gone.stderr and "--origin" in gone.stderr


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENZA_")}
    return {**env, **extra}


def test_help_explains_the_edge():
    result = cadenza("edge", "--help")
    assert result.returncode == 0
    for text in (
        "--origin", "--allow-unsigned", "--region", "/status", "CADENZA_TOKEN_KEYS", "--fleet",
        "--id", "--locator", "default 127.0.0.1:8081", "--parent",
    ):  # fmt: skip
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


def test_children_with_a_parent_fetch_each_object_once_and_fall_back_when_it_dies(
    tmp_path: Path,
):
    """Real processes: two edges of two workers each, ``--parent`` one edge, in front of a
    counting origin, tokens checked everywhere. The first child names a dead origin first."""
    from cadenza.tokens import TokenClaims, sign

    secret = "parent-test-secret-0123456789"
    env = _env(CADENZA_TOKEN_KEYS=f"k1:{secret}")
    origin = start([sys.executable, "-m", "bench.stub_origin", "--size", "40000"])
    dead = "http://127.0.0.1:9"  # the discard port: nothing listens
    services = []
    try:
        parent = start_service(
            "edge", "--listen", "127.0.0.1:0", "--origin", origin.url, "--workers", "1",
            "--cache-dir", tmp_path / "parent", env=env,
        )  # fmt: skip
        services.append(parent)
        children = []
        for name, origins in (("a", f"{dead},{origin.url}"), ("b", origin.url)):
            child = start_service(
                "edge", "--listen", "127.0.0.1:0", "--origin", origins, "--parent", parent.url,
                "--workers", "2", "--cache-dir", tmp_path / name, env=env,
            )  # fmt: skip
            services.append(child)
            children.append(child)
        track = "0123456789abcdef"
        token = sign(TokenClaims(f"/tracks/{track}/", 2**33, "k1", "SE"), secret.encode())
        paths = [f"/tracks/{track}/v1/aac_160/seg_{n:05d}.m4s" for n in range(1, 9)]
        for child in children:
            for path in paths[:6]:
                results = asyncio.run(_stampede(f"{child.url}/p/{token}{path}", 4))
                assert results == [(200, body_for(path, 40000))] * 4
        parent.stop(signal.SIGKILL)
        for child in children:
            for path in paths[6:]:
                assert asyncio.run(_stampede(f"{child.url}/p/{token}{path}", 2))[0][0] == 200
        with urllib.request.urlopen(f"{origin.url}/_stats", timeout=10) as response:
            fetched = json.loads(response.read())
        assert [fetched[p] for p in paths[:6]] == [1] * 6  # once for the tier
        assert [fetched[p] for p in paths[6:]] == [2, 2]  # once per child, the parent gone
    finally:
        for service in reversed(services):
            service.stop()
        origin.stop()
