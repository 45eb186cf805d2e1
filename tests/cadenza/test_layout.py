"""The content layout: segment file names and their indexes, both ways."""

from hypothesis import given
from hypothesis import strategies as st

from cadenza.layout import segment_index, segment_name


@given(st.integers(min_value=0, max_value=999_999_999))
def test_a_segment_name_gives_back_its_index(index: int):
    assert segment_index(segment_name(index)) == index


@given(st.text(max_size=20))
def test_any_name_either_is_a_segment_name_or_is_refused(name: str):
    index = segment_index(name)
    assert index is None or segment_name(index) == name


def test_names_the_encoder_never_writes_are_refused():
    for name in (
        "seg_0001.m4s",  # less padding
        "seg_012345.m4s",  # more padding
        "seg_1234567890.m4s",  # ten digits
        "seg_-0001.m4s",
        "seg_+0001.m4s",
        "seg_\u0660\u0660\u0660\u0660\u0661.m4s",  # Arabic-Indic digits
        "seg_00001.m4s.tmp",
        "seg_00001x.m4s",
        "init.mp4",
        "index.m3u8",
    ):
        assert segment_index(name) is None, name
    assert segment_index("seg_00001.m4s") == 1
    assert segment_index("seg_123456.m4s") == 123_456
