"""The encoder's part of HLS: the rendition playlist it publishes and the rates it measures.

Pure. ffmpeg's HLS muxer cuts the segments; Cadenza reads back what it wrote, then writes every
playlist itself (with ``cadenza.hls``): media playlists with the tags a VOD rendition needs, and
a master playlist whose BANDWIDTH and AVERAGE-BANDWIDTH are measured from the segments.
"""

import math
from collections.abc import Sequence

from cadenza import hls


def published(cut: hls.MediaPlaylist) -> hls.MediaPlaylist:
    """The rendition playlist Cadenza publishes for the segments ffmpeg ``cut``: VOD, ended,
    independent segments, and the target duration every reader computes from the EXTINFs."""
    return hls.MediaPlaylist(
        cut.init_uri,
        cut.segments,
        hls.target_duration(s.duration for s in cut.segments),
        version=hls.VERSION,
        media_sequence=0,
        playlist_type="VOD",
        independent_segments=True,
        endlist=True,
    )


def measure_bandwidth(durations: Sequence[float], sizes: Sequence[int]) -> tuple[int, int]:
    """(peak, average) bits per second: the peak is the largest segment's rate over its EXTINF."""
    if len(durations) != len(sizes) or not durations:
        raise ValueError("need one size per segment duration")
    written = [float(hls.extinf(d)) for d in durations]
    if min(written) <= 0:
        raise ValueError("segment durations must be positive")
    peak = max(size * 8 / d for size, d in zip(sizes, written, strict=True))
    average = sum(sizes) * 8 / sum(written)
    return math.ceil(peak), math.ceil(average)
