"""The player's reading of the locator's playlist and steering manifest, and its pathway choice."""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadenza import hls
from locator.steering import multivariant_playlist, parse_steering_query, steering_manifest
from player.hls import (
    DEFAULT_TTL_S,
    PathwayChoice,
    SteeringManifest,
    parse_multivariant,
    parse_steering_manifest,
    resolve,
    steering_request,
    with_query,
)

TRACK = "0123456789abcdef"
METADATA = {
    "version": "v0123456789ab",
    "rungs": [
        {"name": "aac_256", "codecs": "mp4a.40.2", "peak_bps": 280_000, "average_bps": 262_000},
        {"name": "aac_48", "codecs": "mp4a.40.2", "peak_bps": 55_000, "average_bps": 50_000},
        {"name": "aac_96", "codecs": "mp4a.40.2", "peak_bps": 110_000, "average_bps": 98_000},
    ],
    "loudness": {"integrated_lufs": -17.0, "true_peak_dbtp": -5.1, "range_lu": 5.7},
}
EDGES = [
    ("par1", f"http://127.0.0.1:8101/p/TOKEN/tracks/{TRACK}/"),
    ("fra1", f"http://127.0.0.1:8102/p/TOKEN/tracks/{TRACK}/"),
    ("nyc1", f"https://nyc1.example.net/p/TOKEN/tracks/{TRACK}/"),
]
LOCATOR = "http://127.0.0.1:8070"
STEER = f"{LOCATOR}/v1/steer/abc123"
PLAY_URL = f"{LOCATOR}/v1/play/{TRACK}?territory=FR"


def _locator_playlist(edges=EDGES, metadata=METADATA) -> str:
    master = hls.write_multivariant(hls.version_master(metadata))
    return multivariant_playlist(master, edges, STEER)


def test_the_locators_playlist_reads_as_pathways_of_absolute_variants():
    playlist = parse_multivariant(_locator_playlist(), PLAY_URL)
    assert playlist.pathways == ("par1", "fra1", "nyc1")
    assert playlist.default_pathway == "par1"
    assert playlist.steering_uri == STEER
    ladder = playlist.ladder("fra1")
    assert [v.bandwidth for v in ladder] == [55_000, 110_000, 280_000]
    assert [v.kbps for v in ladder] == [50.0, 98.0, 262.0]
    assert {v.pathway for v in ladder} == {"fra1"}
    assert (
        ladder[-1].uri
        == f"http://127.0.0.1:8102/p/TOKEN/tracks/{TRACK}/v0123456789ab/aac_256/index.m3u8"
    )
    assert ladder[0].codecs == "mp4a.40.2"
    assert playlist.session_data["org.cadenza.loudness.integrated-lufs"] == "-17.0"
    assert playlist.session_data["org.cadenza.loudness.true-peak-dbtp"] == "-5.1"


def test_relative_variants_without_pathways_or_average_resolve_against_the_playlist_url():
    text = (
        "#EXTM3U\n# a comment\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=96000,CODECS="mp4a.40.2,ec-3"\nlow/index.m3u8\n'
        "#EXT-X-STREAM-INF:BANDWIDTH=256000\n/abs/high.m3u8\n"
    )
    playlist = parse_multivariant(text, "https://cdn.example/tracks/t/master.m3u8")
    assert playlist.pathways == (".",)
    assert playlist.steering_uri is None and playlist.default_pathway is None
    low, high = playlist.ladder(".")
    assert low.uri == "https://cdn.example/tracks/t/low/index.m3u8"
    assert low.codecs == "mp4a.40.2,ec-3" and low.average_bandwidth is None
    assert high.uri == "https://cdn.example/abs/high.m3u8" and high.kbps == 256.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "EXTM3U"),
        ("#EXT-X-VERSION:7\n", "EXTM3U"),
        ("#EXTM3U\n#EXT-X-VERSION:7\n", "no variants"),
        ('#EXTM3U\n#EXT-X-STREAM-INF:CODECS="mp4a.40.2"\na.m3u8\n', "BANDWIDTH"),
        ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=lots\na.m3u8\n", "BANDWIDTH"),
        ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,junk\na.m3u8\n", "malformed"),
    ],
)
def test_what_cannot_be_played_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_multivariant(text, PLAY_URL)


_kbps = st.integers(min_value=8, max_value=2000)


@given(
    rates=st.lists(_kbps, min_size=1, max_size=6, unique=True),
    edges=st.lists(st.sampled_from(EDGES), min_size=1, max_size=3, unique=True),
)
def test_every_ladder_the_locator_writes_reads_back_the_same_on_every_pathway(rates, edges):
    rungs = [
        {"name": f"r{i}", "codecs": "mp4a.40.2", "peak_bps": k * 1100, "average_bps": k * 1000}
        for i, k in enumerate(rates)
    ]
    playlist = parse_multivariant(_locator_playlist(edges, {**METADATA, "rungs": rungs}), PLAY_URL)
    assert playlist.pathways == tuple(e[0] for e in edges)
    for pathway, base in edges:
        ladder = playlist.ladder(pathway)
        assert [v.kbps for v in ladder] == sorted(float(k) for k in rates)
        assert all(v.uri.startswith(base) for v in ladder)


def test_the_locators_steering_manifest_reads_back():
    doc = steering_manifest(["fra1", "nyc1"], 5, f"{STEER}?x=1")
    manifest = parse_steering_manifest(json.dumps(doc), STEER)
    assert manifest == SteeringManifest(5.0, f"{STEER}?x=1", ("fra1", "nyc1"))


def test_a_relative_reload_uri_resolves_and_bad_ttls_read_as_the_default():
    doc = {"VERSION": 1, "TTL": -3, "RELOAD-URI": "next?s=2", "PATHWAY-PRIORITY": ["a", "a", "b"]}
    manifest = parse_steering_manifest(json.dumps(doc), STEER)
    assert manifest.reload_uri == f"{LOCATOR}/v1/steer/next?s=2"
    assert manifest.ttl_s == DEFAULT_TTL_S and manifest.pathway_priority == ("a", "b")
    for ttl in (True, "5", None, 0):
        doc = {"VERSION": 1, "TTL": ttl, "PATHWAY-PRIORITY": ["a"]}
        assert parse_steering_manifest(json.dumps(doc), STEER).ttl_s == DEFAULT_TTL_S


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"VERSION": 2, "PATHWAY-PRIORITY": ["a"]}',
        b'{"VERSION": 1}',
        b'{"VERSION": 1, "PATHWAY-PRIORITY": "a"}',
        b'{"VERSION": 1, "PATHWAY-PRIORITY": [1, "has space", ""]}',
    ],
)
def test_unusable_steering_manifests_are_refused(body):
    with pytest.raises(ValueError):
        parse_steering_manifest(body, STEER)


_json = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


@given(
    extra=st.dictionaries(
        st.sampled_from(["VERSION", "TTL", "RELOAD-URI", "PATHWAY-PRIORITY"]), _json
    )
)
def test_any_json_is_read_or_refused_with_a_value_error(extra):
    try:
        manifest = parse_steering_manifest(json.dumps(extra), STEER)
    except ValueError:
        return
    assert manifest.pathway_priority and math.isfinite(manifest.ttl_s) and manifest.ttl_s > 0


def test_the_steering_request_says_pathway_and_throughput_as_the_locator_reads_them():
    url = steering_request(f"{STEER}?session=x", "fra1", 1_234_567.8)
    query = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))
    assert query["session"] == "x"
    said = parse_steering_query(query)
    assert (said.pathway, said.throughput_bps) == ("fra1", 1_234_567)
    assert steering_request(STEER, None, None) == STEER


def test_with_query_replaces_a_parameter_of_the_same_name():
    assert with_query("http://h/p?a=1&b=2", {"a": "x y"}) == "http://h/p?b=2&a=x%20y"


def test_segments_resolve_against_their_media_playlist():
    playlist = "http://e/p/T/tracks/t/v/aac_96/index.m3u8"
    assert resolve(playlist, "seg_00001.m4s") == "http://e/p/T/tracks/t/v/aac_96/seg_00001.m4s"
    assert resolve(playlist, "../aac_48/init.mp4") == "http://e/p/T/tracks/t/v/aac_48/init.mp4"
    assert resolve(playlist, "http://o/x.m4s") == "http://o/x.m4s"


def test_the_default_pathway_leads_until_steering_reorders():
    choice = PathwayChoice(["par1", "fra1", "nyc1"], default="fra1")
    assert choice.priority == ("fra1", "par1", "nyc1") and choice.choose(0.0) == "fra1"
    choice.steer(SteeringManifest(5.0, None, ("nyc1", "unknown", "par1")))
    assert choice.priority == ("nyc1", "par1", "fra1")
    choice.steer(SteeringManifest(5.0, None, ("unknown",)))
    assert choice.priority == ("nyc1", "par1", "fra1")


def test_a_failed_pathway_is_passed_over_until_its_penalty_ends():
    choice = PathwayChoice(["par1", "fra1"])
    choice.penalise("par1", until=10.0)
    assert choice.choose(5.0) == "fra1"
    choice.penalise("fra1", until=8.0)
    assert choice.choose(6.0) == "fra1"  # both out: the one back soonest
    assert choice.choose(10.0) == "par1"


def test_a_play_needs_a_pathway():
    with pytest.raises(ValueError):
        PathwayChoice([])


@given(
    order=st.permutations(["a", "b", "c", "d"]),
    penalties=st.dictionaries(st.sampled_from("abcd"), st.floats(0, 100)),
    now=st.floats(0, 100),
)
def test_the_first_pathway_out_of_penalty_in_steering_order_is_chosen(order, penalties, now):
    choice = PathwayChoice(["a", "b", "c", "d"])
    choice.steer(SteeringManifest(1.0, None, tuple(order)))
    for pathway, until in penalties.items():
        choice.penalise(pathway, until)
    free = [p for p in order if penalties.get(p, -1.0) <= now]
    assert choice.choose(now) == (free[0] if free else min(order, key=penalties.__getitem__))
