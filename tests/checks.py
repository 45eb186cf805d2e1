"""What every published track must satisfy, checked with standard tools (m3u8, ffmpeg)."""

import json
import subprocess
from pathlib import Path
from typing import Any

import m3u8

from cadenza import layout


def check_published(out: Path, track_id: str) -> dict[str, Any]:
    """Assert the published-track contract; returns the version's metadata."""
    master_file = out / layout.master_path(track_id)
    master = m3u8.load(str(master_file))
    assert master.is_variant
    assert master.playlists, "the master playlist lists no variants"
    timelines: dict[str, list[float]] = {}
    versions = set()
    for variant in master.playlists:
        info = variant.stream_info
        assert info.codecs, f"{variant.uri} has no CODECS"
        assert info.average_bandwidth, f"{variant.uri} has no AVERAGE-BANDWIDTH"
        media_file = master_file.parent / variant.uri
        media = m3u8.load(str(media_file))
        assert media.playlist_type == "vod"
        assert media.is_independent_segments
        assert media.is_endlist
        assert media.segment_map and media.segment_map[0].uri == layout.INIT_SEGMENT
        rates = [
            (media_file.parent / s.uri).stat().st_size * 8 / s.duration for s in media.segments
        ]
        assert info.bandwidth >= max(rates), f"{variant.uri}: BANDWIDTH below the peak segment"
        assert info.average_bandwidth <= info.bandwidth
        assert media.target_duration >= max(round(s.duration) for s in media.segments)
        if info.codecs == "mp4a.40.2":
            timelines.setdefault("aac", [s.duration for s in media.segments])
            assert [s.duration for s in media.segments] == timelines["aac"]
        versions.add(Path(variant.uri).parts[0])
        init = media_file.parent / layout.INIT_SEGMENT
        assert _stream_types(init) == ["audio"], f"{init} must hold exactly one audio stream"
    assert len(versions) == 1
    assert_decodes(str(master_file))
    version_dir = master_file.parent / versions.pop()
    metadata: dict[str, Any] = json.loads((version_dir / layout.METADATA).read_text())
    return metadata


def assert_decodes(source: str, streams: str = "0") -> None:
    """ffmpeg's own HLS reader decodes ``source`` (a file or URL) without a single error."""
    read = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", source, "-map", streams,
         "-f", "null", "-"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert read.returncode == 0, read.stderr


def streams(path: Path) -> list[dict[str, Any]]:
    """Every stream ffprobe finds in ``path``."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    found: list[dict[str, Any]] = json.loads(result.stdout)["streams"]
    return found


def _stream_types(path: Path) -> list[str]:
    return [s["codec_type"] for s in streams(path)]


def probe_stream(path: Path) -> dict[str, Any]:
    return streams(path)[0]
