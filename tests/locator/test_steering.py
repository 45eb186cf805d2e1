"""Content steering: the multivariant playlist per pathway, the manifest, the reload query."""

import json

import m3u8
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadenza import hls
from locator.steering import (
    Pathway,
    SteeringQuery,
    multivariant_playlist,
    parse_steering_query,
    steering_manifest,
)


def master_playlist(metadata):
    """The master of a version, as the encoder writes it and the origin serves it."""
    return hls.write_multivariant(hls.version_master(metadata))


TRACK = "0123456789abcdef"

VERSION = "v0123456789ab"
METADATA = {
    "version": VERSION,
    "rungs": [
        {"name": "aac_256", "codecs": "mp4a.40.2", "peak_bps": 280_000, "average_bps": 262_000},
        {"name": "aac_96", "codecs": "mp4a.40.2", "peak_bps": 110_000, "average_bps": 98_000},
        {"name": "flac", "codecs": "fLaC", "peak_bps": 1_411_201, "average_bps": 1_000_000},
    ],
    "loudness": {"integrated_lufs": -14.2, "true_peak_dbtp": -1.1, "range_lu": 6.3},
}
MASTER = master_playlist(METADATA)  # what the origin serves, as the encoder writes it
TOKEN = "djF8azF8MTc2NzIyNTYwMHxTRXwvdHJhY2tzLzAxMjM0NTY3ODlhYmNkZWYv.1Vs8XejhBh-PwjCARHbFG4KC"
PATHWAYS = [
    Pathway("par1", f"http://127.0.0.1:8101/p/{TOKEN}/tracks/{TRACK}/"),
    Pathway("nyc1", f"https://nyc1.example.net/p/{TOKEN}/tracks/{TRACK}/"),
]
STEERING = f"http://127.0.0.1:8090/v1/steering/{TRACK}?territory=SE"


def test_each_pathway_gets_every_variant_with_absolute_uris():
    text = multivariant_playlist(MASTER, PATHWAYS, STEERING)
    parsed = m3u8.loads(text)
    assert parsed.is_variant and parsed.version == 7 and parsed.is_independent_segments
    assert (parsed.content_steering.uri, parsed.content_steering.pathway_id) == (STEERING, "par1")
    expected = [
        (p.id, f"{p.base_url}{VERSION}/{rung['name']}/index.m3u8", rung["peak_bps"])
        for p in PATHWAYS
        for rung in METADATA["rungs"]
    ]
    assert [
        (v.stream_info.pathway_id, v.uri, v.stream_info.bandwidth) for v in parsed.playlists
    ] == expected
    assert {v.stream_info.codecs for v in parsed.playlists} == {"mp4a.40.2", "fLaC"}
    assert {v.stream_info.average_bandwidth for v in parsed.playlists} == {
        262_000,
        98_000,
        1_000_000,
    }
    loudness = {d.data_id: d.value for d in parsed.session_data}
    assert loudness == {d.data_id: d.value for d in m3u8.loads(MASTER).session_data}
    assert len(parsed.session_data) == 3


def test_the_exact_text():
    master = (
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-SESSION-DATA:DATA-ID="com.example.title",VALUE="Sinnerman"\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=280000,AVERAGE-BANDWIDTH=252572,CODECS="mp4a.40.2"\n'
        "v0123456789ab/aac_256/index.m3u8\n"
    )
    text = multivariant_playlist(
        master, [("a", "http://a.test/x/"), ("b", "http://b.test/x/")], "/steer", "b"
    )
    assert text == (
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-SESSION-DATA:DATA-ID="com.example.title",VALUE="Sinnerman"\n'
        '#EXT-X-CONTENT-STEERING:SERVER-URI="/steer",PATHWAY-ID="b"\n'
        "#EXT-X-STREAM-INF:BANDWIDTH=280000,AVERAGE-BANDWIDTH=252572,"
        'CODECS="mp4a.40.2",PATHWAY-ID="a"\n'
        "http://a.test/x/v0123456789ab/aac_256/index.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=280000,AVERAGE-BANDWIDTH=252572,"
        'CODECS="mp4a.40.2",PATHWAY-ID="b"\n'
        "http://b.test/x/v0123456789ab/aac_256/index.m3u8\n"
    )


def test_an_old_steering_tag_and_pathway_ids_are_replaced_and_comments_dropped():
    master = (
        "#EXTM3U\n# made by hand\n"
        '#EXT-X-CONTENT-STEERING:SERVER-URI="http://old.test/",PATHWAY-ID="old"\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=1000,PATHWAY-ID="old",CODECS="fLaC"\n\n'
        "flac/index.m3u8\n"
    )
    text = multivariant_playlist(master, [("new", "http://new.test/")], "http://s.test/")
    assert "old" not in text and "#EXT-X-VERSION:1\n" in text
    assert '#EXT-X-STREAM-INF:BANDWIDTH=1000,CODECS="fLaC",PATHWAY-ID="new"\n' in text


@pytest.mark.parametrize(
    ("master", "message"),
    [
        ("", "does not start with #EXTM3U"),
        ("#EXTM3U\n", "lists no variants"),
        ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n", "the last variant has no URI"),
        ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n#EXT-X-ENDLIST\na.m3u8\n", "has no URI before"),
        ('#EXTM3U\n#EXT-X-STREAM-INF:CODECS="fLaC"\na.m3u8\n', "without BANDWIDTH"),
        ('#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS="x\na.m3u8\n', "malformed attribute"),
        ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhttp://x.test/a.m3u8\n", "not a relative"),
        ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n/tracks/a.m3u8\n", "not a relative"),
        ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n../other/a.m3u8\n", "not a relative"),
        ("#EXTM3U\n#EXT-X-VERSION:x\n", "not a protocol version"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\nseg.m4s\n", "not a tag of"),
        ('#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="x",URI="a.m3u8"\n', "not a tag"),
        ("#EXTM3U\nstray.m3u8\n", "no EXT-X-STREAM-INF names"),
    ],
)
def test_a_master_that_cannot_be_rehomed_is_refused(master, message):
    with pytest.raises(ValueError, match=message):
        multivariant_playlist(master, PATHWAYS, STEERING)


@pytest.mark.parametrize(
    ("pathways", "steering", "default", "message"),
    [
        ([], STEERING, None, "at least one pathway"),
        ([("a b", "http://a.test/")], STEERING, None, "is not 1 to 64"),
        ([("a", "http://a.test/"), ("a", "http://b.test/")], STEERING, None, "distinct"),
        ([("a", "http://a.test")], STEERING, None, "ending in /"),
        ([("a", "ftp://a.test/")], STEERING, None, "http"),
        ([("a", "http://a.test/")], STEERING, "b", "default pathway 'b'"),
        ([("a", "http://a.test/")], 'http://s.test/"x"', None, "steering URI"),
        ([("a", "http://a.test/")], "", None, "steering URI"),
    ],
)
def test_bad_pathways_and_uris_are_refused(pathways, steering, default, message):
    with pytest.raises(ValueError, match=message):
        multivariant_playlist(MASTER, pathways, steering, default)


def test_the_steering_manifest():
    manifest = steering_manifest(["nyc1", "par1"], 300, "/v1/steering/x?session=1")
    assert json.loads(json.dumps(manifest)) == {
        "VERSION": 1,
        "TTL": 300,
        "RELOAD-URI": "/v1/steering/x?session=1",
        "PATHWAY-PRIORITY": ["nyc1", "par1"],
    }
    assert "RELOAD-URI" not in steering_manifest(["a"], 10)
    for bad_ttl in (0, 1.5, True):
        with pytest.raises(ValueError, match="TTL"):
            steering_manifest(["a"], bad_ttl)
    with pytest.raises(ValueError, match="distinct"):
        steering_manifest(["a", "a"], 10)
    with pytest.raises(ValueError, match="reload URI"):
        steering_manifest(["a"], 10, "/x y")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, SteeringQuery(None, None)),
        ({"_HLS_pathway": "par1", "_HLS_throughput": "5000000"}, SteeringQuery("par1", 5_000_000)),
        ({"_HLS_pathway": '"par1"', "_HLS_throughput": "123.9"}, SteeringQuery("par1", 123)),
        ({"_HLS_pathway": "par 1", "_HLS_throughput": "-5"}, SteeringQuery(None, None)),
        ({"_HLS_pathway": '"', "_HLS_throughput": "1e9"}, SteeringQuery(None, None)),
        ({"_HLS_pathway": "x" * 65, "_HLS_throughput": "9" * 16}, SteeringQuery(None, None)),
    ],
)
def test_parse_steering_query(query, expected):
    assert parse_steering_query(query) == expected


@given(st.dictionaries(st.sampled_from(["_HLS_pathway", "_HLS_throughput", "x"]), st.text()))
def test_parse_steering_query_never_fails(query):
    parsed = parse_steering_query(query)
    assert parsed.throughput_bps is None or parsed.throughput_bps >= 0


PATHWAY_IDS = st.from_regex(r"[A-Za-z0-9._-]{1,12}", fullmatch=True)
RUNGS = st.lists(
    st.tuples(st.from_regex(r"[a-z0-9_]{1,10}", fullmatch=True), st.integers(1, 10**7)),
    min_size=1,
    max_size=6,
    unique_by=lambda r: r[0],
)


@settings(max_examples=100, deadline=None)
@given(RUNGS, st.lists(PATHWAY_IDS, min_size=1, max_size=5, unique=True))
def test_every_variant_appears_once_per_pathway(rungs, pathway_ids):
    metadata = {
        "version": VERSION,
        "rungs": [
            {"name": name, "codecs": "mp4a.40.2", "peak_bps": bps, "average_bps": bps}
            for name, bps in rungs
        ],
    }
    pathways = [(p, f"http://{i}.edge.test/p/t/tracks/{TRACK}/") for i, p in enumerate(pathway_ids)]
    parsed = m3u8.loads(multivariant_playlist(master_playlist(metadata), pathways, STEERING))
    seen = [(v.stream_info.pathway_id, v.uri) for v in parsed.playlists]
    assert sorted(seen) == sorted(
        (p, f"{base}{VERSION}/{name}/index.m3u8") for p, base in pathways for name, _ in rungs
    )
    assert parsed.content_steering.pathway_id == pathway_ids[0]
