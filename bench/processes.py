"""Services as real processes for benchmarks and tests: start, wait for the port, stop bounded.

Every Cadenza service prints one ``NAME listening on http://HOST:PORT`` line on stdout once it
accepts connections; ``start`` waits for that line, so callers never sleep to synchronise.
"""

import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_SECONDS)
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()
        return self.process.returncode


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
