"""A whole Cadenza deployment on loopback: origin, edges in regions, locator, each a process.

The fleet benchmark, ``make demo`` and the end-to-end tests all need the same thing: a label
with an API key, an origin, a few edges with their own configs and cache folders, a locator that
knows them, shared token keys, and a way to ingest a catalog and to kill an edge. Everything
lives under one folder; ``deploy`` yields once the locator sees every edge up, and stops every
process it started when the block ends.
"""

import json
import os
import secrets
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


@dataclass(frozen=True)
class EdgeOptions:
    workers: int = 1
    memory_bytes: int = 64 << 20
    policy: str = "s3fifo"
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
        command = [
            sys.executable, "-m", "cadenza", "ingest", *map(str, paths), "--origin",
            self.origin.url, "--label", "bench", "--api-key", self.api_key, "--json",
        ]  # fmt: skip
        if jobs:
            command += ["--jobs", str(jobs)]
        done = subprocess.run(
            command, capture_output=True, text=True, env=self.env, timeout=INGEST_SECONDS
        )
        if done.returncode not in (0, 1) or not done.stdout.strip():
            raise ServiceFailed(f"ingest failed: {done.stderr.strip()[-2000:]}")
        tracks: list[dict[str, Any]] = json.loads(done.stdout)["tracks"]
        return tracks


@contextmanager
def deploy(
    folder: Path,
    specs: Sequence[EdgeSpec] = DEFAULT_EDGES,
    options: EdgeOptions = EdgeOptions(),
    locator_extra: dict[str, Any] | None = None,
) -> Iterator[Deployment]:
    """Start origin, edges and locator under ``folder``; stop them all when the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    operator_key = secrets.token_urlsafe(16)
    token_keys = f"k1:{secrets.token_urlsafe(24)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENZA_")}
    env.update(CADENZA_TOKEN_KEYS=token_keys, CADENZA_OPERATOR_KEY=operator_key)
    data = folder / "origin"
    label = subprocess.run(
        [sys.executable, "-m", "cadenza", "origin", "add-label", "bench", "--data-dir", str(data)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    if label.returncode != 0:
        raise ServiceFailed(f"cannot make the label: {label.stderr.strip()}")
    api_key = label.stdout.strip()
    locator_port = free_port()
    with ExitStack() as running:
        origin = start_cadenza("origin", "--listen", "127.0.0.1:0", "--data-dir", data, env=env)
        running.callback(origin.stop)
        locator_url = f"http://127.0.0.1:{locator_port}"
        parents = {}
        for n in range(1, options.parents + 1):
            spec = EdgeSpec(f"parent-{n}", specs[0].region, specs[0].latitude, specs[0].longitude)
            config = _write(
                folder / f"edge-{spec.id}.toml", _edge_config(spec, options, folder, locator_url)
            )
            parent = start_cadenza("edge", "--config", config, "--origin", origin.url, env=env)
            running.callback(parent.stop)
            parents[spec.id] = parent
        edges = {}
        for spec in specs:
            table = _edge_config(spec, options, folder, locator_url)
            if parents:
                table["parents"] = [p.url for p in parents.values()]
            config = _write(folder / f"edge-{spec.id}.toml", table)
            edge = start_cadenza("edge", "--config", config, "--origin", origin.url, env=env)
            running.callback(edge.stop)
            edges[spec.id] = edge
        locator_config = _write(
            folder / "locator.toml",
            _locator_config(specs, edges, origin.url, locator_port, options, locator_extra),
        )
        locator = start_cadenza("locator", "--config", locator_config, env=env)
        running.callback(locator.stop)
        _until_edges_up(locator.url, len(specs))
        yield Deployment(
            folder, origin, edges, locator, api_key, operator_key, env, tuple(specs), parents
        )


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
