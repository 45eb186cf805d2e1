"""What pre-positioning warms (learned from the edge's own requests) and how it counts waste."""

from hypothesis import given
from hypothesis import strategies as st

from edge.preposition import (
    Demand,
    PlayCounts,
    WarmLedger,
    first_keys,
    plan,
    relative_key,
    variant_keys,
    warm_tracks,
)

TRACK = "0123456789abcdef"
MASTER_KEY = f"tracks/{TRACK}/master.m3u8"
MASTER = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-SESSION-DATA:DATA-ID="com.cadenza.loudness",VALUE="-14.2"
#EXT-X-STREAM-INF:BANDWIDTH=280000,CODECS="mp4a.40.2"
v1/aac_256/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=60000,CODECS="mp4a.40.2"
v1/aac_48/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS="mp4a.40.2"
../../../etc/passwd
"""
MEDIA = """#EXTM3U
#EXT-X-TARGETDURATION:6
#EXT-X-MAP:URI="init.mp4"
#EXTINF:6.0,
seg_00000.m4s
#EXTINF:6.0,
seg_00001.m4s
#EXTINF:4.5,
seg_00002.m4s
#EXT-X-ENDLIST
"""


def segment(track: str, rung: str, index: int) -> str:
    return f"tracks/{track}/v1/{rung}/seg_{index:05d}.m4s"


def listen(counts: PlayCounts, track: str, rung: str, segments: int, first: int = 0) -> None:
    """The requests of one play of ``track`` at ``rung`` that lasts ``segments`` segments."""
    counts.record(f"tracks/{track}/v1/{rung}/init.mp4")
    for index in range(first, first + segments):
        counts.record(segment(track, rung, index))


def test_variants_resolve_against_the_master_and_unsafe_uris_are_dropped():
    assert variant_keys(MASTER_KEY, MASTER) == [
        f"tracks/{TRACK}/v1/aac_256/index.m3u8",
        f"tracks/{TRACK}/v1/aac_48/index.m3u8",
    ]
    assert relative_key(MASTER_KEY, "http://elsewhere.example/x.m3u8") is None
    assert relative_key(MASTER_KEY, "/tracks/x/y.m3u8") is None


def test_the_first_seconds_of_a_rendition_are_its_init_and_first_segments():
    key = f"tracks/{TRACK}/v1/aac_48/index.m3u8"
    folder = f"tracks/{TRACK}/v1/aac_48"
    assert first_keys(key, MEDIA, 12) == [
        f"{folder}/init.mp4",
        f"{folder}/seg_00000.m4s",
        f"{folder}/seg_00001.m4s",
    ]
    assert first_keys(key, MEDIA, 1) == [f"{folder}/init.mp4", f"{folder}/seg_00000.m4s"]
    assert first_keys(key, MEDIA, 600, positions=[1]) == [
        f"{folder}/init.mp4",
        f"{folder}/seg_00001.m4s",
    ]
    assert first_keys(key, MEDIA, 6, positions=[1]) == [f"{folder}/init.mp4"]
    assert len(first_keys(key, MEDIA, 600)) == 4
    assert first_keys(key, "#EXTM3U\nnot a playlist\n", 12) == []


def test_play_counts_learn_plays_and_positions_by_rung_and_fade():
    counts = PlayCounts()
    for segments in (1, 1, 2, 2):  # four plays of a at 48 kbit/s, two to the second segment
        listen(counts, "a" * 16, "aac_48", segments)
    listen(counts, "b" * 16, "aac_256", 1)
    counts.record(f"tracks/{'c' * 16}/v1/aac_256/init.mp4")  # a switch of rung, not a play
    counts.record(f"tracks/{'c' * 16}/master.m3u8")
    counts.record("tracks/x/v1/aac_48/seg_x.m4s")
    demand = counts.take()
    assert demand.plays == {"a" * 16: 4, "b" * 16: 1}
    assert demand.positions == {("aac_48", 0): 4, ("aac_48", 1): 2, ("aac_256", 0): 1}
    assert demand.rungs() == ["aac_256", "aac_48"]
    assert demand.most_played(5) == ["a" * 16, "b" * 16]
    assert demand.chance("aac_48", 0) == 0.8 and demand.chance("aac_48", 1) == 0.4
    assert demand.chance("aac_256", 1) == 0 and demand.chance("aac_96", 0) == 0
    assert counts.take().plays == {"a" * 16: 2}  # halved: 4 -> 2, 1 -> gone
    assert counts.take().plays == {"a" * 16: 1}
    assert counts.take().plays == {}


def test_plays_and_positions_count_from_the_first_segment_number_asked_for():
    counts = PlayCounts()
    for segments in (1, 2, 2, 3):
        listen(counts, TRACK, "aac_48", segments, first=1)
    demand = counts.take()
    assert demand.plays == {TRACK: 4}
    assert [demand.chance("aac_48", i) for i in range(4)] == [1, 0.75, 0.25, 0]


def test_the_plan_warms_only_the_rungs_and_positions_players_ask_for():
    counts = PlayCounts()
    for segments in (1,) * 6 + (2,) * 4:  # ten plays at 48, four on to the second segment
        listen(counts, TRACK, "aac_48", segments)
    for _ in range(4):  # ... and four that climb to 256 for their second segment
        listen(counts, TRACK, "aac_48", 1)
        counts.record(segment(TRACK, "aac_256", 1))
    demand = counts.take()
    # 14 plays, 7 a round: 48 first 14/14, 48 second 4/14 (2 expected), 256 second 4/14
    assert plan(demand, [TRACK], tracks=5, max_segments=4) == {
        TRACK: {"aac_256": [1], "aac_48": [0, 1]}
    }
    assert plan(demand, [TRACK], tracks=5, max_segments=1) == {TRACK: {"aac_48": [0]}}
    assert plan(demand, [TRACK], tracks=5, max_segments=4, min_expected=3) == {
        TRACK: {"aac_48": [0]}
    }
    assert plan(demand, ["f" * 16], tracks=5, max_segments=4) == {}  # never played here
    assert plan(demand, [TRACK], tracks=0, max_segments=4) == {}


demands = st.builds(
    Demand,
    plays=st.dictionaries(st.sampled_from("abcd"), st.integers(0, 50)),
    positions=st.dictionaries(
        st.tuples(st.sampled_from(["aac_48", "aac_96", "aac_256"]), st.integers(0, 8)),
        st.integers(0, 50),
    ),
)


@given(
    demands,
    st.lists(st.sampled_from("abcdef")),
    st.integers(0, 4),
    st.integers(0, 6),
    st.floats(0.5, 10),
)
def test_the_plan_stays_within_what_was_played_and_its_bounds(
    demand, candidates, tracks, most, least
):
    chosen = plan(demand, candidates, tracks, most, least)
    assert len(chosen) <= tracks
    assert list(chosen) == [t for t in dict.fromkeys(candidates) if t in chosen]
    for track, rungs in chosen.items():
        assert demand.plays.get(track, 0) > 0
        for rung, positions in rungs.items():
            assert positions == sorted(set(positions)) and positions[0] >= 0
            assert positions[-1] < most
            for i in positions:  # every one warmed is worth it
                assert demand.plays[track] / 2 * demand.chance(rung, i) >= least


@given(demands, st.floats(0.5, 10), st.floats(0.5, 10))
def test_a_higher_bar_never_warms_more(demand, low, extra):
    tracks = list("abcd")
    strict = plan(demand, tracks, 4, 6, low + extra)
    loose = plan(demand, tracks, 4, 6, low)
    for track, rungs in strict.items():
        for rung, positions in rungs.items():
            assert set(positions) <= set(loose[track][rung])


def ledger_log() -> tuple[WarmLedger, list[tuple[str, int]]]:
    log: list[tuple[str, int]] = []
    return WarmLedger(30.0, lambda outcome, n: log.append((outcome, n)), max_objects=3), log


def test_the_ledger_counts_warmed_objects_as_used_or_wasted_once():
    ledger, log = ledger_log()
    for i, key in enumerate("abc"):
        ledger.filling(key)
        ledger.warmed(key, 100 + i, now=float(i))
    ledger.requested("a")
    ledger.requested("a")  # asked again: counted once
    ledger.requested("z")  # never warmed
    ledger.expire(now=31.0)  # b (warmed at 1) is past the window, c (at 2) is not
    assert log == [
        ("warmed", 100), ("warmed", 101), ("warmed", 102), ("used", 100), ("wasted", 101),
    ]  # fmt: skip
    assert len(ledger) == 1


def test_an_object_asked_for_while_it_is_fetched_was_used_and_a_failed_fetch_is_nothing():
    ledger, log = ledger_log()
    ledger.filling("a")
    ledger.requested("a")
    ledger.warmed("a", 10, now=0.0)
    ledger.filling("b")
    ledger.warmed("b", None, now=0.0)
    ledger.expire(now=100.0)
    assert log == [("warmed", 10), ("used", 10)]
    assert len(ledger) == 0


def test_the_ledger_is_bounded_the_oldest_leaving_as_wasted():
    ledger, log = ledger_log()
    for i in range(5):
        ledger.warmed(f"k{i}", 1, now=0.0)
    assert len(ledger) == 3
    assert log.count(("wasted", 1)) == 2


@given(
    st.lists(
        st.tuples(st.sampled_from(["warm", "ask", "expire"]), st.sampled_from("abcde")),
        max_size=60,
    )
)
def test_every_warmed_object_ends_at_most_once_and_the_books_balance(events):
    ledger, log = ledger_log()
    now = 0.0
    for action, key in events:
        now += 7.0
        if action == "warm":
            ledger.filling(key)
            ledger.warmed(key, 1, now)
        elif action == "ask":
            ledger.requested(key)
        else:
            ledger.expire(now)
    ledger.expire(now + 1000)
    warmed = log.count(("warmed", 1))
    assert log.count(("used", 1)) + log.count(("wasted", 1)) == warmed
    assert len(ledger) == 0


async def test_warming_reads_playlists_and_warms_the_planned_rungs_and_positions():
    objects = {
        MASTER_KEY: MASTER.encode(),
        f"tracks/{TRACK}/v1/aac_256/index.m3u8": MEDIA.encode(),
        f"tracks/{TRACK}/v1/aac_48/index.m3u8": MEDIA.encode(),
    }
    warmed: list[str] = []

    async def obtain(key: str) -> bytes | None:
        return objects.get(key)

    async def warm(key: str) -> None:
        warmed.append(key)

    wanted = {TRACK: {"aac_48": [0, 2]}, "f" * 16: {"aac_48": [0]}, "../../x": {"aac_48": [0]}}
    asked = await warm_tracks(wanted, 60, obtain, warm)
    assert asked == len(warmed) == 3
    assert warmed == [
        f"tracks/{TRACK}/v1/aac_48/{name}"
        for name in ("init.mp4", "seg_00000.m4s", "seg_00002.m4s")
    ]
