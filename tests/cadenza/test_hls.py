"""The one HLS model: strict parsing, canonical writing, and m3u8 reading what Cadenza writes."""

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import m3u8
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadenza import hls
from cadenza.hls import (
    ContentSteering,
    MediaPlaylist,
    MultivariantPlaylist,
    Segment,
    Variant,
    parse_media_playlist,
    parse_multivariant,
    write_media_playlist,
    write_multivariant,
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
FFMPEG_MODEL = MediaPlaylist(
    "init.mp4",
    (
        Segment("seg_00000.m4s", 6.016),
        Segment("seg_00001.m4s", 5.994667),
        Segment("seg_00002.m4s", 0.989333),
    ),
    target_duration=6,
    version=7,
    media_sequence=0,
    playlist_type="VOD",
    endlist=True,
)
MASTER = (
    "#EXTM3U\n"
    "#EXT-X-VERSION:7\n"
    "#EXT-X-INDEPENDENT-SEGMENTS\n"
    '#EXT-X-SESSION-DATA:DATA-ID="com.cadenza.title",VALUE="Sinnerman"\n'
    '#EXT-X-CONTENT-STEERING:SERVER-URI="/v1/steer/x",PATHWAY-ID="b"\n'
    '#EXT-X-STREAM-INF:BANDWIDTH=280000,AVERAGE-BANDWIDTH=252572,CODECS="mp4a.40.2"\n'
    "aac_256/index.m3u8\n"
    '#EXT-X-STREAM-INF:BANDWIDTH=1411201,CODECS="fLaC",PATHWAY-ID="b"\n'
    "http://b.test/flac/index.m3u8\n"
)
MASTER_MODEL = MultivariantPlaylist(
    (
        Variant("aac_256/index.m3u8", 280_000, 252_572, "mp4a.40.2"),
        Variant("http://b.test/flac/index.m3u8", 1_411_201, None, "fLaC", "b"),
    ),
    version=7,
    independent_segments=True,
    session_data={"com.cadenza.title": "Sinnerman"},
    steering=ContentSteering("/v1/steer/x", "b"),
)


# -- media playlists -----------------------------------------------------------------------------


def test_ffmpegs_playlist_reads_and_writes_back_byte_for_byte() -> None:
    assert parse_media_playlist(FFMPEG_PLAYLIST) == FFMPEG_MODEL
    assert write_media_playlist(FFMPEG_MODEL) == FFMPEG_PLAYLIST


def test_crlf_comments_blank_lines_and_titles() -> None:
    text = "#EXTM3U\r\n# made by hand\r\n\r\n#EXT-X-TARGETDURATION:3\r\n"
    text += '#EXT-X-MAP:URI="i.mp4"\r\n#EXTINF:2.5,first part\r\na.m4s\r\n#EXTINF:3,\r\nb.m4s\r\n'
    playlist = parse_media_playlist(text)
    assert playlist.segments == (Segment("a.m4s", 2.5, "first part"), Segment("b.m4s", 3.0))
    assert (playlist.init_uri, playlist.target_duration, playlist.endlist) == ("i.mp4", 3, False)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("#EXTINF:6.0,\na.m4s\nb.m4s\n", r"line 6 \('b\.m4s'\): segment 'b\.m4s' has no EXTINF"),
        ("#EXT-X-ENDLIST\n", "lists no segments"),
        ("#EXTINF:6.0,\n", "line 4 has no URI"),
        ("#EXTINF:6.0,\n#EXT-X-ENDLIST\na.m4s\n", "line 5 .*line 4 has no URI before this tag"),
        ("#EXTINF:6.0\na.m4s\n", "line 4 .*a duration in seconds, a comma"),
        ("#EXTINF:-1,\na.m4s\n", "duration in seconds"),
        ("#EXT-X-KEY:METHOD=NONE\n", "line 4 .*EXT-X-KEY is not supported"),
        ("#EXT-X-BYTERANGE:100@0\n", "line 4 .*EXT-X-BYTERANGE is not supported"),
        ("#EXTINF:6.0,\na.m4s\n#EXT-X-VERSION:7\n", "must come before the first segment"),
        ("#EXT-X-ENDLIST\n#EXT-X-ENDLIST\n", "a second EXT-X-ENDLIST"),
        ("#EXT-X-ENDLIST:YES\n", "takes no value"),
        ("#EXT-X-PLAYLIST-TYPE:LIVE\n", "VOD or EVENT"),
        ("#EXT-X-MEDIA-SEQUENCE:-1\n", "decimal-integer"),
        ("#EXTINF:6.0,\na b.m4s\n", "not a URI"),
    ],
)
def test_what_is_not_a_media_playlist_of_cadenza_is_refused_naming_the_line(
    body: str, message: str
) -> None:
    text = '#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MAP:URI="init.mp4"\n' + body
    with pytest.raises(ValueError, match=message):
        parse_media_playlist(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "does not start with #EXTM3U"),
        (" #EXTM3U\n", "does not start with #EXTM3U"),
        ("#EXTM3U\n#EXTINF:6.0,\na.m4s\n", "no EXT-X-TARGETDURATION"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\na.m4s\n", "no EXT-X-MAP"),
        ("#EXTM3U\n#EXT-X-MAP:URI=init.mp4\n", "URI must be a quoted-string"),
        ('#EXTM3U\n#EXT-X-MAP:URI="i.mp4",BYTERANGE="1@0"\n', "BYTERANGE is not supported"),
    ],
)
def test_incomplete_media_playlists_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_media_playlist(text)


def test_the_media_writer_refuses_what_rfc_8216_forbids() -> None:
    too_long = MediaPlaylist("init.mp4", (Segment("a.m4s", 6.5),), target_duration=6)
    with pytest.raises(ValueError, match="longer than the target 6 s"):
        write_media_playlist(too_long)
    with pytest.raises(ValueError, match="not a URI"):
        write_media_playlist(MediaPlaylist("init.mp4", (Segment("a\nb", 1.0),), 1))
    with pytest.raises(ValueError, match="title"):
        write_media_playlist(MediaPlaylist("init.mp4", (Segment("a", 1.0, "x\ry"),), 1))
    with pytest.raises(ValueError, match="at least one segment"):
        write_media_playlist(MediaPlaylist("init.mp4", (), 1))


@pytest.mark.parametrize(
    ("duration", "written"),
    [(6.0, "6.000000"), (6.016, "6.016000"), (5.9946666, "5.994667"), (0.0000004, "0.000000")],
)
def test_extinf_has_six_decimals(duration: float, written: str) -> None:
    assert hls.extinf(duration) == written


@pytest.mark.parametrize(
    ("durations", "expected"),
    [
        ([], 1),
        ([0.5], 1),
        ([1.49], 1),
        ([1.5], 2),
        ([6.016, 5.994667], 6),
        ([6.4999994], 6),  # written 6.499999: rounds down
        ([6.4999996], 7),  # written 6.500000: rounds up, as every reader of the playlist sees it
        ([2.0, 10.49, 3.0], 10),
    ],
)
def test_target_duration_rounding(durations: list[float], expected: int) -> None:
    assert hls.target_duration(iter(durations)) == expected


@given(st.lists(st.floats(min_value=0.001, max_value=30.0, allow_nan=False), max_size=40))
def test_target_duration_is_the_smallest_bound_of_every_rounded_extinf(
    durations: list[float],
) -> None:
    rounded = [
        int(Decimal(hls.extinf(d)).quantize(Decimal(1), rounding=ROUND_HALF_UP)) for d in durations
    ]
    assert hls.target_duration(durations) == max([1, *rounded])


# -- multivariant playlists ----------------------------------------------------------------------


def test_a_master_reads_and_writes_back_byte_for_byte() -> None:
    assert parse_multivariant(MASTER) == MASTER_MODEL
    assert write_multivariant(MASTER_MODEL) == MASTER
    assert MASTER_MODEL.pathways == (".", "b")
    assert MASTER_MODEL.steering_uri == "/v1/steer/x" and MASTER_MODEL.default_pathway == "b"
    assert [v.kbps for v in MASTER_MODEL.ladder(".")] == [252.572]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "lists no variants"),
        ("#EXT-X-STREAM-INF:BANDWIDTH=1\n", r"the last variant has no URI \(line 2\)"),
        ("#EXT-X-STREAM-INF:BANDWIDTH=1\n#EXT-X-VERSION:7\na\n", "line 3 .*has no URI before"),
        ('#EXT-X-STREAM-INF:CODECS="fLaC"\na\n', "line 3 .*without BANDWIDTH"),
        ("#EXT-X-STREAM-INF:BANDWIDTH=lots\na\n", "line 3 .*BANDWIDTH must be a decimal-integer"),
        ("#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=fLaC\na\n", "CODECS must be a quoted-string"),
        ('#EXT-X-STREAM-INF:BANDWIDTH=1,PATHWAY-ID="a b"\na\n', "pathway id 'a b'"),
        ("#EXT-X-STREAM-INF:BANDWIDTH=1,BANDWIDTH=2\na\n", "BANDWIDTH appears twice"),
        ("#EXT-X-STREAM-INF:BANDWIDTH=1,\na\n", "malformed attribute list"),
        ('#EXT-X-STREAM-INF:BANDWIDTH=1, CODECS="x"\na\n', "malformed attribute list"),
        ('#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS="x\na\n', "malformed attribute list"),
        ("#EXT-X-STREAM-INF:bandwidth=1\na\n", "malformed attribute list"),
        ("#EXT-X-STREAM-INF:BANDWIDTH=\na\n", "malformed attribute list"),
        ("#EXT-X-SESSION-DATA:oops\n", "line 2 .*malformed attribute list"),
        ('#EXT-X-SESSION-DATA:DATA-ID="a"\n', "needs DATA-ID and VALUE"),
        ('#EXT-X-SESSION-DATA:DATA-ID="a",VALUE="1"\n' * 2, "a second EXT-X-SESSION-DATA"),
        ("#EXT-X-VERSION:x\n", "not a protocol version"),
        ("#EXT-X-INDEPENDENT-SEGMENTS\n" * 2, "line 3 .*a second EXT-X-INDEPENDENT"),
        ('#EXT-X-CONTENT-STEERING:PATHWAY-ID="a"\n', "has no SERVER-URI"),
        ("#EXTINF:6.0,\nseg.m4s\n", "line 3 .*a URI that no EXT-X-STREAM-INF names"),
        ("stray.m3u8\n", "line 2 .*a URI that no EXT-X-STREAM-INF names"),
    ],
)
def test_what_is_not_a_master_of_cadenza_is_refused_naming_the_line(body: str, message: str):
    with pytest.raises(ValueError, match=message):
        parse_multivariant("#EXTM3U\n" + body)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"session_data": {"com.cadenza.title": 'The "Best" Of'}}, "session data may not"),
        ({"session_data": {'com."x"': "v"}}, "session data may not contain double quotes"),
        ({"variants": (Variant("a", 1, codecs='mp4a"'),)}, "codecs may not"),
        ({"variants": (Variant("a", 1, pathway_id="a b"),)}, "pathway id 'a b'"),
        ({"variants": (Variant("a", -1),)}, "decimal-integer"),
        ({"variants": (Variant("#a", 1),)}, "not a URI"),
        ({"variants": ()}, "at least one variant"),
        ({"steering": ContentSteering("/x y")}, "not a URI"),
        ({"version": 0}, "not a protocol version"),
    ],
)
def test_the_master_writer_refuses_what_it_cannot_write(
    change: dict[str, Any], message: str
) -> None:
    fields = {**MASTER_MODEL.__dict__, **change}
    with pytest.raises(ValueError, match=message):
        write_multivariant(MultivariantPlaylist(**fields))


def test_attributes_keep_commas_inside_quotes() -> None:
    assert hls.attributes('A=1,B="x,y",C=z') == {"A": "1", "B": '"x,y"', "C": "z"}


# -- bounds --------------------------------------------------------------------------------------


def test_parsing_is_bounded_in_lines_line_length_and_size() -> None:
    too_many = "#EXTM3U\n" + "#\n" * hls.MAX_LINES
    with pytest.raises(ValueError, match=f"more than {hls.MAX_LINES} lines"):
        parse_media_playlist(too_many)
    too_long = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n# " + "x" * hls.MAX_LINE_CHARS + "\n"
    with pytest.raises(ValueError, match=f"line 3 is longer than {hls.MAX_LINE_CHARS}"):
        parse_media_playlist(too_long)
    with pytest.raises(ValueError, match="longer than"):
        parse_multivariant("#EXTM3U\n" + " " * hls.MAX_CHARS)


_LINES = st.one_of(
    st.sampled_from(
        [
            "#EXTINF:6.0,",
            "#EXT-X-TARGETDURATION:6",
            '#EXT-X-MAP:URI="i.mp4"',
            "#EXT-X-STREAM-INF:BANDWIDTH=1",
            '#EXT-X-SESSION-DATA:DATA-ID="a",VALUE="b"',
            '#EXT-X-CONTENT-STEERING:SERVER-URI="/s"',
            "#EXT-X-ENDLIST",
            "a.m4s",
        ]
    ),
    st.text(max_size=30),
)


@given(st.lists(_LINES, max_size=12))
def test_any_text_is_read_or_refused_with_a_value_error(lines: list[str]) -> None:
    text = "\n".join(["#EXTM3U", *lines]) + "\n"
    try:
        master = parse_multivariant(text)
    except ValueError:
        pass
    else:
        assert parse_multivariant(write_multivariant(master)) == master
    try:
        media = parse_media_playlist(text)
    except ValueError:
        return
    if media.target_duration >= hls.target_duration(s.duration for s in media.segments):
        assert parse_media_playlist(write_media_playlist(media)) == media


# -- round trips ---------------------------------------------------------------------------------

_DURATIONS = st.integers(0, 60_000_000).map(lambda us: us / 1e6)  # as written: six decimals
_URI = st.from_regex(
    r"(https?://[a-z0-9.]{1,12}(:[0-9]{2,5})?/)?[a-z0-9_/.?=&%-]{1,30}", fullmatch=True
)
_TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters='"\r\n'))
_PLAIN = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters='"'),
    min_size=1,
    max_size=30,
)
_NO_TITLE = st.just("")
_PATHWAY = st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)


@st.composite
def _media(draw: st.DrawFn, titles: st.SearchStrategy[str] = _NO_TITLE) -> MediaPlaylist:
    uris = draw(st.lists(_URI.filter(lambda u: not u.startswith("#")), min_size=1, max_size=30))
    segments = tuple(Segment(u, draw(_DURATIONS), draw(titles)) for u in uris)
    return MediaPlaylist(
        draw(_URI),
        segments,
        hls.target_duration(s.duration for s in segments) + draw(st.integers(0, 3)),
        draw(st.none() | st.integers(1, 99)),
        draw(st.none() | st.integers(0, 2**64 - 1)),
        draw(st.sampled_from([None, "VOD", "EVENT"])),
        draw(st.booleans()),
        draw(st.booleans()),
    )


@st.composite
def _master(
    draw: st.DrawFn, text: st.SearchStrategy[str] = _TEXT, most_bps: int = 2**64 - 1
) -> MultivariantPlaylist:
    variant = st.builds(
        Variant,
        uri=_URI,
        bandwidth=st.integers(0, most_bps),
        average_bandwidth=st.none() | st.integers(0, 10**9),
        codecs=st.none() | st.sampled_from(["mp4a.40.2", "opus", "fLaC", "mp4a.40.2,ec-3"]),
        pathway_id=st.none() | _PATHWAY,
    )
    data_ids = st.from_regex(r"[a-z]{1,5}(\.[a-z0-9-]{1,10}){0,3}", fullmatch=True)
    return MultivariantPlaylist(
        tuple(draw(st.lists(variant, min_size=1, max_size=8))),
        draw(st.none() | st.integers(1, 99)),
        draw(st.booleans()),
        draw(st.dictionaries(data_ids, text, max_size=4)),
        draw(st.none() | st.builds(ContentSteering, _URI, st.none() | _PATHWAY)),
    )


@given(_media(titles=_TEXT.filter(lambda t: t.isprintable())))
def test_media_playlists_round_trip(playlist: MediaPlaylist) -> None:
    text = write_media_playlist(playlist)
    assert parse_media_playlist(text) == playlist
    assert write_media_playlist(parse_media_playlist(text)) == text


@given(_master())
def test_multivariant_playlists_round_trip(playlist: MultivariantPlaylist) -> None:
    text = write_multivariant(playlist)
    assert parse_multivariant(text) == playlist
    assert write_multivariant(parse_multivariant(text)) == text


# -- what m3u8, a standard reader, makes of what Cadenza writes ----------------------------------


@settings(max_examples=50)
@given(_media())
def test_m3u8_reads_media_playlists_as_cadenza_does(playlist: MediaPlaylist) -> None:
    theirs = m3u8.loads(write_media_playlist(playlist))
    assert not theirs.is_variant
    assert theirs.version == playlist.version
    assert theirs.target_duration == playlist.target_duration
    assert theirs.media_sequence == (playlist.media_sequence or 0)
    kind = playlist.playlist_type
    assert theirs.playlist_type == (kind.lower() if kind else None)
    assert theirs.is_endlist == playlist.endlist
    assert theirs.is_independent_segments == playlist.independent_segments
    assert [m.uri for m in theirs.segment_map] == [playlist.init_uri]
    assert [(s.uri, s.duration) for s in theirs.segments] == [
        (s.uri, s.duration) for s in playlist.segments
    ]
    assert all(math.floor(s.duration + 0.5) <= theirs.target_duration for s in theirs.segments)


@settings(max_examples=100)
@given(_master(text=_PLAIN, most_bps=2**40))  # m3u8 reads numbers as floats
def test_m3u8_reads_multivariant_playlists_as_cadenza_does(playlist: MultivariantPlaylist) -> None:
    theirs = m3u8.loads(write_multivariant(playlist))
    assert theirs.is_variant
    assert theirs.version == playlist.version
    assert theirs.is_independent_segments == playlist.independent_segments
    assert {d.data_id: d.value for d in theirs.session_data} == playlist.session_data
    if playlist.steering is None:
        assert theirs.content_steering is None
    else:
        steering = (theirs.content_steering.uri, theirs.content_steering.pathway_id)
        assert steering == (playlist.steering.server_uri, playlist.steering.pathway_id)
    assert [
        Variant(
            p.uri,
            p.stream_info.bandwidth,
            p.stream_info.average_bandwidth,
            p.stream_info.codecs,
            p.stream_info.pathway_id,
        )
        for p in theirs.playlists
    ] == list(playlist.variants)


# -- a version's master, re-homed on pathways ----------------------------------------------------

METADATA = {
    "version": "v0123456789ab",
    "rungs": [
        {"name": "aac_96", "codecs": "mp4a.40.2", "peak_bps": 120_000, "average_bps": 98_000},
        {"name": "flac", "codecs": "fLaC", "peak_bps": 1_411_201, "average_bps": 1_000_000},
    ],
    "loudness": {"integrated_lufs": -14.04, "true_peak_dbtp": None, "range_lu": 6.25},
}


def test_a_versions_master_exact_text() -> None:
    assert write_multivariant(hls.version_master(METADATA)) == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:7\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-SESSION-DATA:DATA-ID="org.cadenza.loudness.integrated-lufs",VALUE="-14.0"\n'
        '#EXT-X-SESSION-DATA:DATA-ID="org.cadenza.loudness.true-peak-dbtp",VALUE="-inf"\n'
        '#EXT-X-SESSION-DATA:DATA-ID="org.cadenza.loudness.range-lu",VALUE="6.2"\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=120000,AVERAGE-BANDWIDTH=98000,CODECS="mp4a.40.2"\n'
        "v0123456789ab/aac_96/index.m3u8\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=1411201,AVERAGE-BANDWIDTH=1000000,CODECS="fLaC"\n'
        "v0123456789ab/flac/index.m3u8\n"
    )
    assert hls.version_master({**METADATA, "loudness": None}).session_data == {}


@settings(max_examples=50)
@given(st.lists(_PATHWAY, min_size=1, max_size=5, unique=True), st.data())
def test_every_variant_appears_once_per_pathway(pathway_ids: list[str], data: st.DataObject):
    master = hls.version_master(METADATA)
    pathways = [(p, f"http://{i}.edge.test/p/t/tracks/x/") for i, p in enumerate(pathway_ids)]
    default = data.draw(st.sampled_from(pathway_ids))
    homed = hls.on_pathways(master, pathways, "/v1/steer/s", default)
    assert parse_multivariant(write_multivariant(homed)) == homed
    assert homed.pathways == tuple(pathway_ids)
    assert homed.steering == ContentSteering("/v1/steer/s", default)
    assert homed.session_data == master.session_data
    for pathway, base in pathways:
        assert [v.uri for v in homed.ladder(pathway)] == [base + v.uri for v in master.variants]


def test_unrecognised_tags_and_attributes_are_ignored_as_rfc_8216_asks_of_clients():
    master = parse_multivariant(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-FUTURE-TAG:X=1\n"
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="x"\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=1000,SCORE=2.5,CODECS="mp4a.40.2",RESOLUTION=1x1\na.m3u8\n'
    )
    assert [(v.uri, v.bandwidth, v.codecs) for v in master.variants] == [
        ("a.m3u8", 1000, "mp4a.40.2")
    ]
    media = parse_media_playlist(
        '#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MAP:URI="init.mp4",BYTERANGE-LIKE=1\n'
        "#EXTINF:6.0,\n#EXT-X-PROGRAM-DATE-TIME:2026-12-02T10:00:00Z\nseg_00001.m4s\n"
        "#EXT-X-VENDOR-THING\n#EXT-X-ENDLIST\n"
    )
    assert [s.uri for s in media.segments] == ["seg_00001.m4s"] and media.endlist
    with pytest.raises(ValueError, match="malformed attribute list"):  # ignored, not unread
        parse_multivariant("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,BAD\na\n")


def test_a_rewriter_parses_strictly_so_that_nothing_is_dropped_unseen():
    with pytest.raises(ValueError, match=r"line 2 .*EXT-X-MEDIA is not a tag"):
        parse_multivariant('#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="x"\n', strict=True)
    with pytest.raises(ValueError, match="SCORE is not one Cadenza uses"):
        parse_multivariant("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,SCORE=2\na\n", strict=True)
