"""Publishing through origin processes: concurrent publishes of one track, through one origin
or two replicas, always leave the master naming the catalog's current version, and the
per-track lock is released again."""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from origin.publish import TrackLocks
from tests.origin.conftest import (
    Client,
    _create_bucket,
    _s3_config,
    add_label,
    make_version,
    s3_origin_config,
    start_origin_process,
)

ROUNDS = 40


def _master_version(client: Client, track_id: str) -> str:
    status, body = client.request("GET", f"/tracks/{track_id}/master.m3u8")
    assert status == 200
    uris = [line for line in body.decode().splitlines() if line and not line.startswith("#")]
    assert uris
    return uris[0].split("/")[0]


def test_concurrent_publishes_leave_master_and_catalog_in_agreement(
    tmp_path: Path, catalog_config: Path | None
):
    data_dir = tmp_path / "origin"
    key = add_label(data_dir, config=catalog_config)
    server = start_origin_process(data_dir, tmp_path / "origin.log", catalog_config)
    try:
        client = Client(server.url, key)
        versions = [make_version(1, n) for n in (1, 2)]
        for version in versions:
            assert client.send(version) == 200
        track_id = versions[0].track_id
        disagreements = []
        with ThreadPoolExecutor(max_workers=2) as pool:
            for round_ in range(ROUNDS):
                order = versions if round_ % 2 else versions[::-1]
                assert list(pool.map(client.publish, order)) == [200, 200]
                body = client.request("GET", f"/v1/tracks/{track_id}")[1]
                current = json.loads(body)["current_version"]
                if _master_version(client, track_id) != current:
                    disagreements.append(round_)
        assert disagreements == []
    finally:
        server.stop()


def test_a_publish_retried_after_the_master_was_lost_writes_it_again(
    tmp_path: Path, catalog_config: Path | None
):
    data_dir = tmp_path / "origin"
    key = add_label(data_dir, config=catalog_config)
    server = start_origin_process(data_dir, tmp_path / "origin.log", catalog_config)
    try:
        client = Client(server.url, key)
        version = make_version(2, 1)
        assert client.send(version) == 200
        master = data_dir / "objects" / "tracks" / version.track_id / "master.m3u8"
        master.unlink()  # as if the origin died between the catalog switch and the master
        assert client.request("GET", f"/tracks/{version.track_id}/master.m3u8")[0] == 404
        assert client.publish(version) == 200
        assert _master_version(client, version.track_id) == version.version
    finally:
        server.stop()


def test_publishes_through_two_replicas_leave_master_and_catalog_in_agreement(
    tmp_path: Path, postgres_url: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
):
    """Two origins share a PostgreSQL catalog and an S3 bucket; publishes of one track through
    both at once are ordered by the catalog's track lock."""
    storage = _s3_config(moto_endpoint, monkeypatch, tmp_path)
    asyncio.run(_create_bucket(storage))
    config = s3_origin_config(tmp_path / "origin.toml", storage)
    config.write_text(f'catalog = "{postgres_url}"\n' + config.read_text())
    data_dir = tmp_path / "shared"
    key = add_label(data_dir, config=config)
    servers = []
    try:
        for name in ("a", "b"):
            servers.append(start_origin_process(data_dir, tmp_path / f"{name}.log", config))
        clients = [Client(server.url, key) for server in servers]
        versions = [make_version(3, n) for n in (1, 2)]
        for version in versions:
            assert clients[0].send(version) == 200
        track_id = versions[0].track_id
        disagreements = []
        with ThreadPoolExecutor(max_workers=2) as pool:
            for round_ in range(ROUNDS):
                order = versions if round_ % 2 else versions[::-1]
                assert list(pool.map(lambda c, v: c.publish(v), clients, order)) == [200, 200]
                body = clients[1].request("GET", f"/v1/tracks/{track_id}")[1]
                current = json.loads(body)["current_version"]
                if _master_version(clients[0], track_id) != current:
                    disagreements.append(round_)
        assert disagreements == []
    finally:
        for server in servers:
            server.stop()


async def test_track_locks_serialise_one_track_and_are_dropped_after():
    locks = TrackLocks()
    async with locks.hold("a"), locks.hold("b"):
        assert len(locks._locks) == 2
    assert locks._locks == {}
