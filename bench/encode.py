"""``cadenza bench encode``: Cadenza's ingest against ffmpeg's own multi-variant HLS command.

On one generated catalog, each run times (1) the reference: ffmpeg's one-process multi-variant
HLS command (asplit + var_stream_map, same ladder) on each track one after another, (2) Cadenza's
ingest, (3) Cadenza without its loudness branch. The report gives medians over the runs: wall
times, their ratio, Cadenza's CPU utilisation and the extra cost of the loudness measurement.
"""

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.catalog import write_album
from encoder.batch import Outcome, Source, ingest
from encoder.ladder import DEFAULT_LADDER, Ladder

TARGET_RATIO = 0.6
TARGET_UTILISATION = 0.9
TARGET_LOUDNESS_EXTRA = 0.10


@dataclass(frozen=True)
class Sample:
    wall: float
    cpu: float


class _Quiet:
    def started(self, source: Path) -> None:
        pass

    def progressed(self, source: Path, done: float, total: float) -> None:
        pass

    def finished(self, outcome: Outcome) -> None:
        if not outcome.ok:
            raise RuntimeError(f"benchmark input failed: {outcome.source}: {outcome.error}")


def add_parser(benches: Any, catalog_options: Callable[..., None]) -> None:
    parser = benches.add_parser(
        "encode",
        help="Cadenza's ingest vs ffmpeg's multi-variant HLS command",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    catalog_options(parser, tracks=8, min_seconds=60, max_seconds=240)
    parser.add_argument("--runs", type=int, default=3, help="runs of each side (default 3)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="Cadenza's jobs")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="cadenza-bench-encode-") as tmp:
        root = Path(tmp)
        masters = write_album(
            root / "masters", args.tracks, args.min_seconds, args.max_seconds, args.seed
        )
        audio_seconds = sum(_duration(p) for p in masters)
        samples: dict[str, list[Sample]] = {"reference": [], "cadenza": [], "no_loudness": []}
        out = root / "out"
        sides: dict[str, Callable[[], None]] = {
            "reference": lambda: _reference(masters, DEFAULT_LADDER, out),
            "cadenza": lambda: _cadenza(masters, out, args.jobs, loudness=True),
            "no_loudness": lambda: _cadenza(masters, out, args.jobs, loudness=False),
        }
        for _ in range(args.runs):
            for name, work in sides.items():
                samples[name].append(_measure(work))
                shutil.rmtree(out, ignore_errors=True)
    report = _report(samples, cores, audio_seconds, len(masters), args.jobs)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0


def _measure(work: Callable[[], None]) -> Sample:
    before = _cpu_seconds()
    started = time.perf_counter()
    work()
    return Sample(time.perf_counter() - started, _cpu_seconds() - before)


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _cadenza(masters: list[Path], out: Path, jobs: int, *, loudness: bool) -> None:
    sources = [Source(p) for p in masters]
    asyncio.run(ingest(sources, DEFAULT_LADDER, out, jobs, _Quiet(), measure_loudness=loudness))


def reference_command(master: Path, ladder: Ladder, out: Path) -> list[str]:
    """ffmpeg's own multi-variant HLS: one process, asplit to every rung, var_stream_map."""
    n = len(ladder.rungs)
    labels = "".join(f"[a{i}]" for i in range(n))
    args = [
        "ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(master),
        "-filter_complex",
        f"[0:a:0]aresample={ladder.sample_rate},aformat=channel_layouts=stereo,asplit={n}{labels}",
    ]  # fmt: skip
    for i, rung in enumerate(ladder.rungs):
        args += ["-map", f"[a{i}]", f"-c:a:{i}", rung.encoder]
        if rung.bitrate_kbps:
            args += [f"-b:a:{i}", f"{rung.bitrate_kbps}k"]
    args += [
        "-f", "hls", "-hls_time", str(ladder.segment_seconds), "-hls_playlist_type", "vod",
        "-hls_segment_type", "fmp4", "-master_pl_name", "master.m3u8",
        "-var_stream_map", " ".join(f"a:{i}" for i in range(n)),
        "-hls_segment_filename", str(out / "%v" / "seg_%05d.m4s"),
        str(out / "%v" / "index.m3u8"),
    ]  # fmt: skip
    return args


def _reference(masters: list[Path], ladder: Ladder, out: Path) -> None:
    for i, master in enumerate(masters):
        subprocess.run(reference_command(master, ladder, out / str(i)), check=True)


def _duration(path: Path) -> float:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(result.stdout)


def _report(
    samples: dict[str, list[Sample]], cores: int, audio: float, tracks: int, jobs: int
) -> dict[str, Any]:
    wall = {k: statistics.median(s.wall for s in v) for k, v in samples.items()}
    cpu = {k: statistics.median(s.cpu for s in v) for k, v in samples.items()}
    ratio = wall["cadenza"] / wall["reference"]
    utilisation = cpu["cadenza"] / (wall["cadenza"] * cores)
    loudness_extra = wall["cadenza"] / wall["no_loudness"] - 1
    return {
        "catalog": {"tracks": tracks, "audio_seconds": round(audio, 1)},
        "cores": cores,
        "jobs": jobs,
        "runs": len(samples["cadenza"]),
        "median_wall_seconds": {k: round(v, 2) for k, v in wall.items()},
        "median_cpu_seconds": {k: round(v, 2) for k, v in cpu.items()},
        "wall_seconds": {k: [round(s.wall, 2) for s in v] for k, v in samples.items()},
        "ratio": round(ratio, 3),
        "utilisation": round(utilisation, 3),
        "loudness_extra": round(loudness_extra, 3),
        "cadenza_speed_x_realtime": round(audio / wall["cadenza"], 1),
        "targets": {
            "ratio": {"target": f"<= {TARGET_RATIO}", "met": ratio <= TARGET_RATIO},
            "utilisation": {
                "target": f">= {TARGET_UTILISATION}",
                "met": utilisation >= TARGET_UTILISATION,
            },
            "loudness_extra": {
                "target": f"<= {TARGET_LOUDNESS_EXTRA}",
                "met": loudness_extra <= TARGET_LOUDNESS_EXTRA,
            },
        },
    }


def _print(r: dict[str, Any]) -> None:
    wall, cpu, met = r["median_wall_seconds"], r["median_cpu_seconds"], r["targets"]
    mark = {True: "met", False: "MISSED"}
    print(
        f"catalog: {r['catalog']['tracks']} tracks, {r['catalog']['audio_seconds']} s of audio; "
        f"{r['cores']} cores, {r['jobs']} jobs, medians of {r['runs']} runs"
    )
    print(f"{'':34}{'wall s':>9}{'cpu s':>9}")
    rows = (
        ("ffmpeg multi-variant, sequential", "reference"),
        ("cadenza ingest", "cadenza"),
        ("cadenza without loudness", "no_loudness"),
    )
    for label, key in rows:
        print(f"{label:34}{wall[key]:>9.2f}{cpu[key]:>9.2f}")
    print(
        f"ratio cadenza/reference: {r['ratio']:.3f}  (target <= {TARGET_RATIO}: "
        f"{mark[met['ratio']['met']]})"
    )
    print(
        f"cpu utilisation:         {r['utilisation']:.1%}  (target >= {TARGET_UTILISATION:.0%}: "
        f"{mark[met['utilisation']['met']]})"
    )
    print(
        f"loudness branch extra:   {r['loudness_extra']:+.1%}  (target <= "
        f"{TARGET_LOUDNESS_EXTRA:.0%}: {mark[met['loudness_extra']['met']]})"
    )
    print(f"cadenza speed:           {r['cadenza_speed_x_realtime']}x realtime")
