"""The playback buffer's account of a play, and its summary."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from player.qoe import STALL_EPSILON_S, Failure, Playback, SegmentRecord


def _segment(
    index: int, rung: int = 1, pathway: str = "par1", nbytes: int = 1000, duration: float = 6.0
) -> SegmentRecord:
    bitrate = [48.0, 96.0, 160.0, 256.0][rung]
    return SegmentRecord(index, rung, bitrate, pathway, nbytes, 0.5, duration, 0.0)


def test_playback_starts_with_the_first_segment_and_drains_in_real_time():
    playback = Playback(asked_at_s=1.0)
    assert not playback.playing and playback.level(5.0) == 0.0
    playback.arrived(2.5, _segment(0))
    assert playback.playing and playback.level(2.5) == 6.0
    assert playback.level(4.5) == 4.0 and playback.level(20.0) == 0.0
    playback.arrived(4.5, _segment(1))
    assert playback.level(4.5) == 10.0 and playback.ends_at() == 14.5
    summary = playback.summary("t", "cadenza", ("par1",), 0.0)
    assert summary.startup_s == 1.5 and summary.stalls == 0 and summary.stall_s == 0.0


def test_a_segment_that_arrives_after_the_buffer_ran_dry_is_a_stall():
    playback = Playback()
    playback.arrived(1.0, _segment(0))  # plays until 7
    playback.arrived(9.5, _segment(1))  # 2.5 s of silence; plays until 15.5
    playback.arrived(15.5, _segment(2))  # just in time
    playback.arrived(22.0, _segment(3))  # 0.5 s
    summary = playback.summary("t", "cadenza", ("par1",), 0.0)
    assert summary.stalls == 2
    assert summary.stall_s == pytest.approx(3.0)
    assert summary.longest_stall_s == pytest.approx(2.5)


def test_the_summary_counts_bitrate_switches_bytes_edges_and_failovers():
    playback = Playback()
    playback.fetched(500)  # a playlist
    playback.arrived(1.0, _segment(0, rung=3, nbytes=200_000))
    playback.arrived(2.0, _segment(1, rung=3, nbytes=190_000))
    playback.failed(Failure(2, "par1", "segment", "refused", 2.5))
    playback.arrived(3.0, _segment(2, rung=1, pathway="fra1", nbytes=70_000))
    playback.arrived(4.0, _segment(3, rung=3, pathway="fra1", nbytes=20_000, duration=1.0))
    qoe = playback.summary("t", "cadenza", ("par1", "fra1"), 3.0)
    assert qoe.average_kbps == pytest.approx((256 * 12 + 96 * 6 + 256 * 1) / 19)
    assert qoe.switches == 2
    assert qoe.bytes == 480_500
    assert qoe.edge_share == {"par1": 0.5, "fra1": 0.5}
    assert qoe.failovers == 1 and qoe.failures[0].pathway == "par1"
    assert qoe.duration_s == 19.0 and qoe.loudness_gain_db == 3.0
    doc = json.loads(json.dumps(qoe.to_json()))
    assert doc["pathways"] == ["par1", "fra1"]
    assert doc["segments"][2]["pathway"] == "fra1" and doc["failures"][0]["what"] == "segment"


def test_the_text_rendering_is_a_few_aligned_lines():
    playback = Playback()
    playback.arrived(0.4, _segment(0))
    text = playback.summary("0123456789abcdef", "bola", ("par1",), -2.5).render()
    lines = text.splitlines()
    assert 5 <= len(lines) <= 10
    assert len({len(line) - len(line[10:].lstrip()) for line in lines}) == 1
    assert "0123456789abcdef" in lines[0] and "bola" in lines[0]
    assert "par1 100%" in text and "-2.5 dB" in text


def test_an_empty_play_summarises_to_zeroes():
    qoe = Playback().summary("t", "cadenza", (), 0.0)
    assert (qoe.duration_s, qoe.average_kbps, qoe.stalls, qoe.edge_share) == (0.0, 0.0, 0, {})


@given(
    durations=st.lists(st.floats(0.5, 10), min_size=1, max_size=30),
    waits=st.lists(st.floats(0.0, 15), min_size=30, max_size=30),
)
def test_wall_time_is_startup_plus_music_plus_stalls(durations, waits):
    """Whatever the arrival times, the playhead ends at startup + media + stall time."""
    playback = Playback()
    now = 0.0
    for index, duration in enumerate(durations):
        now += waits[index]
        playback.arrived(now, _segment(index, duration=duration))
    qoe = playback.summary("t", "cadenza", ("par1",), 0.0)
    spent = qoe.startup_s + sum(durations) + qoe.stall_s
    assert playback.ends_at() == pytest.approx(spent, abs=len(durations) * STALL_EPSILON_S)
    assert qoe.stalls <= len(durations) - 1
