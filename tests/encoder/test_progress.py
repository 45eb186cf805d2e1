"""ffmpeg's -progress stream, however the pipe happens to chop it."""

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from encoder.progress import ProgressReader


def _block(out_time_us: str, progress: str = "continue") -> bytes:
    return (
        "bitrate=N/A\n"
        "total_size=N/A\n"
        f"out_time_us={out_time_us}\n"
        f"out_time_ms={out_time_us}\n"
        "out_time=00:00:00.000000\n"
        "dup_frames=0\n"
        "drop_frames=0\n"
        "speed= 431x\n"
        f"progress={progress}\n"
    ).encode()


# What ffmpeg 5.1 writes for a two-second encode.
STREAM = _block("N/A") + _block("23220") + _block("1500000") + _block("2000000", "end")


def _state(reader: ProgressReader) -> tuple[float, bool]:
    return reader.out_seconds, reader.finished


def test_whole_stream_at_once() -> None:
    reader = ProgressReader()
    assert reader.feed(STREAM)
    assert _state(reader) == (2.0, True)


def test_block_by_block() -> None:
    reader = ProgressReader()
    seen = []
    for block in (_block("N/A"), _block("23220"), _block("1500000"), _block("2000000", "end")):
        assert reader.feed(block)
        seen.append(_state(reader))
    assert seen == [(0.0, False), (0.02322, False), (1.5, False), (2.0, True)]


def test_not_available_keeps_the_last_time() -> None:
    reader = ProgressReader()
    reader.feed(_block("4000000") + _block("N/A"))
    assert _state(reader) == (4.0, False)


def test_negative_time_is_clamped_to_zero() -> None:
    # ffmpeg reports a huge negative time before the first packet is written.
    reader = ProgressReader()
    assert reader.feed(_block("-9223372036854775807"))
    assert _state(reader) == (0.0, False)


def test_no_update_until_the_progress_line() -> None:
    reader = ProgressReader()
    assert not reader.feed(b"out_time_us=3000000\nspeed=1x\n")
    assert reader.out_seconds == 3.0
    assert not reader.finished
    assert reader.feed(b"progress=continue\n")


def test_a_line_counts_only_once_complete() -> None:
    reader = ProgressReader()
    assert not reader.feed(b"out_time_us=12")
    assert reader.out_seconds == 0.0
    assert not reader.feed(b"34567\nprogress=en")
    assert _state(reader) == (1.234567, False)
    assert reader.feed(b"d\n")
    assert reader.finished


def test_crlf_and_padding() -> None:
    reader = ProgressReader()
    assert reader.feed(b"  out_time_us=2500000 \r\nprogress=end\r\n")
    assert _state(reader) == (2.5, True)


def test_continue_after_end_clears_finished() -> None:
    reader = ProgressReader()
    reader.feed(_block("1000000", "end"))
    reader.feed(_block("2000000"))
    assert _state(reader) == (2.0, False)


def test_garbage_lines_are_ignored() -> None:
    reader = ProgressReader()
    assert reader.feed(b"\xff\xfe\nout_time_us\nout_time_us=abc\n=5\nprogress=end\n")
    assert _state(reader) == (0.0, True)


def _feed_in_pieces(data: bytes, cuts: list[int]) -> tuple[ProgressReader, list[bool]]:
    reader = ProgressReader()
    bounds = [0, *sorted(cuts), len(data)]
    results = [reader.feed(data[a:b]) for a, b in pairwise(bounds)]
    return reader, results


@given(st.lists(st.integers(0, len(STREAM)), max_size=40))
def test_any_split_gives_the_same_result(cuts: list[int]) -> None:
    reader, results = _feed_in_pieces(STREAM, cuts)
    assert _state(reader) == (2.0, True)
    assert any(results)
    assert sum(results) <= STREAM.count(b"progress=")


@given(st.lists(st.integers(0, len(STREAM)), max_size=40))
def test_every_prefix_reads_like_the_same_bytes_fed_at_once(cuts: list[int]) -> None:
    reader = ProgressReader()
    bounds = [0, *sorted(cuts), len(STREAM)]
    for start, stop in pairwise(bounds):
        reader.feed(STREAM[start:stop])
        whole = ProgressReader()
        whole.feed(STREAM[:stop])
        assert _state(reader) == _state(whole)


_TIMES = st.none() | st.integers(-(10**12), 10**12)


@given(
    st.lists(st.tuples(_TIMES, st.booleans()), min_size=1, max_size=20),
    st.lists(st.integers(0, 10_000), max_size=20),
)
def test_generated_streams(blocks: list[tuple[int | None, bool]], cuts: list[int]) -> None:
    data = b"".join(
        _block("N/A" if t is None else str(t), "end" if e else "continue") for t, e in blocks
    )
    reader, results = _feed_in_pieces(data, [c % (len(data) + 1) for c in cuts])
    times = [t for t, _ in blocks if t is not None]
    assert reader.out_seconds == (max(0.0, times[-1] / 1_000_000) if times else 0.0)
    assert reader.finished == blocks[-1][1]
    assert 1 <= sum(results) <= len(blocks)
