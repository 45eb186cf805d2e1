"""``cadenza fleet``: commands over a whole fleet described by one fleet file: run it on this
machine (up, status, down) and configure Prometheus for it (prometheus-config)."""

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from cadenza.errors import ConfigError
from cadenza.fleet import load_fleet
from cadenza.fsio import write_atomic
from fleet import report
from fleet.prometheus import (
    DEFAULT_RULE_FILES,
    DEFAULT_SCRAPE_SECONDS,
    EDGE_JOB,
    LOCATOR_JOB,
    ORIGIN_JOB,
    prometheus_config,
)
from fleet.state import DEFAULT_FOLDER, STATE_FILE
from fleet.up import down, status, up

DEFAULT_FLEET = Path("configs/fleet.toml")

PROMETHEUS_DESCRIPTION = f"""\
Print Prometheus' configuration for the fleet: one scrape job per kind of service
({ORIGIN_JOB} with an origin label, {EDGE_JOB} with edge and region labels,
{LOCATOR_JOB}), the names that the rules, alerts and Grafana dashboard in deploy/ select on.
The rule files are named relative to the written file: put it beside deploy/prometheus/rules.yml
and alerts.yml, or pass --rules with their paths.
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "fleet",
        help="run, stop and watch a whole fleet described by one fleet file; Prometheus for it",
        description="Commands over a whole fleet: origins, edges and locator named in one file.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    _add_up_down_status(actions)
    prometheus = actions.add_parser(
        "prometheus-config",
        help="print Prometheus' scrape configuration for the fleet",
        description=PROMETHEUS_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    prometheus.add_argument(
        "--fleet", type=Path, metavar="FILE", required=True, help="e.g. configs/fleet.toml"
    )
    prometheus.add_argument("--out", type=Path, metavar="FILE", help="write here, not to stdout")
    prometheus.add_argument(
        "--scrape-interval",
        type=float,
        default=DEFAULT_SCRAPE_SECONDS,
        metavar="SECONDS",
        help=f"scrape and rule evaluation interval (default {DEFAULT_SCRAPE_SECONDS})",
    )
    prometheus.add_argument(
        "--rules",
        nargs="*",
        metavar="FILE",
        help="rule files to name (default: rules.yml alerts.yml); none: --rules with no file",
    )
    prometheus.set_defaults(run=run_prometheus_config)


def _add_up_down_status(actions: Any) -> None:
    up_parser = actions.add_parser(
        "up",
        help="start every service of the fleet on this machine, in the background",
        description="Start the origin, then every edge, then the locator, each a background "
        "process with its log under the state folder, waiting for each to answer. Creates the "
        "token and operator keys (kept 0600 in the state folder) and a label 'lab' whose API "
        "key is printed once. Exit 2 if the fleet is up already or a port is taken.",
    )
    up_parser.add_argument(
        "--fleet",
        type=Path,
        default=DEFAULT_FLEET,
        metavar="FILE",
        help=f"the fleet file (default {DEFAULT_FLEET})",
    )
    _state_option(up_parser)
    up_parser.set_defaults(run=run_up)
    down_parser = actions.add_parser(
        "down",
        help="stop every process that 'fleet up' started",
        description="SIGTERM every process that 'fleet up' recorded (still the same process), "
        "SIGKILL after a grace period. Nothing to stop is not an error.",
    )
    down_parser.add_argument(
        "--fleet",
        type=Path,
        metavar="FILE",
        help="accepted for symmetry; the state folder says what runs",
    )
    _state_option(down_parser)
    down_parser.set_defaults(run=run_down)
    status_parser = actions.add_parser(
        "status",
        help="each service of the fleet: process, health, url; exit 1 if any is down",
        description="Ask every service of the fleet for its health (and edges for their hit "
        "ratio), and whether the processes 'fleet up' started still run. Also works for a "
        "fleet on other hosts: the fleet file's urls are asked.",
    )
    status_parser.add_argument(
        "--fleet",
        type=Path,
        metavar="FILE",
        help="default: the one 'fleet up' used, else configs/fleet.toml",
    )
    _state_option(status_parser)
    status_parser.set_defaults(run=run_status)


def _state_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state",
        type=Path,
        default=DEFAULT_FOLDER,
        metavar="DIR",
        help=f"pids, logs and secrets of the fleet (default {DEFAULT_FOLDER})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def run_up(args: argparse.Namespace) -> int:
    result = up(args.fleet, args.state, Path.cwd(), os.environ)
    print(report.up_json(result) if args.json else report.up_text(result, args.state))
    return 0


def run_down(args: argparse.Namespace) -> int:
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
    fleet_file = args.fleet
    if fleet_file is None and not (args.state / STATE_FILE).exists():
        fleet_file = DEFAULT_FLEET
    rows = status(args.state, fleet_file)
    print(report.status_json(rows) if args.json else report.status_text(rows))
    return 0 if all(r.ok for r in rows) else 1


def run_prometheus_config(args: argparse.Namespace) -> int:
    fleet = load_fleet(args.fleet)
    rules = DEFAULT_RULE_FILES if args.rules is None else tuple(args.rules)
    text = prometheus_config(
        fleet, source=str(args.fleet), scrape_seconds=args.scrape_interval, rule_files=rules
    )
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        write_atomic(args.out, text.encode())
    except OSError as e:
        raise ConfigError(f"cannot write {args.out}: {e.strerror}; check the folder") from None
    return 0
