"""Loudness normalisation gain: towards the target, never pushing true peaks over the ceiling."""

import math
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadenza import hls
from player.hls import parse_multivariant
from player.loudness import (
    CEILING_DBTP,
    DEFAULT_TARGET_LUFS,
    TrackLoudness,
    from_session_data,
    gain_db,
    linear_factor,
)


def _published(loudness: dict[str, float | None] | None) -> Mapping[str, str]:
    """The session data of a master playlist as the encoder writes it."""
    metadata = {
        "version": "v0123456789ab",
        "rungs": [{"name": "aac_96", "codecs": "mp4a.40.2", "peak_bps": 1, "average_bps": 1}],
        "loudness": loudness,
    }
    master = hls.write_multivariant(hls.version_master(metadata))
    return parse_multivariant(master, "http://o/master.m3u8").session_data


def test_the_player_reads_the_encoders_session_data():
    data = _published({"integrated_lufs": -17.04, "true_peak_dbtp": -5.1, "range_lu": 5.7})
    assert from_session_data(data) == TrackLoudness(-17.0, -5.1, 5.7)
    silent = _published({"integrated_lufs": None, "true_peak_dbtp": None, "range_lu": 0.0})
    assert from_session_data(silent) == TrackLoudness(None, None, 0.0)
    assert from_session_data(_published(None)) is None


@pytest.mark.parametrize(
    ("integrated", "peak", "gain"),
    [
        (-17.0, -5.1, 3.0),  # quiet with headroom: up to the target
        (-8.0, -0.2, -6.0),  # loud: down to the target
        (-20.0, -2.0, 1.0),  # quiet, peaks near the ceiling: up only as far as they allow
        (-20.0, 0.5, -1.5),  # peaks already over the ceiling: down a little
        (-14.0, None, 0.0),  # at the target, peak unknown
        (None, None, 0.0),  # silence
    ],
)
def test_gain(integrated, peak, gain):
    assert gain_db(TrackLoudness(integrated, peak, 5.0)) == pytest.approx(gain)


def test_no_loudness_no_gain_and_other_targets():
    assert gain_db(None) == 0.0
    assert gain_db(TrackLoudness(-20.0, -10.0, 1.0), target_lufs=-16.0) == pytest.approx(4.0)
    assert gain_db(TrackLoudness(-20.0, -3.0, 1.0), ceiling_dbtp=-2.0) == pytest.approx(1.0)


def test_malformed_figures_read_as_unknown():
    data = {hls.LOUDNESS_INTEGRATED: "loud", hls.LOUDNESS_TRUE_PEAK: "nan"}
    assert from_session_data(data) == TrackLoudness(None, None, None)


def test_linear_factor():
    assert linear_factor(0.0) == 1.0
    assert linear_factor(20 * math.log10(2)) == pytest.approx(2.0)
    assert linear_factor(-20.0) == pytest.approx(0.1)


@given(
    integrated=st.floats(-70, 0),
    peak=st.floats(-60, 6),
    target=st.floats(-30, -5),
)
def test_the_gain_reaches_the_target_or_the_ceiling_and_passes_neither(integrated, peak, target):
    gain = gain_db(TrackLoudness(integrated, peak, 0.0), target_lufs=target)
    assert gain + peak <= CEILING_DBTP + 1e-9
    assert gain <= target - integrated + 1e-9
    assert min(abs(gain + peak - CEILING_DBTP), abs(gain - (target - integrated))) < 1e-9


@given(integrated=st.floats(-70, 0))
def test_without_a_known_peak_the_target_is_reached(integrated):
    gain = gain_db(TrackLoudness(integrated, None, 0.0))
    assert gain == pytest.approx(DEFAULT_TARGET_LUFS - integrated)
