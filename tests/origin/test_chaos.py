"""Chaos: concurrent uploads, wrong re-uploads, publishes and takedowns while the origin is
SIGKILLed at random moments and restarted. After every round fsck finds nothing and every object
the catalog calls published is stored with its recorded hash (and downloads with it while the
track is not withdrawn). Run against the filesystem and the S3 backend."""

import asyncio
import hashlib
import http.client
import json
import random
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from origin import fsck
from origin.catalog import Catalog
from origin.settings import load_settings
from origin.storage import StorageConfig, open_storage
from tests.origin.conftest import (
    OPERATOR_KEY,
    Client,
    OriginProcess,
    Version,
    _create_bucket,
    _s3_config,
    add_label,
    make_version,
    s3_origin_config,
    start_origin_process,
)
from tests.origin.conftest import fsck as fsck_process

ROUNDS = 24  # on the filesystem; S3 (moto) answers more slowly, so it runs fewer
S3_ROUNDS = 12
TRACKS = 4
ACTIONS_PER_ROUND = 6
KILL_EVERY = 2  # about one round in KILL_EVERY kills the origin mid-way
ROUND_SECONDS = 30.0
SEED = 20261202

Outcome = int | None  # an HTTP status, or None when the origin died under the request


@dataclass
class World:
    """What the test has sent: versions per track, and every answer that was not expected."""

    data_dir: Path
    config: Path | None
    key: str
    versions: dict[int, list[Version]] = field(default_factory=dict)
    surprises: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def expect(self, what: str, outcome: Outcome, allowed: set[int]) -> None:
        if outcome is not None and outcome not in allowed:
            with self.lock:
                self.surprises.append(f"{what}: {outcome}")


def _call(action: Callable[[], int]) -> Outcome:
    try:
        return action()
    except (OSError, http.client.HTTPException):
        return None  # killed mid-request


def _upload_and_publish(world: World, client: Client, rng: random.Random) -> None:
    track = rng.randrange(TRACKS)
    with world.lock:
        versions = world.versions.setdefault(track, [])
        version = make_version(track, len(versions) + 1, segments=rng.randint(1, 4))
        versions.append(version)
    declared = _call(lambda: client.declare(version)[0])
    world.expect("declare", declared, {200})
    for path in version.files:
        world.expect("upload", _call(lambda p=path: client.upload(version, p)), {200, 201})
    world.expect("publish", _call(lambda: client.publish(version)), {200, 409})


def _wrong_upload(world: World, client: Client, rng: random.Random) -> None:
    with world.lock:
        known = [v for vs in world.versions.values() for v in vs]
    if not known:
        return
    version = rng.choice(known)
    path = rng.choice(sorted(version.files))
    right = version.files[path]
    wrong = rng.choice([b"", right[:-1], right + b"x", bytes(len(right)), b"\xff" * 10])
    world.expect("wrong upload", _call(lambda: client.upload(version, path, wrong)), {409, 404})


def _racing_uploads(world: World, client: Client, rng: random.Random) -> None:
    """A new version whose every object is sent right and wrong at the same time."""
    track = rng.randrange(TRACKS)
    with world.lock:
        versions = world.versions.setdefault(track, [])
        version = make_version(track, len(versions) + 1, segments=2)
        versions.append(version)
    world.expect("declare", _call(lambda: client.declare(version)[0]), {200})
    with ThreadPoolExecutor(max_workers=2) as pool:
        for path, right in version.files.items():
            wrong = bytes(len(right))
            sends = [
                pool.submit(_call, lambda p=path: client.upload(version, p)),
                pool.submit(_call, lambda p=path, w=wrong: client.upload(version, p, w)),
            ]
            world.expect("racing upload", sends[0].result(ROUND_SECONDS), {200, 201})
            world.expect("racing wrong upload", sends[1].result(ROUND_SECONDS), {409})
    world.expect("publish", _call(lambda: client.publish(version)), {200, 409})


def _publish_twice(world: World, client: Client, rng: random.Random) -> None:
    with world.lock:
        candidates = [vs for vs in world.versions.values() if len(vs) >= 2]
    if not candidates:
        return
    pair = rng.sample(rng.choice(candidates), 2)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for outcome in pool.map(lambda v: _call(lambda: client.publish(v)), pair):
            world.expect("concurrent publish", outcome, {200, 409, 404})


def _takedown(world: World, client: Client, rng: random.Random) -> None:
    track = f"t{rng.randrange(TRACKS):015d}"
    territory = rng.choice(["DE", "FR", "US", None, "GB", "JP"])
    body = json.dumps({"track_id": track, "territory": territory}).encode()
    headers = {"Authorization": f"Bearer {OPERATOR_KEY}", "Content-Type": "application/json"}
    outcome = _call(lambda: client.request("POST", "/v1/admin/takedown", body, headers)[0])
    world.expect("takedown", outcome, {200, 404})


ACTIONS = [_upload_and_publish, _racing_uploads, _wrong_upload, _publish_twice, _takedown]


async def _disagreements(storage_config: StorageConfig, catalog_path: Path, url: str) -> list[str]:
    """fsck's findings, then every published object hashed: downloaded through the origin, or
    read from the store when its track is withdrawn (the origin answers 410 for it)."""
    storage = await open_storage(storage_config)
    try:
        catalog = await Catalog.open(catalog_path)
        try:
            problems = [f.line() for f in await fsck.check(catalog, storage)]
            async with aiohttp.ClientSession() as session:
                for track_id, version in await catalog.published_versions():
                    track = await catalog.track(track_id)
                    entry = await catalog.version(track_id, version)
                    assert track is not None and entry is not None
                    for path, expected in entry["manifest"].items():
                        key = f"tracks/{track_id}/{version}/{path}"
                        if track["withdrawn"]:
                            data = b"".join([c async for c in storage.read(key)])
                        else:
                            async with session.get(f"{url}/{key}") as response:
                                data = await response.read()
                                if response.status != 200:
                                    problems.append(f"{key} answered {response.status}")
                        if hashlib.sha256(data).hexdigest() != expected["sha256"]:
                            problems.append(f"{key} does not hash to its manifest entry")
        finally:
            await catalog.close()
    finally:
        await storage.close()
    return problems


def _run_chaos(data_dir: Path, config: Path | None, tmp_path: Path, rounds: int) -> None:
    rng = random.Random(SEED)
    settings = load_settings(config, data_dir=data_dir)
    world = World(data_dir, config, add_label(data_dir, config=config))
    log = tmp_path / "origin.log"
    server: OriginProcess = start_origin_process(data_dir, log, config)
    kills = 0
    try:
        for round_ in range(rounds):
            client = Client(server.url, world.key)
            chosen = [rng.choice(ACTIONS) for _ in range(ACTIONS_PER_ROUND)]
            seeds = [rng.randrange(1 << 30) for _ in chosen]
            kill_at = rng.uniform(0.0, 0.4) if round_ % KILL_EVERY == 1 else None
            killer = None
            if kill_at is not None:
                killer = threading.Timer(kill_at, server.stop, (signal.SIGKILL,))
                killer.start()
            with ThreadPoolExecutor(max_workers=4) as pool:
                jobs = [
                    pool.submit(action, world, client, random.Random(seed))
                    for action, seed in zip(chosen, seeds, strict=True)
                ]
                for job in jobs:
                    job.result(timeout=ROUND_SECONDS)
            if killer is not None:
                killer.join(timeout=ROUND_SECONDS)
                kills += 1
                server.stop()
                server = start_origin_process(data_dir, log, config)
            found = _disagreements(settings.storage, settings.catalog_path, server.url)
            problems = asyncio.run(found)
            assert problems == [], f"round {round_}: {problems}"
        assert world.surprises == []
        assert kills == rounds // KILL_EVERY
    finally:
        server.stop()
    result = fsck_process(data_dir, "--json", config=config)
    assert result.returncode == 0, result.stdout
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text


def test_chaos_on_the_filesystem(tmp_path: Path):
    _run_chaos(tmp_path / "origin", None, tmp_path, ROUNDS)


def test_chaos_on_s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    storage = _s3_config(moto_endpoint, monkeypatch, tmp_path)
    asyncio.run(_create_bucket(storage))
    config = s3_origin_config(tmp_path / "origin.toml", storage)
    _run_chaos(tmp_path / "origin", config, tmp_path, S3_ROUNDS)
