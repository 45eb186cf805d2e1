"""Workers that answer for their whole service: each of the processes that share a port
(``cadenza.serving.run_workers``) also listens on a Unix socket of its own, in a private folder
that the service's command makes and removes, where the others ask it for its own figures
(metrics, counts) to add them up.
"""

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from cadenza.process import alive

PEER_PREFIX = "/_peer"
ASK_TIMEOUT = 0.5  # seconds for a worker's own figures; one that is restarting is left out


def make_folder(prefix: str) -> str:
    """A private folder for the worker sockets of this process's service, named after it; the
    folders of services that died without removing theirs (kill -9) are removed first."""
    base = tempfile.gettempdir()
    for name in os.listdir(base):
        pid = name.removeprefix(prefix).split("-", 1)[0]
        if name.startswith(prefix) and pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-")


def socket_path(folder: str, worker: int) -> str:
    return f"{folder}/w{worker}.sock"


@asynccontextmanager
async def listening(app: web.Application, folder: str, worker: int) -> AsyncIterator[None]:
    """Serve ``app`` (the routes other workers ask, under PEER_PREFIX) on this worker's socket."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.UnixSite(runner, socket_path(folder, worker)).start()
        yield
    finally:
        await runner.cleanup()


class Peers:
    """Clients for the other workers of this service (``sessions`` by worker index)."""

    def __init__(
        self, folder: str, worker: int, workers: int, *, limit: int = 16, decompress: bool = True
    ) -> None:
        self.worker = worker
        self.workers = workers
        self.sessions = {
            i: aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=socket_path(folder, i), limit=limit),
                auto_decompress=decompress,
            )
            for i in range(workers)
            if i != worker
        }

    async def ask_all(self, path: str) -> list[bytes]:
        """``GET PEER_PREFIX + path`` of every other worker: the bodies of those that answered
        in time, with 200."""
        answers = await asyncio.gather(
            *(self._ask(s, path) for s in self.sessions.values()), return_exceptions=True
        )
        return [a for a in answers if isinstance(a, bytes)]

    async def _ask(self, session: aiohttp.ClientSession, path: str) -> bytes:
        timeout = aiohttp.ClientTimeout(total=ASK_TIMEOUT)
        async with session.get(f"http://peer{PEER_PREFIX}{path}", timeout=timeout) as r:
            r.raise_for_status()
            return await r.read()

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.sessions.values()))
