"""``cadenza locator``: run the locator that starts every play."""

import argparse
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cadenza import log, serving, workers
from cadenza.settings import ENV_TOKEN_KEYS
from locator.settings import load_settings

if TYPE_CHECKING:
    from aiohttp import web

FOLDER_PREFIX = "cadenza-locator-"

DESCRIPTION = f"""\
Start plays: GET /v1/play/TRACK_ID checks the track's rights in the client's territory (asked
of the origin's catalog, cached, forgotten on takedowns), picks the nearest healthy, least
loaded edges (per-track consistent hashing with bounded loads in the nearest group), signs a
path token and answers with a multivariant playlist of one HLS pathway per edge, content-steered
by GET /v1/steer/SESSION. The client's place comes from lat, lon and territory query parameters
(trusted front ends, tests), a coverage-zone table, or a MaxMind database, else the configured
default location. Also GET /v1/locate/TRACK_ID (ranked edges as JSON), /v1/redirect/TRACK_ID
(302 to the primary edge), /v1/hot?region=R (what edges pre-position), /v1/edges (health),
/metrics. Token keys: [token_keys] in the config or {ENV_TOKEN_KEYS}="kid:secret,...".
Several worker processes share the port (--workers, default one per core); they count each
other's plays in the load bound and answer /v1/hot and /metrics for the whole locator.
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "locator",
        help="run the locator: rights, edge choice, signed URLs, content steering",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="e.g. configs/locator.toml")
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help="default 127.0.0.1:8070 (port 0: any)"
    )
    parser.add_argument("--origin", metavar="URL", help="the origin's catalog URL")
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes sharing the port (default: one per core)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from locator.app import Worker, create_app
    from locator.shares import SharedState

    settings = load_settings(
        args.config, listen=args.listen, origin=args.origin, workers=args.workers
    )
    log.hide(settings.token_keys.values())
    service = serving.Service(
        "cadenza locator", settings.host, settings.port,
        head_timeout=settings.head_timeout, keepalive_timeout=settings.keepalive_timeout,
    )  # fmt: skip
    if settings.workers == 1:
        return serving.run_service(create_app(settings), service)
    # Made before the workers fork, so that all of them map the same memory.
    shared = SharedState.allocate([e.id for e in settings.edges], settings.workers)
    folder = workers.make_folder(FOLDER_PREFIX)

    def make_app(worker: int) -> "web.Application":
        return create_app(settings, Worker(worker, settings.workers, shared, folder))

    try:
        return serving.run_workers(make_app, service, settings.workers)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
