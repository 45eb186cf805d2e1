"""The ebur128 summary as ffmpeg 5.1 logs it at the end of an encode."""

import pytest

from encoder.loudness import Loudness, parse_ebur128_summary

FRAMES = """\
[Parsed_ebur128_0 @ 0x5649ac670cc0] t: 2.89998    TARGET:-23 LUFS    M: -21.8 S:-120.7     \
I: -21.8 LUFS       LRA:   0.0 LU  FTPK: -18.1 dBFS  TPK: -18.1 dBFS
[Parsed_ebur128_0 @ 0x5649ac670cc0] t: 2.99998    TARGET:-23 LUFS    M: -21.8 S: -21.8     \
I: -21.8 LUFS       LRA:  20.0 LU  FTPK: -18.1 dBFS  TPK: -18.1 dBFS
size=N/A time=00:00:03.00 bitrate=N/A speed= 167x
video:0kB audio:258kB subtitle:0kB other streams:0kB global headers:0kB muxing overhead: unknown
"""


def _summary(integrated: str, lra: str, *peaks: tuple[str, str]) -> str:
    text = f"""\
[Parsed_ebur128_0 @ 0x5649ac670cc0] Summary:

  Integrated loudness:
    I:         {integrated} LUFS
    Threshold: -31.8 LUFS

  Loudness range:
    LRA:        {lra} LU
    Threshold: -41.8 LUFS
    LRA low:   -41.8 LUFS
    LRA high:  -21.8 LUFS
"""
    for title, peak in peaks:
        text += f"\n  {title}:\n    Peak:      {peak} dBFS\n"
    return text


def test_programme_with_true_peak() -> None:
    log = FRAMES + _summary("-16.3", "5.2", ("True peak", "-0.9"))
    loudness = parse_ebur128_summary(log)
    assert loudness == Loudness(integrated_lufs=-16.3, true_peak_dbtp=-0.9, range_lu=5.2)
    assert not loudness.silent


def test_true_peak_above_full_scale() -> None:
    log = _summary("-8.0", "3.0", ("True peak", "1.4"))
    assert parse_ebur128_summary(log) == Loudness(-8.0, 1.4, 3.0)


def test_sample_peak_is_not_taken_for_the_true_peak() -> None:
    log = _summary("-21.8", "0.0", ("Sample peak", "-18.4"), ("True peak", "-17.9"))
    assert parse_ebur128_summary(log) == Loudness(-21.8, -17.9, 0.0)


def test_summary_without_peak_section() -> None:
    assert parse_ebur128_summary(FRAMES + _summary("-23.0", "7.5")) == Loudness(-23.0, None, 7.5)


def test_digital_silence() -> None:
    log = """\
[Parsed_ebur128_0 @ 0x5637c0ed6980] Summary:

  Integrated loudness:
    I:         -70.0 LUFS
    Threshold:   0.0 LUFS

  Loudness range:
    LRA:         0.0 LU
    Threshold:   0.0 LUFS
    LRA low:     0.0 LUFS
    LRA high:    0.0 LUFS

  True peak:
    Peak:       -inf dBFS
"""
    loudness = parse_ebur128_summary(log)
    assert loudness == Loudness(integrated_lufs=None, true_peak_dbtp=None, range_lu=0.0)
    assert loudness.silent


def test_silence_ignores_a_finite_peak_and_range() -> None:
    # Below the absolute gate nothing is measured, whatever else the summary says.
    log = _summary("-70.0", "3.0", ("True peak", "-80.2"))
    assert parse_ebur128_summary(log) == Loudness(None, None, 0.0)


def test_just_above_the_absolute_gate_is_not_silence() -> None:
    log = _summary("-69.9", "1.0", ("True peak", "-60.0"))
    assert parse_ebur128_summary(log) == Loudness(-69.9, -60.0, 1.0)


def test_infinite_peak_and_range_of_audible_programme_become_none_and_zero() -> None:
    log = _summary("-30.0", "inf", ("True peak", "-inf"))
    assert parse_ebur128_summary(log) == Loudness(-30.0, None, 0.0)


@pytest.mark.parametrize(
    "log",
    [
        "",
        FRAMES,
        "[Parsed_ebur128_0 @ 0x1] Summary:\n\n  Integrated loudness:\n",
        "[Parsed_ebur128_0 @ 0x1] Summary:\n\n  Integrated loudness:\n    I: -16.0 LUFS\n",
    ],
    ids=["empty", "frames only", "cut before I", "cut before LRA"],
)
def test_missing_or_incomplete_summary(log: str) -> None:
    assert parse_ebur128_summary(log) is None


def test_the_last_summary_counts() -> None:
    first = _summary("-30.0", "2.0", ("True peak", "-12.0"))
    last = _summary("-14.2", "6.1", ("True peak", "-0.3"))
    assert parse_ebur128_summary(FRAMES + first + FRAMES + last) == Loudness(-14.2, -0.3, 6.1)


def test_an_incomplete_last_summary_hides_an_earlier_one() -> None:
    complete = _summary("-14.2", "6.1", ("True peak", "-0.3"))
    cut = "[Parsed_ebur128_0 @ 0x1] Summary:\n\n  Integrated loudness:\n"
    assert parse_ebur128_summary(complete + cut) is None
