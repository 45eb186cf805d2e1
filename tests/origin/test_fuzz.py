"""Fuzzing a running origin: generated bodies, query strings and headers for every label-API and
serving endpoint. Whatever arrives, the answer is never a 5xx and the log holds no traceback."""

import json
import re
import string
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.origin.conftest import (
    OPERATOR_KEY,
    Client,
    OriginProcess,
    Version,
    add_label,
    make_version,
    start_origin_process,
)

EXAMPLES = 60
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_VISIBLE = string.ascii_letters + string.digits + string.punctuation + " "


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OriginProcess, str]]:
    root = tmp_path_factory.mktemp("fuzz")
    data_dir = root / "origin"
    key = add_label(data_dir)
    server = start_origin_process(data_dir, root / "origin.log")
    assert Client(server.url, key).send(PUBLISHED) == 200
    yield server, key
    metrics = Client(server.url).request("GET", "/metrics")[1].decode()
    server.stop()
    assert not re.search(r'status="5\d\d"', metrics), metrics
    log = server.log_text()
    assert "Traceback" not in log and "ERROR" not in log, log


PUBLISHED: Version = make_version(1, 1)

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=10), c, max_size=5),
    max_leaves=20,
)
_header_value = st.text(_VISIBLE, max_size=60)
_headers = st.dictionaries(
    st.sampled_from(
        [
            "Range",
            "If-None-Match",
            "If-Range",
            "Accept-Encoding",
            "Content-Type",
            "X-Cadenza-Label",
            "Authorization",
            "Origin",
        ]
    ),
    _header_value
    | st.sampled_from(
        [
            f"bytes=0-{'9' * 5000}",
            "bytes=-0",
            "bytes=5-1,0-",
            "gzip;q=nan",
            "gzip;q=1e400",
            "application/json; charset=ebcdic",
            "Bearer " + "x" * 200,
        ]
    ),
    max_size=4,
)
_query = st.lists(
    st.tuples(
        st.sampled_from(["after", "timeout", "limit", "label", "territory", "x"])
        | st.text(max_size=5),
        st.text(max_size=12) | st.sampled_from(["nan", "-1", "1e309", str(2**70), "9" * 500]),
    ),
    max_size=4,
)
_segment = st.text(string.ascii_letters + string.digits + "._-~%", min_size=1, max_size=20)
_tail = st.lists(_segment, min_size=1, max_size=5).map("/".join)
_HOSTILE_BODIES = [
    b"[" * 50_000 + b"]" * 50_000,
    b'{"metadata": ' + b"7" * 5000 + b"}",
    b'{"territory": 1e999}',
    b'{"territories": [NaN]}',
    b"\xef\xbb\xbf{}",
]
_body = (
    st.binary(max_size=300)
    | _json.map(lambda v: json.dumps(v).encode())
    | st.sampled_from(_HOSTILE_BODIES)
)


def _fuzzed_body(version: Version) -> st.SearchStrategy[bytes]:
    """Bodies near a valid declaration, as well as plain noise."""

    def declaration(change: dict[str, Any]) -> bytes:
        return json.dumps(
            {"metadata": {**version.metadata, **change}, "manifest": version.manifest}
        )

    changes = st.dictionaries(
        st.sampled_from(["rungs", "version", "track_id", "loudness", "files", "tags"]), _json
    )
    return _body | changes.map(lambda c: declaration(c).encode())


def _check(status: int, what: str) -> None:
    assert status < 500, f"{what} answered {status}"


def _ask(
    origin: tuple[OriginProcess, str],
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    key: str | None = "label",
) -> int:
    server, label_key = origin
    sent = dict(headers or {})
    if key is not None and "Authorization" not in sent:
        sent["Authorization"] = f"Bearer {OPERATOR_KEY if key == 'operator' else label_key}"
    status, _ = Client(server.url).request(method, path, body, sent, timeout=30)
    _check(status, f"{method} {path}")
    return status


@FUZZ
@given(tail=_tail, headers=_headers, method=st.sampled_from(["GET", "HEAD"]))
def test_serving(origin, tail: str, headers: dict[str, str], method: str):
    _ask(origin, method, f"/tracks/{tail}", headers=headers, key=None)


@FUZZ
@given(
    path=st.sampled_from(sorted(PUBLISHED.files)) | _tail,
    headers=_headers,
    method=st.sampled_from(["GET", "HEAD"]),
)
def test_serving_published_objects(origin, path: str, headers: dict[str, str], method: str):
    prefix = f"/tracks/{PUBLISHED.track_id}/"
    for target in (f"{prefix}{PUBLISHED.version}/{path}", f"{prefix}master.m3u8"):
        _ask(origin, method, target, headers=headers, key=None)


@FUZZ
@given(body=_fuzzed_body(make_version(2, 1)), headers=_headers, ids=st.booleans())
def test_declaring(origin, body: bytes, headers: dict[str, str], ids: bool):
    version = make_version(2, 1)
    path = version.base if ids else "/v1/tracks/not-an-id/versions/v1"
    _ask(origin, "PUT", path, body, headers)


@FUZZ
@given(path=_tail | st.sampled_from(sorted(PUBLISHED.files)), body=_body, headers=_headers)
def test_uploading(origin, path: str, body: bytes, headers: dict[str, str]):
    for version in (PUBLISHED, make_version(3, 1)):
        _ask(origin, "PUT", f"{version.base}/objects/{path}", body, headers)


@FUZZ
@given(track=st.integers(0, 5), version=st.integers(0, 3), headers=_headers)
def test_publishing(origin, track: int, version: int, headers: dict[str, str]):
    _ask(origin, "POST", f"{make_version(track, version).base}/publish", b"", headers)


@FUZZ
@given(query=_query, headers=_headers, track=_segment | st.just(PUBLISHED.track_id))
def test_catalog_reads(origin, query: list[tuple[str, str]], headers: dict[str, str], track: str):
    encoded = urlencode(query)
    for path in ("/v1/tracks", f"/v1/tracks/{track}", f"/v1/tracks/{track}/rights"):
        _ask(origin, "GET", f"{path}?{encoded}", headers=headers)
    _ask(origin, "GET", "/v1/labels/me", headers=headers)


@FUZZ
@given(query=_query, headers=_headers)
def test_events(origin, query: list[tuple[str, str]], headers: dict[str, str]):
    headers.pop("Accept", None)  # a stream would never end; its own test is in test_app.py
    # The first timeout counts: every poll here ends at once.
    _ask(origin, "GET", f"/v1/events?timeout=0&{urlencode(query)}", headers=headers)


_takedown = _json.map(lambda v: json.dumps({"track_id": OTHER_TRACK, "territory": v}).encode())
OTHER_TRACK = make_version(4, 1).track_id  # never the published one: the serving tests need it


@FUZZ
@given(body=_body | _takedown, headers=_headers, track=_segment | st.just(OTHER_TRACK))
def test_admin(origin, body: bytes, headers: dict[str, str], track: str):
    _ask(origin, "POST", "/v1/admin/takedown", body, headers, key="operator")
    path = f"/v1/admin/tracks/{quote(track)}/territories"
    _ask(origin, "PUT", path, body, headers, key="operator")


def test_the_fuzzed_origin_still_serves(origin):
    server, _ = origin
    status, body = Client(server.url).request("GET", f"/{PUBLISHED.key('a96/seg_00000.m4s')}")
    assert (status, body) == (200, PUBLISHED.files["a96/seg_00000.m4s"])
