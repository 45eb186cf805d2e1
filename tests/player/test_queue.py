"""A listening queue through a real deployment: each next track is prepared during the current
one's last buffer, and starts from what was fetched ahead."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.catalog import MasterSpec, write_master
from bench.deploy import Deployment, deploy
from player.abr import CadenzaRule, DownloadSample
from player.cache import MemoryObjects
from player.queue import MAX_QUEUE, Entry, play_queue, render
from player.session import play, prepare
from tests.processes import cadenza

TRACKS = 5


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, list[str]]]:
    root = tmp_path_factory.mktemp("queue")
    masters = [
        write_master(root / f"{n}.flac", MasterSpec(7, seed=60 + n, tags={"title": f"Q{n}"}))
        for n in range(TRACKS)
    ]
    with deploy(root / "deployment") as deployment:
        tracks = deployment.ingest(masters)
        assert all(t["status"] == "ok" for t in tracks), tracks
        yield deployment, [t["track_id"] for t in tracks]


async def test_each_next_track_starts_from_what_was_fetched_ahead(fleet):
    deployment, tracks = fleet
    cache = MemoryObjects()
    entries = await play_queue(
        tracks, deployment.locator.url, territory="FR", lat=48.85, lon=2.35, speed=4.0,
        cache=cache, timeout_s=60,
    )  # fmt: skip
    assert [e.track_id for e in entries] == tracks
    assert all(e.qoe is not None and e.error is None for e in entries)
    first, *changes = entries
    assert first.gap_s is None and not first.prepared and first.qoe.local_hits == 0
    for entry in changes:
        assert entry.prepared and entry.gap_s is not None and entry.gap_s >= 0
        # The probe playlist, the first rung's playlist (the same one when the rule starts at
        # the bottom), its init and first segment: read from the device, not the network.
        assert entry.qoe.local_hits >= 3
        assert entry.qoe.segments[0].index == 0
    assert "gaps: longest" in render(entries)


async def test_a_skip_still_prepares_the_next_track_and_a_refusal_does_not_stop_the_queue(fleet):
    deployment, tracks = fleet
    queue = [tracks[0], "ffffffffffffffff", tracks[1], tracks[2]]
    entries = await play_queue(
        queue, deployment.locator.url, territory="FR", lat=48.85, lon=2.35, speed=4.0,
        timeout_s=60, max_segments=[1, None, 1, None],
    )  # fmt: skip
    assert [e.qoe is not None for e in entries] == [True, False, True, True]
    assert "404" in (entries[1].error or "") or "refused" in (entries[1].error or "")
    assert [len(e.qoe.segments) for e in (entries[0], entries[2])] == [1, 1]
    assert entries[3].prepared  # prepared while the skipped track's one segment played
    assert Entry("x", None, "refused", None, False).to_json()["status"] == "failed"


async def test_a_rule_goes_on_from_one_play_to_the_next(fleet):
    deployment, tracks = fleet
    where = {"territory": "FR", "lat": 48.85, "lon": 2.35}

    def inits(cache: MemoryObjects) -> set[str]:
        return {key.split("/")[-2] for key in cache._data if key.endswith("/init.mp4")}

    fresh = MemoryObjects()
    await prepare(tracks[0], deployment.locator.url, fresh, **where)
    assert inits(fresh) and inits(fresh) != {"aac_48"}  # 500 kbit/s assumed: above the lowest
    slow = CadenzaRule()
    for _ in range(3):
        slow.observe(DownloadSample(60 * 125.0, 1.0, 6.0, 0))  # it has seen 60 kbit/s
    taught = MemoryObjects()
    await prepare(tracks[0], deployment.locator.url, taught, **where, abr=slow)
    assert inits(taught) == {"aac_48"}
    # The play goes on with the same rule: what it hears of the (fast) link, the rule learns.
    qoe = await play(
        tracks[0], deployment.locator.url, **where, speed=4.0, timeout_s=60, abr=slow,
        max_segments=2, report=False,
    )  # fmt: skip
    assert qoe.segments[0].rung == 0 and slow.estimate_kbps() > 100


async def test_a_queue_is_bounded():
    with pytest.raises(ValueError, match="1 to"):
        await play_queue([], "http://127.0.0.1:9")
    with pytest.raises(ValueError, match="1 to"):
        await play_queue(["0123456789abcdef"] * (MAX_QUEUE + 1), "http://127.0.0.1:9")


def test_cadenza_play_with_several_tracks_reports_each_change(fleet, tmp_path: Path):
    deployment, tracks = fleet
    done = cadenza(
        "play", *tracks[:3], "--locator", deployment.locator.url, "--territory", "FR",
        "--speed", "4", "--json", "--cache-dir", str(tmp_path / "cache"),
        "--store", str(tmp_path / "store"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["status"] == "ok" and [q["track_id"] for q in doc["queue"]] == tracks[:3]
    assert doc["queue"][0]["gap_ms"] is None
    assert all(q["prepared"] and q["gap_ms"] >= 0 for q in doc["queue"][1:])
    assert doc["longest_gap_ms"] == max(q["gap_ms"] for q in doc["queue"][1:])
    refused = cadenza("play", *tracks[:2], "--offline", "--store", str(tmp_path / "store"))
    assert refused.returncode == 2 and "one track" in refused.stderr
