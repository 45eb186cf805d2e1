"""CMCD as the player writes it, read back by the edge's own parser."""

import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.cmcd import next_objects, parse_cmcd
from player.cmcd import AUDIO, INIT, MANIFEST, Cmcd, encode, query_value, relative_url, with_cmcd

BASE = "http://127.0.0.1:8101/p/TOKEN/tracks/0123456789abcdef/v0123456789ab"


def test_keys_are_sorted_strings_quoted_tokens_bare_and_startup_a_bare_key():
    data = Cmcd(
        session_id="s-1",
        content_id="0123456789abcdef",
        object_type=AUDIO,
        bitrate_kbps=257.548,
        buffer_s=12.34,
        throughput_kbps=4_460.0,
        next_object="seg_00002.m4s",
        startup=True,
    )
    assert encode(data) == (
        'bl=12300,br=258,cid="0123456789abcdef",mtp=4500,nor="seg_00002.m4s",ot=a,sid="s-1",su'
    )


def test_unknown_values_and_false_booleans_are_left_out():
    assert encode(Cmcd("s", "c", MANIFEST)) == 'cid="c",ot=m,sid="s"'
    assert encode(Cmcd("s", "c", INIT, buffer_s=0.0, throughput_kbps=-1.0)) == (
        'bl=0,cid="c",mtp=0,ot=i,sid="s"'
    )


def test_quotes_and_backslashes_are_escaped_and_long_ids_cut():
    assert encode(Cmcd('a"b\\c', "x" * 80, MANIFEST)) == f'cid="{"x" * 64}",ot=m,sid="a\\"b\\\\c"'


def test_the_value_travels_url_encoded_in_one_query_parameter():
    data = Cmcd("s", "c", AUDIO, next_object="seg_00002.m4s")
    assert query_value(data) == "CMCD=" + urllib.parse.quote(encode(data), safe="")
    assert with_cmcd("http://e/x.m4s", data).startswith("http://e/x.m4s?CMCD=cid%3D%22c%22")
    assert with_cmcd("http://e/x.m4s?a=1", data).startswith("http://e/x.m4s?a=1&CMCD=")


# Any id survives, quotes and backslashes too: the edge undoes the player's quoted-pairs.
_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


@given(
    sid=_text.filter(lambda s: len(s) <= 64),
    cid=_text.filter(lambda s: len(s) <= 64),
    kind=st.sampled_from([AUDIO, INIT, MANIFEST]),
    br=st.none() | st.floats(1, 10_000),
    bl=st.none() | st.floats(0, 300),
    mtp=st.none() | st.floats(0, 1e6),
    su=st.booleans(),
)
def test_the_edge_reads_back_what_the_player_sends(sid, cid, kind, br, bl, mtp, su):
    data = Cmcd(sid, cid, kind, br, bl, mtp, "seg_00003.m4s", su)
    name, _, value = query_value(data).partition("=")
    read = parse_cmcd(urllib.parse.unquote(value))
    assert name == "CMCD"
    assert read["ot"] == kind and read.get("su", False) is su
    assert read["nor"] == "seg_00003.m4s"
    if br is not None:
        assert read["br"] == round(br)
    if bl is not None:
        assert read["bl"] % 100 == 0 and abs(read["bl"] - bl * 1000) <= 50
    if mtp is not None:
        assert read["mtp"] % 100 == 0 and abs(read["mtp"] - mtp) <= 50


@given(sid=st.text(st.sampled_from('ab,= ;"\\'), min_size=1, max_size=10))
def test_ids_with_separators_survive(sid):
    assert parse_cmcd(encode(Cmcd(sid, "c", AUDIO)))["sid"] == sid


@pytest.mark.parametrize(
    ("request_url", "next_url", "relative", "edge_path"),
    [
        (f"{BASE}/aac_256/seg_00001.m4s", f"{BASE}/aac_256/seg_00002.m4s", "seg_00002.m4s",
         "aac_256/seg_00002.m4s"),
        (f"{BASE}/aac_256/index.m3u8", f"{BASE}/aac_256/init.mp4", "init.mp4", "aac_256/init.mp4"),
        (f"{BASE}/aac_256/seg_00001.m4s", f"{BASE}/aac_96/seg_00002.m4s",
         "../aac_96/seg_00002.m4s", "aac_96/seg_00002.m4s"),
        (f"{BASE}/aac_256/seg_00001.m4s", f"{BASE}/a,b c/seg_00002.m4s",
         "../a%2Cb%20c/seg_00002.m4s", "a,b c/seg_00002.m4s"),
    ],
)  # fmt: skip
def test_nor_is_relative_and_the_edge_resolves_it_to_the_next_object(
    request_url, next_url, relative, edge_path
):
    assert relative_url(request_url, next_url) == relative
    cmcd = parse_cmcd(encode(Cmcd("s", "c", AUDIO, next_object=relative)))
    request_path = request_url.split("/p/TOKEN", 1)[1]  # the edge strips the token first
    folder = "/tracks/0123456789abcdef/v0123456789ab/"
    assert next_objects(cmcd, request_path) == [folder + edge_path]


def test_nor_cannot_name_another_host():
    assert relative_url("http://a/x/1.m4s", "http://b/x/2.m4s") is None
    assert relative_url("http://a/x/1.m4s", "http://a/x/2.m4s?v=1") == "2.m4s?v=1"
