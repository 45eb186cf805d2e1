"""CMCD parsing and the next-object hint used for readahead."""

import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.cmcd import from_request, next_objects, parse_cmcd

SEG = "/tracks/abc/v1/aac_96/seg_00003.m4s"


def test_parse_a_typical_hls_js_payload():
    text = 'bl=21300,br=96,cid="abc",d=6000,mtp=25400,nor="seg_00004.m4s",ot=a,sf=h,sid="s-1",su'
    assert parse_cmcd(text) == {
        "bl": 21300,
        "br": 96,
        "cid": "abc",
        "d": 6000,
        "mtp": 25400,
        "nor": "seg_00004.m4s",
        "ot": "a",
        "sf": "h",
        "sid": "s-1",
        "su": True,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("pr=1.25", {"pr": 1.25}),
        ('sid="a,b"', {"sid": "a,b"}),
        ('sid="say \\"hi\\""', {"sid": 'say "hi"'}),
        ("=5,br=1", {"br": 1}),
        ("b r=1,bs", {"bs": True}),
    ],
)
def test_parse_edge_cases(text, expected):
    assert parse_cmcd(text) == expected


def test_query_parameter_wins_over_headers():
    headers = {"CMCD-Request": "bl=100", "CMCD-Session": 'sid="x"', "CMCD-Object": "br=48"}
    assert from_request({}, headers) == {"bl": 100, "sid": "x", "br": 48}
    assert from_request({"CMCD": "br=256"}, headers) == {"br": 256}


@pytest.mark.parametrize(
    ("nor", "paths"),
    [
        ("seg_00004.m4s", ["/tracks/abc/v1/aac_96/seg_00004.m4s"]),
        (urllib.parse.quote("../aac_48/seg_00004.m4s"), ["/tracks/abc/v1/aac_48/seg_00004.m4s"]),
        ("/tracks/abc/v1/aac_96/seg_00009.m4s", ["/tracks/abc/v1/aac_96/seg_00009.m4s"]),
        ("seg_00004.m4s,seg_00005.m4s", [
            "/tracks/abc/v1/aac_96/seg_00004.m4s", "/tracks/abc/v1/aac_96/seg_00005.m4s"]),
        ("https://elsewhere.example/seg.m4s", []),
        ("//elsewhere.example/seg.m4s", []),
        ("../../../../../../etc/passwd", []),
        ("../../../def/v2/aac_96/seg_00000.m4s", ["/tracks/def/v2/aac_96/seg_00000.m4s"]),
        ("", []),
    ],
)  # fmt: skip
def test_next_objects(nor, paths):
    assert next_objects({"nor": nor}, SEG) == paths


def test_next_objects_ignores_non_strings():
    assert next_objects({"nor": True}, SEG) == []
    assert next_objects({}, SEG) == []


@given(st.text(max_size=200))
def test_parse_never_fails(text):
    parsed = parse_cmcd(text)
    assert all(isinstance(k, str) and k for k in parsed)
