"""``cadenza ingest``: encode folders of masters, with progress bars and a summary.

Exit codes: 0 all done, 1 some inputs failed (the rest are complete), 2 usage error.
"""

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cadenza.errors import ConfigError
from encoder.batch import Outcome, Source, collect_sources, ingest
from encoder.ladder import Ladder, load_ladder
from encoder.pipeline import EncodedTrack
from encoder.upload import (
    TERRITORIES_FILE,
    TIMEOUT,
    OriginTarget,
    check_credentials,
    parse_territories,
    territories_for,
    upload_track,
)

ENV_API_KEY = "CADENZA_API_KEY"

DESCRIPTION = """\
Encode label masters (WAV, FLAC, AIFF, MP3, M4A) into multi-bitrate fMP4 HLS.

Each track becomes DIR/tracks/{track_id}/master.m3u8 plus an immutable
DIR/tracks/{track_id}/{version}/ with one media playlist, init segment and ~6 s
segments per rung, the cover art and metadata.json (tags, loudness, measured rates,
content hashes). Re-ingesting an unchanged master is a no-op.

With --origin, every version is uploaded to a running origin and published there
(only the objects the origin lacks are sent).
"""
EPILOG = "exit codes: 0 all done, 1 some inputs failed (the others are complete), 2 usage error"


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "ingest",
        help="encode masters into HLS renditions",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    parser.add_argument("--out", type=Path, metavar="DIR", help="write the published layout here")
    upload = parser.add_argument_group(
        "upload to an origin",
        "Encode, then upload every version to a running origin and publish it there. Without "
        "--out the encoded files are kept in a temporary folder until uploaded.",
    )
    upload.add_argument("--origin", metavar="URL", help="e.g. http://127.0.0.1:8080")
    upload.add_argument("--label", metavar="NAME", help="the label that owns the tracks")
    upload.add_argument(
        "--api-key", metavar="KEY", help=f"the label's key (default: ${ENV_API_KEY})"
    )
    upload.add_argument(
        "--territories",
        metavar="CC,CC",
        help="where the tracks are licensed (default: worldwide); "
        f"a {TERRITORIES_FILE} beside a master overrides it",
    )
    parser.add_argument(
        "--ladder",
        type=Path,
        metavar="FILE",
        help="ladder TOML (default: configs/ladder.toml values)",
    )
    parser.add_argument(
        "--jobs",
        type=_positive,
        default=os.cpu_count() or 1,
        metavar="N",
        help="tracks encoded at once (default: one per core)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    parser.set_defaults(run=run)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    ladder = load_ladder(args.ladder)
    target = _target(args)
    if args.out is None and target is None:
        raise ConfigError("say where the tracks go: --out DIR, or --origin URL --label --api-key")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out} is a file; name a folder for the published tracks")
    sources = collect_sources(args.paths)
    stderr = Console(stderr=True)
    with contextlib.ExitStack() as stack:
        out = args.out or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cadenza-")))
        view = stack.enter_context(
            BatchProgress(stderr, len(sources), enabled=stderr.is_terminal and not args.json)
        )
        outcomes = asyncio.run(_ingest(sources, ladder, out, args.jobs, view, target))
    if args.json:
        print(json.dumps({"tracks": [outcome_json(o) for o in outcomes]}, indent=2))
    else:
        # Piped output is not cut to 80 columns: the table stays one row per track.
        print_summary(Console(width=shutil.get_terminal_size((120, 24)).columns), outcomes)
    return 0 if all(o.ok for o in outcomes) else 1


def _target(args: argparse.Namespace) -> OriginTarget | None:
    if args.origin is None:
        if args.label or args.api_key or args.territories:
            raise ConfigError("--label, --api-key and --territories go with --origin")
        return None
    key = args.api_key or os.environ.get(ENV_API_KEY)
    if not args.label or not key:
        raise ConfigError(f"--origin needs --label and --api-key (or ${ENV_API_KEY})")
    territories = parse_territories(args.territories or "", "--territories")
    return OriginTarget(args.origin, args.label, key, territories)


async def _ingest(
    sources: list[Source],
    ladder: Ladder,
    out: Path,
    jobs: int,
    view: "BatchProgress",
    target: OriginTarget | None,
) -> list[Outcome]:
    if target is None:
        return await ingest(sources, ladder, out, jobs, view)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        await check_credentials(session, target)

        async def deliver(track: EncodedTrack) -> int:
            territories = territories_for(track.source, target.territories)
            return await upload_track(session, target, out, track, territories)

        return await ingest(sources, ladder, out, jobs, view, deliver=deliver)


class BatchProgress:
    """A bar per track being encoded and one for the batch."""

    def __init__(self, console: Console, count: int, *, enabled: bool) -> None:
        self.progress = Progress(
            TextColumn("{task.description}", table_column=None),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not enabled,
        )
        self.overall = self.progress.add_task(f"{count} inputs", total=count)
        self.tracks: dict[Path, TaskID] = {}

    def __enter__(self) -> "BatchProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def started(self, source: Path) -> None:
        self.tracks[source] = self.progress.add_task(_short(source), total=None)

    def progressed(self, source: Path, done: float, total: float) -> None:
        self.progress.update(self.tracks[source], completed=done, total=total)

    def finished(self, outcome: Outcome) -> None:
        task = self.tracks.pop(outcome.source, None)
        if task is not None:
            self.progress.remove_task(task)
        self.progress.advance(self.overall)


def _short(path: Path, width: int = 40) -> str:
    name = path.name
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def print_summary(console: Console, outcomes: list[Outcome]) -> None:
    """A table of the published tracks, then each failure with its reason on one line."""
    table = Table(title="Ingest summary")
    table.add_column("source", overflow="fold")
    table.add_column("track id", no_wrap=True)
    for column in ("duration", "speed", "loudness"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for o in outcomes:
        t = o.track
        if t is None:
            table.add_row(o.source.name or str(o.source), "-", "-", "-", "-", "[red]failed[/red]")
            continue
        table.add_row(
            o.source.name,
            t.track_id,
            f"{t.duration:.1f} s",
            "-" if t.reused else f"{t.speed:.1f}x",
            _lufs(t),
            "unchanged" if t.reused else "ok",
        )
    console.print(table)
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        console.print(f"[red]failed[/red] {o.source}: {o.error}", soft_wrap=True, highlight=False)
    reused = sum(1 for o in outcomes if o.track and o.track.reused)
    console.print(
        f"{len(outcomes)} inputs: {len(outcomes) - len(failed)} ok ({reused} unchanged), "
        f"{len(failed)} failed",
        highlight=False,
    )


def _lufs(track: EncodedTrack) -> str:
    if track.loudness is None:
        return "-"
    if track.loudness.integrated_lufs is None:
        return "silent"
    return f"{track.loudness.integrated_lufs:.1f} LUFS"


def outcome_json(o: Outcome) -> dict[str, Any]:
    doc: dict[str, Any] = {"source": str(o.source), "status": "ok" if o.ok else "failed"}
    if o.track is None:
        return {**doc, "track_id": None, "error": o.error}
    t = o.track
    return {
        **doc,
        "track_id": t.track_id,
        "error": None,
        "version": t.version,
        "reused": t.reused,
        "duration": round(t.duration, 3),
        "encode_seconds": round(t.encode_seconds, 3),
        "speed": round(t.speed, 2),
        "loudness": asdict(t.loudness) if t.loudness else None,
        "tags": asdict(t.tags),
        "rungs": [asdict(r) for r in t.rungs],
        "warnings": list(t.warnings),
        "uploaded_objects": o.uploaded,
    }
