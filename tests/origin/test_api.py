"""The label API of an origin process probed as a careless or hostile client would: wrong
re-uploads, metadata publish cannot use, and bodies or query strings built to cause a 500."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from origin.bounds import MAX_JSON_BYTES
from tests.origin.conftest import (
    Client,
    OriginProcess,
    Version,
    add_label,
    fsck,
    make_version,
    start_origin_process,
)

SEGMENT = "a96/seg_00000.m4s"


# One origin for the module (each test uses its own tracks): starting one costs seconds.
@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api") / "origin"


@pytest.fixture(scope="module")
def api_key(data_dir: Path) -> str:
    return add_label(data_dir)


@pytest.fixture(scope="module")
def origin(data_dir: Path, api_key: str) -> Iterator[OriginProcess]:
    server = start_origin_process(data_dir, data_dir.parent / "origin.log")
    yield server
    server.stop()
    log = server.log_text()
    assert "Traceback" not in log and "ERROR" not in log, log


@pytest.fixture(scope="module")
def client(origin: OriginProcess, api_key: str) -> Client:
    return Client(origin.url, api_key)


def _get(client: Client, version: Version, path: str) -> tuple[int, bytes]:
    return client.request("GET", f"/{version.key(path)}")


def test_a_wrong_reupload_of_a_published_object_keeps_it(client: Client, data_dir: Path):
    version = make_version(1, 1)
    assert client.send(version) == 200
    wrong = b"\0" * len(version.files[SEGMENT])
    assert client.upload(version, SEGMENT, wrong) == 409
    assert _get(client, version, SEGMENT) == (200, version.files[SEGMENT])
    assert client.upload(version, SEGMENT) == 200  # identical: a no-op
    assert _get(client, version, SEGMENT) == (200, version.files[SEGMENT])
    assert fsck(data_dir).returncode == 0


def test_a_wrong_reupload_of_a_staged_object_keeps_it_and_publish_serves_it(client: Client):
    version = make_version(2, 1)
    assert client.declare(version)[0] == 200
    for path in version.files:
        assert client.upload(version, path) == 201
    assert client.upload(version, SEGMENT, b"wrong bytes") == 409
    assert client.upload(version, SEGMENT, version.files[SEGMENT] + b"!") == 409
    assert client.publish(version) == 200
    assert _get(client, version, SEGMENT) == (200, version.files[SEGMENT])


def test_a_first_upload_with_wrong_bytes_stores_nothing(client: Client, data_dir: Path):
    version = make_version(3, 1)
    assert client.declare(version)[0] == 200
    assert client.upload(version, SEGMENT, b"not the segment") == 409
    assert not (data_dir / "objects" / version.key(SEGMENT)).exists()
    status, answer = client.declare(version)
    assert status == 200 and SEGMENT in answer["missing"]


def test_metadata_without_rungs_is_refused_when_declared(client: Client):
    version = make_version(4, 1)
    for broken in ({"rungs": []}, {"rungs": None}, {"rungs": [{"name": "a96"}]}):
        metadata = {**version.metadata, **broken}
        status, answer = client.json(
            "PUT", version.base, {"metadata": metadata, "manifest": version.manifest}
        )
        assert status == 400 and "rung" in answer["error"]
    assert client.publish(version) == 404  # nothing was declared, nothing switched
    assert client.request("GET", f"/v1/tracks/{version.track_id}")[0] == 404


def test_a_rung_whose_playlist_is_not_uploaded_is_refused(client: Client):
    version = make_version(5, 1)
    metadata = {**version.metadata, "rungs": [{**version.metadata["rungs"][0], "name": "a256"}]}
    status, answer = client.json(
        "PUT", version.base, {"metadata": metadata, "manifest": version.manifest}
    )
    assert status == 400 and "a256/index.m3u8" in answer["error"]


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"[" * 100_000 + b"]" * 100_000, {}, 400),  # deeper than Python's recursion limit
        (b'{"a":' * 40 + b"1" + b"}" * 40, {}, 400),  # deeper than the limit of 32
        (b'{"metadata": ' + b"7" * 5000 + b"}", {}, 400),  # past int()'s 4,300 digits
        (b'{"metadata": 1e999}', {}, 400),
        (b'{"metadata": NaN}', {}, 400),
        (b"\xff\xfe{}", {}, 400),
        (b"{}", {"Content-Type": "application/json; charset=klingon"}, 400),
        (b" " * (MAX_JSON_BYTES + 1), {}, 413),
    ],
)
def test_hostile_json_is_a_4xx(client: Client, body: bytes, headers: dict[str, str], status: int):
    version = make_version(6, 1)
    assert client.request("PUT", version.base, body, headers)[0] == status


def test_a_manifest_larger_than_the_json_bound_is_413(client: Client):
    version = make_version(7, 1)
    entry = {"size": 1, "sha256": "0" * 64}
    manifest = {f"a96/seg_{n:07d}.m4s": entry for n in range(MAX_JSON_BYTES // 60)}
    body = json.dumps({"metadata": version.metadata, "manifest": manifest}).encode()
    assert len(body) > MAX_JSON_BYTES
    assert client.request("PUT", version.base, body)[0] == 413


@pytest.mark.parametrize(
    "query",
    [
        f"after={2**70}",
        "after=-1",
        f"after={'9' * 5000}",
        "after=1e3",
        "timeout=nan",
        "timeout=inf",
        "timeout=-inf",
        f"timeout={'9' * 400}",
    ],
)
def test_event_queries_out_of_range_are_400(client: Client, query: str):
    status, body = client.request("GET", f"/v1/events?{query}", timeout=10)
    assert status == 400 and json.loads(body)["error"]


def test_a_long_timeout_is_capped_not_refused(client: Client):
    assert client.send(make_version(8, 1)) == 200
    status, body = client.request("GET", "/v1/events?timeout=1e9&after=0", timeout=10)
    assert status == 200 and "published" in [e["kind"] for e in json.loads(body)["events"]]


@pytest.mark.parametrize("query", [f"limit={'9' * 5000}", "limit=ten", "limit=1.5"])
def test_list_limits_that_are_not_numbers_are_400(client: Client, query: str):
    assert client.request("GET", f"/v1/tracks?{query}")[0] == 400
