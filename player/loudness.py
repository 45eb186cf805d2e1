"""Loudness normalisation: the gain that brings a track to a common loudness without clipping.

Pure. The rule: gain = target - integrated loudness, then lowered, if needed, so that the
track's true peak after the gain stays at or below the ceiling:

    gain_db = min(target_lufs - integrated_lufs, ceiling_dbtp - true_peak_dbtp)

Loud tracks are turned down to the target; quiet ones are turned up only as far as their peaks
allow (a track that already peaks above the ceiling is turned down a little, as ReplayGain's
clipping prevention does). A silent or unmeasured track gets no gain. The figures come from the
encoder's EBU R128 measurement, carried in the multivariant playlist's EXT-X-SESSION-DATA.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

from cadenza import hls

DEFAULT_TARGET_LUFS = -14.0  # what the large streaming services play at
CEILING_DBTP = -1.0  # headroom for the inter-sample peaks of lossy decoding


@dataclass(frozen=True)
class TrackLoudness:
    integrated_lufs: float | None  # None: silent or not measured
    true_peak_dbtp: float | None
    range_lu: float | None


def from_session_data(data: Mapping[str, str]) -> TrackLoudness | None:
    """The track's loudness from EXT-X-SESSION-DATA values; None when the playlist has none."""
    if hls.LOUDNESS_INTEGRATED not in data:
        return None
    return TrackLoudness(
        _number(data.get(hls.LOUDNESS_INTEGRATED)),
        _number(data.get(hls.LOUDNESS_TRUE_PEAK)),
        _number(data.get(hls.LOUDNESS_RANGE)),
    )


def _number(text: str | None) -> float | None:
    """A finite figure; "-inf" (silence), absent or malformed values read as None."""
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def gain_db(
    loudness: TrackLoudness | None,
    target_lufs: float = DEFAULT_TARGET_LUFS,
    ceiling_dbtp: float = CEILING_DBTP,
) -> float:
    """The normalisation gain in dB, per the rule above; 0 when the loudness is unknown."""
    if loudness is None or loudness.integrated_lufs is None:
        return 0.0
    gain = target_lufs - loudness.integrated_lufs
    if loudness.true_peak_dbtp is not None:
        gain = min(gain, ceiling_dbtp - loudness.true_peak_dbtp)
    return gain


def linear_factor(gain: float) -> float:
    """The amplitude factor of a gain in dB: what a decoder multiplies samples by."""
    return float(10.0 ** (gain / 20.0))
