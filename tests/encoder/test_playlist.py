"""Playlists as RFC 8216 and standard readers (the m3u8 package) see them."""

import math
from decimal import ROUND_HALF_UP, Decimal

import m3u8
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadenza.layout import INIT_SEGMENT
from encoder.playlist import (
    LOUDNESS_DATA_ID,
    MediaPlaylist,
    SegmentRef,
    Variant,
    extinf,
    master_playlist,
    measure_bandwidth,
    parse_media_playlist,
    target_duration,
    write_master_playlist,
    write_media_playlist,
)

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
FFMPEG_SEGMENTS = (
    SegmentRef("seg_00000.m4s", 6.016),
    SegmentRef("seg_00001.m4s", 5.994667),
    SegmentRef("seg_00002.m4s", 0.989333),
)


def test_parse_ffmpeg_playlist() -> None:
    assert parse_media_playlist(FFMPEG_PLAYLIST) == MediaPlaylist("init.mp4", FFMPEG_SEGMENTS)


def test_parse_keeps_the_map_uri() -> None:
    text = FFMPEG_PLAYLIST.replace('URI="init.mp4"', 'URI="header_0.mp4"')
    assert parse_media_playlist(text).init_uri == "header_0.mp4"


def test_parse_without_map_uses_the_layout_init_segment() -> None:
    text = "#EXTM3U\n#EXTINF:4.5,\nseg_00000.m4s\n"
    assert parse_media_playlist(text) == MediaPlaylist(
        INIT_SEGMENT, (SegmentRef("seg_00000.m4s", 4.5),)
    )


def test_parse_tolerates_crlf_and_padding() -> None:
    text = FFMPEG_PLAYLIST.replace("\n", "  \r\n").replace("seg_", "  seg_")
    assert parse_media_playlist(text) == MediaPlaylist("init.mp4", FFMPEG_SEGMENTS)


def test_parse_extinf_with_title() -> None:
    text = "#EXTM3U\n#EXTINF:2.000000,first part\na.m4s\n#EXTINF:3,\nb.m4s\n"
    assert parse_media_playlist(text).segments == (SegmentRef("a.m4s", 2.0), SegmentRef("b.m4s", 3))


def test_parse_segment_without_extinf_is_named() -> None:
    text = "#EXTM3U\n#EXTINF:6.0,\na.m4s\nb.m4s\n"
    with pytest.raises(ValueError, match=r"segment 'b\.m4s' has no EXTINF"):
        parse_media_playlist(text)


@pytest.mark.parametrize("text", ["", "#EXTM3U\n#EXT-X-ENDLIST\n", "#EXTM3U\n#EXTINF:6.0,\n"])
def test_parse_playlist_without_segments(text: str) -> None:
    with pytest.raises(ValueError, match="media playlist lists no segments"):
        parse_media_playlist(text)


def test_write_media_playlist_exact_text() -> None:
    playlist = MediaPlaylist(
        "init.mp4", (SegmentRef("seg_00000.m4s", 6.016), SegmentRef("seg_00001.m4s", 0.5))
    )
    assert write_media_playlist(playlist) == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:7\n"
        "#EXT-X-TARGETDURATION:6\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-MAP:URI="init.mp4"\n'
        "#EXTINF:6.016000,\n"
        "seg_00000.m4s\n"
        "#EXTINF:0.500000,\n"
        "seg_00001.m4s\n"
        "#EXT-X-ENDLIST\n"
    )


def test_ffmpeg_playlist_round_trips_through_the_writer() -> None:
    written = write_media_playlist(parse_media_playlist(FFMPEG_PLAYLIST))
    assert parse_media_playlist(written) == parse_media_playlist(FFMPEG_PLAYLIST)


@pytest.mark.parametrize(
    ("duration", "written"),
    [(6.0, "6.000000"), (6.016, "6.016000"), (5.9946666, "5.994667"), (0.0000004, "0.000000")],
)
def test_extinf_has_six_decimals(duration: float, written: str) -> None:
    assert extinf(duration) == written


@pytest.mark.parametrize(
    ("durations", "expected"),
    [
        ([], 1),
        ([0.2], 1),
        ([0.5], 1),
        ([1.49], 1),
        ([1.5], 2),
        ([6.0, 6.0, 1.0], 6),
        ([6.016, 5.994667], 6),
        ([6.4999994], 6),  # written 6.499999: rounds down
        ([6.4999996], 7),  # written 6.500000: rounds up, as every reader of the playlist sees it
        ([6.5], 7),
        ([2.0, 10.49, 3.0], 10),
    ],
)
def test_target_duration_rounding(durations: list[float], expected: int) -> None:
    assert target_duration(durations) == expected


def test_target_duration_accepts_a_generator() -> None:
    assert target_duration(d for d in (3.0, 7.6)) == 8


def _nearest_integer(written: str) -> int:
    return int(Decimal(written).quantize(Decimal(1), rounding=ROUND_HALF_UP))


_DURATIONS = st.floats(min_value=0.001, max_value=30.0, allow_nan=False)


@given(st.lists(_DURATIONS, max_size=40))
def test_target_duration_is_the_smallest_bound_of_every_rounded_extinf(
    durations: list[float],
) -> None:
    target = target_duration(durations)
    rounded = [_nearest_integer(extinf(d)) for d in durations]
    assert all(r <= target for r in rounded)
    assert target == max([1, *rounded])


# Round trips

_URIS = st.from_regex(r"[a-z0-9_]{1,12}\.m4s", fullmatch=True)


@st.composite
def _playlists(draw: st.DrawFn) -> MediaPlaylist:
    uris = draw(st.lists(_URIS, min_size=1, max_size=30, unique=True))
    init = draw(st.sampled_from([INIT_SEGMENT, "header.mp4", "init_1.mp4"]))
    return MediaPlaylist(init, tuple(SegmentRef(u, draw(_DURATIONS)) for u in uris))


def _as_written(playlist: MediaPlaylist) -> MediaPlaylist:
    segments = tuple(SegmentRef(s.uri, float(extinf(s.duration))) for s in playlist.segments)
    return MediaPlaylist(playlist.init_uri, segments)


@given(_playlists())
def test_write_then_parse_gives_the_playlist_as_written(playlist: MediaPlaylist) -> None:
    text = write_media_playlist(playlist)
    parsed = parse_media_playlist(text)
    assert parsed == _as_written(playlist)
    assert write_media_playlist(parsed) == text


@settings(max_examples=50)
@given(_playlists())
def test_m3u8_reads_the_media_playlist(playlist: MediaPlaylist) -> None:
    parsed = m3u8.loads(write_media_playlist(playlist))
    assert not parsed.is_variant
    assert parsed.version == 7
    assert parsed.media_sequence == 0
    assert parsed.playlist_type == "vod"
    assert parsed.is_endlist
    assert parsed.is_independent_segments
    assert [m.uri for m in parsed.segment_map] == [playlist.init_uri]
    assert [s.uri for s in parsed.segments] == [s.uri for s in playlist.segments]
    assert [s.duration for s in parsed.segments] == [
        float(extinf(s.duration)) for s in playlist.segments
    ]
    assert parsed.target_duration == target_duration(s.duration for s in playlist.segments)
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
        st.tuples(_DURATIONS, st.integers(min_value=0, max_value=50_000_000)),
        min_size=1,
        max_size=40,
    )
)
def test_measure_bandwidth_bounds(segments: list[tuple[float, int]]) -> None:
    durations = [d for d, _ in segments]
    sizes = [s for _, s in segments]
    peak, average = measure_bandwidth(durations, sizes)
    rates = [size * 8 / float(extinf(d)) for d, size in segments]
    assert all(peak >= rate for rate in rates)
    assert peak - 1 < max(rates)
    exact_average = sum(sizes) * 8 / sum(float(extinf(d)) for d in durations)
    assert exact_average <= average < exact_average + 1
    assert average <= peak


# Master playlist

VARIANTS = [
    Variant("aac_256/index.m3u8", "mp4a.40.2", 280_000, 252_572),
    Variant("flac/index.m3u8", "fLaC", 1_411_201, 1_000_000),
]


def test_write_master_playlist_exact_text() -> None:
    text = write_master_playlist(VARIANTS, {"com.cadenza.title": "Sinnerman"})
    assert text == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:7\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-SESSION-DATA:DATA-ID="com.cadenza.title",VALUE="Sinnerman"\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=280000,AVERAGE-BANDWIDTH=252572,CODECS="mp4a.40.2"\n'
        "aac_256/index.m3u8\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=1411201,AVERAGE-BANDWIDTH=1000000,CODECS="fLaC"\n'
        "flac/index.m3u8\n"
    )


def test_m3u8_reads_the_master_playlist() -> None:
    session = {"com.cadenza.title": "Ça va, très bien", "com.cadenza.isrc": "USRC17607839"}
    parsed = m3u8.loads(write_master_playlist(VARIANTS, session))
    assert parsed.is_variant
    assert parsed.version == 7
    assert parsed.is_independent_segments
    assert [(d.data_id, d.value) for d in parsed.session_data] == list(session.items())
    assert [
        (p.uri, p.stream_info.codecs, p.stream_info.bandwidth, p.stream_info.average_bandwidth)
        for p in parsed.playlists
    ] == [(v.uri, v.codecs, v.bandwidth, v.average_bandwidth) for v in VARIANTS]


@pytest.mark.parametrize(
    "session", [{"com.cadenza.title": 'The "Best" Of'}, {'com.cadenza."x"': "value"}]
)
def test_master_playlist_refuses_double_quotes(session: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="session data may not contain double quotes"):
        write_master_playlist(VARIANTS, session)


_SESSION_TEXT = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters='"'),
    min_size=1,
    max_size=30,
)


@settings(max_examples=100)
@given(
    st.dictionaries(st.from_regex(r"com\.[a-z]{1,10}", fullmatch=True), _SESSION_TEXT, max_size=4),
    st.lists(
        st.builds(
            Variant,
            uri=st.from_regex(r"[a-z0-9_]{1,12}/index\.m3u8", fullmatch=True),
            codecs=st.sampled_from(["mp4a.40.2", "opus", "fLaC"]),
            bandwidth=st.integers(1, 10**8),
            average_bandwidth=st.integers(1, 10**8),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_m3u8_reads_any_master_playlist(session: dict[str, str], variants: list[Variant]) -> None:
    parsed = m3u8.loads(write_master_playlist(variants, session))
    assert [(d.data_id, d.value) for d in parsed.session_data] == list(session.items())
    assert [
        Variant(
            p.uri, p.stream_info.codecs, p.stream_info.bandwidth, p.stream_info.average_bandwidth
        )
        for p in parsed.playlists
    ] == variants


def test_the_master_playlist_of_a_versions_metadata_names_every_rung_and_the_loudness() -> None:
    rung = {"name": "aac_96", "codecs": "mp4a.40.2", "peak_bps": 120_000, "average_bps": 98_000}
    loudness = {"integrated_lufs": -14.04, "true_peak_dbtp": None, "range_lu": 6.25}
    text = master_playlist({"version": "v0123456789ab", "rungs": [rung], "loudness": loudness})
    parsed = m3u8.loads(text)
    assert [p.uri for p in parsed.playlists] == ["v0123456789ab/aac_96/index.m3u8"]
    assert parsed.playlists[0].stream_info.bandwidth == 120_000
    assert {d.data_id: d.value for d in parsed.session_data} == {
        f"{LOUDNESS_DATA_ID}.integrated-lufs": "-14.0",
        f"{LOUDNESS_DATA_ID}.true-peak-dbtp": "-inf",
        f"{LOUDNESS_DATA_ID}.range-lu": "6.2",
    }
