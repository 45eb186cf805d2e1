"""A standard player, hls.js in headless Chromium, plays what a whole Cadenza deployment serves.

The page comes from a loopback server of its own, another origin than the locator's and the
edges', so every request of the player is a cross-origin one. The deployment is shared by the
tests of this module; the last one kills an edge mid-play.
"""

import asyncio
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bench.catalog import MasterSpec, write_master
from bench.deploy import Deployment, deploy
from tests.cdp import Browser, Page, chromium

PAGE_FOLDER = Path(__file__).parent / "browser"
IN_PARIS = "lat=48.85&lon=2.35&territory=FR"
PATHWAYS = ["eu-west-1", "eu-west-2", "us-east-1"]  # for a client in Paris, best first
TRACK_SECONDS = 30
BUFFER_SECONDS = 6  # how far ahead hls.js fetches, so that it keeps fetching while it plays
PLAY_SECONDS = 30.0  # the most that any wait below takes

State = dict[str, Any]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, str]]:
    root = tmp_path_factory.mktemp("players")
    master = write_master(
        root / "album" / "01.flac",
        MasterSpec(TRACK_SECONDS, seed=5, tags={"title": "One", "artist": "A"}),
    )
    with deploy(root / "deployment") as deployment:
        (track,) = deployment.ingest([master])
        assert track["status"] == "ok", track
        yield deployment, track["track_id"]


@pytest.fixture
async def page_url() -> AsyncIterator[str]:
    """The player page, on a static server of its own."""
    if not (PAGE_FOLDER / "node_modules" / "hls.js" / "dist" / "hls.min.js").exists():
        pytest.fail("hls.js is not installed in tests/browser: run 'make setup'")
    app = web.Application()
    app.router.add_static("/", PAGE_FOLDER)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/player.html"
    finally:
        await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as running:
        yield running


async def test_hls_js_plays_a_steered_track_from_the_first_pathway(fleet, page_url, browser):
    deployment, track = fleet
    served = {edge: _bytes_served(deployment, edge) for edge in PATHWAYS}
    page = await browser.open(_player(page_url, deployment, track))

    state = await _watch(page, lambda s: s["currentTime"] > 5, "5 s of playback")

    assert not [e for e in state["errors"] if e["type"] == "networkError"], state["errors"]
    assert state["pathways"] == PATHWAYS
    assert state["steering"], "hls.js loaded no steering manifest"
    first = state["steering"][0]
    assert first["url"].startswith(f"{deployment.locator.url}/v1/steer/"), first
    assert first["priority"] == state["pathwayPriority"] == PATHWAYS
    assert state["pathway"] == PATHWAYS[0]
    assert {level["codecs"] for level in state["levels"]} == {"mp4a.40.2"}
    home = f"{deployment.edges[PATHWAYS[0]].url}/p/"
    assert all(level["url"].startswith(home) for level in state["levels"]), state["levels"]
    fragments = state["fragments"]
    assert fragments and all(f["url"].startswith(home) for f in fragments), fragments
    now = {edge: _bytes_served(deployment, edge) for edge in PATHWAYS}
    assert now[PATHWAYS[0]] - served[PATHWAYS[0]] >= sum(f["bytes"] for f in fragments) > 0
    assert [now[e] - served[e] for e in PATHWAYS[1:]] == [0, 0], "other pathways were asked"


async def test_hls_js_moves_to_the_next_pathway_when_the_playing_edge_dies(
    fleet, page_url, browser
):
    deployment, track = fleet
    page = await browser.open(_player(page_url, deployment, track))
    # Just after a steering reload: the next one is a TTL away, so the player is likely to meet
    # the dead edge on its next segment and to leave it on the error alone, before the locator's
    # next manifest drops it. Either way is a pass.
    state = await _watch(page, lambda s: len(s["steering"]) >= 2, "a steering reload")
    assert state["pathway"] == PATHWAYS[0], state["pathway"]
    served = _bytes_served(deployment, PATHWAYS[1])
    deployment.kill_edge(PATHWAYS[0])
    killed_at = await page.evaluate("window.snapshot()")
    fetched = len(killed_at["fragments"])

    goal = killed_at["bufferedEnd"] + 6  # a segment that was not fetched yet at the kill
    state = await _watch(page, lambda s: s["currentTime"] > goal, f"playback past {goal:.1f} s")

    after = state["fragments"][fetched:]
    home = f"{deployment.edges[PATHWAYS[1]].url}/p/"
    assert after and all(f["url"].startswith(home) for f in after), after
    assert state["pathway"] == PATHWAYS[1]
    assert _bytes_served(deployment, PATHWAYS[1]) - served >= sum(f["bytes"] for f in after)
    # No stall, and no error but the dead edge's.
    dead = f"{deployment.edges[PATHWAYS[0]].url}/"
    errors = state["errors"][len(killed_at["errors"]) :]
    assert all((e["url"] or "").startswith(dead) for e in errors), errors
    # The locator drops the dead edge from the steering manifest at the next reload.
    assert state["steering"][-1]["priority"] == PATHWAYS[1:], state["steering"]


def _player(page_url: str, deployment: Deployment, track: str) -> str:
    play_url = f"{deployment.locator.url}/v1/play/{track}?{IN_PARIS}"
    return f"{page_url}?src={quote(play_url, safe='')}&buffer={BUFFER_SECONDS}"


async def _watch(page: Page, done: Callable[[State], bool], what: str) -> State:
    """The page's state once ``done``; fails on a fatal hls.js error or after PLAY_SECONDS."""
    deadline = time.monotonic() + PLAY_SECONDS
    state: State | None = None
    while time.monotonic() < deadline:
        state = await page.evaluate("window.snapshot ? window.snapshot() : null")
        if state is not None:
            assert state["supported"] and state["aac"], "this Chromium cannot play AAC with MSE"
            fatal = [e for e in state["errors"] if e["fatal"]]
            assert not fatal, f"hls.js gave up: {fatal}\n{_story(state, page)}"
            if done(state):
                return state
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {what} in {PLAY_SECONDS:.0f} s\n{_story(state, page)}")


def _story(state: State | None, page: Page) -> str:
    """What the player did and said, for a failure message."""
    told = {k: v for k, v in (state or {}).items() if k not in ("levels", "fragments")}
    if state:
        told["fragments"] = [(f["sn"], f["url"].split("/p/")[0]) for f in state["fragments"]]
    return json.dumps(told, indent=1) + "\n" + "\n".join(page.console[-20:])


def _bytes_served(deployment: Deployment, edge: str) -> float:
    url = f"{deployment.edges[edge].url}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "cadenza_edge_bytes_served_total":
                return float(sample.value)
    raise AssertionError(f"{url} has no cadenza_edge_bytes_served_total")
