"""EBU R128 figures read from the summary that ffmpeg's ebur128 filter logs at the end.

Pure. Digital silence is reported by ffmpeg as -70 LUFS (nothing passes the absolute gate) and a
true peak of -inf; Cadenza records both as None, since JSON and HLS have no -inf.
"""

import math
import re
from dataclasses import dataclass

ABSOLUTE_GATE_LUFS = -70.0
_NUMBER = r"(-?(?:inf|nan|\d+(?:\.\d+)?))"
_INTEGRATED = re.compile(r"Integrated loudness:\s*I:\s*" + _NUMBER + r" LUFS")
_RANGE = re.compile(r"Loudness range:\s*LRA:\s*" + _NUMBER + r" LU")
_TRUE_PEAK = re.compile(r"True peak:\s*Peak:\s*" + _NUMBER + r" dBFS")


@dataclass(frozen=True)
class Loudness:
    integrated_lufs: float | None  # None: digital silence
    true_peak_dbtp: float | None  # None: digital silence
    range_lu: float

    @property
    def silent(self) -> bool:
        return self.integrated_lufs is None


def parse_ebur128_summary(log: str) -> Loudness | None:
    """The figures of the last summary in ``log``, or None when there is no summary."""
    summary_at = log.rfind("Summary:")
    if summary_at < 0:
        return None
    text = log[summary_at:]
    integrated = _find(_INTEGRATED, text)
    lra = _find(_RANGE, text)
    peak = _find(_TRUE_PEAK, text)
    if integrated is None or lra is None:
        return None
    silent = integrated <= ABSOLUTE_GATE_LUFS
    return Loudness(
        integrated_lufs=None if silent else integrated,
        true_peak_dbtp=None if peak is None or silent or not math.isfinite(peak) else peak,
        range_lu=0.0 if silent or not math.isfinite(lra) else lra,
    )


def _find(pattern: re.Pattern[str], text: str) -> float | None:
    match = pattern.search(text)
    return float(match.group(1)) if match else None
