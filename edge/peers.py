"""The worker processes of one edge act as one cache: each object has an owner worker.

Connections land on any worker (they share one listening socket), so without help every worker
would fetch a cold object from the origin once. Instead the owner of a key (a stable hash of it
over the workers) is the only one that asks the origin; the others fill their memory from the
owner over a Unix socket, streamed as bytes arrive. Each worker listens on a socket in the
edge's peer folder, a private temporary folder that the edge command makes and removes. The same
channel carries ``/status`` and ``/metrics``, so any worker can answer for the whole edge.
"""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import replace

import aiohttp

from cadenza import workers
from cadenza.status import CacheTier, EdgeStatus
from cadenza.workers import PEER_PREFIX as PEER_PREFIX  # the edge's modules find them here
from cadenza.workers import socket_path as socket_path


def owner(key: str, workers: int) -> int:
    """The worker that fetches ``key`` from the origin: stable across processes and restarts."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % workers


FOLDER_PREFIX = "cadenza-edge-"


def make_folder() -> str:
    """A private folder for this edge's worker sockets (see ``cadenza.workers.make_folder``)."""
    return workers.make_folder(FOLDER_PREFIX)


class Peers(workers.Peers):
    """Clients for the other workers of this edge: they stream the objects they own (as the
    origin sent them, compressed or not) and answer for their own status and metrics."""

    def __init__(self, folder: str, worker: int, count: int) -> None:
        super().__init__(folder, worker, count, limit=64, decompress=False)

    def route(self, key: str) -> aiohttp.ClientSession | None:
        """The session to the owner of ``key``; None when this worker owns it."""
        return self.sessions.get(owner(key, self.workers))

    async def statuses(self) -> list[EdgeStatus]:
        """The other workers' own statuses (those that answer in time)."""
        return [EdgeStatus.from_json(json.loads(a)) for a in await self.ask_all("/status")]

    async def expositions(self) -> list[bytes]:
        """The other workers' own metrics in Prometheus' text format (those that answer in time)."""
        return await self.ask_all("/metrics")


def combine(own: EdgeStatus, others: Iterable[EdgeStatus]) -> EdgeStatus:
    """One edge's status from its workers': sums of the per-worker figures.

    The disk tier is shared by the workers, so it is counted once; the hit ratio is recomputed
    from the summed hits and misses.
    """
    others = list(others)
    every = [own, *others]
    hits, misses = sum(s.hits for s in every), sum(s.misses for s in every)
    memory = [s.memory for s in every if s.memory is not None]
    return replace(
        own,
        draining=any(s.draining for s in every),
        active_requests=sum(s.active_requests for s in every),
        egress_bps=sum(s.egress_bps for s in every),
        lane_requests=sum(s.lane_requests for s in every),
        memory=CacheTier(sum(t.bytes for t in memory), sum(t.objects for t in memory))
        if memory
        else None,
        hits=hits,
        misses=misses,
        hit_ratio=hits / (hits + misses) if hits + misses else 0.0,
        workers=len(every),
        pids=tuple(s.pid for s in every if s.pid is not None),
    )
