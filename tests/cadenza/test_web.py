"""What every service answers alike: JSON errors, CORS preflights, Prometheus metrics."""

import logging
import sys

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from cadenza import log
from cadenza.errors import HttpError, InputError
from cadenza.http import Cors
from cadenza.web import (
    INTERNAL,
    error_response,
    json_errors,
    metrics_response,
    preflight,
    read_body,
)
from origin.errors import Conflict
from tests.loopback import serve

BROWSERS = Cors(expose=("ETag", "Age"), methods=("GET", "OPTIONS"), request_headers="Range")
CORS = BROWSERS.fields
TOKEN = "/p/c2VjcmV0LXRva2Vu/tracks/0123456789abcdef/master.m3u8"


async def _serve(*routes: tuple[str, str, object]):
    app = web.Application(middlewares=[json_errors(CORS)])
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)  # type: ignore[arg-type]
    return await serve(app)


async def _raising(error: BaseException):
    async def handler(request: web.Request) -> web.Response:
        raise error

    return handler


async def test_preflight_grants_the_methods_and_echoes_the_asked_headers():
    runner, url = await _serve(("OPTIONS", "/{tail:.*}", preflight(BROWSERS)))
    try:
        async with aiohttp.ClientSession() as client:
            asked = await client.options(
                f"{url}/a", headers={"Access-Control-Request-Headers": "X-Y"}
            )
            plain = await client.options(f"{url}/b")
    finally:
        await runner.cleanup()
    assert asked.status == 204 and asked.headers["Access-Control-Allow-Headers"] == "X-Y"
    assert plain.headers["Access-Control-Allow-Headers"] == "Range"
    assert plain.headers["Access-Control-Allow-Methods"] == "GET, OPTIONS"
    assert plain.headers["Access-Control-Expose-Headers"] == "ETag, Age"
    assert plain.headers["Access-Control-Allow-Origin"] == "*"
    assert plain.headers["Access-Control-Max-Age"] == "86400"


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (HttpError(451, "not here"), 451, {"error": "not here"}),
        (InputError("parameter 'lat': no number"), 400, {"error": "parameter 'lat': no number"}),
        (Conflict("missing", ["a.m4s"]), 409, {"error": "missing", "missing": ["a.m4s"]}),
        (web.HTTPGone(text="this track is withdrawn\n"), 410, {"error": "this track is withdrawn"}),
        (web.HTTPForbidden(), 403, {"error": "Forbidden"}),
    ],
)
async def test_errors_are_json_with_their_status_and_the_cors_fields(error, status, body):
    runner, url = await _serve(("GET", "/x", await _raising(error)))
    try:
        async with aiohttp.ClientSession() as client, client.get(f"{url}/x") as response:
            doc = await response.json()
            headers = response.headers
    finally:
        await runner.cleanup()
    assert (response.status, doc) == (status, body)
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Access-Control-Expose-Headers"] == "ETag, Age"
    assert headers["Cache-Control"] == "no-store"


async def test_an_aiohttp_error_keeps_its_fields_and_its_text():
    error = web.HTTPRequestRangeNotSatisfiable(
        headers={"Content-Range": "bytes */10"}, text="range beyond the end\n"
    )
    runner, url = await _serve(("GET", "/x", await _raising(error)))
    try:
        async with aiohttp.ClientSession() as client:
            async with client.get(f"{url}/x") as ranged:
                ranged_doc = await ranged.json()
            async with client.post(f"{url}/x") as wrong_method:
                wrong_doc = await wrong_method.json()
            async with client.get(f"{url}/nowhere") as missing:
                missing_doc = await missing.json()
    finally:
        await runner.cleanup()
    assert (ranged.status, ranged_doc) == (416, {"error": "range beyond the end"})
    assert ranged.headers["Content-Range"] == "bytes */10"
    assert (wrong_method.status, wrong_doc) == (405, {"error": "Method Not Allowed"})
    assert wrong_method.headers["Allow"] == "GET"
    assert (missing.status, missing_doc) == (404, {"error": "Not Found"})
    assert missing.headers["Access-Control-Allow-Origin"] == "*"


@pytest.fixture
def redacting(monkeypatch: pytest.MonkeyPatch):
    """Log records redacted as the CLI has them, for one test."""
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(logging, "_logRecordFactory", logging.getLogRecordFactory())
    log.redact_records()


@pytest.mark.usefixtures("redacting")
async def test_an_unexpected_error_is_logged_not_sent(caplog: pytest.LogCaptureFixture):
    runner, url = await _serve(
        ("GET", "/{tail:.*}", await _raising(RuntimeError(f"broke on {TOKEN}")))
    )
    try:
        async with aiohttp.ClientSession() as client, client.get(url + TOKEN) as response:
            text = await response.text()
            doc = await response.json()
    finally:
        await runner.cleanup()
    assert (response.status, doc) == (500, {"error": INTERNAL})
    assert "Traceback" not in text and "broke" not in text
    logged = [r for r in caplog.records if r.name == "cadenza.web"]
    assert len(logged) == 1 and logged[0].levelno == logging.ERROR
    assert "c2VjcmV0LXRva2Vu" not in logged[0].getMessage() + (logged[0].exc_text or "")
    assert "broke on /p/[redacted]/" in (logged[0].exc_text or "")


async def test_a_secret_in_an_error_message_is_not_sent_back():
    runner, url = await _serve(("GET", "/x", await _raising(HttpError(502, f"failed: {TOKEN}"))))
    try:
        async with aiohttp.ClientSession() as client, client.get(f"{url}/x") as response:
            doc = await response.json()
    finally:
        await runner.cleanup()
    assert response.status == 502 and "c2VjcmV0LXRva2Vu" not in doc["error"]
    assert error_response(400, "x").headers["Cache-Control"] == "no-store"


async def test_redirects_pass_through():
    runner, url = await _serve(("GET", "/x", await _raising(web.HTTPFound("/y"))))
    try:
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"{url}/x", allow_redirects=False) as response,
        ):
            pass
    finally:
        await runner.cleanup()
    assert response.status == 302 and response.headers["Location"] == "/y"


async def test_an_error_after_the_answer_began_cuts_the_connection():
    async def half(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 100
        await response.prepare(request)
        await response.write(b"x" * 10)
        raise HttpError(503, "storage failed mid-answer")

    runner, url = await _serve(("GET", "/x", half))
    try:
        async with aiohttp.ClientSession() as client, client.get(f"{url}/x") as response:
            assert response.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()
    finally:
        await runner.cleanup()


async def test_metrics_are_in_prometheus_text_format():
    registry = CollectorRegistry()
    Counter("cadenza_test_things", "Things", registry=registry).inc(3)
    response = metrics_response(registry)
    assert response.content_type == "text/plain"
    assert b"cadenza_test_things_total 3.0" in response.body


async def test_an_exposition_already_made_is_answered_as_it_is():
    response = metrics_response(b"cadenza_test_things_total 7.0\n")
    assert response.content_type == "text/plain"
    assert response.body == b"cadenza_test_things_total 7.0\n"


async def test_a_body_is_read_up_to_its_bound_whether_it_is_sized_or_chunked():
    async def echo(request: web.Request) -> web.Response:
        body = await read_body(request, 1000)
        return web.Response(status=413) if body is None else web.Response(body=body)

    app = web.Application()
    app.router.add_post("/", echo)
    runner, url = await serve(app)

    async def chunked(size: int):  # no Content-Length: aiohttp's 1 MiB would be the only bound
        yield b"x" * size

    try:
        async with aiohttp.ClientSession() as client:
            for data, status in ((b"x" * 1000, 200), (b"x" * 1001, 413)):
                async with client.post(url, data=data) as response:
                    assert response.status == status
                    assert status != 200 or await response.read() == data
            for size, status in ((1000, 200), (1001, 413), (200_000, 413)):
                async with client.post(url, data=chunked(size)) as response:
                    assert response.status == status
    finally:
        await runner.cleanup()
