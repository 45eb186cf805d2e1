"""The encoder's part of HLS: the rendition playlist it publishes, and the measured rates."""

import math

import m3u8
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadenza import hls
from encoder.playlist import measure_bandwidth, published

# What ffmpeg 5.1's HLS muxer writes with -hls_segment_type fmp4.
FFMPEG_PLAYLIST = """\
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:6
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="init.mp4"
#EXTINF:6.016000,
seg_00000.m4s
#EXTINF:5.994667,
seg_00001.m4s
#EXTINF:0.989333,
seg_00002.m4s
#EXT-X-ENDLIST
"""


def test_the_published_playlist_of_ffmpegs_segments_exact_text() -> None:
    assert hls.write_media_playlist(published(hls.parse_media_playlist(FFMPEG_PLAYLIST))) == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:7\n"
        "#EXT-X-TARGETDURATION:6\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-MAP:URI="init.mp4"\n'
        "#EXTINF:6.016000,\n"
        "seg_00000.m4s\n"
        "#EXTINF:5.994667,\n"
        "seg_00001.m4s\n"
        "#EXTINF:0.989333,\n"
        "seg_00002.m4s\n"
        "#EXT-X-ENDLIST\n"
    )


def test_the_target_duration_is_recomputed_from_the_segments() -> None:
    cut = hls.MediaPlaylist("init.mp4", (hls.Segment("a.m4s", 6.5),), target_duration=6)
    assert published(cut).target_duration == 7


_DURATIONS = st.integers(1, 30_000_000).map(lambda us: us / 1e6)


@settings(max_examples=50)
@given(
    st.lists(
        st.tuples(st.from_regex(r"[a-z0-9_]{1,12}\.m4s", fullmatch=True), _DURATIONS),
        min_size=1,
        max_size=30,
        unique_by=lambda s: s[0],
    )
)
def test_m3u8_reads_the_published_playlist(segments: list[tuple[str, float]]) -> None:
    cut = hls.MediaPlaylist("init.mp4", tuple(hls.Segment(u, d) for u, d in segments), 1)
    parsed = m3u8.loads(hls.write_media_playlist(published(cut)))
    assert not parsed.is_variant
    assert parsed.version == 7
    assert parsed.media_sequence == 0
    assert parsed.playlist_type == "vod"
    assert parsed.is_endlist
    assert parsed.is_independent_segments
    assert [m.uri for m in parsed.segment_map] == ["init.mp4"]
    assert [(s.uri, s.duration) for s in parsed.segments] == segments
    assert all(math.floor(s.duration + 0.5) <= parsed.target_duration for s in parsed.segments)


# Bandwidth


def test_measure_bandwidth_example() -> None:
    # 256, 240 and 280 kbit/s; 442000 bytes over 14 s is 252571.4 bit/s on average.
    assert measure_bandwidth([6.0, 6.0, 2.0], [192_000, 180_000, 70_000]) == (280_000, 252_572)


def test_measure_bandwidth_uses_the_extinf_as_written() -> None:
    # 1.0000004 s is written as 1.000000; a player divides by 1.0, so must the peak.
    assert measure_bandwidth([1.0000004], [1_000_000]) == (8_000_000, 8_000_000)
    assert measure_bandwidth([0.9999996], [1_000_000]) == (8_000_000, 8_000_000)


@pytest.mark.parametrize(
    ("durations", "sizes", "message"),
    [
        ([], [], "need one size per segment duration"),
        ([6.0, 6.0], [1000], "need one size per segment duration"),
        ([6.0], [1000, 1000], "need one size per segment duration"),
        ([6.0, 0.0], [1000, 1000], "segment durations must be positive"),
        ([6.0, 0.0000004], [1000, 1000], "segment durations must be positive"),
        ([-1.0], [1000], "segment durations must be positive"),
    ],
)
def test_measure_bandwidth_rejects(durations: list[float], sizes: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        measure_bandwidth(durations, sizes)


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.001, max_value=30.0, allow_nan=False),
            st.integers(min_value=0, max_value=50_000_000),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_measure_bandwidth_bounds(segments: list[tuple[float, int]]) -> None:
    durations = [d for d, _ in segments]
    sizes = [s for _, s in segments]
    peak, average = measure_bandwidth(durations, sizes)
    rates = [size * 8 / float(hls.extinf(d)) for d, size in segments]
    assert all(peak >= rate for rate in rates)
    assert peak - 1 < max(rates)
    exact_average = sum(sizes) * 8 / sum(float(hls.extinf(d)) for d in durations)
    assert exact_average <= average < exact_average + 1
    assert average <= peak
