"""The offline store: device id, downloaded objects, track entries and the play journal."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from cadenza.licences import DEVICE, Licence, sign_licence
from cadenza.plays import PlayEvent
from player.store import OfflineStore, OfflineTrack, StoreError

SECRET = b"store-test-secret-0123456789abcdef"
TRACK = "0123456789abcdef"
VERSION = "v0123456789ab"
PLAYLIST = f"tracks/{TRACK}/{VERSION}/aac_48/index.m3u8"


def _entry(version: str = VERSION) -> OfflineTrack:
    licence = Licence("k1", 1_800_000_000, 1_802_592_000, "SE", TRACK, version, "ada", "dev-0001")
    playlist = f"tracks/{TRACK}/{version}/aac_48/index.m3u8"
    loudness = {"org.cadenza.loudness.integrated-lufs": "-16.4"}
    text = sign_licence(licence, SECRET)
    return OfflineTrack(TRACK, text, playlist, 60_000, 52_000, "mp4a.40.2", loudness, 3)


def _event(play_id: str, n: int) -> PlayEvent:
    return PlayEvent(f"{play_id}{n:04d}", play_id, "start", 1_800_000_000.0 + n, TRACK, VERSION,
                     "SE", "", 0, 48, 0, offline=True)  # fmt: skip


def test_the_device_id_is_made_once_even_when_asked_at_once(tmp_path: Path):
    store = OfflineStore(tmp_path / "store")
    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: store.device_id(), range(16)))
    assert len(ids) == 1 and DEVICE.fullmatch(ids.pop())
    assert OfflineStore(tmp_path / "store").device_id() == store.device_id()
    assert [p.name for p in (tmp_path / "store").iterdir()] == ["device"]  # no leftovers


def test_a_track_is_playable_once_saved_and_gone_once_removed(tmp_path: Path):
    store = OfflineStore(tmp_path)
    store.keep(PLAYLIST, b"#EXTM3U")
    assert store.get(PLAYLIST) == b"#EXTM3U" and store.get("tracks/../../etc/passwd") is None
    assert store.track(TRACK) is None and store.tracks() == []
    store.put(f"tracks/{TRACK}/{VERSION}/aac_48/seg_00000.m4s", b"x")  # a play keeps nothing
    assert store.get(f"tracks/{TRACK}/{VERSION}/aac_48/seg_00000.m4s") is None
    store.save(_entry())
    assert store.track(TRACK) == _entry() and store.tracks() == [_entry()]
    assert store.track(TRACK).version == VERSION  # type: ignore[union-attr]
    assert store.remove(TRACK) and not store.remove(TRACK)
    assert store.get(PLAYLIST) is None and store.track(TRACK) is None


def test_a_new_version_replaces_the_old_ones_objects(tmp_path: Path):
    store = OfflineStore(tmp_path)
    store.keep(PLAYLIST, b"old")
    store.save(_entry())
    newer = "v00000000beef"
    store.keep(f"tracks/{TRACK}/{newer}/aac_48/index.m3u8", b"new")
    store.save(_entry(newer))
    assert store.get(PLAYLIST) is None and store.track(TRACK) == _entry(newer)


def test_a_damaged_entry_says_what_to_run(tmp_path: Path):
    store = OfflineStore(tmp_path)
    store.save(replace(_entry(), licence=_entry(version="v00000000beef").licence))
    with pytest.raises(StoreError, match="offline remove"):
        store.track(TRACK)
    (tmp_path / "tracks" / f"{TRACK}.json").write_text("{not json")
    with pytest.raises(StoreError, match="damaged"):
        store.tracks()


def test_the_journal_keeps_each_plays_events_until_settled(tmp_path: Path):
    store = OfflineStore(tmp_path)
    first, second = "a" * 32, "b" * 32
    store.journal([_event(first, 0)])
    store.journal([_event(first, 0), _event(first, 1)])  # the same play, rewritten
    store.journal([_event(second, 2)])
    pending = dict(store.pending())
    assert [e.id for e in pending[first]] == [f"{first}0000", f"{first}0001"]
    assert len(pending[second]) == 1
    store.journal([_event(second, 2), _event(second, 3)])  # a play going on, after the read
    store.settle([first, second, "../escape"])
    assert [(play, len(events)) for play, events in store.pending()] == [(second, 2)]
    store.settle([second])
    assert store.pending() == []
    with pytest.raises(ValueError, match="exactly one play"):
        store.journal([_event(first, 0), _event(second, 1)])
