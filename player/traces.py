"""Network traces for offline ABR runs, and how long a download takes on one.

A trace is a list of periods, each offering a bandwidth for a duration with a one-way latency;
it loops when a run outlasts it. The shared traces are the example traces of the Sabre ABR
simulator (UMass-LIDS, BSD 2-Clause licence); its 3G logs come from the HSDPA dataset of Riiser
et al. (MMSys 2013). Pure: reading files is the only I/O, and ``download_time`` is arithmetic.
"""

import json
import math
import os
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from cadenza.errors import InputError

# The shared traces live beside the repository (``../shared/traces``), not in it;
# CADENZA_TRACES points elsewhere for another layout.
DEFAULT_TRACES = Path(
    os.environ.get("CADENZA_TRACES")
    or Path(__file__).resolve().parent.parent.parent / "shared" / "traces"
)
ATTRIBUTION = (
    "traces: Sabre ABR simulator examples (UMass-LIDS, BSD 2-Clause); "
    "3G logs from the HSDPA dataset of Riiser et al. (MMSys 2013)"
)
_FIELDS = {"duration_ms", "bandwidth_kbps", "latency_ms"}


@dataclass(frozen=True)
class Period:
    """The link offers ``kbps`` for ``duration_s``; each request waits ``latency_s`` first."""

    duration_s: float
    kbps: float
    latency_s: float


@dataclass(frozen=True)
class Trace:
    name: str
    periods: tuple[Period, ...]

    def __post_init__(self) -> None:
        if not self.periods:
            raise ValueError(f"trace {self.name!r} has no periods")
        if any(p.duration_s <= 0 or p.kbps < 0 or p.latency_s < 0 for p in self.periods):
            raise ValueError(f"trace {self.name!r}: durations must be positive, the rest >= 0")
        if not delivers(self.periods):
            raise ValueError(f"trace {self.name!r} delivers under one bit per pass")

    @property
    def seconds(self) -> float:
        """One pass through the trace, before it loops."""
        return self._starts[-1]

    @cached_property
    def _starts(self) -> list[float]:
        """Start of each period within one pass, then the pass's end."""
        return _accumulate(p.duration_s for p in self.periods)

    @cached_property
    def _bits(self) -> list[float]:
        """Bits the link can deliver from the start of a pass to the start of each period."""
        return _accumulate(p.kbps * 1000.0 * p.duration_s for p in self.periods)


def delivers(periods: Iterable[Period]) -> bool:
    """Whether a pass through ``periods`` delivers at least one bit. Less (no bandwidth, or a
    denormal figure) would make a download's count of passes overflow."""
    return sum(p.kbps * 1000.0 * p.duration_s for p in periods) >= 1.0


def _accumulate(values: Iterable[float]) -> list[float]:
    total, out = 0.0, [0.0]
    for value in values:
        total += value
        out.append(total)
    return out


def download_time(trace: Trace, start_s: float, nbytes: float) -> float:
    """Seconds to fetch ``nbytes`` with a request sent at ``start_s``: one latency, then transfer.

    The latency is spent like the transfer, at the pace of the periods it crosses (as Sabre does),
    so a request sent later never completes earlier.
    """
    sent = _after_latency(trace, start_s)
    return max(sent, _time_at_bits(trace, _bits_at(trace, sent) + 8.0 * nbytes)) - start_s


def first_byte_s(trace: Trace, start_s: float) -> float:
    """Seconds from a request sent at ``start_s`` to the first byte of its response: the
    latency, spent as ``download_time`` spends it."""
    return _after_latency(trace, start_s) - start_s


def _locate(trace: Trace, time_s: float) -> tuple[int, int, float]:
    """(pass, period index, seconds into that period) at ``time_s``."""
    loop, offset = divmod(time_s, trace.seconds)
    index = min(bisect_right(trace._starts, offset) - 1, len(trace.periods) - 1)
    return int(loop), index, offset - trace._starts[index]


def _after_latency(trace: Trace, start_s: float) -> float:
    _, index, into = _locate(trace, start_s)
    time, left = start_s, 1.0  # share of the one latency still to spend
    while True:  # every pass spends a fixed positive share, so this ends
        period = trace.periods[index]
        room = period.duration_s - into
        if left * period.latency_s <= room:
            return time + left * period.latency_s
        left -= room / period.latency_s
        time += room
        index, into = (index + 1) % len(trace.periods), 0.0


def _bits_at(trace: Trace, time_s: float) -> float:
    loop, index, into = _locate(trace, time_s)
    bits = trace._bits
    return loop * bits[-1] + bits[index] + trace.periods[index].kbps * 1000.0 * into


def _time_at_bits(trace: Trace, target: float) -> float:
    """The earliest time by which the link has delivered ``target`` bits since time zero."""
    bits = trace._bits
    loop_f, rest = divmod(target, bits[-1])
    loop = int(loop_f)
    if rest <= 0.0 and loop > 0:
        loop, rest = loop - 1, bits[-1]
    index = max(bisect_left(bits, rest) - 1, 0)
    period = trace.periods[index]
    into = (rest - bits[index]) / (period.kbps * 1000.0) if rest > bits[index] else 0.0
    return loop * trace.seconds + trace._starts[index] + into


def shifted(trace: Trace, offset_s: float) -> Trace:
    """The same trace starting ``offset_s`` into it (modulo its length), the rest looped after.

    Sessions that start at several points of one trace meet its bad patches at different moments:
    at the start, when the buffer is empty, or later, when it is full.
    """
    offset = offset_s % trace.seconds
    if offset <= 0.0:
        return trace
    _, index, into = _locate(trace, offset)
    head, tail = trace.periods[:index], trace.periods[index + 1 :]
    period = trace.periods[index]
    rest = Period(period.duration_s - into, period.kbps, period.latency_s)
    before = (Period(into, period.kbps, period.latency_s),) if into > 0.0 else ()
    return Trace(f"{trace.name}@{offset:.0f}s", (rest, *tail, *head, *before))


def load_trace(path: Path) -> Trace:
    """A trace from a JSON list of ``{"duration_ms", "bandwidth_kbps", "latency_ms"}``."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: cannot read the trace: {e}") from e
    if not isinstance(raw, list) or not raw:
        raise InputError(f"{path}: a trace is a non-empty JSON list of periods")
    periods = tuple(_period(entry, f"{path}: period {i + 1}") for i, entry in enumerate(raw))
    if not delivers(periods):
        raise InputError(
            f"{path}: the periods deliver under one bit in all (zero or next to zero bandwidth)"
        )
    return Trace(path.stem, periods)


def _period(entry: Any, where: str) -> Period:
    if not isinstance(entry, dict) or set(entry) != _FIELDS:
        raise InputError(f"{where}: expected exactly the keys {sorted(_FIELDS)}")
    values = {}
    for key in _FIELDS:
        value = entry[key]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            raise InputError(f"{where}: {key} must be a number, got {value!r}")
        values[key] = float(value)
    if values["duration_ms"] <= 0 or values["bandwidth_kbps"] < 0 or values["latency_ms"] < 0:
        raise InputError(f"{where}: duration_ms must be positive and the others at least 0")
    return Period(
        values["duration_ms"] / 1000.0, values["bandwidth_kbps"], values["latency_ms"] / 1000.0
    )


def load_folder(folder: Path) -> list[Trace]:
    """Every ``*.json`` trace in ``folder``, by file name."""
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder of traces; pass --traces DIR")
    traces = [load_trace(path) for path in sorted(folder.glob("*.json"))]
    if not traces:
        raise InputError(f"{folder}: no *.json traces in this folder")
    return traces


def step_trace(
    high_kbps: float = 1000.0,
    low_kbps: float = 30.0,
    high_s: float = 30.0,
    low_s: float = 30.0,
    after_s: float = 3600.0,
    latency_s: float = 0.1,
) -> Trace:
    """``high_kbps`` for ``high_s``, ``low_kbps`` for ``low_s``, then ``high_kbps`` again."""
    return Trace(
        "step",
        (
            Period(high_s, high_kbps, latency_s),
            Period(low_s, low_kbps, latency_s),
            Period(after_s, high_kbps, latency_s),
        ),
    )
