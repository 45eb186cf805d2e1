"""Cadenza commands as real processes: one-shot runs, and services that announce their port."""

import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

TIMEOUT = 120


def cadenza(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cadenza", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@dataclass
class Service:
    process: subprocess.Popen[str]
    url: str

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the service, wait (bounded), kill if needed; returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()
        return self.process.returncode


def start_service(*args: str | Path, env: dict[str, str] | None = None) -> Service:
    """Start ``cadenza ARGS`` and wait for its "listening on URL" line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cadenza", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        _, err = process.communicate(timeout=10)
        raise AssertionError(f"cadenza {args[0]} did not start: {line!r} {err}")
    return Service(process, line.rsplit(" ", 1)[-1].strip())
