"""aiohttp handlers that every service answers alike: CORS preflights and Prometheus metrics."""

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def preflight(cors: Mapping[str, str], methods: str, default_headers: str) -> Handler:
    """An OPTIONS handler granting ``methods`` to browser players on other origins."""

    async def answer(request: web.Request) -> web.Response:
        return web.Response(
            status=204,
            headers={
                **cors,
                "Access-Control-Allow-Methods": methods,
                "Access-Control-Allow-Headers": request.headers.get(
                    "Access-Control-Request-Headers", default_headers
                ),
                "Access-Control-Max-Age": "86400",
            },
        )

    return answer


def metrics_response(metrics: CollectorRegistry | bytes) -> web.Response:
    """A registry, or an exposition already made, in Prometheus' text format."""
    body = metrics if isinstance(metrics, bytes) else generate_latest(metrics)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
