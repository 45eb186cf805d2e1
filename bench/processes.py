"""Services as real processes for benchmarks and tests: start, wait for the port, stop bounded.

Every Cadenza service prints one ``NAME listening on http://HOST:PORT`` line on stdout once it
accepts connections; ``start`` waits for that line, so callers never sleep to synchronise.
"""

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cadenza.errors import CadenzaError

STOP_SECONDS = 15.0


class ServiceFailed(CadenzaError):
    """A service did not start; the message carries what it printed."""


@dataclass
class Service:
    process: "subprocess.Popen[str]"
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the service, wait (bounded), kill if needed; returns its exit code."""
        stop_process(self.process, sig)
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()
        return self.process.returncode


def stop_process(
    process: "subprocess.Popen[Any]", sig: int = signal.SIGTERM, seconds: float = STOP_SECONDS
) -> None:
    """Signal ``process`` unless it has ended, wait at most ``seconds``, then kill it and wait
    as long again."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=seconds)


def free_port() -> int:
    """A loopback port free now, for a program that must be told its port before it starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start(command: Sequence[str | Path], env: dict[str, str] | None = None) -> Service:
    """Start ``command`` and wait for its "listening on URL" line."""
    process = subprocess.Popen(
        [str(part) for part in command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        _, err = process.communicate(timeout=STOP_SECONDS)
        raise ServiceFailed(f"{' '.join(map(str, command[:4]))} did not start: {line!r} {err}")
    return Service(process, line.rsplit(" ", 1)[-1].strip())


def start_cadenza(*args: str | Path, env: dict[str, str] | None = None) -> Service:
    """Start ``cadenza ARGS`` with this interpreter; ``-P``: a folder of the working directory
    named like a component (a data folder ``origin/``) must not shadow the package."""
    return start([sys.executable, "-P", "-m", "cadenza", *args], env=env)


REDIS_SERVER = "/usr/bin/redis-server"
REDIS_START_SECONDS = 15.0


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A ``redis-server`` of its own on a free loopback port, its files in ``folder``, for the
    play log's Redis engine; its URL. Stopped (SIGTERM, then SIGKILL) when the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    server = shutil.which("redis-server") or REDIS_SERVER
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
         "--save", "", "--appendonly", "no", "--protected-mode", "yes", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _until_redis_answers(process, port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(process)


def _until_redis_answers(process: "subprocess.Popen[bytes]", port: int) -> None:
    deadline = time.monotonic() + REDIS_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceFailed(f"redis-server on port {port} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return
        time.sleep(0.05)
    raise ServiceFailed(f"redis-server did not answer on port {port} in {REDIS_START_SECONDS} s")
