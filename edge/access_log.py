"""Access log lines as JSON, one per request, with the player's CMCD fields when it sent them.

Tokens are secrets for their lifetime: the logged path never contains one.
"""

import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from cadenza.tokens import TokenError, split_token_path
from edge.cmcd import CmcdValue, from_request

LOGGER = "cadenza.edge.access"


def access_record(
    method: str,
    raw_path: str,
    status: int,
    nbytes: int,
    seconds: float,
    cache: str | None,
    cmcd: dict[str, CmcdValue],
) -> dict[str, Any]:
    path = raw_path.split("?", 1)[0]
    try:
        token, path = split_token_path(path)
    except TokenError:
        token, path = "malformed", "/p/..."
    record: dict[str, Any] = {
        "method": method,
        "path": path,
        "signed": token is not None,
        "status": status,
        "bytes": nbytes,
        "ms": round(seconds * 1000, 3),
        "cache": cache,
    }
    if cmcd:
        record["cmcd"] = cmcd
    return record


class JsonAccessLogger(AbstractAccessLogger):
    LOGGER = LOGGER

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logger, log_format)
        if not logger.handlers:  # bare JSON lines on stderr, not the "LEVEL name:" prefix
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)
            logger.propagate = False

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        record = access_record(
            request.method,
            request.raw_path,
            response.status,
            response.body_length,
            time,
            response.headers.get("X-Cache"),
            from_request(request.query, request.headers),
        )
        record["remote"] = request.remote
        self.logger.info(json.dumps(record, separators=(",", ":")))
