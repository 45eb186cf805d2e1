"""Serving streams: many slow downloads of a large object keep the origin's memory bounded;
hostile ranges and clients that leave mid-answer are ordinary, never a 500."""

import hashlib
import json
import os
import socket
import struct
import time
import urllib.request
from pathlib import Path

from tests.origin.conftest import (
    Client,
    OriginProcess,
    Version,
    add_label,
    make_version,
    start_origin_process,
)
from tests.origin.test_cli import start_origin
from tests.processes import cadenza

OBJECT_BYTES = 16 << 20
DOWNLOADS = 32
TRACK_ID = "0123456789abcdef"
VERSION = "v0123456789ab"


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _request(url: str, method: str, key: str, body: bytes) -> None:
    request = urllib.request.Request(
        url, data=body, method=method, headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status < 300


def test_slow_downloads_of_a_large_object_keep_memory_bounded(tmp_path: Path):
    data_dir = tmp_path / "origin"
    key = cadenza("origin", "add-label", "acme", "--data-dir", data_dir).stdout.strip()
    big = os.urandom(OBJECT_BYTES)
    playlist = b"#EXTM3U\n"
    manifest = {
        path: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for path, data in (("big/seg_00000.m4s", big), ("big/index.m3u8", playlist))
    }
    metadata = {
        "track_id": TRACK_ID,
        "version": VERSION,
        "duration": 6.0,
        "tags": {"title": "Big", "artist": "A", "album": None, "track_number": None,
                 "isrc": None, "upc": None},
        "loudness": None,
        "rungs": [{"name": "big", "codec": "aac", "codecs": "mp4a.40.2", "bitrate_kbps": 256,
                   "peak_bps": 1, "average_bps": 1, "segments": 1}],
        "files": manifest,
    }  # fmt: skip
    server = start_origin(data_dir)
    try:
        base = f"{server.url}/v1/tracks/{TRACK_ID}/versions/{VERSION}"
        body = json.dumps({"metadata": metadata, "manifest": manifest}).encode()
        _request(base, "PUT", key, body)
        _request(f"{base}/objects/big/seg_00000.m4s", "PUT", key, big)
        _request(f"{base}/objects/big/index.m3u8", "PUT", key, playlist)
        _request(f"{base}/publish", "POST", key, b"")
        before = _rss_bytes(server.process.pid)
        host, port = server.url.removeprefix("http://").split(":")
        path = f"/tracks/{TRACK_ID}/{VERSION}/big/seg_00000.m4s"
        readers = []
        try:
            for _ in range(DOWNLOADS):
                sock = socket.create_connection((host, int(port)), timeout=10)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                assert b"200 OK" in sock.recv(65536)
                readers.append(sock)
            # The origin is now blocked on every client's window: watch it for a second.
            peak, deadline = before, time.monotonic() + 1.0
            while time.monotonic() < deadline:
                peak = max(peak, _rss_bytes(server.process.pid))
                time.sleep(0.05)
            grown = peak - before
        finally:
            for sock in readers:
                sock.close()
        # Reading objects whole would hold DOWNLOADS x 16 MiB = 512 MiB.
        assert grown < 64 << 20, f"origin grew by {grown >> 20} MiB"
    finally:
        server.stop()


def _serving_origin(tmp_path: Path, segment_bytes: int) -> tuple[OriginProcess, Version]:
    data_dir = tmp_path / "origin"
    key = add_label(data_dir)
    server = start_origin_process(data_dir, tmp_path / "origin.log")
    version = make_version(1, 1, segments=1, size=segment_bytes)
    assert Client(server.url, key).send(version) == 200
    return server, version


def test_range_numbers_of_any_length_never_fail(tmp_path: Path):
    server, version = _serving_origin(tmp_path, 2000)
    try:
        client, path = Client(server.url), f"/{version.key('a96/seg_00000.m4s')}"
        huge = "9" * 5000
        status, body = client.request("GET", path, headers={"Range": f"bytes=0-{huge}"})
        assert (status, body) == (206, version.files["a96/seg_00000.m4s"])
        assert client.request("GET", path, headers={"Range": f"bytes={huge}-"})[0] == 416
        assert client.request("GET", path, headers={"Range": f"bytes=-{huge}"})[0] == 206
        assert client.request("GET", path, headers={"Range": f"bytes={2**64}-{2**65}"})[0] == 416
    finally:
        server.stop()
    assert "Traceback" not in server.log_text()


def test_a_client_that_leaves_mid_answer_is_no_error(tmp_path: Path):
    server, version = _serving_origin(tmp_path, OBJECT_BYTES)
    try:
        path = f"/{version.key('a96/seg_00000.m4s')}"
        for _ in range(3):
            sock = socket.create_connection(server.address, timeout=10)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: origin\r\n\r\n".encode())
            assert b"200 OK" in sock.recv(4096)
            # Reset, not a polite close: the origin's next write finds the connection gone.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        metrics = b""
        deadline = time.monotonic() + 30
        while b'route="tracks",status="499"} 3.0' not in metrics:
            assert time.monotonic() < deadline, metrics.decode()
            time.sleep(0.05)  # poll until the origin has finished the three answers
            metrics = Client(server.url).request("GET", "/metrics")[1]
        assert b'status="500"' not in metrics
    finally:
        server.stop()
    log = server.log_text()
    assert "Traceback" not in log and "ERROR" not in log, log
