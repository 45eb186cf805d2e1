"""A real S3 API for the storage tests: one moto server per session on a free loopback port."""

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

START_SECONDS = 30.0
STOP_SECONDS = 10.0
ATTEMPTS = 3  # a chosen port can be taken before moto binds it

# Talk to 127.0.0.1 directly, whatever proxy the machine's environment names.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ready(process: subprocess.Popen[bytes], url: str) -> bool:
    """Poll ``url`` until it answers (True) or the process exits (False), within a deadline."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with _DIRECT.open(url, timeout=1):
                return True
        except OSError:
            time.sleep(0.05)  # poll interval
    raise TimeoutError(f"moto did not answer at {url} within {START_SECONDS} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_SECONDS)


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a moto S3 server that lives for the whole session."""
    log = tmp_path_factory.mktemp("moto") / "server.log"
    for _ in range(ATTEMPTS):
        port = _free_port()
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            up = _ready(process, f"http://127.0.0.1:{port}/")
        except BaseException:
            _stop(process)
            raise
        if up:
            break
    else:
        raise RuntimeError(f"moto did not start; its log:\n{_tail(log)}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-20:])
