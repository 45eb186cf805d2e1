"""``cadenza fleet``: commands over a whole fleet described by one fleet file."""

import argparse
import sys
from pathlib import Path
from typing import Any

from cadenza.errors import ConfigError
from cadenza.fleet import load_fleet
from cadenza.fsio import write_atomic
from fleet.prometheus import (
    DEFAULT_RULE_FILES,
    DEFAULT_SCRAPE_SECONDS,
    EDGE_JOB,
    LOCATOR_JOB,
    ORIGIN_JOB,
    prometheus_config,
)

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
        help="commands over a whole fleet described by one fleet file",
        description="Commands over a whole fleet: origins, edges and locator named in one file.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
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
