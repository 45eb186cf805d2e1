"""What the storage test files share: a real S3 API (one moto server per session on a free
loopback port), test data, and helpers to put, read and inspect objects and S3 buckets."""

import hashlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from aiobotocore.session import get_session

from origin.storage import Storage, StorageConfig

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


# --- helpers of the storage tests ----------------------------------------------------------------

DATA = bytes(range(100))
PREFIX = "origin/"
RAW_S3 = get_session()  # one session for the tests' own clients: it caches the service model


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _read_all(storage: Storage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key, start, end)])


def _files(root: Path) -> list[str]:
    """Every file under ``root``, hidden ones included."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _raw_s3(config: StorageConfig) -> Any:
    return RAW_S3.create_client(
        "s3",
        region_name=config.region,
        endpoint_url=config.endpoint_url,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
    )


def _s3_config(endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> StorageConfig:
    """A fresh bucket's config, with fake credentials and no AWS settings from this machine."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    return StorageConfig(
        backend="s3",
        bucket=f"cadenza-{uuid4().hex[:16]}",
        prefix=PREFIX,
        endpoint_url=endpoint,
        access_key_id="testing",
        secret_access_key="testing",
    )


async def _create_bucket(config: StorageConfig) -> None:
    async with _raw_s3(config) as s3:
        await s3.create_bucket(Bucket=config.bucket)
