"""``cadenza locator`` with a real origin, three edges in two regions, all processes on loopback.

The deployment is shared by the tests of this module; the last one kills an edge. Then a
locator of two workers on one port, with stand-in edges and origin, its connections told apart
by the worker process that holds them.
"""

import contextlib
import http.client
import itertools
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import m3u8
import pytest

from bench import processes
from bench.catalog import MasterSpec, write_master
from bench.deploy import Deployment, deploy
from cadenza.tokens import TokenClaims, sign, split_token_path
from tests.checks import assert_decodes
from tests.processes import Service, cadenza, start_service

IN_PARIS = "lat=48.85&lon=2.35&territory=FR"
IN_NEW_YORK = "lat=40.71&lon=-74.0&territory=US"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, list[str]]]:
    root = tmp_path_factory.mktemp("fleet")
    everywhere = write_master(
        root / "album" / "01.flac", MasterSpec(8, seed=5, tags={"title": "One", "artist": "A"})
    )
    german = write_master(
        root / "de" / "02.flac", MasterSpec(8, seed=6, tags={"title": "Two", "artist": "A"})
    )
    (root / "de" / "territories.txt").write_text("DE\n")
    with deploy(root / "deployment") as deployment:
        tracks = deployment.ingest([everywhere, german])
        assert [t["status"] for t in tracks] == ["ok", "ok"], tracks
        yield deployment, [t["track_id"] for t in tracks]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _play(deployment: Deployment, track: str, where: str) -> m3u8.M3U8:
    status, body = _get(f"{deployment.locator.url}/v1/play/{track}?{where}")
    assert status == 200, body
    return m3u8.loads(body.decode())


def test_a_client_gets_an_edge_of_its_region_first_and_the_playlist_is_steered(fleet):
    deployment, (track, _) = fleet
    playlist = _play(deployment, track, IN_PARIS)
    pathways = list(dict.fromkeys(p.stream_info.pathway_id for p in playlist.playlists))
    assert pathways[0].startswith("eu-west") and pathways[-1] == "us-east-1"
    assert playlist.content_steering.pathway_id == pathways[0]
    assert playlist.content_steering.uri.startswith(f"{deployment.locator.url}/v1/steer/")
    playlist = _play(deployment, track, IN_NEW_YORK)
    assert playlist.playlists[0].stream_info.pathway_id == "us-east-1"


def test_ffmpeg_decodes_the_track_from_the_play_url(fleet):
    deployment, (track, _) = fleet
    url = f"{deployment.locator.url}/v1/play/{track}?{IN_PARIS}"
    assert_decodes(url, "0:a:0")


def test_signed_urls_play_through_the_edge_and_bad_tokens_are_refused(fleet):
    deployment, (track, _) = fleet
    playlist = _play(deployment, track, IN_PARIS)
    media_url = playlist.playlists[0].uri
    status, media = _get(media_url)
    assert status == 200 and b"#EXTINF" in media
    base, _, rest = media_url.partition("/p/")
    token, path = split_token_path("/p/" + rest)
    assert token is not None
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert _get(f"{base}/p/{tampered}{path}")[0] == 403
    kid, secret = deployment.env["CADENZA_TOKEN_KEYS"].split(":", 1)
    expired = sign(
        TokenClaims(f"/tracks/{track}/", int(time.time()) - 60, kid, "FR"), secret.encode()
    )
    assert _get(f"{base}/p/{expired}{path}")[0] == 403
    other = sign(
        TokenClaims("/tracks/ffffffffffffffff/", int(time.time()) + 60, kid, "FR"), secret.encode()
    )
    assert _get(f"{base}/p/{other}{path}")[0] == 403  # wrong ACL


def test_rights_refusals_451_and_410(fleet):
    deployment, (_, german) = fleet
    assert _get(f"{deployment.locator.url}/v1/play/{german}?{IN_PARIS}")[0] == 451
    assert (
        _get(f"{deployment.locator.url}/v1/play/{german}?lat=52.5&lon=13.4&territory=DE")[0] == 200
    )
    down = cadenza(
        "catalog", "takedown", german, "--origin", deployment.origin.url,
        "--operator-key", deployment.operator_key,
    )  # fmt: skip
    assert down.returncode == 0, down.stderr
    deadline = time.monotonic() + 5
    while (
        _get(f"{deployment.locator.url}/v1/play/{german}?lat=52.5&lon=13.4&territory=DE")[0] != 410
    ):
        assert time.monotonic() < deadline, "the takedown never reached the locator"
        time.sleep(0.1)


def test_kill_9_of_the_primary_leaves_the_steering_manifest_within_two_seconds(fleet):
    deployment, (track, _) = fleet
    playlist = _play(deployment, track, IN_PARIS)
    steer = playlist.content_steering.uri
    primary = json.loads(_get(steer)[1])["PATHWAY-PRIORITY"][0]
    deployment.kill_edge(primary)
    killed = time.monotonic()
    while primary in json.loads(_get(steer)[1])["PATHWAY-PRIORITY"]:
        assert time.monotonic() - killed < 2.0, "the dead edge stayed in the manifest"
        time.sleep(0.05)
    assert _play(deployment, track, IN_PARIS).playlists[0].stream_info.pathway_id != primary


def test_help_explains_the_locator():
    result = cadenza("locator", "--help")
    assert result.returncode == 0
    for text in ("/v1/play/", "/v1/steer/", "/v1/hot", "CADENZA_TOKEN_KEYS", "--config"):
        assert text in result.stdout


# -- several workers on one port -------------------------------------------------------------

KEY_ENV = {"CADENZA_TOKEN_KEYS": "k1:locator-workers-secret-0123456789"}
TRACK = "00000000000000aa"


@dataclass
class Workers:
    """A two-worker locator in front of two stand-in edges of one region and a stand-in origin."""

    locator: Service
    port: int
    opened: list[http.client.HTTPConnection] = field(default_factory=list)

    def pids(self) -> set[int]:
        return _children(self.locator.pid)

    def connections(self, count: int) -> dict[int, list[http.client.HTTPConnection]]:
        """``count`` kept-alive connections, by the pid of the worker that accepted each."""
        found: dict[int, list[http.client.HTTPConnection]] = {}
        for _ in range(count):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            self.opened.append(conn)
            _ask(conn, "/v1/edges")  # accepted by now
            found.setdefault(_worker_of(conn, self.port, self.pids()), []).append(conn)
        return found

    def on_every_worker(self, count: int = 24) -> list[http.client.HTTPConnection]:
        """One connection to each worker (bounded tries: the kernel picks the worker)."""
        for _ in range(10):
            found = self.connections(count)
            if len(found) == 2:
                for extra in [c for conns in found.values() for c in conns[1:]]:
                    extra.close()
                return [conns[0] for conns in found.values()]
            for conns in found.values():
                for conn in conns:
                    conn.close()
        raise AssertionError("every connection landed on one worker, ten times over")


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    """A locator of its own: the bound applies to the plays made since it started."""
    with _two_workers(tmp_path) as found:
        yield found


@pytest.fixture(scope="module")
def shared_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    with _two_workers(tmp_path_factory.mktemp("workers")) as found:
        yield found


@contextlib.contextmanager
def _two_workers(tmp_path: Path) -> Iterator[Workers]:
    services = []
    try:
        origin = processes.start([sys.executable, "-m", "bench.stub_origin"])
        services.append(origin)
        edges = processes.start([sys.executable, "-m", "bench.stub_edge", "--count", "2"])
        services.append(edges)
        config = tmp_path / "locator.toml"
        lines = [f'origin = "{origin.url}"', "poll_interval_seconds = 0.1", "load_factor = 1.0"]
        for n, url in enumerate(edges.url.split(",")):
            lines += ["[[edge]]", f'id = "paris-{n}"', 'region = "eu-west"', f'url = "{url}"',
                      "latitude = 48.86", "longitude = 2.35"]  # fmt: skip
        config.write_text("\n".join(lines) + "\n")
        locator = start_service(
            "locator", "--config", config, "--listen", "127.0.0.1:0", "--workers", "2",
            env={**os.environ, **KEY_ENV},
        )  # fmt: skip
        services.append(locator)
        found = Workers(locator, int(locator.url.rsplit(":", 1)[1]))
        deadline = time.monotonic() + 20
        while len(found.pids()) < 2 or any(
            e["state"] != "up" for e in json.loads(_get(f"{locator.url}/v1/edges")[1])["edges"]
        ):
            assert time.monotonic() < deadline, "the locator's workers never saw both edges up"
            time.sleep(0.05)
        yield found
        for conn in found.opened:
            conn.close()
    finally:
        for service in reversed(services):
            assert service.stop() == 0 or service is not services[-1]


def test_plays_spread_over_the_workers_share_one_load_bound(workers: Workers):
    """With load factor 1 and two like edges, a track's plays alternate between them, whichever
    worker takes each play: each worker must count the other's plays. Counting only its own,
    each worker would start the track on the same edge."""
    one, other = workers.on_every_worker()
    primaries = []
    for n in range(12):
        conn = (one, other)[n % 2]
        status, body = _ask(conn, f"/v1/locate/{TRACK}?{IN_PARIS}")
        assert status == 200, body
        primaries.append(json.loads(body)["edges"][0]["id"])
    assert all(a != b for a, b in itertools.pairwise(primaries)), primaries
    assert sorted(set(primaries)) == ["paris-0", "paris-1"]


def test_metrics_and_hot_tracks_add_up_every_worker(shared_workers: Workers):
    one, other = shared_workers.on_every_worker()
    track = "00000000000000bb"
    before = _decisions(_ask(one, "/metrics")[1])
    for n in range(6):
        status, body = _ask((one, other)[n % 2], f"/v1/redirect/{track}?{IN_PARIS}")
        assert status == 302, body
    for conn in (one, other):  # whichever worker answers, it answers for both
        status, body = _ask(conn, "/metrics")
        assert status == 200
        assert _decisions(body) == before + 6
        assert "cadenza_locator_edges_up 2.0" in body  # published once, by the poller
        status, body = _ask(conn, "/v1/hot?region=eu-west&limit=100")
        assert status == 200
        plays = {t["track_id"]: t["plays"] for t in json.loads(body)["tracks"]}
        assert round(plays[track]) == 6


def test_a_play_started_on_one_worker_is_steered_by_the_other(shared_workers: Workers):
    workers = shared_workers
    one, other = workers.on_every_worker()
    status, playlist = _ask(one, f"/v1/play/{TRACK}?{IN_PARIS}")
    assert status == 200
    steer = m3u8.loads(playlist).content_steering.uri
    status, manifest = _ask(other, steer.removeprefix(workers.locator.url))
    assert status == 200 and len(json.loads(manifest)["PATHWAY-PRIORITY"]) == 2


def test_a_dead_worker_is_replaced_and_the_plays_go_on(shared_workers: Workers):
    workers = shared_workers
    one, _ = workers.on_every_worker()
    victim = _worker_of(one, workers.port, workers.pids())
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while victim in workers.pids() or len(workers.pids()) < 2:
        assert time.monotonic() < deadline, "the dead worker was not replaced"
        time.sleep(0.05)
    for conn in workers.on_every_worker():
        assert _ask(conn, f"/v1/locate/{TRACK}?{IN_PARIS}")[0] == 200
        assert _ask(conn, f"/v1/play/{TRACK}?{IN_PARIS}")[0] == 200


def _decisions(exposition: str) -> float:
    sample = 'cadenza_locator_decisions_total{outcome="ok",region="eu-west"} '
    found = [line for line in exposition.splitlines() if line.startswith(sample)]
    return float(found[0].removeprefix(sample)) if found else 0.0


def _ask(conn: http.client.HTTPConnection, path: str) -> tuple[int, str]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read().decode()


def _children(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return {int(child) for child in f.read().split()}


def _worker_of(conn: http.client.HTTPConnection, port: int, pids: set[int]) -> int:
    """The worker process holding the server side of ``conn`` (from /proc: the socket's inode)."""
    assert conn.sock is not None
    mine = conn.sock.getsockname()[1]
    inodes = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote = (int(a.rsplit(":", 1)[1], 16) for a in fields[1:3])
            if (local, remote) == (port, mine):
                inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        folder = f"/proc/{pid}/fd"
        for fd in os.listdir(folder):
            with contextlib.suppress(OSError):
                if os.readlink(f"{folder}/{fd}") in inodes:
                    return pid
    raise AssertionError(f"no worker of {pids} holds the connection from port {mine}")
