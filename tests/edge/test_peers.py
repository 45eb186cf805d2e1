"""Which worker owns an object, and one edge's status from its workers' own."""

import os
import subprocess
import tempfile
from pathlib import Path

import aiohttp
from hypothesis import given
from hypothesis import strategies as st

from bench.stub_origin import body_for
from bench.stub_origin import create_app as create_origin
from cadenza.status import CacheTier, EdgeStatus
from edge.peers import FOLDER_PREFIX, combine, make_folder, owner
from edge.settings import EdgeSettings
from tests.edge.workers import edge_workers
from tests.loopback import serve


@given(st.text(min_size=1, max_size=80), st.integers(min_value=1, max_value=64))
def test_the_owner_is_a_worker_and_the_same_every_time(key: str, workers: int):
    assert 0 <= owner(key, workers) < workers
    assert owner(key, workers) == owner(key, workers)


def test_owners_spread_keys_over_the_workers():
    keys = [f"tracks/{n:016x}/v1/aac_160/seg_00001.m4s" for n in range(4000)]
    counts = [0, 0, 0, 0]
    for key in keys:
        counts[owner(key, 4)] += 1
    assert min(counts) > 800 and max(counts) < 1200


def _worker(
    active: int, hits: int, misses: int, memory: int, state: str = "healthy", pid: int = 1
) -> EdgeStatus:
    return EdgeStatus(
        draining=state == "draining",
        region="eu-west",
        latitude=0.0,
        longitude=0.0,
        capacity_bps=1e9,
        active_requests=active,
        egress_bps=1000.0 * active,
        hit_ratio=hits / (hits + misses) if hits + misses else 0.0,
        hits=hits,
        misses=misses,
        lane_requests=hits,
        memory=CacheTier(memory, memory // 100),
        disk=CacheTier(5000, 50),
        pid=pid,
    )


def test_workers_figures_are_summed_and_the_shared_disk_counted_once():
    own = _worker(2, hits=30, misses=10, memory=1000, pid=1)
    total = combine(own, [_worker(3, hits=10, misses=30, memory=500, pid=2)])
    assert total.workers == 2 and total.pids == (1, 2)
    assert total.active_requests == 5
    assert total.egress_bps == 5000.0
    assert (total.hits, total.misses, total.hit_ratio) == (40, 40, 0.5)
    assert total.lane_requests == 40
    assert total.memory == CacheTier(1500, 15)
    assert total.disk == CacheTier(5000, 50)
    assert own.memory == CacheTier(1000, 10)  # not changed in place


def test_one_draining_worker_makes_the_edge_draining():
    total = combine(_worker(0, 0, 0, 0), [_worker(0, 0, 0, 0, state="draining")])
    assert total.draining and total.hit_ratio == 0.0
    assert (total.to_json()["state"], total.to_json()["healthy"]) == ("draining", False)


async def test_a_worker_fills_from_the_owner_and_only_the_owner_asks_the_origin(tmp_path):
    """Two workers of one edge in this process: a key asked of the non-owner is fetched once."""
    origin_runner, origin_url = await serve(create_origin(40_000, 0.1))
    settings = EdgeSettings(
        origin=origin_url, cache_dir=tmp_path / "cache", allow_unsigned=True, readahead_seconds=0
    )
    try:
        async with edge_workers(settings) as urls, aiohttp.ClientSession() as client:
            path = next(
                f"/tracks/0123456789abcdef/v1/aac_96/seg_{n:05d}.m4s"
                for n in range(100)
                if owner(f"tracks/0123456789abcdef/v1/aac_96/seg_{n:05d}.m4s", 2) == 1
            )
            for url in (urls[0], urls[0], urls[1]):  # the non-owner twice, then the owner
                async with client.get(url + path) as response:
                    assert response.status == 200
                    assert await response.read() == body_for(path, 40_000)
            async with client.get(origin_url + "/_stats") as response:
                assert (await response.json())[path] == 1
            async with client.get(urls[0] + "/status") as response:
                status = await response.json()
        assert status["workers"] == 2 and status["hits"] + status["misses"] == 3
    finally:
        await origin_runner.cleanup()


def test_an_edge_s_peer_folder_is_its_own_and_dead_edges_folders_are_swept(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = tmp_path / f"{FOLDER_PREFIX}{_dead_pid()}-abc"
    alive = tmp_path / f"{FOLDER_PREFIX}{os.getpid()}-xyz"
    other = tmp_path / f"{FOLDER_PREFIX}not-a-pid"
    for folder in (dead, alive, other):
        folder.mkdir()
    made = Path(make_folder())
    assert made.parent == tmp_path and made.name.startswith(f"{FOLDER_PREFIX}{os.getpid()}-")
    assert not dead.exists() and alive.exists() and other.exists()


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid
