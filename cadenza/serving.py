"""Run an aiohttp application until SIGINT or SIGTERM, on uvloop, the same way for every service.

With several workers, each is a process of its own with its own event loop, all listening on one
port: they inherit one listening socket and whichever is free accepts the next connection, one
at a time (SO_REUSEPORT would pin connections to workers by a hash of their addresses, so a few
busy connections can load one worker while another idles); SIGTERM to the parent drains every
worker, and a worker that dies is replaced while the others serve on.
"""

import asyncio
import logging
import multiprocessing
import os
import resource
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import uvloop
from aiohttp import http_writer, web
from aiohttp.abc import AbstractAccessLogger

from cadenza.errors import CadenzaError, ConfigError
from cadenza.log import get_logger
from cadenza.process import die_with_parent

logger = get_logger("serving")

DRAIN_SECONDS = 30.0
READY_SECONDS = 30.0
RETRY_SECONDS = 0.1  # a worker out of file descriptors accepts again after this
MOST_OPEN_FILES = 1 << 20  # the soft limit a service asks for when its hard limit has none


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
    open_files_limit()
    _send_without_joining()
    return uvloop.run(_serve(app, service, announce=True))


def run_workers(make_app: Callable[[int], web.Application], service: Service, workers: int) -> int:
    """Serve ``make_app(worker)`` in ``workers`` processes sharing one port (worker 0, 1, ...).

    A worker that dies is replaced under the same index (the edge's peers find it by index), the
    others serving on meanwhile; a worker that keeps dying soon after it starts stops the service.
    """
    if workers <= 1:
        return run_service(make_app(0), service)
    open_files_limit()  # the workers inherit it
    with _reserve(service) as reserved:
        shared = replace(service, port=reserved.getsockname()[1])
        pool = _Pool(make_app, shared, reserved, workers)
        try:
            pool.serve()
        finally:
            pool.stop()
            print(f"{service.name} stopped", file=sys.stderr, flush=True)
    return 0


@dataclass
class Restarts:
    """When to replace a dead worker, and when to give up on one that keeps dying young.

    A worker that ran for ``settled`` seconds or more is replaced at once; one that died sooner
    waits ``first_delay``, doubled after each further early death, and after ``attempts`` early
    deaths in a row the service gives up (a worker that cannot start will not start by retrying).
    """

    settled: float = 10.0
    attempts: int = 5
    first_delay: float = 0.25
    max_delay: float = 5.0
    early: dict[int, int] = field(default_factory=dict)

    def delay(self, worker: int, lived: float) -> float | None:
        """Seconds to wait before replacing ``worker``, or None to give up."""
        if lived >= self.settled:
            self.early[worker] = 0
            return 0.0
        deaths = self.early[worker] = self.early.get(worker, 0) + 1
        if deaths >= self.attempts:
            return None
        return min(self.max_delay, self.first_delay * 2.0 ** (deaths - 1))


class WorkerFailed(CadenzaError):
    """A worker died early again and again: the service stops instead of looping."""


class _Pool:
    """The parent's view of its workers: start, replace, announce, drain."""

    def __init__(
        self,
        make_app: Callable[[int], web.Application],
        service: Service,
        listening: socket.socket,
        workers: int,
    ) -> None:
        self.make_app = make_app
        self.service = service
        self.listening = listening
        self.context = multiprocessing.get_context("fork")  # before any event loop exists
        # Each worker writes one line here once it listens: a pipe, not a Queue, whose lock a
        # worker killed mid-write would hold for ever (short writes to a pipe are atomic).
        self.ready, self.ready_end = os.pipe()
        self.restarts = Restarts()
        self.children: dict[int, multiprocessing.process.BaseProcess] = {}
        self.started: dict[int, float] = {}
        self.due: dict[int, float] = {}  # dead workers' replacement times
        for worker in range(workers):
            self._start(worker)

    def _start(self, worker: int) -> None:
        child = self.context.Process(
            target=_worker,
            args=(self.make_app, worker, self.service, self.ready_end, self.listening),
            name=f"w{worker}",
        )
        child.start()
        self.children[worker] = child
        self.started[worker] = time.monotonic()

    def serve(self) -> None:
        """Until SIGINT or SIGTERM; raises WorkerFailed if a worker cannot be kept up."""
        stopped: list[int] = []

        def handler(signum: int, _frame: object) -> None:
            stopped.append(signum)

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, handler)
        listening, announced = 0, False
        announce_by = time.monotonic() + READY_SECONDS
        while not stopped:
            if select.select([self.ready], [], [], 0.1)[0]:
                listening += os.read(self.ready, 4096).count(b"\n")
            if not announced and (
                listening >= len(self.children) or time.monotonic() > announce_by
            ):
                announced = True  # once every worker listens (or at the limit), as one service
                host, port = self.service.host, self.service.port
                print(f"{self.service.name} listening on http://{host}:{port}", flush=True)
            self._replace_dead()

    def _replace_dead(self) -> None:
        now = time.monotonic()
        for worker, child in list(self.children.items()):
            if worker in self.due or child.is_alive():
                continue
            child.join()
            delay = self.restarts.delay(worker, now - self.started[worker])
            if delay is None:
                raise WorkerFailed(
                    f"{self.service.name}: worker {worker} exited {self.restarts.attempts} "
                    f"times within {self.restarts.settled:g} s of starting (last exit code "
                    f"{child.exitcode}); see its errors above"
                )
            logger.warning(
                "%s: worker %d (pid %s) exited with code %s; replacing it in %.2f s",
                self.service.name, worker, child.pid, child.exitcode, delay,
            )  # fmt: skip
            self.due[worker] = now + delay
        for worker, when in list(self.due.items()):
            if when <= now:
                del self.due[worker]
                self._start(worker)

    def stop(self) -> None:
        """SIGTERM every worker, wait for their drains (bounded), then kill what is left."""
        for child in self.children.values():
            if child.is_alive() and child.pid is not None:
                os.kill(child.pid, signal.SIGTERM)
        for child in self.children.values():
            child.join(DRAIN_SECONDS)
            if child.is_alive():
                child.kill()
                child.join()
        os.close(self.ready)
        os.close(self.ready_end)


def _worker(
    make_app: Callable[[int], web.Application],
    worker: int,
    service: Service,
    ready: int,
    listening: socket.socket,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into SIGTERM
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler, inherited by fork
    die_with_parent(signal.SIGTERM)  # a parent killed outright takes its workers along
    try:
        app = make_app(worker)
        _send_without_joining()
        code = uvloop.run(_serve(app, service, announce=False, sock=listening, ready=ready))
    except CadenzaError as e:
        logger.error("%s: worker %d: %s", service.name, worker, e)
        code = 1
    except Exception:  # logged, not printed by multiprocessing: log lines are kept clean
        logger.exception("%s: worker %d failed", service.name, worker)
        code = 1
    sys.exit(code)


def open_files_limit() -> int:
    """Lift this process's soft limit of open files to its hard limit, as servers do (nginx's
    ``worker_rlimit_nofile``): every connection takes a descriptor, and a soft limit of 1,024,
    common by default, would turn clients away near a thousand connections. Returns the soft
    limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MOST_OPEN_FILES if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError):  # above what the kernel allows: keep the soft limit
        return soft
    return wanted


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
    ready: int | None = None,
) -> int:
    handler_args: dict[str, Any] = {"keepalive_timeout": service.keepalive_timeout}
    if service.access_log is None:
        handler_args["access_log"] = None
    else:
        name = getattr(service.access_log, "LOGGER", "cadenza.access")
        handler_args.update(access_log=logging.getLogger(name), access_log_class=service.access_log)
    runner = web.AppRunner(app, handle_signals=False, **handler_args)
    await runner.setup()
    assert runner.server is not None
    connections = _Connections(runner.server, service.head_timeout, handler_args)
    front: Front | None = None
    tcp: asyncio.Server | _Acceptor | None = None
    loop = asyncio.get_running_loop()
    try:
        front = None if service.front is None else service.front(app, connections)
        factory: Callable[[], asyncio.Protocol] = connections if front is None else front
        if sock is not None:  # a worker: the socket is shared
            tcp = _Acceptor(loop, factory, sock)
        else:
            try:
                tcp = await loop.create_server(factory, service.host, service.port, backlog=1024)
            except OSError as e:
                raise _cannot_listen(service, e) from None
        if ready is not None:
            os.write(ready, b"%d\n" % os.getpid())
        if announce and not isinstance(tcp, _Acceptor):
            bound_host, bound_port = tcp.sockets[0].getsockname()[:2]
            # One line on stdout that scripts (and tests) read to find the port.
            print(f"{service.name} listening on http://{bound_host}:{bound_port}", flush=True)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        if announce:
            print(f"{service.name} stopping", file=sys.stderr, flush=True)
    finally:
        if tcp is not None:
            tcp.close()  # no new connections
        if front is not None:
            front.close()  # idle ones in the lean lane end now
        await runner.cleanup()  # closes idle connections, lets in-flight responses finish
    return 0


class _Acceptor:
    """A worker's share of the listening socket: one connection taken per readiness.

    uvloop's own server accepts every connection waiting at once, so the first worker to wake
    takes a burst of them (64 connections opened together split 13 to 51). Taking one at a time,
    each worker comes back for the next when its loop is free again, so the connections go to
    the workers that have time for them.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        factory: Callable[[], asyncio.Protocol],
        sock: socket.socket,
    ) -> None:
        self.loop = loop
        self.factory = factory
        self.sock = sock
        self.opening: set[asyncio.Task[Any]] = set()
        self.closed = False
        loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        try:
            connection, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker took it, or the client gave up
        except OSError as e:  # out of descriptors: pause rather than spin on the ready socket
            logger.warning("cannot accept a connection (%s); retrying in %g s", e, RETRY_SECONDS)
            self.loop.remove_reader(self.sock.fileno())
            self.loop.call_later(RETRY_SECONDS, self._resume)
            return
        connection.setblocking(False)
        # The transport owns the socket from here on, and closes it.
        task = self.loop.create_task(self.loop.connect_accepted_socket(self.factory, connection))
        self.opening.add(task)
        task.add_done_callback(self._opened)

    def _opened(self, task: "asyncio.Task[Any]") -> None:
        self.opening.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.warning("an accepted connection could not be opened: %s", error)

    def _resume(self) -> None:
        if not self.closed:
            self.loop.add_reader(self.sock.fileno(), self._accept)

    def close(self) -> None:
        """No new connections; those accepted already are the protocols' to finish."""
        self.closed = True
        self.loop.remove_reader(self.sock.fileno())


class _Connections(web.Server):
    """Makes aiohttp's handler for each client connection, with a deadline for request heads.

    The handlers register with the runner's own server, whose shutdown drains them. This is a
    ``web.Server`` so that a front lane (``Service.front``) hands connections to it as it would
    to aiohttp's own, and they are bounded alike.
    """

    def __init__(
        self, server: web.Server, head_timeout: float, handler_args: dict[str, Any]
    ) -> None:
        super().__init__(server.request_handler, request_factory=server.request_factory)
        self.server = server
        self.head_timeout = head_timeout
        self.handler_args = handler_args
        # A handler learns that its request head is complete when aiohttp makes the request.
        server.request_factory = _announcing(server.request_factory)

    def __call__(self) -> web.RequestHandler:
        return _Connection(
            self.server,
            self.head_timeout,
            loop=asyncio.get_running_loop(),
            **self.handler_args,
        )


def _announcing(factory: Callable[..., web.BaseRequest]) -> Callable[..., web.BaseRequest]:
    def make(
        message: Any, payload: Any, protocol: web.RequestHandler, *args: Any
    ) -> web.BaseRequest:
        if isinstance(protocol, _Connection):
            protocol.head_done()
        return factory(message, payload, protocol, *args)

    return make


REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


class _Connection(web.RequestHandler):
    """One client connection: each request head must arrive whole within ``head_timeout``.

    aiohttp closes a connection idle between requests after ``keepalive_timeout`` but sets no
    limit on the arrival of a head, so a client trickling header bytes could hold a connection
    for an hour. The deadline runs from the connection's start, then on a kept-alive connection
    from the first byte after a response (as nginx's client_header_timeout); a partial head at
    the deadline gets a 408, a connection that sent nothing is just closed.
    """

    __slots__ = ("_between", "_deadline", "_head_bytes", "_head_timeout")

    def __init__(self, server: web.Server, head_timeout: float, **kwargs: Any) -> None:
        super().__init__(server, **kwargs)
        self._head_timeout = head_timeout
        self._deadline: asyncio.TimerHandle | None = None
        self._between = True  # no request under way: bytes that come are the next head
        self._head_bytes = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._between and data:
            self._head_bytes = True
            if self._deadline is None:
                self._arm()
        super().data_received(data)

    def head_done(self) -> None:
        self._between = False
        self._head_bytes = False
        self._disarm()

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self._between = True

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = asyncio.get_running_loop().call_later(self._head_timeout, self._due)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _due(self) -> None:
        # One loop turn more: a head parsed just in time is announced by then.
        self._deadline = None
        asyncio.get_running_loop().call_soon(self._expire)

    def _expire(self) -> None:
        if not self._between or self.transport is None:
            return
        if self._head_bytes:
            self.transport.write(REQUEST_TIMEOUT)
        self.force_close()
