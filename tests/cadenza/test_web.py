"""The handlers every service answers alike: CORS preflights and Prometheus metrics."""

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, Counter

from cadenza.web import metrics_response, preflight


async def test_preflight_grants_the_methods_and_echoes_the_asked_headers():
    app = web.Application()
    app.router.add_route("OPTIONS", "/{tail:.*}", preflight({"X-Test": "1"}, "GET", "Range"))
    async with TestClient(TestServer(app)) as client:
        asked = await client.options("/a", headers={"Access-Control-Request-Headers": "X-Y"})
        plain = await client.options("/b")
        assert asked.status == 204 and asked.headers["Access-Control-Allow-Headers"] == "X-Y"
        assert plain.headers["Access-Control-Allow-Headers"] == "Range"
        assert plain.headers["Access-Control-Allow-Methods"] == "GET"
        assert plain.headers["X-Test"] == "1" and plain.headers["Access-Control-Max-Age"] == "86400"


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
