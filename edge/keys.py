"""The typed state of the edge's aiohttp application, shared by its handler modules."""

import asyncio

from aiohttp import web

from edge.disk import DiskTier
from edge.fetch import Fetcher
from edge.inflight import Inflight
from edge.load import Egress, HitRatio
from edge.memory import MemoryTier
from edge.metrics import EdgeMetrics
from edge.peers import Peers
from edge.preposition import PlayCounts
from edge.purge import Denials
from edge.settings import EdgeSettings

SETTINGS = web.AppKey("settings", EdgeSettings)
METRICS = web.AppKey("metrics", EdgeMetrics)
MEMORY = web.AppKey("memory", MemoryTier)
INFLIGHT = web.AppKey("inflight", Inflight)
FETCHER = web.AppKey("fetcher", Fetcher)
DISK = web.AppKey("disk", DiskTier)
EGRESS = web.AppKey("egress", Egress)
HITS = web.AppKey("hits", HitRatio)
DENIALS = web.AppKey("denials", Denials)
STATE = web.AppKey("state", dict[str, int])
PREFETCHED = web.AppKey("prefetched", set[str])
TASKS = web.AppKey("tasks", set[asyncio.Task[None]])
PLAYS = web.AppKey("plays", PlayCounts)
AHEAD = web.AppKey("ahead", dict[str, float])  # when readahead last looked past a key
PEERS = web.AppKey("peers", Peers)
FOR_PEERS = web.AppKey("for_peers", bool)  # the app behind the workers' own Unix sockets
# What the workers' peer app shares with the client-facing one.
SHARED = (SETTINGS, METRICS, MEMORY, INFLIGHT, FETCHER, DISK, EGRESS, HITS, DENIALS, STATE,
          PREFETCHED, TASKS)  # fmt: skip
