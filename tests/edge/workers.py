"""Several workers of one edge in this process, for tests of how they act as one cache."""

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from aiohttp import web

from edge.app import create_app
from edge.settings import EdgeSettings
from tests.loopback import serve


@asynccontextmanager
async def edge_workers(settings: EdgeSettings, workers: int = 2) -> AsyncIterator[list[str]]:
    """Start ``workers`` workers of an edge with ``settings``; yields their base URLs."""
    folder = tempfile.mkdtemp(prefix="cadenza-peers-")  # short: Unix socket paths are limited
    runners: list[web.AppRunner] = []
    try:
        urls = []
        for worker in range(workers):
            each = replace(settings, workers=workers, worker=worker, peer_folder=folder)
            runner, url = await serve(create_app(each))
            runners.append(runner)
            urls.append(url)
        yield urls
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        shutil.rmtree(folder, ignore_errors=True)
