"""``cadenza play``: play one track as a listener would, and report what the listener got."""

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from cadenza.errors import ConfigError, InputError
from player.abr import DEFAULT_RULE, RULES

DESCRIPTION = """\
Play TRACK_ID the way a listener's player would, without decoding the audio: ask the locator
for the steered multivariant playlist, follow its content steering manifest, let the ABR rule
choose each segment's rung, fetch the media playlist, init and segments from the leading edge
(pathway) with CMCD on every request, and fail over to the next edge on any error. Then report
the play's QoE: startup time, stalls, average bitrate, switches, bytes, the share of segments
each edge served, and the loudness normalisation gain the player would apply (to -14 LUFS,
true peak at most -1 dBTP).

--trace FILE holds the player's own downloads to a network trace (a JSON list of
{"duration_ms", "bandwidth_kbps", "latency_ms"}, such as the shared 3G and 4G traces);
--speed X runs the play's clock, trace and buffer X times faster than real time.
The play is reported to the locator (POST /v1/plays: start, progress every 30 s of audio, end
or skip) in the background, never holding the play up; --listener ID credits it to a listener
where the locator takes ?listener= (labs), --no-report sends nothing.
Exit status: 0 played to the end, 1 the play failed (refused, or no edge could serve),
2 bad arguments.
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "play",
        help="play a track through the locator and edges, and report its QoE",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("track_id", metavar="TRACK_ID")
    parser.add_argument("--locator", required=True, metavar="URL", help="the locator's base URL")
    parser.add_argument("--territory", metavar="CC", help="the listener's country, e.g. FR")
    parser.add_argument("--lat", type=float, metavar="X", help="the listener's latitude")
    parser.add_argument("--lon", type=float, metavar="Y", help="the listener's longitude")
    parser.add_argument(
        "--abr",
        default=DEFAULT_RULE,
        choices=sorted(RULES),
        metavar="RULE",
        help=f"ABR rule: {', '.join(sorted(RULES))} (default {DEFAULT_RULE})",
    )
    parser.add_argument("--trace", type=Path, metavar="FILE", help="shape downloads to a trace")
    parser.add_argument(
        "--speed", type=float, default=1.0, metavar="X", help="clock speed-up (default 1)"
    )
    parser.add_argument(
        "--max-buffer", type=float, default=30.0, metavar="S", help="seconds (default 30)"
    )
    parser.add_argument("--timeout", type=float, metavar="S", help="give up after S seconds")
    parser.add_argument(
        "--listener", metavar="ID", help="labs: the listener to credit the play to (?listener=)"
    )
    parser.add_argument(
        "--no-report", action="store_true", help="send no play events to the locator"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from player.session import PlaybackFailed, play
    from player.traces import load_trace

    try:
        trace = load_trace(args.trace) if args.trace else None
    except InputError as e:
        raise ConfigError(str(e)) from e
    try:
        qoe = asyncio.run(
            play(
                args.track_id,
                args.locator,
                territory=args.territory,
                lat=args.lat,
                lon=args.lon,
                rule=args.abr,
                trace=trace,
                speed=args.speed,
                max_buffer_s=args.max_buffer,
                timeout_s=args.timeout,
                listener=args.listener,
                report=not args.no_report,
            )
        )
    except PlaybackFailed as e:
        if not args.json:
            raise
        print(f"cadenza: error: {e}", file=sys.stderr)
        _print_json({"track_id": args.track_id, "status": "failed", "error": str(e)})
        return 1
    if args.json:
        _print_json({"status": "ok", **qoe.to_json()})
    else:
        print(qoe.render())
    return 0


def _print_json(doc: dict[str, Any]) -> None:
    print(json.dumps(doc, indent=2))
