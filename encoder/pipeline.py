"""Encode one master into a published version: probe, one ffmpeg run, check, publish.

The version is staged in a hidden work directory on the output's filesystem and renamed into
place only when complete; the master playlist is switched last, so a crash or Ctrl-C at any
point leaves the previous state visible and nothing half-written under a final name.
"""

import asyncio
import contextlib
import json
import os
import secrets
import shlex
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cadenza import hls, layout
from cadenza.fsio import PUBLIC_FILE, make_dirs, make_tree_public, publish_dir, write_atomic
from cadenza.log import get_logger
from cadenza.process import alive, die_with_parent
from encoder import graph, headers
from encoder.errors import EncodeError, MasterError
from encoder.identity import sha256_file, track_id, version_id
from encoder.ladder import Ladder
from encoder.loudness import Loudness, parse_ebur128_summary
from encoder.playlist import measure_bandwidth, published
from encoder.probe import Master, Tags, probe
from encoder.progress import ProgressReader

STAGING = ".cadenza-staging"
# A decode that stops this much short of the declared duration means a damaged master.
TRUNCATION_TOLERANCE = 0.5

logger = get_logger("encoder")
ProgressCallback = Callable[[float, float], None]  # (seconds encoded, seconds in total)


@dataclass(frozen=True)
class RungResult:
    name: str
    codec: str
    codecs: str
    bitrate_kbps: int | None
    peak_bps: int
    average_bps: int
    segments: int


@dataclass(frozen=True)
class EncodedTrack:
    source: Path
    track_id: str
    version: str
    duration: float
    tags: Tags
    loudness: Loudness | None
    rungs: tuple[RungResult, ...]
    encode_seconds: float
    reused: bool
    warnings: tuple[str, ...]

    @property
    def speed(self) -> float:
        """Times realtime while ffmpeg ran; 0 for a reused version."""
        return self.duration / self.encode_seconds if self.encode_seconds > 0 else 0.0


async def encode_track(
    path: Path,
    ladder: Ladder,
    out_root: Path,
    on_progress: ProgressCallback | None = None,
    *,
    claim: Callable[[str], None] | None = None,
    encoder_slot: contextlib.AbstractAsyncContextManager[Any] | None = None,
    measure_loudness: bool = True,
) -> EncodedTrack:
    """Encode ``path`` into ``out_root/tracks/...``; raises MasterError for an unusable master.

    ``claim`` is called with the track id before any encoding; it raises to refuse the track
    (a batch uses it to reject two masters of the same recording). ``encoder_slot`` is held
    while ffmpeg runs, so a batch keeps its cores busy with ffmpeg while other tracks are
    probed, hashed and published.
    """
    started = time.perf_counter()
    master = await probe(path, ladder.max_duration_seconds)
    report = on_progress or (lambda done, total: None)
    report(0.0, master.duration)
    source_sha = await asyncio.to_thread(sha256_file, path)
    tid = track_id(master.tags, source_sha)
    if claim is not None:
        claim(tid)
    recipe = ladder.fingerprint() + ("" if measure_loudness else "|without-loudness")
    version = version_id(source_sha, recipe)
    final = out_root / layout.version_prefix(tid, version)
    if (final / layout.METADATA).is_file():
        metadata = json.loads((final / layout.METADATA).read_text())
        # Versions published before modes were set explicitly may be private; make them servable.
        await asyncio.to_thread(make_tree_public, final)
        await asyncio.to_thread(_write_master, out_root, tid, metadata)
        report(master.duration, master.duration)
        return _result(master, metadata, 0.0, reused=True)
    on_seconds = lambda done: report(min(done, master.duration), master.duration)  # noqa: E731
    metadata, encode_seconds = await _encode_version(
        master,
        ladder,
        out_root,
        (tid, version, source_sha),
        on_seconds,
        encoder_slot or contextlib.nullcontext(),
        measure_loudness,
    )
    report(master.duration, master.duration)
    logger.info(
        "published %s as %s/%s: encoded in %.1f s, %.1f s in all",
        path, tid, version, encode_seconds, time.perf_counter() - started,
    )  # fmt: skip
    return _result(master, metadata, encode_seconds, reused=False)


async def _encode_version(
    master: Master,
    ladder: Ladder,
    out_root: Path,
    ids: tuple[str, str, str],
    on_seconds: Callable[[float], None],
    encoder_slot: contextlib.AbstractAsyncContextManager[Any],
    measure_loudness: bool,
) -> tuple[dict[str, Any], float]:
    """Encode into a staging folder, check it, rename it into place, switch the master.

    Returns the version's metadata and the seconds ffmpeg took (not counting the wait for a slot).
    """
    tid, version, source_sha = ids
    staging = out_root / STAGING / f"{tid}-{version}-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        make_dirs(staging)
        for rung in ladder.rungs:
            (staging / rung.name).mkdir()
        args = graph.build_command(master, ladder, staging, measure_loudness=measure_loudness)
        async with encoder_slot:
            began = time.perf_counter()
            ffmpeg_log = await _run_ffmpeg(args, on_seconds)
            encode_seconds = time.perf_counter() - began
        loudness = parse_ebur128_summary(ffmpeg_log) if measure_loudness else None
        if measure_loudness and loudness is None:
            raise EncodeError("ffmpeg printed no loudness summary; run with -vv to see its log")
        metadata = await asyncio.to_thread(
            _finalize, staging, master, ladder, loudness, source_sha, tid, version
        )
        await asyncio.to_thread(
            publish_dir, staging, out_root / layout.version_prefix(tid, version)
        )
        await asyncio.to_thread(_write_master, out_root, tid, metadata)
        return metadata, encode_seconds
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            (out_root / STAGING).rmdir()


async def _run_ffmpeg(args: list[str], on_seconds: Callable[[float], None]) -> str:
    """Run ffmpeg to completion, reporting progress; returns its log. Killed if cancelled."""
    logger.debug("running %s", shlex.join(args))
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # Ctrl-C reaches Cadenza, which stops ffmpeg itself
        preexec_fn=die_with_parent,  # a SIGKILLed ingest must not leave ffmpeg running
    )
    assert proc.stdout is not None and proc.stderr is not None
    reader = ProgressReader()

    async def follow_progress() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(4096):
            if reader.feed(chunk):
                on_seconds(reader.out_seconds)

    try:
        _, output = await asyncio.gather(follow_progress(), proc.stderr.read())
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = output.decode(errors="replace")
    if proc.returncode != 0:
        logger.debug("ffmpeg exited with %s:\n%s", proc.returncode, text[-4000:])
        raise EncodeError(
            f"ffmpeg failed ({_ffmpeg_error(text) or f'exit code {proc.returncode}'})"
        )
    return text


def _ffmpeg_error(log: str) -> str:
    errors = [line for line in log.splitlines() if line.startswith(("[error]", "[fatal]"))]
    if not errors:
        return ""
    return errors[-1].split("] ", 1)[-1].strip()


def _finalize(
    staging: Path,
    master: Master,
    ladder: Ladder,
    loudness: Loudness | None,
    source_sha: str,
    tid: str,
    version: str,
) -> dict[str, Any]:
    """Check what ffmpeg wrote, rewrite the media playlists, and write the metadata."""
    rungs = []
    timelines: dict[str, tuple[float, ...]] = {}
    for rung in ladder.rungs:
        folder = staging / rung.name
        playlist = _read_playlist(folder)
        durations = tuple(s.duration for s in playlist.segments)
        sizes = [(folder / s.uri).stat().st_size for s in playlist.segments]
        peak, average = measure_bandwidth(durations, sizes)
        (folder / layout.MEDIA_PLAYLIST).write_text(hls.write_media_playlist(published(playlist)))
        if timelines.setdefault(rung.codec, durations) != durations:
            raise EncodeError(f"rung {rung.name} has segment boundaries unlike its codec's others")
        rungs.append(
            RungResult(
                rung.name,
                rung.codec,
                rung.codec_string,
                rung.bitrate_kbps,
                peak,
                average,
                len(durations),
            )
        )
    encoded = sum(next(iter(timelines.values())))
    if encoded + TRUNCATION_TOLERANCE < master.duration:
        raise MasterError(
            f"truncated or damaged: decoding stopped at {encoded:.2f} s of the "
            f"{master.duration:.2f} s the {master.container} file declares; {headers.WHAT_TO_DO}"
        )
    metadata = {
        "track_id": tid,
        "version": version,
        "source": {
            "name": master.path.name,
            "sha256": source_sha,
            "container": master.container,
            "codec": master.codec,
            "sample_rate": master.sample_rate,
            "channels": master.channels,
        },
        "duration": round(master.duration, 6),
        "tags": asdict(master.tags),
        "loudness": asdict(loudness) if loudness else None,
        "cover": graph.cover_name(master),
        "rungs": [asdict(r) for r in rungs],
        "warnings": list(master.warnings),
        "files": _hash_files(staging),
    }
    (staging / layout.METADATA).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    return metadata


def _read_playlist(folder: Path) -> hls.MediaPlaylist:
    try:
        playlist = hls.parse_media_playlist((folder / layout.MEDIA_PLAYLIST).read_text())
    except (OSError, ValueError) as e:
        raise EncodeError(f"ffmpeg wrote no usable playlist for rung {folder.name} ({e})") from e
    missing = [s.uri for s in playlist.segments if not (folder / s.uri).is_file()]
    if missing or not (folder / playlist.init_uri).is_file():
        raise EncodeError(f"rung {folder.name} is missing files: {missing or playlist.init_uri}")
    return playlist


def _hash_files(root: Path) -> dict[str, dict[str, Any]]:
    return {
        path.relative_to(root).as_posix(): {
            "size": path.stat().st_size,
            "sha256": sha256_file(path),
        }
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def remove_stale_staging(out_root: Path) -> None:
    """Remove work directories left by a killed ingest (their process no longer exists)."""
    for entry in (out_root / STAGING).glob("*-*-*-*"):
        pid = int(entry.name.split("-")[2]) if entry.name.split("-")[2].isdigit() else 0
        if pid and not alive(pid):
            shutil.rmtree(entry, ignore_errors=True)


def _write_master(out_root: Path, tid: str, metadata: dict[str, Any]) -> None:
    path = out_root / layout.master_path(tid)
    text = hls.write_multivariant(hls.version_master(metadata)).encode()
    if not path.is_file() or path.read_bytes() != text:
        write_atomic(path, text)
    elif stat.S_IMODE(path.stat().st_mode) != PUBLIC_FILE:
        path.chmod(PUBLIC_FILE)  # written private by an earlier release


def _result(master: Master, metadata: dict[str, Any], seconds: float, reused: bool) -> EncodedTrack:
    loud = metadata.get("loudness")
    return EncodedTrack(
        source=master.path,
        track_id=metadata["track_id"],
        version=metadata["version"],
        duration=master.duration,
        tags=master.tags,
        loudness=Loudness(**loud) if loud else None,
        rungs=tuple(RungResult(**r) for r in metadata["rungs"]),
        encode_seconds=seconds,
        reused=reused,
        warnings=master.warnings,
    )
