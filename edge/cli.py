"""``cadenza edge``: run a caching edge in front of the origin."""

import argparse
import secrets
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cadenza import log, serving
from cadenza.failover import require_any_reachable
from cadenza.settings import ENV_TOKEN_KEYS, add_flags, flags
from edge.settings import EdgeSettings, load_settings, require_runnable

if TYPE_CHECKING:
    from aiohttp import web

DESCRIPTION = f"""\
Serve /tracks/... and /p/{{token}}/tracks/... from memory when cached, else from the origin with
one fetch per object (every waiter streamed as bytes arrive); with --parent, from the parent
edge that rendezvous hashing picks for the object, then the next, then the origin; with several
origins (--origin URL,URL), from the first that answers; read ahead the next segments;
serve stale on origin errors where stale-if-error or stale_grace_seconds allow; purge takedowns
from the origin's event stream. With --generic, also cache every other path of any HTTP/1.1
origin as a shared cache (RFC 9111: Vary, every header and status relayed, unsafe methods
passed through and invalidating).
GET /status for the locator, /metrics for Prometheus. Token keys: [token_keys] in the config
or {ENV_TOKEN_KEYS}="kid:secret,...". Settings: --config FILE, then this edge's part of
--fleet FILE --id EDGE_ID, then CADENZA_EDGE_<KEY> variables, then the flags below.
With -v, one JSON access log line per request on stderr (path without token, status, bytes,
cache result, CMCD fields).
"""


FLAGS = (
    "listen",
    "origin",
    "locator",
    "region",
    "cache_dir",
    "workers",
    "allow_unsigned",
    "generic",
)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "edge",
        help="run a caching edge",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="e.g. configs/edge.toml")
    parser.add_argument(
        "--fleet",
        type=Path,
        metavar="FILE",
        help="a fleet file (configs/fleet.toml): this edge's place, ports, origin and locator",
    )
    parser.add_argument("--id", dest="edge_id", metavar="EDGE_ID", help="this edge in --fleet")
    add_flags(parser, EdgeSettings, FLAGS)
    parser.add_argument(
        "--parent",
        "--parents",
        dest="parents",
        metavar="URL[,URL...]",
        help="parent edges to fetch misses from, each object from one of them, before the origin",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edge.access_log import JsonAccessLogger
    from edge.app import create_app
    from edge.front import Front
    from edge.peers import make_folder

    settings = load_settings(
        args.config,
        fleet=args.fleet,
        edge_id=args.edge_id,
        **flags(args, (*FLAGS, "parents")).table,
    )
    log.hide(settings.token_keys.values())
    require_runnable(settings)
    require_any_reachable(settings.origins, settings.origin_wait, "the origin", "--origin")
    if not settings.id:  # one name in Via for all the workers (see edge.upstreams)
        settings = replace(settings, pseudonym=f"edge-{secrets.token_hex(4)}")
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
