"""What a master is: its container, audio stream, duration, tags and cover art.

``parse_probe`` is pure (ffprobe's JSON and the header's declaration in, a validated ``Master``
or a ``MasterError`` out); ``probe`` runs ffprobe and reads the header.
"""

import asyncio
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from encoder import headers
from encoder.errors import MasterError

# ffprobe's format names for the containers labels deliver, and the codecs accepted in each.
CONTAINERS = {
    "wav": "WAV",
    "flac": "FLAC",
    "aiff": "AIFF",
    "mp3": "MP3",
    "mov,mp4,m4a,3gp,3g2,mj2": "M4A",
}
M4A_CODECS = {"aac", "alac"}
SOURCE_RATES = {
    8000,
    11025,
    12000,
    16000,
    22050,
    24000,
    32000,
    44100,
    48000,
    88200,
    96000,
    176400,
    192000,
}
MAX_CHANNELS = 8
ISRC = re.compile(r"[A-Z]{2}[A-Z0-9]{3}[0-9]{7}")
UPC = re.compile(r"[0-9]{12,14}")
COVER_EXTENSIONS = {"mjpeg": "jpg", "png": "png"}
WHAT_TO_DO = "export it again as WAV, FLAC, AIFF, MP3 or M4A"
# An M4A whose index comes last (the usual layout) loses it first when a copy stops early.
MOOV_MISSING = (
    "truncated: the M4A file has no index (moov atom), as when a copy or an export stops "
    f"early; {headers.WHAT_TO_DO}"
)


@dataclass(frozen=True)
class Tags:
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    track_number: int | None = None
    isrc: str | None = None
    upc: str | None = None


@dataclass(frozen=True)
class Cover:
    video_index: int  # index among the input's video streams (ffmpeg's "v:N")
    extension: str


@dataclass(frozen=True)
class Master:
    path: Path
    container: str
    codec: str
    audio_index: int  # index among the input's audio streams (ffmpeg's "a:N")
    sample_rate: int
    channels: int
    duration: float  # the longer of ffprobe's figure and the header's declaration
    tags: Tags
    cover: Cover | None
    warnings: tuple[str, ...] = field(default=())


def parse_probe(
    data: dict[str, Any], path: Path, max_duration: float, declared: headers.Declared | None = None
) -> Master:
    """Validate what ffprobe reports, with what the header declares (``headers``) when known."""
    fmt = data.get("format") or {}
    container = container_of(data)
    if container is None:
        name = fmt.get("format_long_name") or fmt.get("format_name") or "unknown"
        raise MasterError(f"unsupported container {name!r}; {WHAT_TO_DO}")
    streams = data.get("streams") or []
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not audio:
        raise MasterError(f"no audio stream in this {container} file; {WHAT_TO_DO}")
    if declared is not None and declared.truncated:
        raise MasterError(declared.problem())
    stream = audio[0]
    codec = str(stream.get("codec_name", "unknown"))
    _check_codec(container, codec)
    rate = _int(stream.get("sample_rate"))
    if rate not in SOURCE_RATES:
        raise MasterError(
            f"unsupported sample rate {rate} Hz; resample to 44100 or 48000 Hz and export again"
        )
    channels = _int(stream.get("channels"))
    if not 1 <= channels <= MAX_CHANNELS:
        raise MasterError(
            f"unsupported channel count {channels}; deliver mono, stereo or up to 7.1"
        )
    duration = _duration(stream, fmt)
    if declared is not None:
        # ffprobe trims a WAV's duration to the bytes present; the decode is checked against
        # the longer figure, so a master cut short cannot pass as a shorter whole one.
        duration = max(duration, declared.seconds)
    if duration > max_duration:
        raise MasterError(
            f"duration {duration:.1f} s exceeds the limit of {max_duration:.1f} s; "
            "split the master or raise max_duration_seconds in the ladder"
        )
    tags, warnings = parse_tags({**_lower(fmt.get("tags")), **_lower(stream.get("tags"))})
    return Master(
        path=path,
        container=container,
        codec=codec,
        audio_index=0,
        sample_rate=rate,
        channels=channels,
        duration=duration,
        tags=tags,
        cover=_cover(streams),
        warnings=tuple(warnings),
    )


def container_of(data: dict[str, Any]) -> str | None:
    """The container ffprobe recognised, by Cadenza's name ("WAV", ...), or None."""
    return CONTAINERS.get((data.get("format") or {}).get("format_name", ""))


def _check_codec(container: str, codec: str) -> None:
    if container == "M4A" and codec not in M4A_CODECS:
        raise MasterError(f"M4A audio must be AAC or ALAC, not {codec}; {WHAT_TO_DO}")
    if container in {"WAV", "AIFF"} and not codec.startswith("pcm_"):
        raise MasterError(f"{container} audio must be PCM, not {codec}; {WHAT_TO_DO}")


def _duration(stream: dict[str, Any], fmt: dict[str, Any]) -> float:
    for raw in (stream.get("duration"), fmt.get("duration")):
        try:
            value = float(str(raw))
        except (TypeError, ValueError):
            continue
        if value > 0:
            return value
    raise MasterError(f"the audio has no duration (empty or damaged); {WHAT_TO_DO}")


def _cover(streams: list[dict[str, Any]]) -> Cover | None:
    video = [s for s in streams if s.get("codec_type") == "video"]
    for i, s in enumerate(video):
        ext = COVER_EXTENSIONS.get(str(s.get("codec_name")))
        if (s.get("disposition") or {}).get("attached_pic") == 1 and ext:
            return Cover(i, ext)
    return None


def parse_tags(tags: dict[str, str]) -> tuple[Tags, list[str]]:
    """Tags from a master's lower-cased tag dictionary, and warnings for unusable values."""
    warnings = []
    isrc = _first(tags, "isrc", "tsrc")
    if isrc is not None:
        normal = isrc.replace("-", "").replace(" ", "").upper()
        if ISRC.fullmatch(normal):
            isrc = normal
        else:
            warnings.append(f"ignored invalid ISRC {isrc!r}")
            isrc = None
    upc = _first(tags, "upc", "barcode", "ean")
    if upc is not None and not UPC.fullmatch(upc.strip()):
        warnings.append(f"ignored invalid UPC/barcode {upc!r}")
        upc = None
    number = _first(tags, "track", "tracknumber", "trck")
    return (
        Tags(
            title=_first(tags, "title"),
            artist=_first(tags, "artist", "album_artist"),
            album=_first(tags, "album"),
            track_number=_track_number(number),
            isrc=isrc,
            upc=upc.strip() if upc else None,
        ),
        warnings,
    )


def _first(tags: dict[str, str], *keys: str) -> str | None:
    for key in keys:
        value = tags.get(key, "").strip()
        if value:
            return value
    return None


def _track_number(raw: str | None) -> int | None:
    match = re.match(r"\s*(\d+)", raw or "")
    return int(match.group(1)) if match else None


def _lower(tags: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (tags or {}).items() if str(v).strip()}


def _int(raw: Any) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return 0


async def probe(path: Path, max_duration: float) -> Master:
    """Run ffprobe on ``path`` and validate what it reports."""
    if not path.is_file():
        raise MasterError("no such file")
    if path.stat().st_size == 0:
        raise MasterError(f"the file is empty (0 bytes); {WHAT_TO_DO}")
    proc = await asyncio.create_subprocess_exec(
        "ffprobe",
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        f"file:{path.resolve()}",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        if b"moov atom not found" in err:
            raise MasterError(MOOV_MISSING)
        reason = _last_line(err) or f"ffprobe exit code {proc.returncode}"
        raise MasterError(f"not a readable audio file ({reason}); {WHAT_TO_DO}")
    data = json.loads(out)
    container = container_of(data)
    declared = await asyncio.to_thread(read_declared, path, container) if container else None
    return parse_probe(data, path, max_duration, declared)


class FileBytes:
    """An open file as ``headers.Bytes``: each slice is one positioned read."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._size = os.fstat(fd).st_size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, key: slice, /) -> bytes:
        start, stop, _ = key.indices(self._size)
        return os.pread(self._fd, max(0, stop - start), start)


def read_declared(path: Path, container: str) -> headers.Declared | None:
    """What the header of the master at ``path`` declares (a few small reads)."""
    with path.open("rb") as f:
        return headers.declared_duration(FileBytes(f.fileno()), container)


def _last_line(raw: bytes) -> str:
    lines = [line.strip() for line in raw.decode(errors="replace").splitlines() if line.strip()]
    if not lines:
        return ""
    # ffprobe prefixes the file name; the reason is what follows the last ": ".
    return lines[-1].rsplit(": ", 1)[-1]
