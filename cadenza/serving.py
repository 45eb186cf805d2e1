"""Run an aiohttp application until SIGINT or SIGTERM, on uvloop, the same way for every service.

With several workers, each is a process of its own with its own event loop, all listening on one
port: they inherit one listening socket and whichever is free accepts the next connection
(SO_REUSEPORT would pin connections to workers by a hash of their addresses, so a few busy
connections can load one worker while another idles); SIGTERM to the parent drains every worker.
"""

import asyncio
import logging
import multiprocessing
import os
import queue
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import uvloop
from aiohttp import http_writer, web
from aiohttp.abc import AbstractAccessLogger

from cadenza.errors import ConfigError
from cadenza.process import die_with_parent

DRAIN_SECONDS = 30.0
READY_SECONDS = 30.0


class Front(Protocol):
    """A protocol factory that serves a port in front of aiohttp's own (see ``edge.front``)."""

    def __call__(self) -> asyncio.Protocol: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Service:
    name: str
    host: str
    port: int
    access_log: type[AbstractAccessLogger] | None = None
    front: Callable[[web.Application, web.Server], Front] | None = None
    # Every connection: a request head must arrive whole within head_timeout, and an idle
    # keep-alive connection is closed after keepalive_timeout.
    head_timeout: float = 10.0
    keepalive_timeout: float = 75.0


def run(app: web.Application, host: str, port: int, name: str,
        access_log: type[AbstractAccessLogger] | None = None) -> int:  # fmt: skip
    return run_service(app, Service(name, host, port, access_log))


def run_service(app: web.Application, service: Service) -> int:
    _send_without_joining()
    return uvloop.run(_serve(app, service, announce=True))


def run_workers(make_app: Callable[[int], web.Application], service: Service, workers: int) -> int:
    """Serve ``make_app(worker)`` in ``workers`` processes sharing one port (worker 0, 1, ...)."""
    if workers <= 1:
        return run_service(make_app(0), service)
    with _reserve(service) as reserved:
        port = reserved.getsockname()[1]
        shared = replace(service, port=port)
        context = multiprocessing.get_context("fork")  # before any event loop exists
        ready = context.Queue()
        children = [
            context.Process(
                target=_worker, args=(make_app, i, shared, ready, reserved), name=f"w{i}"
            )
            for i in range(workers)
        ]
        for child in children:
            child.start()
        for _ in children:  # announce only once every worker listens
            try:
                ready.get(timeout=READY_SECONDS)
            except queue.Empty:
                break
        print(f"{service.name} listening on http://{service.host}:{port}", flush=True)
        stop = _wait_for_stop(children)
        for child in children:
            if child.is_alive() and child.pid is not None:
                os.kill(child.pid, signal.SIGTERM)
        for child in children:
            child.join(DRAIN_SECONDS)
            if child.is_alive():
                child.kill()
                child.join()
        print(f"{service.name} stopped", file=sys.stderr, flush=True)
    return 0 if stop else 1


def _worker(
    make_app: Callable[[int], web.Application],
    worker: int,
    service: Service,
    ready: "multiprocessing.Queue[int]",
    listening: socket.socket,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into SIGTERM
    die_with_parent(signal.SIGTERM)  # a parent killed outright takes its workers along
    app = make_app(worker)
    _send_without_joining()
    sys.exit(uvloop.run(_serve(app, service, announce=False, sock=listening, ready=ready)))


def _wait_for_stop(children: Sequence[multiprocessing.process.BaseProcess]) -> bool:
    """Block until SIGINT or SIGTERM (True) or until a worker dies on its own (False)."""
    stopped: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        stopped.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    while not stopped and all(child.is_alive() for child in children):
        time.sleep(0.2)
    return bool(stopped) or all(child.is_alive() for child in children)


def _send_without_joining() -> None:
    """Let aiohttp hand headers and body to the transport as two buffers, not one joined copy.

    aiohttp joins them on Python < 3.12.9 to dodge a bug in CPython's own selector transport;
    services here run on uvloop, whose writelines is its own and sends both without copying.
    For a 120 KB segment the copy costs about a third of a memory hit's throughput.
    """
    http_writer.SKIP_WRITELINES = False


class _reserve:
    """The listening socket that every worker inherits and accepts from."""

    def __init__(self, service: Service) -> None:
        family = socket.AF_INET6 if ":" in service.host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((service.host, service.port))
            self.sock.listen(1024)
            self.sock.setblocking(False)
        except OSError as e:
            self.sock.close()
            raise _cannot_listen(service, e) from None

    def __enter__(self) -> socket.socket:
        return self.sock

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def _cannot_listen(service: Service, error: OSError) -> ConfigError:
    return ConfigError(
        f"{service.name} cannot listen on {service.host}:{service.port} ({error.strerror}); "
        "choose another --listen"
    )


async def _serve(
    app: web.Application,
    service: Service,
    *,
    announce: bool,
    sock: socket.socket | None = None,
    ready: "multiprocessing.Queue[int] | None" = None,
) -> int:
    if service.access_log is None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
    else:
        logger = logging.getLogger(getattr(service.access_log, "LOGGER", "cadenza.access"))
        runner = web.AppRunner(
            app, access_log=logger, access_log_class=service.access_log, handle_signals=False
        )
    await runner.setup()
    front: Front | None = None
    tcp: asyncio.Server | None = None
    try:
        try:
            if service.front is None:
                site: web.BaseSite = (
                    web.SockSite(runner, sock)
                    if sock is not None
                    else web.TCPSite(runner, service.host, service.port)
                )
                await site.start()
                address = runner.addresses[0]
            else:
                assert runner.server is not None
                front = service.front(app, runner.server)
                loop = asyncio.get_running_loop()
                tcp = await (
                    loop.create_server(front, sock=sock, backlog=1024)
                    if sock is not None
                    else loop.create_server(front, service.host, service.port, backlog=1024)
                )
                address = tcp.sockets[0].getsockname()
        except OSError as e:
            raise _cannot_listen(service, e) from None
        if ready is not None:
            ready.put(os.getpid())
        if announce:
            bound_host, bound_port = address[:2]
            # One line on stdout that scripts (and tests) read to find the port.
            print(f"{service.name} listening on http://{bound_host}:{bound_port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        if announce:
            print(f"{service.name} stopping", file=sys.stderr, flush=True)
    finally:
        if tcp is not None and front is not None:
            tcp.close()  # no new connections; idle ones in the lean lane end now
            front.close()
        await runner.cleanup()  # stops accepting, lets in-flight responses finish
    return 0
