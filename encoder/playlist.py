"""HLS playlists (RFC 8216) as Cadenza publishes them.

Pure. ffmpeg's HLS muxer cuts the segments; Cadenza reads back what it wrote, then writes every
playlist itself: media playlists with the tags a VOD rendition needs, and a master playlist whose
CODECS, BANDWIDTH and AVERAGE-BANDWIDTH are measured from the segments.
"""

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cadenza import layout
from cadenza.layout import INIT_SEGMENT

VERSION = 7
LOUDNESS_DATA_ID = "org.cadenza.loudness"  # EXT-X-SESSION-DATA of the EBU R128 figures
_EXTINF = re.compile(r"#EXTINF:([0-9.]+)")
_MAP = re.compile(r'#EXT-X-MAP:URI="([^"]+)"')


@dataclass(frozen=True)
class SegmentRef:
    uri: str
    duration: float


@dataclass(frozen=True)
class MediaPlaylist:
    init_uri: str
    segments: tuple[SegmentRef, ...]


@dataclass(frozen=True)
class Variant:
    uri: str
    codecs: str
    bandwidth: int
    average_bandwidth: int


def parse_media_playlist(text: str) -> MediaPlaylist:
    """The init segment and segments of a media playlist such as ffmpeg's HLS muxer writes."""
    init_uri = INIT_SEGMENT
    segments = []
    duration: float | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if match := _MAP.match(line):
            init_uri = match.group(1)
        elif match := _EXTINF.match(line):
            duration = float(match.group(1))
        elif line and not line.startswith("#"):
            if duration is None:
                raise ValueError(f"segment {line!r} has no EXTINF")
            segments.append(SegmentRef(line, duration))
            duration = None
    if not segments:
        raise ValueError("media playlist lists no segments")
    return MediaPlaylist(init_uri, tuple(segments))


def extinf(duration: float) -> str:
    """EXTINF as written: six decimals, so every reader sees the same duration."""
    return f"{duration:.6f}"


def target_duration(durations: Iterable[float]) -> int:
    """RFC 8216 4.3.3.1: every EXTINF rounded to the nearest integer is <= the target."""
    return max([1, *(math.floor(float(extinf(d)) + 0.5) for d in durations)])


def write_media_playlist(playlist: MediaPlaylist) -> str:
    durations = [s.duration for s in playlist.segments]
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{VERSION}",
        f"#EXT-X-TARGETDURATION:{target_duration(durations)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{playlist.init_uri}"',
    ]
    for segment in playlist.segments:
        lines += [f"#EXTINF:{extinf(segment.duration)},", segment.uri]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def measure_bandwidth(durations: Sequence[float], sizes: Sequence[int]) -> tuple[int, int]:
    """(peak, average) bits per second: the peak is the largest segment's rate over its EXTINF."""
    if len(durations) != len(sizes) or not durations:
        raise ValueError("need one size per segment duration")
    written = [float(extinf(d)) for d in durations]
    if min(written) <= 0:
        raise ValueError("segment durations must be positive")
    peak = max(size * 8 / d for size, d in zip(sizes, written, strict=True))
    average = sum(sizes) * 8 / sum(written)
    return math.ceil(peak), math.ceil(average)


def write_master_playlist(variants: Sequence[Variant], session_data: dict[str, str]) -> str:
    """A multivariant playlist; ``session_data`` maps DATA-ID to VALUE (no double quotes)."""
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for data_id, value in session_data.items():
        if '"' in value or '"' in data_id:
            raise ValueError("session data may not contain double quotes")
        lines.append(f'#EXT-X-SESSION-DATA:DATA-ID="{data_id}",VALUE="{value}"')
    for v in variants:
        lines += [
            f"#EXT-X-STREAM-INF:BANDWIDTH={v.bandwidth},AVERAGE-BANDWIDTH={v.average_bandwidth},"
            f'CODECS="{v.codecs}"',
            v.uri,
        ]
    return "\n".join(lines) + "\n"


def master_playlist(metadata: dict[str, Any]) -> str:
    """A version's master playlist from its metadata (what ingest writes, what the origin
    rewrites on publish)."""
    version = metadata["version"]
    variants = [
        Variant(
            uri=f"{version}/{r['name']}/{layout.MEDIA_PLAYLIST}",
            codecs=r["codecs"],
            bandwidth=r["peak_bps"],
            average_bandwidth=r["average_bps"],
        )
        for r in metadata["rungs"]
    ]
    return write_master_playlist(variants, _session_data(metadata.get("loudness")))


def _session_data(loudness: dict[str, Any] | None) -> dict[str, str]:
    if loudness is None:
        return {}

    def text(value: float | None) -> str:
        return "-inf" if value is None else f"{value:.1f}"

    return {
        f"{LOUDNESS_DATA_ID}.integrated-lufs": text(loudness["integrated_lufs"]),
        f"{LOUDNESS_DATA_ID}.true-peak-dbtp": text(loudness["true_peak_dbtp"]),
        f"{LOUDNESS_DATA_ID}.range-lu": f"{loudness['range_lu']:.1f}",
    }
