"""A whole Cadenza deployment on loopback: origin, edges in regions, locator, each a process.

The fleet benchmark, ``make demo`` and the end-to-end tests all need the same thing: a label
with an API key, an origin, a few edges with their own configs and cache folders, a locator that
knows them, shared token keys, and a way to ingest a catalog and to kill an edge. Everything
lives under one folder; ``deploy`` yields once the locator sees every edge up, and stops every
process it started when the block ends.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.processes import Service, ServiceFailed, free_port, start_cadenza
from cadenza.tokens import new_secret

INGEST_SECONDS = 900
READY_SECONDS = 15.0


@dataclass(frozen=True)
class EdgeSpec:
    id: str
    region: str
    latitude: float
    longitude: float


DEFAULT_EDGES = (
    EdgeSpec("eu-west-1", "eu-west", 48.86, 2.35),  # Paris
    EdgeSpec("eu-west-2", "eu-west", 50.11, 8.68),  # Frankfurt
    EdgeSpec("us-east-1", "us-east", 38.90, -77.04),  # Washington
)
MORE_EDGES = (  # after the default three, in the order that ``edge_specs`` adds them
    EdgeSpec("us-east-2", "us-east", 40.71, -74.01),  # New York
    EdgeSpec("eu-west-3", "eu-west", 51.51, -0.13),  # London
    EdgeSpec("us-east-3", "us-east", 42.36, -71.06),  # Boston
    EdgeSpec("eu-west-4", "eu-west", 52.37, 4.90),  # Amsterdam
    EdgeSpec("us-east-4", "us-east", 33.75, -84.39),  # Atlanta
    EdgeSpec("eu-west-5", "eu-west", 40.42, -3.70),  # Madrid
    EdgeSpec("us-east-5", "us-east", 39.95, -75.17),  # Philadelphia
    EdgeSpec("eu-west-6", "eu-west", 45.46, 9.19),  # Milan
    EdgeSpec("us-east-6", "us-east", 35.23, -80.84),  # Charlotte
)
MAX_EDGES = len(DEFAULT_EDGES) + len(MORE_EDGES)


def edge_specs(count: int) -> tuple[EdgeSpec, ...]:
    """``count`` edges in the two regions (the default three first), one city each."""
    if not 1 <= count <= MAX_EDGES:
        raise ValueError(f"{count} edges: from 1 to {MAX_EDGES}")
    return (DEFAULT_EDGES + MORE_EDGES)[:count]


@dataclass(frozen=True)
class EdgeOptions:
    workers: int = 1
    memory_bytes: int = 64 << 20
    policy: str = "music"
    capacity_bps: float = 1e9
    extra: dict[str, Any] = field(default_factory=dict)  # more edge settings, as in its TOML
    parents: int = 0  # parent edges every edge fetches its misses from (players never see them)


@dataclass
class Deployment:
    folder: Path
    origin: Service
    edges: dict[str, Service]
    locator: Service
    api_key: str
    operator_key: str
    env: dict[str, str]
    specs: tuple[EdgeSpec, ...]
    parents: dict[str, Service] = field(default_factory=dict)

    def kill_edge(self, edge_id: str) -> None:
        """``kill -9`` of an edge: no draining, no goodbye."""
        service = self.edges[edge_id]
        service.stop(signal.SIGKILL)

    def ingest(self, paths: Sequence[Path], *, jobs: int | None = None) -> list[dict[str, Any]]:
        """Encode and upload masters through the origin; the per-track results."""
        return ingest(self.origin.url, self.api_key, self.env, paths, jobs=jobs)


def ingest(
    origin: str,
    api_key: str,
    env: dict[str, str],
    paths: Sequence[Path],
    *,
    jobs: int | None = None,
) -> list[dict[str, Any]]:
    """``cadenza ingest`` of ``paths`` through ``origin`` for the label "bench": per track."""
    command = [
        sys.executable, "-m", "cadenza", "ingest", *map(str, paths), "--origin", origin,
        "--label", "bench", "--api-key", api_key, "--json",
    ]  # fmt: skip
    if jobs:
        command += ["--jobs", str(jobs)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=INGEST_SECONDS)
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise ServiceFailed(f"ingest failed: {done.stderr.strip()[-2000:]}")
    tracks: list[dict[str, Any]] = json.loads(done.stdout)["tracks"]
    return tracks


@dataclass
class OriginRun:
    """A running origin with its label's API key, and the environment every service shares."""

    folder: Path
    service: Service
    api_key: str
    operator_key: str
    env: dict[str, str]

    def ingest(self, paths: Sequence[Path], *, jobs: int | None = None) -> list[dict[str, Any]]:
        """Encode and upload masters through the origin; the per-track results."""
        return ingest(self.service.url, self.api_key, self.env, paths, jobs=jobs)


@contextmanager
def deploy(
    folder: Path,
    specs: Sequence[EdgeSpec] = DEFAULT_EDGES,
    options: EdgeOptions = EdgeOptions(),
    locator_extra: dict[str, Any] | None = None,
) -> Iterator[Deployment]:
    """Start origin, edges and locator under ``folder``; stop them all when the block ends."""
    with (
        run_origin(folder) as origin,
        run_edges(folder, origin, specs, options, locator_extra) as deployment,
    ):
        yield deployment


@contextmanager
def run_origin(folder: Path) -> Iterator[OriginRun]:
    """An origin under ``folder`` with a label "bench", and the token keys of its fleet."""
    folder.mkdir(parents=True, exist_ok=True)
    operator_key = new_secret(16)
    token_keys = f"k1:{new_secret(24)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENZA_")}
    env.update(CADENZA_TOKEN_KEYS=token_keys, CADENZA_OPERATOR_KEY=operator_key)
    data = folder / "origin"
    label = subprocess.run(
        [sys.executable, "-m", "cadenza", "origin", "add-label", "bench", "--data-dir", str(data)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    if label.returncode != 0:
        raise ServiceFailed(f"cannot make the label: {label.stderr.strip()}")
    origin = start_cadenza("origin", "--listen", "127.0.0.1:0", "--data-dir", data, env=env)
    try:
        yield OriginRun(folder, origin, label.stdout.strip(), operator_key, env)
    finally:
        origin.stop()


@contextmanager
def run_edges(
    folder: Path,
    origin: OriginRun,
    specs: Sequence[EdgeSpec] = DEFAULT_EDGES,
    options: EdgeOptions = EdgeOptions(),
    locator_extra: dict[str, Any] | None = None,
) -> Iterator[Deployment]:
    """Edges (and their parents) with their caches under ``folder``, and a locator that knows
    them, in front of ``origin``; stopped when the block ends. Several of these may follow each
    other on one origin, each starting from cold caches when its folder is new."""
    folder.mkdir(parents=True, exist_ok=True)
    env = origin.env
    origin_url = origin.service.url
    locator_port = free_port()
    with ExitStack() as running:
        locator_url = f"http://127.0.0.1:{locator_port}"
        parents = {}
        for n in range(1, options.parents + 1):
            spec = EdgeSpec(f"parent-{n}", specs[0].region, specs[0].latitude, specs[0].longitude)
            config = _write(
                folder / f"edge-{spec.id}.toml", _edge_config(spec, options, folder, locator_url)
            )
            parent = start_cadenza("edge", "--config", config, "--origin", origin_url, env=env)
            running.callback(parent.stop)
            parents[spec.id] = parent
        edges = {}
        for spec in specs:
            table = _edge_config(spec, options, folder, locator_url)
            if parents:
                table["parents"] = [p.url for p in parents.values()]
            config = _write(folder / f"edge-{spec.id}.toml", table)
            edge = start_cadenza("edge", "--config", config, "--origin", origin_url, env=env)
            running.callback(edge.stop)
            edges[spec.id] = edge
        locator_config = _write(
            folder / "locator.toml",
            _locator_config(folder, specs, edges, origin_url, locator_port, options, locator_extra),
        )
        locator = start_cadenza("locator", "--config", locator_config, env=env)
        running.callback(locator.stop)
        _until_edges_up(locator.url, len(specs))
        yield Deployment(
            folder, origin.service, edges, locator, origin.api_key, origin.operator_key, env,
            tuple(specs), parents,
        )  # fmt: skip


def _until_edges_up(locator: str, count: int) -> None:
    """A deployment is ready once its locator has seen every edge answer its status."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{locator}/v1/edges", timeout=10) as response:
            edges = json.loads(response.read())["edges"]
        if sum(e["state"] == "up" for e in edges) == count:
            return
        time.sleep(0.1)
    raise ServiceFailed(f"the locator at {locator} did not see all {count} edges up")


def _write(path: Path, table: dict[str, Any]) -> Path:
    path.write_text("".join(_toml(key, value) for key, value in table.items()))
    return path


def _toml(key: str, value: Any) -> str:
    """Just enough TOML for flat settings and arrays of flat tables."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return "".join(
            f"\n[[{key}]]\n" + "".join(_toml(k, v) for k, v in item.items()) for item in value
        )
    if isinstance(value, dict):
        return f"\n[{key}]\n" + "".join(_toml(k, v) for k, v in value.items())
    return f"{key} = {json.dumps(value)}\n"


def _edge_config(
    spec: EdgeSpec, options: EdgeOptions, folder: Path, locator: str
) -> dict[str, Any]:
    return {
        "locator": locator,
        "listen": "127.0.0.1:0",
        "region": spec.region,
        "latitude": spec.latitude,
        "longitude": spec.longitude,
        "capacity_bps": options.capacity_bps,
        "memory_bytes": options.memory_bytes,
        "cache_dir": str(folder / f"cache-{spec.id}"),
        "policy": options.policy,
        "workers": options.workers,
        "first_byte_timeout_seconds": 2.0,
        **options.extra,
    }


def _locator_config(
    folder: Path,
    specs: Sequence[EdgeSpec],
    edges: dict[str, Service],
    origin: str,
    port: int,
    options: EdgeOptions,
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    first = specs[0]
    # The flat keys come first: TOML puts every key after a table header into that table.
    return {
        "listen": f"127.0.0.1:{port}",
        "origin": origin,
        "plays_log": f"sqlite:///{folder / 'plays.sqlite3'}",  # the players' events
        **(extra or {}),
        "default_location": {
            "region": first.region,
            "latitude": first.latitude,
            "longitude": first.longitude,
            "territory": "FR",
        },
        "edge": [
            {
                "id": spec.id,
                "region": spec.region,
                "url": edges[spec.id].url,
                "latitude": spec.latitude,
                "longitude": spec.longitude,
                "capacity_bps": options.capacity_bps,
            }
            for spec in specs
        ],
    }
