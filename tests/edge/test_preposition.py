"""Which objects pre-positioning warms, and the play counts that pick the tracks."""

from edge.preposition import PlayCounts, first_keys, relative_key, variant_keys, warm_tracks

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
seg_00001.m4s
#EXTINF:6.0,
seg_00002.m4s
#EXTINF:4.5,
seg_00003.m4s
#EXT-X-ENDLIST
"""


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
        f"{folder}/seg_00001.m4s",
        f"{folder}/seg_00002.m4s",
    ]
    assert first_keys(key, MEDIA, 1) == [f"{folder}/init.mp4", f"{folder}/seg_00001.m4s"]
    assert len(first_keys(key, MEDIA, 600)) == 4
    assert first_keys(key, "#EXTM3U\nnot a playlist\n", 12) == []


def test_play_counts_rank_tracks_by_init_requests_and_fade():
    plays = PlayCounts()
    for _ in range(4):
        plays.record(f"tracks/{'a' * 16}/v1/aac_48/init.mp4")
    plays.record(f"tracks/{'b' * 16}/v1/aac_256/init.mp4")
    plays.record(f"tracks/{'c' * 16}/v1/aac_256/seg_00001.m4s")  # not a play
    assert plays.take_top(5) == ["a" * 16, "b" * 16]
    assert plays.take_top(5) == ["a" * 16]  # halved: 4 -> 2, 1 -> gone
    assert plays.take_top(5) == ["a" * 16]
    assert plays.take_top(5) == []


async def test_warming_reads_playlists_and_warms_every_rung():
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

    asked = await warm_tracks([TRACK, "f" * 16, "../../x"], 6, obtain, warm)
    assert asked == len(warmed) == 4
    assert warmed == [
        f"tracks/{TRACK}/v1/{rung}/{name}"
        for rung in ("aac_256", "aac_48")
        for name in ("init.mp4", "seg_00001.m4s")
    ]
