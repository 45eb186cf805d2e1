"""Readahead picks the next segments of the same rendition."""

from hypothesis import given
from hypothesis import strategies as st

from edge.readahead import following_segments, segment_number

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
