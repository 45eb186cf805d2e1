"""Serving streams: many slow downloads of a large object keep the origin's memory bounded."""

import hashlib
import json
import os
import socket
import time
import urllib.request
from pathlib import Path

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
