"""Typed keys of the origin's application state."""

import asyncio

from aiohttp import web

from origin.catalog import Catalog
from origin.metrics import OriginMetrics
from origin.publish import TrackLocks
from origin.settings import OriginSettings
from origin.storage import Storage

SETTINGS = web.AppKey("settings", OriginSettings)
STORAGE = web.AppKey("storage", Storage)
CATALOG = web.AppKey("catalog", Catalog)
METRICS = web.AppKey("metrics", OriginMetrics)
LOCKS = web.AppKey("track_locks", TrackLocks)  # publishes and master repairs, one per track
SHUTDOWN = web.AppKey("shutdown", asyncio.Event)  # set when the server stops: ends event streams
