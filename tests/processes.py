"""Cadenza commands as real processes: one-shot runs, and services that announce their port."""

import subprocess
import sys
from pathlib import Path

from bench.processes import Service
from bench.processes import start_cadenza as start_service

__all__ = ["Service", "cadenza", "start_service"]
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
