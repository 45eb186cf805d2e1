"""``cadenza origin fsck`` against a real data folder, and the origin's own start-up check."""

import json
import os
import signal
import socket
import time
from pathlib import Path

from origin.fsck import Finding, Problem, master_finding, object_finding
from origin.storage import ObjectInfo
from tests.origin.conftest import (
    Client,
    add_label,
    fsck,
    make_version,
    start_origin_process,
)

HOURS = 3600


def test_object_and_master_findings():
    info = ObjectInfo("k", 3, "ab")
    assert object_finding("k", 3, "ab", info) is None
    assert object_finding("k", 3, "ab", None) == Finding(
        Problem.MISSING_OBJECT, "k", "published but not in the store"
    )
    damaged = object_finding("k", 4, "ab", info)
    assert damaged is not None and damaged.problem is Problem.DAMAGED_OBJECT
    assert master_finding("m", None, None) is None
    assert master_finding("m", b"x", b"x") is None
    problems = [
        master_finding("m", None, b"x"),
        master_finding("m", b"x", None),
        master_finding("m", b"x", b"y"),
    ]
    assert [p.problem for p in problems if p] == [
        Problem.STRAY_MASTER,
        Problem.MISSING_MASTER,
        Problem.STALE_MASTER,
    ]


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_fsck_reports_repairs_and_exits_by_what_is_left(
    tmp_path: Path, catalog_config: Path | None
):
    data_dir = tmp_path / "origin"
    key = add_label(data_dir, config=catalog_config)
    server = start_origin_process(data_dir, tmp_path / "origin.log", catalog_config)
    one, two = make_version(1, 1), make_version(2, 1)
    try:
        client = Client(server.url, key)
        assert client.send(one) == 200 and client.send(two) == 200
    finally:
        server.stop()
    clean = fsck(data_dir, config=catalog_config)
    assert (clean.returncode, clean.stdout.strip()) == (
        0,
        "fsck: catalog, objects and masters agree",
    )

    objects = data_dir / "objects"
    (objects / one.key("a96/seg_00000.m4s")).unlink()
    (objects / one.key("a96/seg_00001.m4s")).write_bytes(b"rot")
    (objects / one.key("metadata.json")).unlink()
    (objects / "tracks" / one.track_id / "master.m3u8").write_bytes(b"#EXTM3U\n")
    (objects / "tracks" / two.track_id / "master.m3u8").unlink()
    stale, fresh = objects / "tracks" / ".tmp-stale", objects / "tracks" / ".tmp-fresh"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"an upload under way")
    _age(stale, 2 * HOURS)

    found = fsck(data_dir, "--json", config=catalog_config)
    assert found.returncode == 1
    report = json.loads(found.stdout)
    assert not report["ok"] and report["repaired"] == []
    assert sorted((f["problem"], f["key"]) for f in report["findings"]) == sorted(
        [
            ("missing-object", one.key("a96/seg_00000.m4s")),
            ("damaged-object", one.key("a96/seg_00001.m4s")),
            ("missing-metadata", one.key("metadata.json")),
            ("stale-master", f"tracks/{one.track_id}/master.m3u8"),
            ("missing-master", f"tracks/{two.track_id}/master.m3u8"),
            ("stale-temp-file", "tracks/.tmp-stale"),
        ]
    )

    repaired = fsck(data_dir, "--repair", config=catalog_config)
    assert repaired.returncode == 1  # the lost objects exist only at the label
    assert "fsck: 2 problems left" in repaired.stdout
    assert not stale.exists() and fresh.exists()
    assert not (objects / one.key("a96/seg_00001.m4s")).exists()  # never served damaged
    after = json.loads(fsck(data_dir, "--json", config=catalog_config).stdout)
    assert sorted(f["problem"] for f in after["findings"]) == ["missing-object", "missing-object"]

    # The catalog forgot them, so the label's next upload of the version sends them again.
    server = start_origin_process(data_dir, tmp_path / "origin.log", catalog_config)
    try:
        client = Client(server.url, key)
        status, answer = client.declare(one)
        assert status == 200
        assert answer["missing"] == ["a96/seg_00000.m4s", "a96/seg_00001.m4s"]
        for path in answer["missing"]:
            assert client.upload(one, path) == 201
        assert client.publish(one) == 200
    finally:
        server.stop()
    assert fsck(data_dir, config=catalog_config).returncode == 0
    fresh.unlink()


def test_fsck_without_a_catalog_is_a_usage_error(tmp_path: Path):
    result = fsck(tmp_path / "nothing")
    assert result.returncode == 2 and "no catalog" in result.stderr


def test_the_origin_sweeps_what_a_kill_left_and_rewrites_a_lagging_master(
    tmp_path: Path, catalog_config: Path | None
):
    data_dir = tmp_path / "origin"
    key = add_label(data_dir, config=catalog_config)
    server = start_origin_process(data_dir, tmp_path / "origin.log", catalog_config)
    version = make_version(3, 1, segments=1, size=4 << 20)
    path = "a96/seg_00000.m4s"
    try:
        client = Client(server.url, key)
        assert client.send(version) == 200
        other = make_version(3, 2, segments=1, size=4 << 20)
        assert client.declare(other)[0] == 200
        with socket.create_connection(server.address, timeout=10) as sock:
            head = (
                f"PUT {other.base}/objects/{path} HTTP/1.1\r\nHost: origin\r\n"
                f"Authorization: Bearer {key}\r\nContent-Length: {4 << 20}\r\n\r\n"
            )
            sock.sendall(head.encode() + other.files[path][: 2 << 20])
            temps: list[Path] = []
            deadline = time.monotonic() + 30
            while not temps:  # until the origin has started writing the upload aside
                assert time.monotonic() < deadline
                time.sleep(0.05)
                temps = list((data_dir / "objects").rglob(".tmp-*"))
            server.stop(signal.SIGKILL)
    finally:
        server.stop()
    assert not (data_dir / "objects" / other.key(path)).exists()
    for temp in temps:
        _age(temp, 2 * HOURS)
    master = data_dir / "objects" / "tracks" / version.track_id / "master.m3u8"
    master.write_bytes(b"#EXTM3U\n")  # as if killed between the catalog switch and the master
    restarted = start_origin_process(data_dir, tmp_path / "origin.log", catalog_config)
    try:
        assert not any(t.exists() for t in temps)
        status, body = Client(restarted.url).request(
            "GET", f"/tracks/{version.track_id}/master.m3u8"
        )
        assert status == 200 and version.version.encode() in body
    finally:
        restarted.stop()
    assert "start-up check repaired stale-master" in restarted.log_text()
    assert fsck(data_dir, config=catalog_config).returncode == 0
