"""The origin end to end through real sockets on loopback: uploads, publishing, serving, events."""

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import pytest
import yarl
from aiohttp import web

from bench.catalog import MasterSpec, write_master
from cadenza import layout
from encoder.ladder import DEFAULT_LADDER
from encoder.pipeline import EncodedTrack, encode_track
from encoder.upload import OriginTarget, upload_track
from origin.app import create_app
from origin.keys import CATALOG, STORAGE
from origin.settings import OriginSettings

OPERATOR_KEY = "operator-secret"


@dataclass
class Origin:
    url: str
    app: web.Application
    keys: dict[str, str]
    data_dir: Path

    def target(self, label: str = "acme") -> OriginTarget:
        return OriginTarget(self.url, label, self.keys[label])


async def start_origin(data_dir: Path, **changes: object) -> tuple[web.AppRunner, Origin]:
    settings = replace(OriginSettings(operator_key=OPERATOR_KEY), port=0, **changes).with_data_dir(
        data_dir
    )
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    keys = {name: await app[CATALOG].add_label(name) for name in ("acme", "other")}
    return runner, Origin(f"http://{host}:{port}", app, keys, data_dir)


@pytest.fixture
async def origin(tmp_path: Path) -> AsyncIterator[Origin]:
    runner, server = await start_origin(tmp_path / "origin")
    yield server
    await asyncio.wait_for(runner.cleanup(), 10)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # Bodies as sent: gzip only where a test asks for it.
    identity = {"Accept-Encoding": "identity"}
    async with aiohttp.ClientSession(auto_decompress=False, headers=identity) as session:
        yield session


@dataclass(frozen=True)
class Encoded:
    out: Path
    track: EncodedTrack

    @property
    def version_dir(self) -> Path:
        return self.out / layout.version_prefix(self.track.track_id, self.track.version)

    def base(self) -> str:
        return f"/v1/tracks/{self.track.track_id}/versions/{self.track.version}"


async def _encode(folder: Path, seed: int) -> Encoded:
    tags = {"title": "Origin Test", "artist": "Band", "ISRC": "GBAYE2600001"}
    master = write_master(folder / f"master-{seed}.wav", MasterSpec(8, seed=seed, tags=tags))
    return Encoded(folder / "out", await encode_track(master, DEFAULT_LADDER, folder / "out"))


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> Encoded:
    return asyncio.run(_encode(tmp_path_factory.mktemp("encoded"), seed=1))


@pytest.fixture(scope="module")
def encoded_v2(tmp_path_factory: pytest.TempPathFactory) -> Encoded:
    """The same recording (same ISRC) re-mastered: a new version of the same track."""
    return asyncio.run(_encode(tmp_path_factory.mktemp("encoded2"), seed=2))


async def _publish(origin: Origin, encoded: Encoded, label: str = "acme") -> int:
    async with aiohttp.ClientSession() as session:
        return await upload_track(session, origin.target(label), encoded.out, encoded.track, None)


def _auth(origin: Origin, label: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {origin.keys[label]}"}


async def test_upload_publish_and_serve_byte_identical(
    origin: Origin, encoded: Encoded, http: aiohttp.ClientSession
):
    sent = await _publish(origin, encoded)
    manifest = json.loads((encoded.version_dir / "metadata.json").read_text())["files"]
    assert sent == len(manifest)
    master_url = f"{origin.url}/tracks/{encoded.track.track_id}/master.m3u8"
    async with http.get(master_url, headers={"Accept-Encoding": "identity"}) as response:
        assert response.status == 200
        local_master = encoded.out / layout.master_path(encoded.track.track_id)
        assert await response.read() == local_master.read_bytes()
    for path in manifest:
        url = f"{origin.url}/tracks/{encoded.track.track_id}/{encoded.track.version}/{path}"
        async with http.get(url, headers={"Accept-Encoding": "identity"}) as response:
            assert response.status == 200, path
            assert await response.read() == (encoded.version_dir / path).read_bytes()
    # A second upload of the same version sends nothing and publishes again.
    assert await _publish(origin, encoded) == 0


async def test_publish_is_refused_while_an_object_is_missing(
    origin: Origin, encoded: Encoded, encoded_v2: Encoded, http: aiohttp.ClientSession
):
    await _publish(origin, encoded)
    metadata = json.loads((encoded_v2.version_dir / "metadata.json").read_text())
    base = origin.url + encoded_v2.base()
    body = {"metadata": metadata, "manifest": metadata["files"], "territories": None}
    async with http.put(base, json=body, headers=_auth(origin)) as response:
        assert response.status == 200
        missing = (await response.json())["missing"]
    assert missing == sorted(metadata["files"])
    # Upload all but one object, as a client killed mid-upload would have.
    for path in missing[:-1]:
        data = (encoded_v2.version_dir / path).read_bytes()
        async with http.put(f"{base}/objects/{path}", data=data, headers=_auth(origin)) as r:
            assert r.status == 201
    async with http.post(f"{base}/publish", headers=_auth(origin)) as response:
        assert response.status == 409
        assert (await response.json())["missing"] == missing[-1:]
    # The previous version keeps serving; nothing of the new one is visible.
    track = encoded.track.track_id
    async with http.get(f"{origin.url}/tracks/{track}/master.m3u8") as response:
        assert encoded.track.version in (await response.text())
    async with http.get(
        f"{origin.url}/tracks/{track}/{encoded_v2.track.version}/{missing[0]}"
    ) as r:
        assert r.status == 404
    # Finishing the upload lets the publish through, and the master switches.
    assert await _publish(origin, encoded_v2) == 1
    async with http.get(f"{origin.url}/tracks/{track}/master.m3u8") as response:
        assert encoded_v2.track.version in (await response.text())


async def test_authentication_and_ownership(
    origin: Origin, encoded: Encoded, http: aiohttp.ClientSession
):
    metadata = json.loads((encoded.version_dir / "metadata.json").read_text())
    base = origin.url + encoded.base()
    body = {"metadata": metadata, "manifest": metadata["files"]}
    async with http.put(base, json=body) as response:
        assert response.status == 401
    async with http.put(base, json=body, headers={"Authorization": "Bearer nope"}) as response:
        assert response.status == 401
    wrong_label = {**_auth(origin), "X-Cadenza-Label": "other"}
    async with http.put(base, json=body, headers=wrong_label) as response:
        assert response.status == 403
    async with http.put(base, json=body, headers=_auth(origin)) as response:
        assert response.status == 200
    # Another label may not write, upload to or publish acme's track.
    async with http.put(base, json=body, headers=_auth(origin, "other")) as response:
        assert response.status == 403
    path = sorted(metadata["files"])[0]
    data = (encoded.version_dir / path).read_bytes()
    async with http.put(f"{base}/objects/{path}", data=data, headers=_auth(origin, "other")) as r:
        assert r.status == 403
    async with http.post(f"{base}/publish", headers=_auth(origin, "other")) as response:
        assert response.status == 403


@pytest.mark.parametrize(
    "tail",
    [
        "..%2F..%2F..%2Fescape.m4s",
        "%2e%2e/%2e%2e/escape.m4s",
        "aac_256/..%5c..%5cescape.m4s",
        "aac_256/seg%0000001.m4s",
        "aac_256/../../../escape.m4s",
        "metadata.json",
    ],
)
async def test_object_paths_that_leave_the_version_are_400(
    origin: Origin, encoded: Encoded, http: aiohttp.ClientSession, tail: str
):
    metadata = json.loads((encoded.version_dir / "metadata.json").read_text())
    base = origin.url + encoded.base()
    body = {"metadata": metadata, "manifest": metadata["files"]}
    async with http.put(base, json=body, headers=_auth(origin)) as response:
        assert response.status == 200
    url = yarl_raw(f"{base}/objects/{tail}")
    async with http.put(url, data=b"x", headers=_auth(origin)) as response:
        assert response.status in (400, 404)
    assert not any(origin.data_dir.parent.rglob("escape.m4s"))


def yarl_raw(url: str) -> yarl.URL:
    """A URL sent exactly as written, percent-escapes and all."""
    return yarl.URL(url, encoded=True)


async def test_a_manifest_path_leaving_the_version_is_400(
    origin: Origin, encoded: Encoded, http: aiohttp.ClientSession
):
    metadata = json.loads((encoded.version_dir / "metadata.json").read_text())
    manifest = {**metadata["files"], "../../other/track.m4s": {"size": 1, "sha256": "00"}}
    body = {"metadata": metadata, "manifest": manifest}
    async with http.put(origin.url + encoded.base(), json=body, headers=_auth(origin)) as response:
        assert response.status == 400


@pytest.mark.parametrize(
    "change",
    [
        {"territories": ["Germany"]},
        {"manifest": {"aac_256/x.m4s": {"size": 1, "sha256": "not-hex"}}},
        {"metadata": "not an object"},
    ],
)
async def test_a_malformed_version_declaration_is_400(
    origin: Origin, encoded: Encoded, http: aiohttp.ClientSession, change: dict
):
    metadata = json.loads((encoded.version_dir / "metadata.json").read_text())
    body = {"metadata": metadata, "manifest": metadata["files"], **change}
    async with http.put(origin.url + encoded.base(), json=body, headers=_auth(origin)) as response:
        assert response.status == 400
        assert "error" in await response.json()


async def test_an_object_over_the_size_limit_is_413_and_nothing_is_stored(
    tmp_path: Path, encoded: Encoded, http: aiohttp.ClientSession
):
    runner, origin = await start_origin(tmp_path / "small", max_object_bytes=50_000)
    try:
        metadata = json.loads((encoded.version_dir / "metadata.json").read_text())
        base = origin.url + encoded.base()
        body = {"metadata": metadata, "manifest": metadata["files"]}
        async with http.put(base, json=body, headers=_auth(origin)) as response:
            assert response.status == 200
        path = next(p for p, e in metadata["files"].items() if e["size"] > 50_000)
        data = (encoded.version_dir / path).read_bytes()
        async with http.put(f"{base}/objects/{path}", data=data, headers=_auth(origin)) as r:
            assert r.status == 413

        async def chunked():
            for i in range(0, len(data), 8192):
                yield data[i : i + 8192]

        async with http.put(f"{base}/objects/{path}", data=chunked(), headers=_auth(origin)) as r:
            assert r.status == 413
        key = f"{layout.version_prefix(encoded.track.track_id, encoded.track.version)}/{path}"
        assert await origin.app[STORAGE].stat(key) is None
    finally:
        await asyncio.wait_for(runner.cleanup(), 10)


async def test_validators_ranges_head_and_gzip(
    origin: Origin, encoded: Encoded, http: aiohttp.ClientSession
):
    await _publish(origin, encoded)
    track, version = encoded.track.track_id, encoded.track.version
    segment = f"{origin.url}/tracks/{track}/{version}/aac_256/seg_00000.m4s"
    body = (encoded.version_dir / "aac_256" / "seg_00000.m4s").read_bytes()
    async with http.get(segment) as response:
        assert response.status == 200
        etag = response.headers["ETag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.headers["Content-Type"] == "audio/mp4"
        assert response.headers["Accept-Ranges"] == "bytes"
    async with http.get(segment, headers={"If-None-Match": etag}) as response:
        assert response.status == 304
        assert await response.read() == b""
    async with http.get(segment, headers={"Range": "bytes=100-199"}) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 100-199/{len(body)}"
        assert await response.read() == body[100:200]
    async with http.get(segment, headers={"Range": "bytes=-10"}) as response:
        assert await response.read() == body[-10:]
    for bad in (f"bytes={len(body)}-", "bytes=0-10,5-20", "bytes=0-1,3-4,6-7,9-10,12-13"):
        async with http.get(segment, headers={"Range": bad}) as response:
            assert response.status == 416
            assert response.headers["Content-Range"] == f"bytes */{len(body)}"
    async with http.get(segment, headers={"Range": "bytes=0-9", "If-Range": '"old"'}) as response:
        assert response.status == 200 and await response.read() == body
    async with http.head(segment) as response:
        assert response.status == 200
        assert int(response.headers["Content-Length"]) == len(body)
        assert await response.read() == b""
    master = f"{origin.url}/tracks/{track}/master.m3u8"
    plain = (encoded.out / layout.master_path(track)).read_bytes()
    async with http.get(master, headers={"Accept-Encoding": "gzip"}) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["Vary"] == "Accept-Encoding"
        assert response.headers["Cache-Control"] == "public, max-age=10"
        assert response.headers["Content-Type"] == "application/vnd.apple.mpegurl"
        assert gzip.decompress(await response.read()) == plain
        zipped_etag = response.headers["ETag"]
    async with http.get(master, headers={"Accept-Encoding": "identity"}) as response:
        assert "Content-Encoding" not in response.headers
        assert await response.read() == plain
        assert response.headers["ETag"] != zipped_etag
    async with http.get(
        master, headers={"Accept-Encoding": "gzip", "If-None-Match": zipped_etag}
    ) as r:
        assert r.status == 304


@pytest.mark.parametrize(
    "raw",
    [
        "/tracks/../catalog.sqlite3",
        "/tracks/%2e%2e/catalog.sqlite3",
        "/tracks/x%2f..%2f..%2fcatalog.sqlite3",
        "/tracks/x%5c..%5ccatalog.sqlite3",
        "/tracks/x/%00",
        "/tracks//catalog.sqlite3",
        "/tracks/" + "a/" * 600 + "x",
        "/tracks/%2fetc%2fpasswd",
    ],
)
async def test_traversal_attempts_never_leave_the_store(
    origin: Origin, http: aiohttp.ClientSession, raw: str
):
    async with http.get(yarl_raw(origin.url + raw)) as response:
        assert 400 <= response.status < 500
        assert b"SQLite" not in await response.read()


async def test_catalog_api_rights_and_takedown_events(
    origin: Origin, encoded: Encoded, http: aiohttp.ClientSession
):
    await _publish(origin, encoded)
    track = encoded.track.track_id
    async with http.get(f"{origin.url}/v1/tracks/{track}") as response:
        info = await response.json()
    assert (info["label"], info["title"], info["current_version"]) == (
        "acme",
        "Origin Test",
        encoded.track.version,
    )
    assert info["isrc"] == "GBAYE2600001"
    async with http.get(f"{origin.url}/v1/tracks?label=acme") as response:
        assert [t["track_id"] for t in (await response.json())["tracks"]] == [track]
    async with http.get(f"{origin.url}/v1/tracks/{track}/rights?territory=de") as response:
        assert (await response.json())["licensed"] is True
    async with http.get(f"{origin.url}/v1/tracks/{track}/rights?territory=Germany") as response:
        assert response.status == 400
    async with http.get(f"{origin.url}/v1/events?after=0") as response:
        start = (await response.json())["last"]

    waiter = asyncio.create_task(http.get(f"{origin.url}/v1/events?after={start}&timeout=10"))
    admin = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    async with http.post(
        f"{origin.url}/v1/admin/takedown", json={"track_id": track, "territory": "DE"}
    ) as r:
        assert r.status == 401
    async with http.post(
        f"{origin.url}/v1/admin/takedown",
        json={"track_id": track, "territory": "DE"},
        headers=admin,
    ) as response:
        assert response.status == 200
    response = await asyncio.wait_for(waiter, 5)
    events = (await response.json())["events"]
    response.release()
    assert [(e["kind"], e["territory"]) for e in events] == [("takedown", "DE")]
    async with http.get(f"{origin.url}/v1/tracks/{track}/rights?territory=DE") as response:
        assert (await response.json())["licensed"] is False
    async with http.get(f"{origin.url}/tracks/{track}/master.m3u8") as response:
        assert response.status == 200  # withdrawn in one territory only
    async with http.post(
        f"{origin.url}/v1/admin/takedown",
        json={"track_id": track, "territory": None},
        headers=admin,
    ) as response:
        assert response.status == 200
    async with http.get(f"{origin.url}/v1/events?after={start}") as response:
        kinds = [(e["kind"], e["territory"]) for e in (await response.json())["events"]]
    assert kinds == [("takedown", "DE"), ("takedown", None)]
    async with http.get(f"{origin.url}/tracks/{track}/master.m3u8") as response:
        assert response.status == 410
    async with http.get(
        f"{origin.url}/tracks/{track}/{encoded.track.version}/aac_48/seg_00000.m4s"
    ) as response:
        assert response.status == 410


async def test_metrics_count_requests_and_bytes(
    origin: Origin, encoded: Encoded, http: aiohttp.ClientSession
):
    await _publish(origin, encoded)
    async with http.get(f"{origin.url}/tracks/{encoded.track.track_id}/master.m3u8") as response:
        size = len(await response.read())
    async with http.get(f"{origin.url}/tracks/nope/master.m3u8") as response:
        assert response.status == 404
    async with http.get(f"{origin.url}/metrics") as response:
        text = await response.text()
    assert 'cadenza_origin_requests_total{route="tracks",status="200"} 1.0' in text
    assert 'cadenza_origin_requests_total{route="tracks",status="404"} 1.0' in text
    assert f"cadenza_origin_bytes_out_total {float(size)}" in text
    assert 'cadenza_origin_publishes_total{result="published"} 1.0' in text
    assert "cadenza_origin_upload_bytes_total" in text
    assert 'cadenza_origin_storage_seconds_count{op="stat"}' in text


async def test_server_sent_events_stream_takedowns_as_they_happen(
    origin: Origin, encoded: Encoded, http: aiohttp.ClientSession
):
    await _publish(origin, encoded)
    track = encoded.track.track_id
    headers = {"Accept": "text/event-stream"}
    async with http.get(f"{origin.url}/v1/events?after=0", headers=headers) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        published = await asyncio.wait_for(_next_event(stream), 5)
        assert published["kind"] == "published" and published["track_id"] == track
        admin = {"Authorization": f"Bearer {OPERATOR_KEY}"}
        body = {"track_id": track, "territory": "FR"}
        async with http.post(f"{origin.url}/v1/admin/takedown", json=body, headers=admin) as r:
            seq = (await r.json())["event"]
        takedown = await asyncio.wait_for(_next_event(stream), 5)
    assert (takedown["seq"], takedown["kind"], takedown["territory"]) == (seq, "takedown", "FR")


async def _next_event(stream: aiohttp.ClientResponse) -> dict:
    fields: dict[str, str] = {}
    while True:
        line = (await stream.content.readline()).decode().rstrip("\n")
        if line == "" and "data" in fields:
            event = json.loads(fields["data"])
            assert str(event["seq"]) == fields["id"] and event["kind"] == fields["event"]
            return event
        name, _, value = line.partition(": ")
        if name in ("id", "event", "data"):
            fields[name] = value


async def test_a_stopping_origin_ends_the_long_polls_under_way(
    tmp_path: Path, http: aiohttp.ClientSession
):
    runner, server = await start_origin(tmp_path / "origin")
    poll = asyncio.create_task(http.get(f"{server.url}/v1/events?after=1000000&timeout=20"))
    await asyncio.sleep(0.3)  # the poll is waiting inside the origin
    assert not poll.done()
    # Well within the poll's 20 s: the origin does not wait it out.
    await asyncio.wait_for(runner.cleanup(), 5)
    response = await asyncio.wait_for(poll, 5)
    async with response:
        assert response.status == 200
        assert (await response.json())["events"] == []


async def test_every_error_is_json_with_the_cors_fields(
    origin: Origin, http: aiohttp.ClientSession
):
    """The origin's own errors and aiohttp's (a missing object, an unknown path) answer alike."""
    answers = []
    for path in ("/v1/labels/me", "/tracks/0123456789abcdef/master.m3u8", "/nowhere"):
        async with http.get(origin.url + path) as r:
            answers.append((r.status, await r.json(), r.headers.copy()))
    assert [(status, doc) for status, doc, _ in answers] == [
        (401, {"error": "send Authorization: Bearer <api key>"}),
        (404, {"error": "Not Found"}),
        (404, {"error": "Not Found"}),
    ]
    for _, _, headers in answers:
        assert headers["Access-Control-Allow-Origin"] == "*"
        assert headers["Cache-Control"] == "no-store"
