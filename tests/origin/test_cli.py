"""``cadenza origin``, ``cadenza ingest --origin`` and ``cadenza catalog takedown`` as processes."""

import json
import os
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.catalog import MasterSpec, write_master
from tests.checks import assert_decodes
from tests.processes import Service, cadenza, start_service

OPERATOR_KEY = "op-key-for-tests"


@dataclass
class RunningOrigin(Service):
    data_dir: Path = Path()


def start_origin(data_dir: Path) -> RunningOrigin:
    env = {**_env(), "CADENZA_OPERATOR_KEY": OPERATOR_KEY}
    service = start_service("origin", "--listen", "127.0.0.1:0", "--data-dir", data_dir, env=env)
    return RunningOrigin(service.process, service.url, data_dir)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CADENZA_")}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "origin"


@pytest.fixture
def api_key(data_dir: Path) -> str:
    result = cadenza("origin", "add-label", "acme", "--data-dir", data_dir)
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert key.startswith("cdz_")
    return key


@pytest.fixture
def running(data_dir: Path, api_key: str) -> Iterator[RunningOrigin]:
    server = start_origin(data_dir)
    yield server
    server.stop()


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_add_label_twice_is_a_usage_error(data_dir: Path, api_key: str):
    again = cadenza("origin", "add-label", "acme", "--data-dir", data_dir)
    assert again.returncode == 2
    assert "exists already" in again.stderr
    assert api_key not in (data_dir / "catalog.sqlite3").read_bytes().decode("latin-1")


def test_label_workflow_end_to_end(running: RunningOrigin, api_key: str, tmp_path: Path):
    tags = {"title": "Over the Wire", "artist": "Band", "ISRC": "GBAYE2600002"}
    master = write_master(tmp_path / "album" / "01.flac", MasterSpec(9, seed=3, tags=tags))
    (tmp_path / "album" / "territories.txt").write_text("# licensed in\nDE, FR\n")
    upload = ["ingest", master.parent, "--origin", running.url, "--label", "acme",
              "--api-key", api_key, "--json"]  # fmt: skip
    first = cadenza(*upload)
    assert first.returncode == 0, first.stderr
    track = json.loads(first.stdout)["tracks"][0]
    assert track["status"] == "ok" and track["uploaded_objects"] > 0
    again = cadenza(*upload)
    assert json.loads(again.stdout)["tracks"][0]["uploaded_objects"] == 0

    master_url = f"{running.url}/tracks/{track['track_id']}/master.m3u8"
    assert_decodes(master_url)

    status, body = _get(f"{running.url}/v1/tracks/{track['track_id']}")
    assert status == 200 and json.loads(body)["territories"] == ["DE", "FR"]
    status, body = _get(f"{running.url}/v1/tracks/{track['track_id']}/rights?territory=US")
    assert json.loads(body)["licensed"] is False

    down = cadenza("catalog", "takedown", track["track_id"], "--origin", running.url,
                   "--operator-key", OPERATOR_KEY)  # fmt: skip
    assert down.returncode == 0, down.stderr
    assert _get(master_url)[0] == 410


def test_a_refused_upload_fails_that_track_alone(
    running: RunningOrigin, api_key: str, tmp_path: Path
):
    other = cadenza("origin", "add-label", "other", "--data-dir", running.data_dir).stdout.strip()
    taken = write_master(
        tmp_path / "a" / "taken.wav", MasterSpec(3, seed=1, tags={"title": "X", "artist": "Y"})
    )
    free = write_master(
        tmp_path / "b" / "free.wav", MasterSpec(3, seed=2, tags={"title": "Z", "artist": "Y"})
    )
    first = cadenza(
        "ingest", taken, "--origin", running.url, "--label", "acme", "--api-key", api_key
    )
    assert first.returncode == 0, first.stderr
    both = cadenza("ingest", taken, free, "--origin", running.url, "--label", "other",
                   "--api-key", other, "--json")  # fmt: skip
    assert both.returncode == 1
    refused, published = json.loads(both.stdout)["tracks"]
    assert refused["status"] == "failed" and "403" in refused["error"]
    assert published["status"] == "ok" and published["uploaded_objects"] > 0


def test_a_wrong_api_key_stops_the_ingest_with_exit_2(running: RunningOrigin, tmp_path: Path):
    master = write_master(tmp_path / "m.wav", MasterSpec(3, seed=1))
    result = cadenza("ingest", master, "--origin", running.url, "--label", "acme",
                     "--api-key", "cdz_wrong")  # fmt: skip
    assert result.returncode == 2
    assert "refused the API key" in result.stderr


def test_ingest_to_an_unreachable_origin_is_exit_2(api_key: str, tmp_path: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    master = write_master(tmp_path / "m.wav", MasterSpec(3, seed=1))
    result = cadenza("ingest", master, "--origin", f"http://127.0.0.1:{port}",
                     "--label", "acme", "--api-key", api_key)  # fmt: skip
    assert result.returncode == 2
    assert "cannot reach the origin" in result.stderr


def test_takedown_in_the_data_dir_reaches_the_event_stream(
    running: RunningOrigin, api_key: str, tmp_path: Path
):
    master = write_master(
        tmp_path / "m.wav", MasterSpec(4, seed=5, tags={"title": "T", "artist": "A"})
    )
    first = cadenza("ingest", master, "--origin", running.url, "--label", "acme",
                    "--api-key", api_key, "--json")  # fmt: skip
    track_id = json.loads(first.stdout)["tracks"][0]["track_id"]
    down = cadenza(
        "catalog", "takedown", track_id, "--territory", "gb", "--data-dir", running.data_dir
    )
    assert down.returncode == 0, down.stderr
    deadline = time.monotonic() + 10
    events: list[dict[str, object]] = []
    while not events and time.monotonic() < deadline:
        events = json.loads(_get(f"{running.url}/v1/events?after=0&timeout=2")[1])["events"]
        events = [e for e in events if e["kind"] == "takedown"]
    assert [(e["track_id"], e["territory"]) for e in events] == [(track_id, "GB")]


def test_an_origin_killed_mid_upload_shows_no_partial_object(
    data_dir: Path, api_key: str, tmp_path: Path
):
    server = start_origin(data_dir)
    try:
        master = write_master(
            tmp_path / "m.wav", MasterSpec(4, seed=6, tags={"title": "K", "artist": "A"})
        )
        out = tmp_path / "out"
        result = cadenza("ingest", master, "--out", out, "--json")
        track = json.loads(result.stdout)["tracks"][0]
        version_dir = out / "tracks" / track["track_id"] / track["version"]
        metadata = json.loads((version_dir / "metadata.json").read_text())
        request = urllib.request.Request(
            f"{server.url}/v1/tracks/{track['track_id']}/versions/{track['version']}",
            data=json.dumps({"metadata": metadata, "manifest": metadata["files"]}).encode(),
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
            method="PUT",
        )
        urllib.request.urlopen(request, timeout=10).close()
        path = "aac_256/seg_00000.m4s"
        data = (version_dir / path).read_bytes()
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            head = (
                f"PUT /v1/tracks/{track['track_id']}/versions/{track['version']}/objects/{path} "
                f"HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {api_key}\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            )
            sock.sendall(head.encode() + data[: len(data) // 2])
            time.sleep(0.3)  # let the origin start writing the half it received
            server.stop(signal.SIGKILL)
    finally:
        server.stop()
    objects = data_dir / "objects"
    leftovers = [p for p in objects.rglob("*") if p.is_file() and p.name.endswith(".m4s")]
    assert leftovers == []
    restarted = start_origin(data_dir)
    try:
        url = f"{restarted.url}/tracks/{track['track_id']}/{track['version']}/{path}"
        assert _get(url)[0] == 404
    finally:
        restarted.stop()
