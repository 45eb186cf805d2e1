"""What every service answers alike: JSON errors, CORS preflights, Prometheus metrics.

An error that reaches a client is one JSON body, ``{"error": message}``, with its status, the
service's CORS fields (a browser hides the body of an answer without them) and ``Cache-Control:
no-store``. It never carries a traceback, and its message goes through ``log.redact``: a message
built from a URL or an exception must not hand a path token or a key back to whoever sent it.
"""

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from cadenza.errors import CadenzaError
from cadenza.http import Cors
from cadenza.log import get_logger, redact

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

logger = get_logger("web")
INTERNAL = "internal error: the service logged it"
# Fields of an aiohttp error that describe its text body, not the JSON one that replaces it.
_BODY_FIELDS = frozenset(("content-type", "content-length", "content-encoding"))


async def read_body(request: web.Request, most: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed ``most`` bytes: from its
    Content-Length without reading it, or while a chunked body streams in. aiohttp's own
    ``client_max_size`` would otherwise be the only bound."""
    if request.content_length is not None and request.content_length > most:
        return None
    parts, size = [], 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > most:
            return None
        parts.append(chunk)
    return b"".join(parts)


def preflight(cors: Cors) -> Handler:
    """An OPTIONS handler granting ``cors.methods`` to browser players on other origins."""
    asked = "Access-Control-Request-Headers"

    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=204, headers=cors.preflight_fields(request.headers.get(asked)))

    return answer


def error_response(
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    details: Mapping[str, Any] | None = None,
) -> web.Response:
    """The one shape of an error answer."""
    return web.json_response(
        {"error": redact(message), **(details or {})},
        status=status,
        headers={**(headers or {}), "Cache-Control": "no-store"},
    )


def error_answer(request: web.Request, error: Exception, cors: Mapping[str, str]) -> web.Response:
    """The answer to ``error`` raised by a handler of ``request``: its own status for Cadenza's
    and aiohttp's errors, 500 (logged with its traceback, not sent) for anything else.

    ``error`` is raised again where there is nothing to answer: a redirect or another aiohttp
    answer raised as an exception, an answer already begun (its head is sent: aiohttp can only
    cut the connection), a client that went away.
    """
    if (
        isinstance(error, ConnectionResetError)
        or (isinstance(error, web.HTTPException) and error.status < 400)
        or request.writer.output_size
    ):
        raise error
    if isinstance(error, CadenzaError):
        return error_response(error.status, str(error), cors, error.details())
    if isinstance(error, web.HTTPException):
        kept = {k: v for k, v in error.headers.items() if k.lower() not in _BODY_FIELDS}
        text = (error.text or "").strip()
        message = error.reason if not text or text == f"{error.status}: {error.reason}" else text
        return error_response(error.status, message, {**kept, **cors})
    logger.error(
        "unexpected error answering %s %s", request.method, redact(request.path), exc_info=error
    )
    return error_response(500, INTERNAL, cors)


def json_errors(cors: Mapping[str, str]) -> Middleware:
    """A middleware answering every error of the app's handlers with ``error_answer``."""

    @web.middleware
    async def json_error(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Exception as e:
            return error_answer(request, e, cors)

    return json_error


def metrics_response(metrics: CollectorRegistry | bytes) -> web.Response:
    """A registry, or an exposition already made, in Prometheus' text format."""
    body = metrics if isinstance(metrics, bytes) else generate_latest(metrics)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
