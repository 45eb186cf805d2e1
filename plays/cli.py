"""``cadenza plays``: the consumers of the play log, and the labels' royalty report."""

import argparse
import asyncio
import csv
import json
import re
import sys
from pathlib import Path
from typing import Any

from cadenza.errors import ConfigError

MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
DEFAULT_DB = Path("data/plays/results.sqlite3")
DEFAULT_LOG = "sqlite:///data/locator/plays.sqlite3"

DESCRIPTION = """\
The play events that players report to the locator (POST /v1/plays) wait in the play log; the
consumers read them and keep their results in one SQLite file (--db), which the locator reads
for GET /v1/history/LISTENER and /v1/hot (its plays_results setting).

  cadenza plays consume history    --log URL --db FILE
  cadenza plays consume streams    --log URL --db FILE --origin URL
  cadenza plays consume popularity --log URL --db FILE
  cadenza plays report --db FILE --label NAME --month YYYY-MM [--json]

Each consumer is its own process and may be killed at any time: it resumes where its group
left off and counts nothing twice. A play is a stream once 30 s of it have been heard.
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "plays",
        help="play-event consumers (history, streams, popularity) and the royalty report",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="plays", required=True, metavar="ACTION")
    consume = sub.add_parser("consume", help="run one consumer of the play log")
    consume.add_argument("kind", choices=("history", "streams", "popularity"))
    consume.add_argument("--log", default=DEFAULT_LOG, metavar="URL",
                         help=f"the play log, sqlite:///PATH or redis://HOST:PORT/DB "
                         f"(default {DEFAULT_LOG})")  # fmt: skip
    consume.add_argument("--db", type=Path, default=DEFAULT_DB, metavar="FILE",
                         help=f"the results file (default {DEFAULT_DB})")  # fmt: skip
    consume.add_argument(
        "--origin",
        default="",
        metavar="URL",
        help="the origin's catalog, for each track's label (streams)",
    )
    consume.add_argument("--group", default="", help="consumer group (default: the kind)")
    consume.add_argument("--name", default="consumer-1", help="this consumer in its group")
    consume.add_argument("--batch", type=int, default=500, help="events per read (500)")
    consume.add_argument("--half-life", type=float, default=3600.0, metavar="S",
                         help="popularity's half-life in seconds (3600)")  # fmt: skip
    consume.set_defaults(run=run_consume)
    report = sub.add_parser("report", help="a label's streams of one month, as CSV")
    report.add_argument("--db", type=Path, default=DEFAULT_DB, metavar="FILE")
    report.add_argument("--label", required=True, metavar="NAME")
    report.add_argument("--month", required=True, metavar="YYYY-MM")
    report.add_argument("--json", action="store_true", help="one JSON document instead")
    report.set_defaults(run=run_report)


def run_consume(args: argparse.Namespace) -> int:
    from plays.consume import Consumer, run
    from plays.log import check_url

    check_url(args.log, "--log")
    if args.kind == "streams" and not args.origin:
        raise ConfigError("the streams consumer needs --origin URL: it asks each track's label")
    if not 1 <= args.batch <= 1000 or not args.half_life > 0:
        raise ConfigError("--batch is 1 to 1000 and --half-life positive")
    consumer = Consumer(
        args.kind, args.log, args.db, args.group, args.name, args.origin, args.batch,
        half_life=args.half_life,
    )  # fmt: skip
    print(f"cadenza plays consume {args.kind}: reading {_no_password(args.log)}", flush=True)
    asyncio.run(run(consumer))
    return 0


def run_report(args: argparse.Namespace) -> int:
    from plays import results

    if not MONTH.fullmatch(args.month):
        raise ConfigError(f"--month {args.month!r} is not YYYY-MM, e.g. 2026-11")
    if not args.db.exists():
        raise ConfigError(f"{args.db}: no results file; run the streams consumer first")
    db = results.connect(args.db)
    try:
        rows = results.streams(db, args.label, args.month)
    finally:
        db.close()
    if args.json:
        total = sum(r["streams"] for r in rows)
        doc = {"label": args.label, "month": args.month, "streams": total, "rows": rows}
        print(json.dumps(doc, indent=2))
        return 0
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["label", "day", "track_id", "territory", "streams"])
    for r in rows:
        out.writerow([args.label, r["day"], r["track_id"], r["territory"], r["streams"]])
    return 0


def _no_password(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//", url)
