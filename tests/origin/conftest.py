"""What the origin's test files share: a real S3 API (one moto server per session on a free
loopback port), a real PostgreSQL (one temporary cluster per session, a fresh database per
test), helpers to put, read and inspect objects and S3 buckets, and origins as real processes
with synthetic versions to upload to them."""

import hashlib
import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from aiobotocore.session import get_session

from bench.processes import Service, stop_process
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
    stop_process(process, seconds=STOP_SECONDS)


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


# --- a temporary PostgreSQL cluster -------------------------------------------------------------

PG_SECONDS = 60  # initdb, start and stop each end within this
PG_USER = "nobody"  # postgres refuses to run as root: the cluster runs as this user then


def _pg_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts[-3])
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass(frozen=True)
class PostgresCluster:
    """A running cluster that listens only on a unix socket in ``socket_dir``."""

    socket_dir: Path

    def url(self, database: str) -> str:
        return f"postgresql:///{database}?host={self.socket_dir}&user=postgres"


def _pg_run(command: list[str], folder: Path) -> None:
    as_user = ["runuser", "-u", PG_USER, "--"] if os.getuid() == 0 else []
    result = subprocess.run(
        [*as_user, *command],
        cwd=folder,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=PG_SECONDS + 10,
    )
    if result.returncode != 0:
        log = folder / "server.log"
        tail = _tail(log) if log.exists() else ""
        raise RuntimeError(f"{command[0]} failed: {result.stderr.strip()}\n{tail}")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One PostgreSQL cluster for the session: initdb into a temp folder, started on a unix
    socket there (no TCP port), stopped and removed at the end."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (Debian's postgresql package; make setup)")
    # A short path that the cluster's user can reach: a unix socket's path is limited to about
    # 100 bytes, and TMPDIR may be private to root.
    folder = Path(tempfile.mkdtemp(prefix="cdz-pg-", dir="/tmp" if Path("/tmp").is_dir() else None))
    try:
        if os.getuid() == 0:
            shutil.chown(folder, PG_USER)
        data = folder / "data"
        _pg_run(
            [
                str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                "--no-sync", "-E", "UTF8", "--locale=C",
            ],
            folder,
        )  # fmt: skip
        options = (
            f"-k {folder} -c listen_addresses='' -c fsync=off -c synchronous_commit=off"
            " -c full_page_writes=off -c max_connections=100"
        )
        start = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log")]
        _pg_run([*start, "-w", "-t", str(PG_SECONDS), "-o", options, "start"], folder)
        try:
            yield PostgresCluster(folder)
        finally:
            stop = [str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", str(PG_SECONDS)]
            _pg_run([*stop, "-m", "fast", "stop"], folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """A fresh, empty database of the session's cluster, dropped after the test."""
    import psycopg

    name = f"cadenza_{uuid4().hex[:12]}"
    admin = postgres_cluster.url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield postgres_cluster.url(name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_where(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a catalog test opens its catalog: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "catalog.sqlite3"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_config(request: pytest.FixtureRequest, tmp_path: Path) -> Path | None:
    """The settings file of origin processes: none (SQLite in the data folder), then one that
    names a fresh PostgreSQL database as the catalog."""
    if request.param == "sqlite":
        return None
    url = request.getfixturevalue("postgres_url")
    path = tmp_path / "catalog.toml"
    path.write_text(f'catalog = "{url}"\n')
    return path


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


# --- origins as real processes, and synthetic versions to upload to them -------------------------

OPERATOR_KEY = "operator-key-for-tests"
LISTEN_SECONDS = 30.0


@dataclass
class OriginProcess:
    """``cadenza origin`` as a process; its log (stderr) goes to a file the test can read."""

    process: "subprocess.Popen[str]"
    url: str
    log: Path

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").split(":")
        return host, int(port)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        Service(self.process, self.url).stop(sig)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def origin_env(home: Path) -> dict[str, str]:
    """The environment of an origin process: no settings or proxies of this machine."""
    skip = ("CADENZA_", "AWS_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_", "https_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    env["CADENZA_OPERATOR_KEY"] = OPERATOR_KEY
    env["AWS_CONFIG_FILE"] = str(home / "no-aws-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(home / "no-aws-credentials")
    return env


def s3_origin_config(path: Path, config: StorageConfig) -> Path:
    """A settings file naming ``config``'s bucket, for ``cadenza origin --config``."""
    path.write_text(
        "[storage]\n"
        'backend = "s3"\n'
        f'bucket = "{config.bucket}"\n'
        f'prefix = "{config.prefix}"\n'
        f'endpoint_url = "{config.endpoint_url}"\n'
        f'access_key_id = "{config.access_key_id}"\n'
        f'secret_access_key = "{config.secret_access_key}"\n'
    )
    return path


def settings_args(data_dir: Path, config: Path | None) -> list[str]:
    return ["--data-dir", str(data_dir), *(["--config", str(config)] if config else [])]


def start_origin_process(data_dir: Path, log: Path, config: Path | None = None) -> OriginProcess:
    """Start an origin on a free loopback port and wait (bounded) for it to listen."""
    command = [sys.executable, "-m", "cadenza", "origin", "--listen", "127.0.0.1:0"]
    with log.open("ab") as err:
        process = subprocess.Popen(
            [*command, *settings_args(data_dir, config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=origin_env(data_dir.parent),
        )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], LISTEN_SECONDS)
    line = process.stdout.readline() if ready else ""
    if "listening on" not in line:
        process.kill()
        process.wait(timeout=STOP_SECONDS)
        raise RuntimeError(f"the origin did not start: {line!r}\n{_tail(log)}")
    return OriginProcess(process, line.rsplit(" ", 1)[-1].strip(), log)


def add_label(data_dir: Path, name: str = "acme", config: Path | None = None) -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cadenza",
            "origin",
            "add-label",
            name,
            *settings_args(data_dir, config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=origin_env(data_dir.parent),
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def fsck(
    data_dir: Path, *flags: str, config: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cadenza",
            "origin",
            "fsck",
            *settings_args(data_dir, config),
            *list(flags),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=origin_env(data_dir.parent),
    )


@dataclass(frozen=True)
class Version:
    """A synthetic version: one rung, a playlist, an init segment and a few media segments."""

    track_id: str
    version: str
    files: dict[str, bytes]

    @property
    def manifest(self) -> dict[str, dict[str, Any]]:
        return {p: {"size": len(b), "sha256": _sha(b)} for p, b in self.files.items()}

    @property
    def metadata(self) -> dict[str, Any]:
        rung = {"name": "a96", "codecs": "mp4a.40.2", "peak_bps": 100_000, "average_bps": 96_000}
        return {
            "track_id": self.track_id,
            "version": self.version,
            "duration": 12.0,
            "tags": {"title": f"Track {self.track_id}"},
            "loudness": None,
            "rungs": [rung],
            "files": self.manifest,
        }

    @property
    def base(self) -> str:
        return f"/v1/tracks/{self.track_id}/versions/{self.version}"

    def key(self, path: str) -> str:
        return f"tracks/{self.track_id}/{self.version}/{path}"


def make_version(track: int, version: int, segments: int = 3, size: int = 2000) -> Version:
    track_id, version_id = f"t{track:015d}", f"v{version:012x}"
    seed = f"{track_id}/{version_id}".encode()
    files = {
        "a96/index.m3u8": b"#EXTM3U\n#EXT-X-TARGETDURATION:6\n" + seed,
        "a96/init.mp4": hashlib.sha256(seed).digest() * 4,
    }
    for n in range(segments):
        block = hashlib.sha256(seed + bytes([n])).digest()
        files[f"a96/seg_{n:05d}.m4s"] = (block * (size // len(block) + 1))[:size]
    return Version(track_id, version_id, files)


class Client:
    """Blocking HTTP/1.1 requests to one origin on loopback (no proxies, bounded waits)."""

    def __init__(self, url: str, api_key: str | None = None) -> None:
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.api_key = api_key

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, bytes]:
        sent = dict(headers or {})
        if self.api_key and "Authorization" not in sent:
            sent["Authorization"] = f"Bearer {self.api_key}"
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def json(self, method: str, path: str, value: Any) -> tuple[int, Any]:
        status, body = self.request(
            method, path, json.dumps(value).encode(), {"Content-Type": "application/json"}
        )
        return status, json.loads(body)

    def declare(self, version: Version) -> tuple[int, Any]:
        body = {"metadata": version.metadata, "manifest": version.manifest}
        return self.json("PUT", version.base, body)

    def upload(self, version: Version, path: str, data: bytes | None = None) -> int:
        body = version.files[path] if data is None else data
        return self.request("PUT", f"{version.base}/objects/{path}", body)[0]

    def publish(self, version: Version) -> int:
        return self.request("POST", f"{version.base}/publish")[0]

    def send(self, version: Version) -> int:
        """Declare, upload every object and publish; the publish's status."""
        status, _ = self.declare(version)
        assert status == 200, status
        for path in version.files:
            assert self.upload(version, path) in (200, 201)
        return self.publish(version)
