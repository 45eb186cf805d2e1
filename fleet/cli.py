"""``cadenza fleet ...``: a whole fleet described by one fleet file.

Each subcommand adds itself to the group in ``add_parser``, with its own ``run``.
"""

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from fleet.state import DEFAULT_FOLDER, STATE_FILE

DEFAULT_FLEET = Path("configs/fleet.toml")
DEFAULT_STATE = DEFAULT_FOLDER


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "fleet",
        help="run, stop and watch a whole fleet described by one fleet file",
        description="Work with a fleet: the origin, the edges and the locator that one fleet "
        "file (configs/fleet.toml) names.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    _add_up_down_status(actions)


def _add_up_down_status(actions: Any) -> None:
    up = actions.add_parser(
        "up",
        help="start every service of the fleet on this machine, in the background",
        description="Start the origin, then every edge, then the locator, each a background "
        "process with its log under the state folder, waiting for each to answer. Creates the "
        "token and operator keys (kept 0600 in the state folder) and a label 'lab' whose API "
        "key is printed once. Exit 2 if the fleet is up already or a port is taken.",
    )
    up.add_argument(
        "--fleet",
        type=Path,
        default=DEFAULT_FLEET,
        metavar="FILE",
        help=f"the fleet file (default {DEFAULT_FLEET})",
    )
    _state_option(up)
    up.set_defaults(run=run_up)
    down = actions.add_parser(
        "down",
        help="stop every process that 'fleet up' started",
        description="SIGTERM every process that 'fleet up' recorded (still the same process), "
        "SIGKILL after a grace period. Nothing to stop is not an error.",
    )
    down.add_argument(
        "--fleet",
        type=Path,
        metavar="FILE",
        help="accepted for symmetry; the state folder says what runs",
    )
    _state_option(down)
    down.set_defaults(run=run_down)
    status = actions.add_parser(
        "status",
        help="each service of the fleet: process, health, url; exit 1 if any is down",
        description="Ask every service of the fleet for its health (and edges for their hit "
        "ratio), and whether the processes 'fleet up' started still run. Also works for a "
        "fleet on other hosts: the fleet file's urls are asked.",
    )
    status.add_argument(
        "--fleet",
        type=Path,
        metavar="FILE",
        help="default: the one 'fleet up' used, else configs/fleet.toml",
    )
    _state_option(status)
    status.set_defaults(run=run_status)


def _state_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state",
        type=Path,
        default=DEFAULT_STATE,
        metavar="DIR",
        help=f"pids, logs and secrets of the fleet (default {DEFAULT_STATE})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def run_up(args: argparse.Namespace) -> int:
    from fleet import report
    from fleet.up import up

    result = up(args.fleet, args.state, Path.cwd(), os.environ)
    print(report.up_json(result) if args.json else report.up_text(result, args.state))
    return 0


def run_down(args: argparse.Namespace) -> int:
    from fleet.up import down

    stopped, left = down(args.state)
    if args.json:
        print(json.dumps({"stopped": stopped, "left": left}))
    elif not stopped:
        print(f"nothing to stop: no fleet recorded in {args.state}")
    else:
        print(f"stopped {', '.join(stopped)}")
    if left:
        pids = " ".join(map(str, left))
        print(f"cadenza: error: still running after SIGKILL: {pids}", file=sys.stderr)
        return 1
    return 0


def run_status(args: argparse.Namespace) -> int:
    from fleet import report
    from fleet.up import status

    fleet_file = args.fleet
    if fleet_file is None and not (args.state / STATE_FILE).exists():
        fleet_file = DEFAULT_FLEET
    rows = status(args.state, fleet_file)
    print(report.status_json(rows) if args.json else report.status_text(rows))
    return 0 if all(r.ok for r in rows) else 1
