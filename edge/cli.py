"""``cadenza edge``: run a caching edge in front of the origin."""

import argparse
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cadenza import log, serving
from cadenza.settings import ENV_TOKEN_KEYS
from edge.settings import load_settings

if TYPE_CHECKING:
    from aiohttp import web

DESCRIPTION = f"""\
Serve /tracks/... and /p/{{token}}/tracks/... from memory when cached, else from the origin with
one fetch per object (every waiter streamed as bytes arrive); read ahead the next segments;
serve stale on origin errors where stale-if-error or stale_grace_seconds allow; purge takedowns
from the origin's event stream. With --generic, also cache every other path of any HTTP/1.1
origin as a shared cache (RFC 9111: Vary, every header and status relayed, unsafe methods
passed through and invalidating).
GET /status for the locator, /metrics for Prometheus. Token keys: [token_keys] in the config
or {ENV_TOKEN_KEYS}="kid:secret,...". With -v, one JSON access log line per request on stderr
(path without token, status, bytes, cache result, CMCD fields).
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "edge",
        help="run a caching edge",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="e.g. configs/edge-eu-west.toml"
    )
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help="default 127.0.0.1:8081 (port 0: any)"
    )
    parser.add_argument("--origin", metavar="URL", help="default http://127.0.0.1:8080")
    parser.add_argument("--region", metavar="NAME")
    parser.add_argument("--cache-dir", type=Path, metavar="DIR")
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes sharing the port (default: one per core)",
    )
    parser.add_argument(
        "--allow-unsigned",
        action="store_const",
        const=True,
        help="serve without path tokens: labs and benchmarks only",
    )
    parser.add_argument(
        "--generic",
        action="store_const",
        const=True,
        help="cache any path of the origin as an RFC 9111 shared cache, not only /tracks/",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edge.access_log import JsonAccessLogger
    from edge.app import create_app
    from edge.front import Front
    from edge.peers import make_folder

    settings = load_settings(
        args.config,
        listen=args.listen,
        origin=args.origin,
        region=args.region,
        cache_dir=args.cache_dir,
        allow_unsigned=args.allow_unsigned,
        generic=args.generic,
        workers=args.workers,
    )
    log.hide(settings.token_keys.values())
    service = serving.Service(
        "cadenza edge", settings.host, settings.port, JsonAccessLogger, front=Front,
        head_timeout=settings.head_timeout, keepalive_timeout=settings.keepalive_timeout,
    )  # fmt: skip
    if settings.workers == 1:
        return serving.run_service(create_app(settings), service)
    # The workers find each other's sockets in this folder (see edge.peers).
    peers = make_folder()

    def make_app(worker: int) -> "web.Application":
        return create_app(replace(settings, peer_folder=peers, worker=worker))

    try:
        return serving.run_workers(make_app, service, settings.workers)
    finally:
        shutil.rmtree(peers, ignore_errors=True)
