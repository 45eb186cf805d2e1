"""A batch of masters encoded in parallel; one bad master fails alone.

Inputs are files and folders; folders are walked for audio files. Every input ends as an
``Outcome``: a published track, or one line saying why not.
"""

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cadenza.errors import InputError
from encoder.errors import MasterError
from encoder.ladder import Ladder
from encoder.pipeline import STAGING, EncodedTrack, encode_track, remove_stale_staging

AUDIO_EXTENSIONS = (".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc", ".mp3", ".m4a")


@dataclass(frozen=True)
class Source:
    path: Path
    error: str | None = None  # set when the input itself is unusable (missing, empty folder)


@dataclass(frozen=True)
class Outcome:
    source: Path
    track: EncodedTrack | None
    error: str | None
    uploaded: int | None = None  # objects sent to the origin, when uploading

    @property
    def ok(self) -> bool:
        return self.track is not None


class Observer(Protocol):
    def started(self, source: Path) -> None: ...
    def progressed(self, source: Path, done: float, total: float) -> None: ...
    def finished(self, outcome: Outcome) -> None: ...


def collect_sources(paths: Sequence[Path]) -> list[Source]:
    """Files as given, folders walked (hidden entries skipped), each path once, in order."""
    sources: list[Source] = []
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found = _audio_files(path)
            if not found:
                sources.append(Source(path, _no_audio(path)))
            candidates = found
        elif path.exists():
            candidates = [path]
        else:
            sources.append(Source(path, "no such file or folder; check the path"))
            candidates = []
        for candidate in candidates:
            key = candidate.resolve()
            if key not in seen:
                seen.add(key)
                sources.append(Source(candidate))
    return sources


def _audio_files(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != STAGING)
        found += [
            Path(root, f)
            for f in sorted(files)
            if not f.startswith(".") and f.lower().endswith(AUDIO_EXTENSIONS)
        ]
    return found


def _no_audio(folder: Path) -> str:
    kinds = ", ".join(e.lstrip(".") for e in AUDIO_EXTENSIONS)
    return f"no audio files in this folder (looked for {kinds}); check the path"


async def ingest(
    sources: Sequence[Source],
    ladder: Ladder,
    out_root: Path,
    jobs: int,
    observer: Observer,
    *,
    deliver: Callable[[EncodedTrack], Awaitable[int]] | None = None,
    measure_loudness: bool = True,
) -> list[Outcome]:
    """Encode every usable source with at most ``jobs`` ffmpeg processes at once.

    ``deliver``, when given, is awaited with each encoded track (an upload to the origin)
    and returns how many objects it sent; a failure there fails that track alone.
    """
    remove_stale_staging(out_root)
    jobs = max(1, jobs)
    encoders = asyncio.Semaphore(jobs)
    # Twice as many tracks in flight as encoders: while ffmpeg keeps every core busy, the
    # next tracks are probed and hashed and the finished ones fsynced and published.
    in_flight = asyncio.Semaphore(2 * jobs)
    claimed: dict[str, Path] = {}

    async def one(source: Source) -> Outcome:
        if source.error is not None:
            outcome = Outcome(source.path, None, source.error)
            observer.finished(outcome)
            return outcome

        def claim(track_id: str) -> None:
            other = claimed.setdefault(track_id, source.path)
            if other != source.path:
                raise MasterError(f"same recording (track {track_id}) as {other}; ingest one")

        async with in_flight:
            observer.started(source.path)
            try:
                track = await encode_track(
                    source.path,
                    ladder,
                    out_root,
                    lambda done, total: observer.progressed(source.path, done, total),
                    claim=claim,
                    encoder_slot=encoders,
                    measure_loudness=measure_loudness,
                )
                uploaded = await deliver(track) if deliver is not None else None
                outcome = Outcome(source.path, track, None, uploaded)
            except (InputError, OSError) as e:
                outcome = Outcome(source.path, None, _one_line(e))
        observer.finished(outcome)
        return outcome

    # Longest first (by file size) shortens the batch: no long track starts last on an idle core.
    order = sorted(range(len(sources)), key=lambda i: -_size(sources[i].path))
    tasks = {i: asyncio.ensure_future(one(sources[i])) for i in order}
    try:
        await asyncio.gather(*tasks.values())
    finally:
        for task in tasks.values():
            task.cancel()
        # Let cancelled encodes stop ffmpeg and remove their staging before returning.
        await asyncio.gather(*tasks.values(), return_exceptions=True)
    return [tasks[i].result() for i in range(len(sources))]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _one_line(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        where = f" ({error.filename})" if error.filename else ""
        return f"{error.strerror}{where}"
    return " ".join(str(error).split())
