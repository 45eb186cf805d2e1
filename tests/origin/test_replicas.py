"""Origin replicas: two ``cadenza origin`` processes share one PostgreSQL catalog and one S3
bucket (moto). An event committed through one wakes a long poll on the other. A track
ingested through one plays through the other; the replica that takes a second ingest is
SIGKILLed mid-upload, and the same ingest run against the survivor sends only what is
missing, publishes, and the track plays there. fsck then finds nothing."""

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from bench.catalog import MasterSpec, write_master
from cadenza import layout
from tests.origin.conftest import (
    OPERATOR_KEY,
    STOP_SECONDS,
    Client,
    OriginProcess,
    _create_bucket,
    _s3_config,
    add_label,
    fsck,
    make_version,
    origin_env,
    start_origin_process,
)

TRACK_SECONDS = 30.0
INGEST_SECONDS = 300  # encode and upload one track, on a busy machine
THROTTLE_BYTES_PER_SECOND = 300_000  # the dying replica's uploads last several seconds
KILL_AFTER_OBJECTS = 4  # recorded in the catalog when the replica dies; the track has ~30
WAIT_SECONDS = 120.0
POLL_SECONDS = 0.05


class SlowLink:
    """A loopback TCP relay to one server that passes client bytes at a bounded total rate,
    so that an upload through it is still under way when the test kills the server."""

    def __init__(self, target: tuple[str, int], rate: int) -> None:
        self.target = target
        self.rate = rate
        self.forwarded = 0
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(POLL_SECONDS * 4)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._spawn(self._accept)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()  # the server is gone: the client sees the connection close
                continue
            with self._lock:
                self._sockets += [client, server]
            self._spawn(self._pipe, client, server, True)
            self._spawn(self._pipe, server, client, False)

    def _pipe(self, source: socket.socket, sink: socket.socket, throttled: bool) -> None:
        try:
            while not self._closed.is_set():
                data = source.recv(16384)
                if not data:
                    break
                if throttled:
                    self._wait_for(len(data))
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with self._lock:
                    s.close()

    def _wait_for(self, size: int) -> None:
        with self._lock:
            self.forwarded += size
            due = self._started + self.forwarded / self.rate
        delay = due - time.monotonic()
        if delay > 0:
            self._closed.wait(delay)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                s.close()
        for thread in self._threads:
            thread.join(timeout=STOP_SECONDS)


def _replica_config(path: Path, catalog: str, storage) -> Path:
    path.write_text(
        f'catalog = "{catalog}"\n'
        "[storage]\n"
        'backend = "s3"\n'
        f'bucket = "{storage.bucket}"\n'
        f'prefix = "{storage.prefix}"\n'
        f'endpoint_url = "{storage.endpoint_url}"\n'
        f'access_key_id = "{storage.access_key_id}"\n'
        f'secret_access_key = "{storage.secret_access_key}"\n'
    )
    return path


def _ingest(source: Path, out: Path, origin: str, key: str, home: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "cadenza", "ingest", str(source), "--out", str(out),
            "--origin", origin, "--label", "acme", "--api-key", key, "--jobs", "1", "--json",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=origin_env(home),
    )  # fmt: skip


def _finish(process: subprocess.Popen[str]) -> tuple[int, dict]:
    try:
        stdout, stderr = process.communicate(timeout=INGEST_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate(timeout=STOP_SECONDS)
        raise
    try:
        return process.returncode, json.loads(stdout)
    except json.JSONDecodeError:
        return process.returncode, {"stdout": stdout, "stderr": stderr[-2000:]}


def _one_track(result: dict) -> dict:
    assert len(result.get("tracks", [])) == 1, result
    track: dict = result["tracks"][0]
    return track


def _play(client: Client, track_id: str, out: Path) -> int:
    """Fetch the master, every media playlist and every segment; each must be the bytes the
    encoder wrote. Returns how many objects were fetched."""
    status, master = client.request("GET", f"/tracks/{track_id}/master.m3u8")
    assert status == 200, master
    current = json.loads(client.request("GET", f"/v1/tracks/{track_id}")[1])["current_version"]
    assert _uris(master.decode()) and all(
        uri.startswith(f"{current}/") for uri in _uris(master.decode())
    )
    fetched = 0
    for variant in _uris(master.decode()):
        base = f"tracks/{track_id}/{variant.rsplit('/', 1)[0]}"
        status, playlist = client.request("GET", f"/tracks/{track_id}/{variant}")
        assert status == 200
        for uri in [*_uris(playlist.decode()), *_maps(playlist.decode())]:
            status, body = client.request("GET", f"/{base}/{uri}")
            assert status == 200, f"{base}/{uri}: {status}"
            assert body == (out / base / uri).read_bytes()
            fetched += 1
    assert fetched > 0
    return fetched


def _uris(playlist: str) -> list[str]:
    return [line for line in playlist.splitlines() if line and not line.startswith("#")]


def _maps(playlist: str) -> list[str]:
    return [
        line.split('URI="', 1)[1].split('"', 1)[0]
        for line in playlist.splitlines()
        if line.startswith("#EXT-X-MAP:")
    ]


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(POLL_SECONDS)


def test_an_event_committed_through_one_replica_wakes_a_long_poll_on_the_other(
    postgres_url: str, tmp_path: Path
):
    config = tmp_path / "origin.toml"
    config.write_text(f'catalog = "{postgres_url}"\n')
    key = add_label(tmp_path / "a", config=config)
    servers: list[OriginProcess] = []
    try:
        for name in ("a", "b"):
            servers.append(start_origin_process(tmp_path / name, tmp_path / f"{name}.log", config))
        a, b = (Client(server.url, key) for server in servers)
        version = make_version(5, 1)
        assert a.declare(version)[0] == 200
        last = json.loads(b.request("GET", "/v1/events?after=0")[1])["last"]
        with ThreadPoolExecutor(max_workers=1) as pool:
            # Answered as soon as the event is committed through the other replica (the
            # client gives up long before the poll's own 60 s would end it).
            poll = pool.submit(
                b.request, "GET", f"/v1/events?after={last}&timeout=60", None, None, 20
            )
            operator = Client(servers[0].url, OPERATOR_KEY)
            status, answer = operator.json(
                "POST", "/v1/admin/takedown", {"track_id": version.track_id, "territory": "DE"}
            )
            assert status == 200
            status, body = poll.result(timeout=30)
        assert status == 200
        events = json.loads(body)["events"]
        assert [(e["seq"], e["kind"], e["territory"]) for e in events] == [
            (answer["event"], "takedown", "DE")
        ]
    finally:
        for server in servers:
            server.stop()


def test_replicas_share_catalog_and_bucket_and_survive_a_sigkill_mid_upload(
    postgres_url: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    storage = _s3_config(moto_endpoint, monkeypatch, tmp_path)
    asyncio.run(_create_bucket(storage))
    config = _replica_config(tmp_path / "origin.toml", postgres_url, storage)
    first_source = write_master(tmp_path / "masters" / "one.flac", MasterSpec(13.0, seed=31))
    second_source = write_master(
        tmp_path / "masters" / "two.flac", MasterSpec(TRACK_SECONDS, seed=32)
    )
    key = add_label(tmp_path / "a", config=config)
    servers: list[OriginProcess] = []
    link: SlowLink | None = None
    try:
        a = start_origin_process(tmp_path / "a", tmp_path / "a.log", config)
        servers.append(a)
        b = start_origin_process(tmp_path / "b", tmp_path / "b.log", config)
        servers.append(b)
        on_b = Client(b.url, key)

        # Ingested and published through one replica, played through the other.
        out = tmp_path / "encoded"
        code, result = _finish(_ingest(first_source, out, a.url, key, tmp_path))
        first = _one_track(result)
        assert code == 0 and first["status"] == "ok", result
        assert _play(on_b, first["track_id"], out) > 0

        # A second ingest through A, slowed down, and A killed while it uploads.
        link = SlowLink(a.address, THROTTLE_BYTES_PER_SECOND)
        dying = _ingest(second_source, out, link.url, key, tmp_path)
        tracks_before = {first["track_id"]}

        def stored() -> bool:
            sql = "SELECT count(*) FROM objects WHERE track_id <> %s"
            with psycopg.connect(postgres_url, autocommit=True) as db:
                row = db.execute(sql, (first["track_id"],)).fetchone()
            return bool(row and row[0] >= KILL_AFTER_OBJECTS) or dying.poll() is not None

        _wait_until(stored, "the first objects of the second track")
        assert dying.poll() is None, "the ingest ended before the replica could be killed"
        a.stop(signal.SIGKILL)
        code, result = _finish(dying)
        assert code != 0, result
        listed = json.loads(on_b.request("GET", "/v1/tracks")[1])["tracks"]
        second_id = next(t["track_id"] for t in listed if t["track_id"] not in tracks_before)
        assert next(t for t in listed if t["track_id"] == second_id)["current_version"] is None

        # The same ingest against the survivor sends only what is missing and publishes.
        code, result = _finish(_ingest(second_source, out, b.url, key, tmp_path))
        second = _one_track(result)
        assert code == 0 and second["status"] == "ok", result
        assert second["track_id"] == second_id
        version_dir = out / layout.version_prefix(second_id, second["version"])
        objects = [p for p in version_dir.rglob("*") if p.is_file() and p.name != "metadata.json"]
        assert 0 < second["uploaded_objects"] < len(objects), (second, len(objects))
        assert _play(on_b, second_id, out) > 0
        assert _play(on_b, first["track_id"], out) > 0
        b.stop()
    finally:
        if link is not None:
            link.close()
        for server in servers:
            if server.process.poll() is None:
                server.stop(signal.SIGKILL)
    checked = fsck(tmp_path / "b", "--json", config=config)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert report["ok"] and report["findings"] == [], report
    assert "Traceback" not in b.log_text()
