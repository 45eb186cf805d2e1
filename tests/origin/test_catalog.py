import asyncio
import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cadenza.events import PUBLISHED, Event
from origin.catalog import Catalog
from origin.errors import Conflict, Forbidden, LabelExists, NotFound, OriginError, Unauthorized

TRACK = "t000000000000001"
OTHER_TRACK = "t000000000000002"
V1 = "v000000000001"
V2 = "v000000000002"
START = 1_700_000_000.0
FILES = {
    "metadata.json": b'{"tags": {}}\n',
    "a256/index.m3u8": b"#EXTM3U\n",
    "a256/init.mp4": b"init",
    "a256/seg_00000.m4s": b"segment zero",
}
LOUDNESS = {"integrated_lufs": -14.2, "true_peak_dbtp": -1.1, "range_lu": 6.0}
RUNG = {"name": "a256", "codecs": "mp4a.40.2", "peak_bps": 270_000, "average_bps": 256_000}
METADATA = {
    "tags": {
        "title": "Song",
        "artist": "Band",
        "album": "Record",
        "track_number": 3,
        "isrc": "GBAYE0000001",
        "upc": "012345678905",
    },
    "duration": 13.04,
    "loudness": LOUDNESS,
    "rungs": [RUNG],
}


def metadata(version: str) -> dict[str, Any]:
    return {**METADATA, "version": version}


class Clock:
    """A clock that moves one second each time it is read."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        self.now += 1
        return self.now


def manifest_of(files: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    return {
        path: {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        for path, body in files.items()
    }


def track_id(n: int) -> str:
    return f"t{n:015d}"


@pytest.fixture
def path(tmp_path):
    """The SQLite file of the tests of what only SQLite has (WAL, a file on disk)."""
    return tmp_path / "catalog.sqlite3"


@pytest.fixture
def where(catalog_where):
    """The catalog's SQLite file, then its PostgreSQL URL: most tests run on both engines."""
    return catalog_where


@pytest.fixture
async def catalog(where):
    catalog = await Catalog.open(where, Clock())
    yield catalog
    await catalog.close()


@pytest.fixture
async def label(catalog):
    await catalog.add_label("indie")
    return "indie"


async def stage(
    catalog: Catalog,
    label: str = "indie",
    track: str = TRACK,
    version: str = V1,
    files: dict[str, bytes] = FILES,
    territories: list[str] | None = None,
) -> list[str]:
    return await catalog.stage_version(
        label, track, version, metadata(version), manifest_of(files), territories
    )


async def upload(
    catalog: Catalog, track: str = TRACK, version: str = V1, files: dict[str, bytes] = FILES
) -> None:
    for path, entry in manifest_of(files).items():
        await catalog.record_object(track, version, path, entry["size"], entry["sha256"])


async def publish(
    catalog: Catalog,
    label: str = "indie",
    track: str = TRACK,
    version: str = V1,
    files: dict[str, bytes] = FILES,
    territories: list[str] | None = None,
) -> int:
    await stage(catalog, label, track, version, files, territories)
    await upload(catalog, track, version, files)
    return await catalog.publish(label, track, version)


def all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())


# Opening and closing


async def test_open_creates_a_wal_database_with_a_schema_version(path):
    await (await Catalog.open(path)).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert {"labels", "tracks", "versions", "objects", "takedowns", "events"} <= tables


async def test_all_work_runs_on_one_worker_thread_that_close_ends(path):
    def workers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("cadenza-catalog")]

    before = len(workers())
    catalog = await Catalog.open(path)
    await asyncio.gather(*(catalog.add_label(f"label{i}") for i in range(20)))
    assert len(workers()) == before + 1
    await catalog.close()
    assert len(workers()) == before


async def test_reopening_keeps_everything(where):
    catalog = await Catalog.open(where, Clock())
    key = await catalog.add_label("indie")
    await publish(catalog, territories=["de", "at"])
    await stage(catalog, version=V2)
    await catalog.takedown(TRACK, "FR")
    before = (await catalog.track(TRACK), await catalog.events(0), await catalog.last_seq())
    await catalog.close()

    catalog = await Catalog.open(where, Clock())
    try:
        after = (await catalog.track(TRACK), await catalog.events(0), await catalog.last_seq())
        assert after == before
        assert await catalog.label_for_key(key) == "indie"
        assert await catalog.is_published(TRACK, V1)
        assert await catalog.missing_objects(TRACK, V2) == sorted(FILES)
        with pytest.raises(LabelExists):
            await catalog.add_label("indie")
        # The in-memory event counter starts from the file's: old events do not wake anyone.
        assert await catalog.wait_for_events(before[2], timeout=0.05) == []
    finally:
        await catalog.close()


async def test_open_reports_a_missing_folder(tmp_path):
    with pytest.raises(OriginError, match="cannot open the catalog"):
        await Catalog.open(tmp_path / "missing" / "catalog.sqlite3")


async def test_open_reports_a_file_that_is_not_a_database(path):
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(OriginError, match="unusable"):
        await Catalog.open(path)


async def test_open_refuses_a_newer_schema(path):
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (99)")
    db.close()
    with pytest.raises(OriginError, match="schema version 99"):
        await Catalog.open(path)


async def test_close_is_idempotent_and_later_calls_fail(where):
    catalog = await Catalog.open(where)
    await catalog.close()
    await catalog.close()
    with pytest.raises(RuntimeError, match="closed"):
        await catalog.last_seq()
    with pytest.raises(RuntimeError, match="closed"):
        await catalog.add_label("indie")


# Labels and keys


async def test_add_label_returns_a_key_that_identifies_the_label(catalog):
    indie = await catalog.add_label("indie")
    major = await catalog.add_label("major-label_2")
    assert indie.startswith("cdz_") and len(indie) > 40
    assert indie != major
    assert await catalog.label_for_key(indie) == "indie"
    assert await catalog.label_for_key(major) == "major-label_2"


@pytest.mark.parametrize("key", ["", "cdz_", "cdz_wrong", "not a key at all", "é" * 50])
async def test_an_unknown_key_identifies_nobody(catalog, label, key):
    assert await catalog.label_for_key(key) is None


async def test_a_label_name_is_taken_once(catalog, label):
    with pytest.raises(LabelExists, match="'indie' already exists") as caught:
        await catalog.add_label("indie")
    assert isinstance(caught.value, Conflict)
    assert caught.value.status == 409


@pytest.mark.parametrize("name", ["a", "0", "a" * 64, "0-label_x", "x-"])
async def test_label_names_that_are_allowed(catalog, name):
    assert await catalog.label_for_key(await catalog.add_label(name)) == name


@pytest.mark.parametrize("name", ["", "A", "Indie", "-x", "_x", "a" * 65, "a b", "é", "a/b", "a\n"])
async def test_label_names_that_are_refused(catalog, name):
    with pytest.raises(ValueError, match="label name"):
        await catalog.add_label(name)


async def test_only_the_hash_of_a_key_is_stored(path):
    catalog = await Catalog.open(path)
    key = await catalog.add_label("indie")
    digest = hashlib.sha256(key.encode()).hexdigest()
    secret = key.removeprefix("cdz_").encode()
    assert secret not in all_bytes(path.parent)  # the main file and the WAL, while open
    await catalog.close()
    assert secret not in all_bytes(path.parent)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT name, key_sha256 FROM labels").fetchall() == [("indie", digest)]
    db.close()


# Staging and uploads


async def test_staging_creates_the_track_and_lists_every_object(catalog, label):
    assert await stage(catalog, territories=["de", "AT", "DE"]) == sorted(FILES)
    track = await catalog.track(TRACK)
    assert track == {
        "track_id": TRACK,
        "label": "indie",
        "title": None,
        "artist": None,
        "album": None,
        "isrc": None,
        "upc": None,
        "duration": None,
        "loudness": None,
        "current_version": None,
        "territories": ["AT", "DE"],
        "takedowns": [],
        "withdrawn": False,
    }
    assert not await catalog.is_published(TRACK, V1)


async def test_staging_again_lists_what_is_still_missing(catalog, label):
    await stage(catalog)
    entry = manifest_of(FILES)["a256/init.mp4"]
    await catalog.record_object(TRACK, V1, "a256/init.mp4", entry["size"], entry["sha256"])
    expected = sorted(set(FILES) - {"a256/init.mp4"})
    assert await stage(catalog) == expected
    assert await catalog.missing_objects(TRACK, V1) == expected


async def test_staging_a_version_with_another_manifest_conflicts(catalog, label):
    await stage(catalog)
    with pytest.raises(Conflict, match=f"version {V1} of track {TRACK} was staged"):
        await stage(catalog, files={**FILES, "a256/init.mp4": b"other"})


async def test_staging_another_labels_track_is_forbidden(catalog, label):
    await catalog.add_label("major")
    await stage(catalog)
    with pytest.raises(Forbidden, match="another label") as caught:
        await stage(catalog, label="major", version=V2)
    assert caught.value.status == 403
    assert await catalog.missing_objects(TRACK, V1) == sorted(FILES)
    with pytest.raises(NotFound):
        await catalog.missing_objects(TRACK, V2)


async def test_staging_for_an_unknown_label_is_not_found(catalog):
    with pytest.raises(NotFound, match="no label 'ghost'"):
        await stage(catalog, label="ghost")
    assert await catalog.track(TRACK) is None


async def test_staging_a_published_version_lists_nothing(catalog, label):
    await publish(catalog)
    assert await stage(catalog) == []


async def test_staging_does_not_change_an_existing_tracks_territories(catalog, label):
    await stage(catalog, territories=["DE"])
    await stage(catalog, version=V2, territories=None)
    assert (await catalog.track(TRACK))["territories"] == ["DE"]


async def test_manifest_hashes_are_compared_in_lower_case(catalog, label):
    upper = {p: {**e, "sha256": str(e["sha256"]).upper()} for p, e in manifest_of(FILES).items()}
    await catalog.stage_version("indie", TRACK, V1, metadata(V1), upper, None)
    await upload(catalog)  # lower-case hashes
    assert await catalog.missing_objects(TRACK, V1) == []
    entry = manifest_of(FILES)["metadata.json"]
    sha256 = str(entry["sha256"]).upper()
    await catalog.record_object(TRACK, V1, "metadata.json", entry["size"], sha256)


GOOD = manifest_of(FILES)["metadata.json"]


@pytest.mark.parametrize(
    ("track", "version", "manifest", "territories", "message"),
    [
        ("T000000000000001", V1, {"a": GOOD}, None, "track id"),
        ("t00000000000001", V1, {"a": GOOD}, None, "track id"),
        (TRACK, "v00000000001", {"a": GOOD}, None, "version"),
        (TRACK, "V000000000001", {"a": GOOD}, None, "version"),
        (TRACK, V1, {}, None, "manifest is empty"),
        (TRACK, V1, {"../a": GOOD}, None, "plain relative path"),
        (TRACK, V1, {"/a": GOOD}, None, "plain relative path"),
        (TRACK, V1, {"a//b": GOOD}, None, "plain relative path"),
        (TRACK, V1, {"./a": GOOD}, None, "plain relative path"),
        (TRACK, V1, {"a/": GOOD}, None, "plain relative path"),
        (TRACK, V1, {"": GOOD}, None, "plain relative path"),
        (TRACK, V1, {"a": {**GOOD, "size": -1}}, None, "size in bytes"),
        (TRACK, V1, {"a": {**GOOD, "size": "4"}}, None, "size in bytes"),
        (TRACK, V1, {"a": {**GOOD, "size": True}}, None, "size in bytes"),
        (TRACK, V1, {"a": {"size": 4}}, None, "SHA-256"),
        (TRACK, V1, {"a": {**GOOD, "sha256": "abc"}}, None, "SHA-256"),
        (TRACK, V1, {"a": "not an entry"}, None, "SHA-256"),
        (TRACK, V1, {"a": GOOD}, ["DEU"], "two-letter"),
        (TRACK, V1, {"a": GOOD}, "DE", "list of codes"),
        (TRACK, V1, {"a": GOOD}, [49], "list of codes"),
    ],
)
async def test_staging_refuses_bad_input(
    catalog, label, track, version, manifest, territories, message
):
    with pytest.raises(ValueError, match=message):
        await catalog.stage_version(
            "indie", track, version, metadata(version), manifest, territories
        )
    assert await catalog.track(track) is None


@pytest.mark.parametrize("extra", [{"x": object()}, {"x": float("nan")}])
async def test_staging_refuses_metadata_that_is_not_json(catalog, label, extra):
    with pytest.raises(ValueError, match="metadata is not plain JSON"):
        await catalog.stage_version(
            "indie", TRACK, V1, {**metadata(V1), **extra}, manifest_of(FILES), None
        )


async def test_recording_an_object_twice_is_harmless(catalog, label):
    await stage(catalog)
    await upload(catalog)
    await upload(catalog)
    assert await catalog.missing_objects(TRACK, V1) == []


async def test_recording_an_object_outside_the_manifest_conflicts(catalog, label):
    await stage(catalog)
    with pytest.raises(Conflict, match=r"extra\.m4s is not in the manifest"):
        await catalog.record_object(TRACK, V1, "extra.m4s", 1, "0" * 64)


@pytest.mark.parametrize(("size", "sha256"), [(5, None), (None, "0" * 64)])
async def test_recording_an_object_unlike_its_manifest_entry_conflicts(
    catalog, label, size, sha256
):
    await stage(catalog)
    entry = manifest_of(FILES)["a256/init.mp4"]
    with pytest.raises(Conflict, match="but the manifest says 4 bytes") as caught:
        await catalog.record_object(
            TRACK, V1, "a256/init.mp4", size or entry["size"], sha256 or entry["sha256"]
        )
    assert caught.value.status == 409
    assert "a256/init.mp4" in await catalog.missing_objects(TRACK, V1)


@pytest.mark.parametrize(("track", "version"), [(TRACK, V2), (OTHER_TRACK, V1)])
async def test_uploads_to_an_unknown_version_are_not_found(catalog, label, track, version):
    await stage(catalog)
    with pytest.raises(NotFound, match="stage it first") as caught:
        await catalog.record_object(track, version, "metadata.json", 1, "0" * 64)
    assert caught.value.status == 404
    with pytest.raises(NotFound):
        await catalog.missing_objects(track, version)
    with pytest.raises(NotFound):
        await catalog.expected_object("indie", track, version, "metadata.json")


async def test_expected_object_is_the_manifest_entry_for_the_owner(catalog, label):
    await catalog.add_label("major")
    await stage(catalog)
    entry = manifest_of(FILES)["a256/init.mp4"]
    assert await catalog.expected_object("indie", TRACK, V1, "a256/init.mp4") == entry
    assert await catalog.expected_object("indie", TRACK, V1, "a256/other.m4s") is None
    with pytest.raises(Forbidden):
        await catalog.expected_object("major", TRACK, V1, "a256/init.mp4")


# Publishing


async def test_publish_makes_the_version_current(catalog, label):
    seq = await publish(catalog)
    assert await catalog.is_published(TRACK, V1)
    assert await catalog.track(TRACK) == {
        "track_id": TRACK,
        "label": "indie",
        "title": "Song",
        "artist": "Band",
        "album": "Record",
        "isrc": "GBAYE0000001",
        "upc": "012345678905",
        "duration": 13.04,
        "loudness": LOUDNESS,
        "current_version": V1,
        "territories": None,
        "takedowns": [],
        "withdrawn": False,
    }
    events = await catalog.events(0)
    assert events == [Event(seq, PUBLISHED, TRACK, None, {"version": V1}, events[0].at)]
    assert events[0].at > START
    assert await catalog.last_seq() == seq


async def test_publish_without_loudness_or_tags(catalog, label):
    bare = {"duration": 1.5, "version": V1, "rungs": [RUNG]}
    await catalog.stage_version("indie", TRACK, V1, bare, manifest_of(FILES), None)
    await upload(catalog)
    await catalog.publish("indie", TRACK, V1)
    track = await catalog.track(TRACK)
    assert (track["title"], track["loudness"], track["duration"]) == (None, None, 1.5)


async def test_publish_refuses_a_version_with_missing_objects(catalog, label):
    await stage(catalog)
    entry = manifest_of(FILES)["metadata.json"]
    await catalog.record_object(TRACK, V1, "metadata.json", entry["size"], entry["sha256"])
    with pytest.raises(Conflict, match="3 objects are not uploaded") as caught:
        await catalog.publish("indie", TRACK, V1)
    assert caught.value.missing == sorted(set(FILES) - {"metadata.json"})
    for path in caught.value.missing:
        assert path in str(caught.value)
    assert not await catalog.is_published(TRACK, V1)
    assert await catalog.events(0) == []
    assert (await catalog.track(TRACK))["current_version"] is None


async def test_a_long_list_of_missing_objects_is_shortened_in_the_message(catalog, label):
    files = {f"a256/seg_{i:05d}.m4s": bytes([i]) for i in range(24)}
    files["a256/index.m3u8"] = b"#EXTM3U\n"
    await stage(catalog, files=files)
    with pytest.raises(Conflict, match=r"25 objects .* and 15 more") as caught:
        await catalog.publish("indie", TRACK, V1)
    assert caught.value.missing == sorted(files)
    assert "seg_00023" not in str(caught.value)


async def test_publish_by_another_label_is_forbidden(catalog, label):
    await catalog.add_label("major")
    await stage(catalog)
    await upload(catalog)
    with pytest.raises(Forbidden):
        await catalog.publish("major", TRACK, V1)
    assert not await catalog.is_published(TRACK, V1)


@pytest.mark.parametrize(("track", "version"), [(TRACK, V2), (OTHER_TRACK, V1)])
async def test_publishing_an_unknown_version_is_not_found(catalog, label, track, version):
    await stage(catalog)
    with pytest.raises(NotFound):
        await catalog.publish("indie", track, version)


async def test_publishing_the_current_version_again_changes_nothing(catalog, label):
    seq = await publish(catalog)
    before = await catalog.track(TRACK)
    assert await catalog.publish("indie", TRACK, V1) == seq
    assert await catalog.last_seq() == seq
    assert await catalog.track(TRACK) == before


async def test_a_new_version_replaces_the_current_and_an_old_one_can_come_back(catalog, label):
    first = await publish(catalog)
    files = {**FILES, "a256/seg_00001.m4s": b"more"}
    second = await publish(catalog, version=V2, files=files)
    assert second > first
    assert (await catalog.track(TRACK))["current_version"] == V2
    back = await catalog.publish("indie", TRACK, V1)
    assert back > second
    assert (await catalog.track(TRACK))["current_version"] == V1
    assert [e.data for e in await catalog.events(0)] == [
        {"version": V1},
        {"version": V2},
        {"version": V1},
    ]
    assert await catalog.is_published(TRACK, V2)


async def test_is_published_is_false_for_unknown_versions(catalog):
    assert not await catalog.is_published(TRACK, V1)


# Reading tracks


async def test_an_unknown_track_is_none(catalog):
    assert await catalog.track(TRACK) is None


async def test_track_is_ready_for_json(catalog, label):
    await publish(catalog, territories=["DE"])
    await catalog.takedown(TRACK, "DE")
    await catalog.takedown(TRACK, None)
    track = await catalog.track(TRACK)
    assert json.loads(json.dumps(track)) == track
    assert track["takedowns"] == [None, "DE"]
    assert track["withdrawn"] is True


async def test_tracks_are_paged_by_track_id(catalog, label):
    await catalog.add_label("major")
    for n in reversed(range(25)):
        await stage(catalog, track=track_id(n))
    await stage(catalog, label="major", track=track_id(99))
    await catalog.takedown(track_id(3), "DE")

    pages, cursor = [], None
    for _ in range(5):  # bounded: three pages are expected
        page, cursor = await catalog.tracks("indie", 10, cursor)
        pages.append([t["track_id"] for t in page])
        if cursor is None:
            break
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [t for page in pages for t in page] == [track_id(n) for n in range(25)]

    everything, end = await catalog.tracks(None, 100, None)
    assert [t["track_id"] for t in everything] == [track_id(n) for n in (*range(25), 99)]
    assert end is None
    assert everything[3]["takedowns"] == ["DE"]
    assert await catalog.tracks("major", 10, None) == ([await catalog.track(track_id(99))], None)
    assert await catalog.tracks("nobody", 10, None) == ([], None)
    assert (await catalog.tracks("indie", 10, track_id(24)))[0] == []


async def test_a_full_last_page_ends_the_listing(catalog, label):
    for n in range(10):
        await stage(catalog, track=track_id(n))
    page, cursor = await catalog.tracks("indie", 5, None)
    assert cursor == track_id(4)
    page, cursor = await catalog.tracks("indie", 5, cursor)
    assert (len(page), cursor) == (5, None)


@pytest.mark.parametrize("limit", [0, -1, 1001])
async def test_tracks_refuses_a_bad_limit(catalog, limit):
    with pytest.raises(ValueError, match="limit"):
        await catalog.tracks(None, limit, None)


# Rights


async def test_rights_of_a_worldwide_track(catalog, label):
    await publish(catalog)
    assert await catalog.rights(TRACK, "de") == {
        "track_id": TRACK,
        "territory": "DE",
        "licensed": True,
        "reason": "worldwide",
    }


async def test_rights_follow_territories_and_takedowns(catalog, label):
    await publish(catalog, territories=["DE", "AT"])

    async def licensed() -> dict[str, bool]:
        return {c: (await catalog.rights(TRACK, c))["licensed"] for c in ("DE", "AT", "FR")}

    assert await licensed() == {"DE": True, "AT": True, "FR": False}
    assert (await catalog.rights(TRACK, "FR"))["reason"] == "not_licensed"
    await catalog.takedown(TRACK, "at")
    assert await licensed() == {"DE": True, "AT": False, "FR": False}
    assert (await catalog.rights(TRACK, "AT"))["reason"] == "taken_down"
    await catalog.set_territories(TRACK, None)
    assert await licensed() == {"DE": True, "AT": False, "FR": True}
    await catalog.takedown(TRACK, None)
    assert await licensed() == {"DE": False, "AT": False, "FR": False}
    assert (await catalog.rights(TRACK, "DE"))["reason"] == "withdrawn"


async def test_rights_of_an_unknown_track_are_not_found(catalog):
    with pytest.raises(NotFound, match=TRACK):
        await catalog.rights(TRACK, "DE")


@pytest.mark.parametrize("territory", ["", "DEU", "1A", "ÄÖ"])
async def test_rights_refuse_a_bad_territory(catalog, label, territory):
    await stage(catalog)
    with pytest.raises(ValueError, match="two-letter"):
        await catalog.rights(TRACK, territory)


async def test_set_territories_records_an_event(catalog, label):
    await stage(catalog)
    seq = await catalog.set_territories(TRACK, ["fr", "DE", "de"])
    assert (await catalog.track(TRACK))["territories"] == ["DE", "FR"]
    again = await catalog.set_territories(TRACK, None)
    assert again > seq
    assert (await catalog.track(TRACK))["territories"] is None
    events = await catalog.events(0)
    assert [(e.kind, e.track_id, e.data) for e in events] == [
        ("territories", TRACK, {"territories": ["DE", "FR"]}),
        ("territories", TRACK, {"territories": None}),
    ]
    await catalog.set_territories(TRACK, [])
    assert (await catalog.rights(TRACK, "DE"))["licensed"] is False


async def test_set_territories_refuses_unknown_tracks_and_bad_codes(catalog, label):
    with pytest.raises(NotFound):
        await catalog.set_territories(TRACK, ["DE"])
    await stage(catalog)
    with pytest.raises(ValueError, match="two-letter"):
        await catalog.set_territories(TRACK, ["DE", "Germany"])
    assert await catalog.events(0) == []


async def test_takedown_records_an_event_once(catalog, label):
    await publish(catalog)
    seq = await catalog.takedown(TRACK, "de")
    assert await catalog.takedown(TRACK, "DE") == seq
    withdrawn = await catalog.takedown(TRACK, None)
    assert await catalog.takedown(TRACK, None) == withdrawn
    events = await catalog.events(0)
    assert [(e.seq, e.kind, e.territory) for e in events[1:]] == [
        (seq, "takedown", "DE"),
        (withdrawn, "takedown", None),
    ]
    assert (await catalog.track(TRACK))["takedowns"] == [None, "DE"]


async def test_takedown_refuses_unknown_tracks_and_bad_codes(catalog, label):
    with pytest.raises(NotFound) as caught:
        await catalog.takedown(TRACK, None)
    assert caught.value.status == 404
    await stage(catalog)
    with pytest.raises(ValueError):
        await catalog.takedown(TRACK, "DEU")
    assert await catalog.events(0) == []


# Events


async def test_events_come_in_order_after_a_seq(catalog, label):
    seqs = [await publish(catalog)]
    seqs.append(await catalog.set_territories(TRACK, ["DE"]))
    seqs.append(await catalog.takedown(TRACK, "DE"))
    seqs.append(await catalog.takedown(TRACK, None))
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    events = await catalog.events(0)
    assert [e.seq for e in events] == seqs
    assert [e.kind for e in events] == ["published", "territories", "takedown", "takedown"]
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert await catalog.events(seqs[1]) == events[2:]
    assert await catalog.events(seqs[0], limit=2) == events[1:3]
    assert await catalog.events(seqs[-1]) == []
    assert await catalog.last_seq() == seqs[-1]


async def test_last_seq_starts_at_zero(catalog):
    assert await catalog.last_seq() == 0
    assert await catalog.events(0) == []


@pytest.mark.parametrize("limit", [0, 1001])
async def test_events_refuse_a_bad_limit(catalog, limit):
    with pytest.raises(ValueError, match="limit"):
        await catalog.events(0, limit)


async def test_concurrent_writes_each_get_their_own_seq(catalog, label):
    await stage(catalog)
    codes = [f"{a}{b}" for a in "ABCDE" for b in "FGHI"]
    seqs = await asyncio.gather(*(catalog.takedown(TRACK, c) for c in codes))
    assert sorted(seqs) == list(range(1, len(codes) + 1))
    assert (await catalog.track(TRACK))["takedowns"] == sorted(codes)


async def test_wait_returns_events_that_already_exist_at_once(catalog, label):
    await stage(catalog)
    seq = await catalog.takedown(TRACK, "DE")
    started = time.monotonic()
    events = await catalog.wait_for_events(0, timeout=10)
    assert [e.seq for e in events] == [seq]
    assert time.monotonic() - started < 1


async def test_wait_returns_early_when_another_task_takes_a_track_down(catalog, label):
    await stage(catalog)
    after = await catalog.last_seq()
    started = time.monotonic()
    waiters = [asyncio.create_task(catalog.wait_for_events(after, timeout=10)) for _ in range(3)]
    await asyncio.sleep(0)  # let the waiters reach their wait
    assert not any(w.done() for w in waiters)
    seq = await catalog.takedown(TRACK, None)
    results = await asyncio.wait_for(asyncio.gather(*waiters), timeout=5)
    assert time.monotonic() - started < 2
    for events in results:
        assert [(e.seq, e.kind, e.territory) for e in events] == [(seq, "takedown", None)]


async def test_wait_returns_nothing_at_the_timeout(catalog, label):
    started = time.monotonic()
    waiter = asyncio.create_task(catalog.wait_for_events(0, timeout=0.2))
    await stage(catalog)  # writes without events do not end the wait
    assert await asyncio.wait_for(waiter, timeout=5) == []
    assert 0.15 <= time.monotonic() - started < 2


async def test_wait_ignores_events_up_to_after(catalog, label):
    await stage(catalog)
    first = await catalog.takedown(TRACK, "DE")
    assert await catalog.wait_for_events(first, timeout=0.05) == []
    waiter = asyncio.create_task(catalog.wait_for_events(first, timeout=10))
    second = await catalog.takedown(TRACK, "FR")
    events = await asyncio.wait_for(waiter, timeout=5)
    assert [e.seq for e in events] == [second]


async def test_wait_returns_another_processes_stored_events_at_once(catalog, label, where):
    await stage(catalog)
    other = await Catalog.open(where)
    try:
        seq = await other.takedown(TRACK, "DE")
    finally:
        await other.close()
    started = time.monotonic()
    events = await catalog.wait_for_events(0, timeout=10)
    assert [e.seq for e in events] == [seq]
    assert time.monotonic() - started < 1


async def test_wait_sees_another_processes_writes_at_the_timeout(catalog, label, where):
    await stage(catalog)
    other = await Catalog.open(where)
    try:
        waiter = asyncio.create_task(catalog.wait_for_events(0, timeout=0.2))
        seq = await other.takedown(TRACK, "DE")
        events = await asyncio.wait_for(waiter, timeout=5)
    finally:
        await other.close()
    assert [e.seq for e in events] == [seq]


async def test_close_ends_a_wait(where):
    catalog = await Catalog.open(where)
    waiter = asyncio.create_task(catalog.wait_for_events(0, timeout=10))
    await asyncio.sleep(0)
    await catalog.close()
    assert await asyncio.wait_for(waiter, timeout=5) == []


def test_unauthorized_carries_its_status():
    assert Unauthorized("no key").status == 401
    assert issubclass(Unauthorized, OriginError)
