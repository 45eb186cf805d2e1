"""``cadenza locator``: run the locator that starts every play."""

import argparse
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cadenza import log, serving, workers
from cadenza.failover import require_any_reachable
from cadenza.settings import ENV_TOKEN_KEYS, add_flags, flags
from locator.settings import LocatorSettings, load_settings

FLAGS = ("listen", "origin", "workers")

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
/metrics. Players report their plays to POST /v1/plays (checked against each event's token or
offline licence, appended to the play log: plays_log, a SQLite file or Redis), and
GET /v1/history/LISTENER and /v1/hot read what the consumers made (plays_results; see
'cadenza plays'). Token keys: [token_keys] in the config or {ENV_TOKEN_KEYS}="kid:secret,...".
Settings: --config FILE (or the one the fleet file names), then --fleet FILE (edges, origin,
listen address), then CADENZA_LOCATOR_<KEY> variables, then the flags below.
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
        "--fleet",
        type=Path,
        metavar="FILE",
        help="a fleet file (configs/fleet.toml): the edges, the origin, the listen address",
    )
    add_flags(parser, LocatorSettings, FLAGS)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from locator.app import Worker, create_app
    from locator.shares import SharedState

    settings = load_settings(args.config, fleet=args.fleet, **flags(args, FLAGS).table)
    log.hide(settings.token_keys.values())
    require_any_reachable(settings.origins, settings.origin_wait, "the origin", "--origin")
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
