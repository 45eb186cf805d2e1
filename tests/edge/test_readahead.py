"""Readahead picks the next segments of the same rendition."""

from hypothesis import given
from hypothesis import strategies as st

from edge.readahead import following_segments, listed_segments, segment_number

SEG = "/tracks/abc/v1/aac_96/seg_00007.m4s"


def test_about_twenty_seconds_ahead_is_four_segments():
    assert following_segments(SEG, 20) == [
        f"/tracks/abc/v1/aac_96/seg_{n:05d}.m4s" for n in (8, 9, 10, 11)
    ]


def test_only_segments_have_followers():
    for path in ("/tracks/abc/master.m3u8", "/tracks/abc/v1/aac_96/init.mp4", "/x/seg_1.m4s"):
        assert following_segments(path, 20) == []
    assert following_segments(SEG, 0) == []


@given(st.integers(0, 99_999), st.floats(0.1, 600))
def test_followers_are_consecutive_and_bounded(n, seconds):
    path = f"/t/seg_{n:05d}.m4s"
    after = following_segments(path, seconds)
    numbers = [segment_number(p) for p in after]
    assert numbers == list(range(n + 1, n + 1 + len(numbers)))
    assert len(after) <= -(-seconds // 6) and all(m is not None and m < 100_000 for m in numbers)


def test_the_segments_a_media_playlist_lists_are_its_relative_names():
    playlist = (
        '#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MAP:URI="init.mp4"\n'
        "#EXTINF:6.0,\nseg_00000.m4s\n#EXTINF:6.0,\n../x/seg_00001.m4s\n"
        "#EXTINF:6.0,\nseg_00002.m4s?v=1\n#EXTINF:6.0,\nseg_00003.m4s\n#EXT-X-ENDLIST\n"
    )
    assert listed_segments(playlist.encode()) == {"seg_00000.m4s", "seg_00003.m4s"}
    assert listed_segments(b"#EXTM3U\nseg_00000.m4s\n") == frozenset()
    assert listed_segments(b"\xff\xfe") == frozenset()
