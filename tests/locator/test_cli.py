"""``cadenza locator`` with a real origin, three edges in two regions, all processes on loopback.

The deployment is shared by the tests of this module; the last one kills an edge.
"""

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import m3u8
import pytest

from bench.catalog import MasterSpec, write_master
from bench.deploy import Deployment, deploy
from cadenza.tokens import TokenClaims, sign, split_token_path
from tests.checks import assert_decodes
from tests.processes import cadenza

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
