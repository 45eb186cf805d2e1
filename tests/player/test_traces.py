"""Traces load with errors that name the file, and download times integrate the bandwidth."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadenza.errors import InputError
from player.traces import (
    DEFAULT_TRACES,
    Period,
    Trace,
    delivers,
    download_time,
    first_byte_s,
    load_folder,
    load_trace,
    shifted,
    step_trace,
)


def shared_traces(kind: str) -> Path:
    folder = DEFAULT_TRACES / kind
    if not folder.is_dir():
        pytest.fail(f"the shared network traces are missing: expected {folder}")
    return folder


def trace(*periods: tuple[float, float, float]) -> Trace:
    return Trace("test", tuple(Period(*p) for p in periods))


TWO_RATES = trace((2.0, 1000.0, 0.0), (2.0, 500.0, 0.0))  # 2 Mbit, then 1 Mbit, per pass


@pytest.mark.parametrize(
    ("start", "megabits", "seconds"),
    [
        (0.0, 2.0, 2.0),  # the whole first period
        (0.0, 3.0, 4.0),  # both periods
        (0.0, 5.0, 6.0),  # a whole pass, then 2 Mbit into the next
        (1.0, 1.0, 1.0),
        (1.5, 1.0, 1.5),  # 0.5 Mbit at 1000 kbit/s, 0.5 Mbit at 500 kbit/s
        (9.5, 1.0, 1.5),  # the same, two passes later
        (3.0, 0.0, 0.0),
    ],
)
def test_download_time_integrates_the_bandwidth_and_loops(start, megabits, seconds):
    assert download_time(TWO_RATES, start, megabits * 1e6 / 8) == pytest.approx(seconds)


def test_a_request_spends_one_latency_first():
    assert download_time(trace((10.0, 800.0, 0.1)), 0.0, 100_000) == pytest.approx(1.1)


def test_a_latency_that_crosses_periods_goes_at_each_periods_pace():
    link = trace((1.0, 1000.0, 0.2), (1.0, 1000.0, 0.4))
    # Half the latency in the last 0.1 s of the first period, the other half takes 0.2 s.
    assert download_time(link, 0.9, 0) == pytest.approx(0.3)
    assert download_time(link, 0.9, 12_500) == pytest.approx(0.4)


def test_the_first_byte_comes_after_the_latency_spent_as_a_download_spends_it():
    link = trace((1.0, 1000.0, 0.2), (1.0, 1000.0, 0.4))
    assert first_byte_s(link, 0.2) == pytest.approx(0.2)
    assert first_byte_s(link, 0.9) == pytest.approx(0.3)  # 0.1 s at 0.2, 0.2 s at 0.4
    assert first_byte_s(link, 0.9) == pytest.approx(download_time(link, 0.9, 0))


def test_nothing_arrives_while_the_link_is_down():
    assert download_time(trace((1.0, 0.0, 0.0), (1.0, 1000.0, 0.0)), 0.0, 125_000) == 2.0


periods = st.lists(
    st.tuples(
        st.floats(0.1, 20.0),
        st.sampled_from([0.0, 30.0, 100.0, 1000.0, 3000.0]),
        st.floats(0.0, 0.5),
    ),
    min_size=1,
    max_size=6,
).filter(lambda ps: any(p[1] > 0 for p in ps))


@given(periods, st.floats(0.0, 100.0), st.floats(0.0, 100.0), st.floats(0.0, 1e6))
def test_a_request_sent_later_never_arrives_earlier(ps, first, second, nbytes):
    link = trace(*ps)
    early, late = sorted((first, second))
    assert (
        early + download_time(link, early, nbytes)
        <= late + download_time(link, late, nbytes) + 1e-6
    )


def write(path: Path, content: object) -> Path:
    path.write_text(json.dumps(content) if not isinstance(content, str) else content)
    return path


def test_a_trace_file_loads_in_seconds(tmp_path):
    path = write(
        tmp_path / "walk.json",
        [
            {"duration_ms": 1500, "bandwidth_kbps": 800, "latency_ms": 100},
            {"duration_ms": 500, "bandwidth_kbps": 0, "latency_ms": 20.5},
        ],
    )
    assert load_trace(path) == Trace("walk", (Period(1.5, 800.0, 0.1), Period(0.5, 0.0, 0.0205)))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[{", "cannot read the trace"),
        ({"duration_ms": 1}, "non-empty JSON list"),
        ([], "non-empty JSON list"),
        ([{"duration_ms": 1000, "bandwidth_kbps": 100}], "period 1: expected exactly the keys"),
        ([{"duration_ms": 1000, "bandwidth_kbps": "fast", "latency_ms": 0}], "bandwidth_kbps"),
        ('[{"duration_ms": Infinity, "bandwidth_kbps": 1, "latency_ms": 0}]', "a number"),
        ([{"duration_ms": 0, "bandwidth_kbps": 100, "latency_ms": 0}], "must be positive"),
        ([{"duration_ms": 10, "bandwidth_kbps": 0, "latency_ms": 0}], "zero bandwidth"),
        ([{"duration_ms": 1000, "bandwidth_kbps": 1e-308, "latency_ms": 0}], "under one bit"),
    ],
)
def test_a_malformed_trace_is_an_input_error_naming_the_file(tmp_path, content, message):
    path = write(tmp_path / "bad.json", content)
    with pytest.raises(InputError, match=message) as error:
        load_trace(path)
    assert str(path) in str(error.value)


def test_a_missing_or_empty_folder_says_which(tmp_path):
    with pytest.raises(InputError, match="no such folder") as error:
        load_folder(tmp_path / "absent")
    assert str(tmp_path / "absent") in str(error.value)
    with pytest.raises(InputError, match=r"no \*\.json traces"):
        load_folder(tmp_path)


def test_the_shared_3g_traces_all_load():
    traces = load_folder(shared_traces("3g"))
    assert len(traces) >= 40
    assert all(t.seconds > 60 for t in traces)
    assert traces == sorted(traces, key=lambda t: t.name)


def test_the_step_trace_drops_then_recovers():
    step = step_trace()
    assert [(p.duration_s, p.kbps) for p in step.periods] == [
        (30.0, 1000.0),
        (30.0, 30.0),
        (3600.0, 1000.0),
    ]
    # Sent at 29.9 s: 0.1 s latency, then 0.5 Mbit at 30 kbit/s; 1 Mbit spans the recovery.
    assert download_time(step, 29.9, 62_500) == pytest.approx(0.1 + 500 / 30)
    assert download_time(step, 29.9, 125_000) == pytest.approx(0.1 + 30 + 0.1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.2, 10.0), st.floats(0.0, 3000.0), st.floats(0.0, 0.3)),
        min_size=1,
        max_size=6,
    ).filter(lambda ps: delivers(Period(*p) for p in ps)),
    st.floats(0.0, 100.0),
    st.floats(0.0, 50.0),
    st.floats(1.0, 2e5),
)
def test_a_shifted_trace_is_the_same_link_seen_from_later(periods, offset, start, nbytes):
    link = Trace("t", tuple(Period(*p) for p in periods))
    later = shifted(link, offset)
    assert later.seconds == pytest.approx(link.seconds)
    assert download_time(later, start, nbytes) == pytest.approx(
        download_time(link, start + offset % link.seconds, nbytes), rel=1e-6, abs=1e-6
    )


def test_a_trace_of_next_to_no_bandwidth_is_refused():
    """A denormal bandwidth once passed as some bandwidth, and a download on it overflowed."""
    with pytest.raises(ValueError, match="under one bit"):
        Trace("t", (Period(1.0, 2.2250738585072014e-308, 0.0),))
    with pytest.raises(ValueError, match="under one bit"):
        Trace("t", (Period(1.0, 0.0, 0.1),))
    assert download_time(Trace("t", (Period(1.0, 0.001, 0.0),)), 0.0, 1.0) == 8.0


def test_shifting_by_nothing_or_a_whole_pass_gives_the_trace_back():
    link = Trace("t", (Period(2.0, 100.0, 0.0), Period(3.0, 500.0, 0.1)))
    assert shifted(link, 0.0) is link and shifted(link, 5.0) is link
    assert shifted(link, 1.0).periods == (
        Period(1.0, 100.0, 0.0),
        Period(3.0, 500.0, 0.1),
        Period(1.0, 100.0, 0.0),
    )
    assert shifted(link, 1.0).name == "t@1s"
