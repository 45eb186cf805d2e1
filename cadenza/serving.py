"""Run an aiohttp application until SIGINT or SIGTERM, on uvloop, the same way for every service."""

import asyncio
import logging
import signal
import sys

import uvloop
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from cadenza.errors import ConfigError


def run(
    app: web.Application,
    host: str,
    port: int,
    name: str,
    access_log: type[AbstractAccessLogger] | None = None,
) -> int:
    return uvloop.run(_serve(app, host, port, name, access_log))


async def _serve(
    app: web.Application,
    host: str,
    port: int,
    name: str,
    access_log: type[AbstractAccessLogger] | None,
) -> int:
    if access_log is None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
    else:
        logger = logging.getLogger(getattr(access_log, "LOGGER", "cadenza.access"))
        runner = web.AppRunner(
            app, access_log=logger, access_log_class=access_log, handle_signals=False
        )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as e:
            raise ConfigError(
                f"{name} cannot listen on {host}:{port} ({e.strerror}); choose another --listen"
            ) from None
        bound_host, bound_port = runner.addresses[0][:2]
        # One line on stdout that scripts (and tests) read to find the port.
        print(f"{name} listening on http://{bound_host}:{bound_port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        print(f"{name} stopping", file=sys.stderr, flush=True)
    finally:
        await runner.cleanup()
    return 0
