"""``cadenza play``: play one track as a listener would, and report what the listener got."""

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cadenza.errors import CadenzaError, ConfigError, InputError
from player.abr import DEFAULT_MAX_BUFFER_S, DEFAULT_RULE, RULES

if TYPE_CHECKING:
    from player.cache import Layers
    from player.qoe import QoE

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

Media playlists, init and segments of a track version are kept in a local cache (--cache-dir,
default $XDG_CACHE_HOME/cadenza/player, at most --cache-size MB, least recently used out first)
and read from it, or from the tracks downloaded for offline listening (--store), before the
network; the locator is still asked for every play (--no-cache: always the network).
--offline plays a track downloaded with 'cadenza offline add' without any network, while its
licence is valid (see 'cadenza offline --help').
Several TRACK_IDs are a queue, played one after the other: while a track's buffer plays out
its last seconds, the next track's play is asked for and its start (playlist, init, first
segment) fetched ahead, so that it starts from the device; each change's gap (the previous
track's end to the next one's first audio, on the play's clock) is reported.
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
    parser.add_argument("track_ids", metavar="TRACK_ID", nargs="+", help="one track, or a queue")
    parser.add_argument("--locator", metavar="URL", help="the locator's base URL")
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
        "--max-buffer",
        type=float,
        default=DEFAULT_MAX_BUFFER_S,
        metavar="S",
        help=f"seconds of media to hold ahead at most (default {DEFAULT_MAX_BUFFER_S:.0f})",
    )
    parser.add_argument("--timeout", type=float, metavar="S", help="give up after S seconds")
    parser.add_argument(
        "--listener", metavar="ID", help="labs: the listener to credit the play to (?listener=)"
    )
    parser.add_argument(
        "--no-report", action="store_true", help="send no play events to the locator"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--cache-dir", type=Path, metavar="DIR", help="the local cache (default: user cache dir)"
    )
    parser.add_argument(
        "--cache-size", type=int, default=512, metavar="MB", help="local cache bound (default 512)"
    )
    parser.add_argument("--no-cache", action="store_true", help="do not use the local cache")
    parser.add_argument(
        "--offline", action="store_true", help="play a downloaded track with no network at all"
    )
    parser.add_argument(
        "--store", type=Path, metavar="DIR", help="the offline store (default: user data dir)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from player.session import PlaybackFailed, play
    from player.traces import load_trace

    args.track_id = args.track_ids[0]
    if args.offline:
        from player import offline

        if len(args.track_ids) > 1:
            raise ConfigError("--offline plays one track at a time")
        try:
            qoe = offline.play_offline(
                args.track_id,
                offline.store_dir(args.store),
                rule=args.abr,
                speed=args.speed,
                max_buffer_s=args.max_buffer,
                timeout_s=args.timeout,
            )
        except ConfigError:
            raise
        except CadenzaError as e:  # not downloaded, licence expired, a damaged store
            return _failed(args, e)
        return _report(args, qoe)
    if not args.locator:
        raise ConfigError("give --locator URL (or --offline for a downloaded track)")
    if args.cache_size < 1:
        raise ConfigError(f"--cache-size must be at least 1 MB, not {args.cache_size}")
    try:
        trace = load_trace(args.trace) if args.trace else None
    except InputError as e:
        raise ConfigError(str(e)) from e
    if len(args.track_ids) > 1:
        return _queue(args, trace)
    try:
        qoe = asyncio.run(play(args.track_id, args.locator, **_play_options(args, trace)))
    except PlaybackFailed as e:
        return _failed(args, e)
    return _report(args, qoe)


def _play_options(args: argparse.Namespace, trace: Any) -> dict[str, Any]:
    """What the flags say of every online play, one track or a queue."""
    return {
        "territory": args.territory,
        "lat": args.lat,
        "lon": args.lon,
        "rule": args.abr,
        "trace": trace,
        "speed": args.speed,
        "max_buffer_s": args.max_buffer,
        "timeout_s": args.timeout,
        "cache": None if args.no_cache else _local_cache(args),
        "listener": args.listener,
        "report": not args.no_report,
    }


def _queue(args: argparse.Namespace, trace: Any) -> int:
    from player.queue import MAX_QUEUE, play_queue, render

    if len(args.track_ids) > MAX_QUEUE:
        raise ConfigError(f"a queue holds at most {MAX_QUEUE} tracks")
    entries = asyncio.run(play_queue(args.track_ids, args.locator, **_play_options(args, trace)))
    failed = sum(e.qoe is None for e in entries)
    if args.json:
        gaps = [e.gap_s for e in entries if e.gap_s is not None]
        _print_json(
            {
                "status": "failed" if failed else "ok",
                "longest_gap_ms": round(max(gaps) * 1e3, 1) if gaps else None,
                "queue": [e.to_json() for e in entries],
            }
        )
    else:
        print(render(entries))
    return 1 if failed else 0


def _local_cache(args: argparse.Namespace) -> "Layers":
    """The tracks downloaded for offline listening, then the local cache of recent plays."""
    from player.cache import MB, Layers, LocalCache
    from player.offline import store_dir
    from player.store import OfflineStore

    folder = args.cache_dir or _user_cache_dir() / "cadenza" / "player"
    try:
        return Layers(OfflineStore(store_dir(args.store)), LocalCache(folder, args.cache_size * MB))
    except OSError as e:
        raise ConfigError(f"cannot use the local cache {folder}: {e}; or give --no-cache") from e


def _user_cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"


def _failed(args: argparse.Namespace, e: Exception) -> int:
    if not args.json:
        raise e
    print(f"cadenza: error: {e}", file=sys.stderr)
    _print_json({"track_id": args.track_id, "status": "failed", "error": str(e)})
    return 1


def _report(args: argparse.Namespace, qoe: "QoE") -> int:
    if args.json:
        _print_json({"status": "ok", **qoe.to_json()})
    else:
        print(qoe.render())
    return 0


def _print_json(doc: dict[str, Any]) -> None:
    print(json.dumps(doc, indent=2))
