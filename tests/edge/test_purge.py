"""Takedown events become purges and denials."""

from cadenza.events import PUBLISHED, TAKEDOWN, Event
from edge.purge import Denials

KEY = "tracks/0123456789abcdef/v0123456789ab/aac_96/seg_00001.m4s"


def test_territory_takedowns_deny_that_territory_only():
    denials = Denials()
    purge = denials.apply(
        [
            Event(3, PUBLISHED, "0123456789abcdef"),
            Event(4, TAKEDOWN, "0123456789abcdef", "DE"),
        ]
    )
    assert purge == [] and denials.last_seq == 4
    assert denials.denied(KEY, "DE") == 451
    assert denials.denied(KEY, "FR") is None
    assert denials.denied(KEY, None) is None


def test_a_global_takedown_purges_and_answers_410_everywhere():
    denials = Denials()
    purge = denials.apply([Event(9, TAKEDOWN, "0123456789abcdef")])
    assert purge == ["0123456789abcdef"]
    assert denials.denied(KEY, "FR") == 410 and denials.denied(KEY, None) == 410
    assert denials.denied("tracks/fedcba9876543210/master.m3u8", None) is None
