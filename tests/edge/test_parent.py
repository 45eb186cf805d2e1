"""A parent tier: edges in front of a parent edge in front of a counting fake origin, all on
loopback. Each object leaves the origin once per tier; a dead parent sends children to the
origin; a loop of parents is refused at once."""

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from cadenza.tokens import TokenClaims, sign
from edge.app import create_app
from edge.settings import EdgeSettings
from tests.edge.test_app import KEY_ID, MEDIA, RUNGS, SECRET, TRACK, VERSION, FakeOrigin, body_of
from tests.edge.test_upstreams import Stack, metric, origin_app, stop_runner

KEYS = {KEY_ID: SECRET}
PLAY = [
    f"/tracks/{TRACK}/master.m3u8",
    *(f"/tracks/{TRACK}/{VERSION}/{rung}/index.m3u8" for rung in RUNGS),
    f"/tracks/{TRACK}/{VERSION}/aac_96/init.mp4",
    *(f"/tracks/{TRACK}/{VERSION}/aac_96/seg_{n:05d}.m4s" for n in range(1, 7)),
]
assert "seg_00001.m4s" in MEDIA


def token(territory: str = "SE") -> str:
    claims = TokenClaims(f"/tracks/{TRACK}/", int(time.time()) + 600, KEY_ID, territory)
    return sign(claims, SECRET)


def settings(tmp_path: Path, name: str, origin: str, *parents: str, **more: object) -> EdgeSettings:
    return EdgeSettings(
        id=name,
        origin=origin,
        parent=",".join(parents),
        cache_dir=tmp_path / name,
        first_byte_timeout=5,  # only the silent-parent test waits for it, with its own
        **{"token_keys": KEYS, **more},  # type: ignore[arg-type]
    )


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with Stack() as servers:
        yield servers


async def play(client: aiohttp.ClientSession, edge: str, paths: list[str] = PLAY) -> None:
    signed = f"{edge}/p/{token()}"
    for path in paths:
        async with client.get(signed + path) as r:
            assert (r.status, await r.read()) == (200, body_of(path)), path


async def test_children_fetch_each_object_from_the_origin_once_through_their_parent(
    stack: Stack, tmp_path: Path
):
    fake = FakeOrigin()
    _, origin = await stack.start(origin_app(fake))
    _, parent = await stack.start(create_app(settings(tmp_path, "parent-1", origin)))
    _, child_a = await stack.start(create_app(settings(tmp_path, "a-1", origin, parent)))
    _, child_b = await stack.start(create_app(settings(tmp_path, "b-1", origin, parent)))
    async with aiohttp.ClientSession() as client:
        for _ in range(3):  # plays through both children, at the same time
            await asyncio.gather(play(client, child_a), play(client, child_b))
        from_parent = 'cadenza_edge_upstream_fetches_total{kind="parent",result="200"'
        for child in (child_a, child_b):
            assert await metric(client, child, from_parent) >= len(PLAY)
            assert await metric(client, child, "cadenza_edge_origin_fetches_total") == 0
    assert set(PLAY) <= set(fake.requests)  # readahead may have asked for more, once too
    assert set(fake.requests.values()) == {1}, fake.requests


async def test_children_fall_back_to_the_origin_when_the_parent_dies(stack: Stack, tmp_path: Path):
    fake = FakeOrigin()
    _, origin = await stack.start(origin_app(fake))
    parent_runner, parent = await stack.start(
        create_app(settings(tmp_path, "parent-1", origin, readahead_seconds=0))
    )
    _, child = await stack.start(
        create_app(settings(tmp_path, "a-1", origin, parent, readahead_seconds=0))
    )
    async with aiohttp.ClientSession() as client:
        await play(client, child, PLAY[:2])
        await parent_runner.cleanup()
        await play(client, child, PLAY[2:])
        failovers = f'cadenza_edge_upstream_failovers_total{{kind="parent",upstream="{parent}"}}'
        assert await metric(client, child, failovers) == 1  # then the parent is asked last
        origin_200 = 'cadenza_edge_origin_fetches_total{result="200"}'
        assert await metric(client, child, origin_200) == len(PLAY) - 2
    assert set(fake.requests.values()) == {1}


async def test_a_parent_silent_past_the_first_byte_timeout_is_passed_over(
    stack: Stack, tmp_path: Path
):
    fake = FakeOrigin()
    _, origin = await stack.start(origin_app(fake))
    release = asyncio.Event()

    async def silent(request: web.Request) -> web.Response:
        await release.wait()  # until the test ends
        return web.Response(status=500)

    hung = web.Application()
    hung.router.add_get("/{tail:.*}", silent)
    _, parent = await stack.start(hung)
    stack.callback(release.set)  # before the servers stop
    child_settings = settings(tmp_path, "a-1", origin, parent, readahead_seconds=0)
    _, child = await stack.start(create_app(replace(child_settings, first_byte_timeout=0.3)))
    async with aiohttp.ClientSession() as client:
        await play(client, child, PLAY[-2:])
        timeouts = (
            'cadenza_edge_upstream_fetches_total{kind="parent",result="error",'
            f'upstream="{parent}"}}'
        )
        assert await metric(client, child, timeouts) == 1  # then asked last, not again
    assert fake.requests[PLAY[-1]] == fake.requests[PLAY[-2]] == 1


async def test_an_origin_error_relayed_by_the_parent_does_not_mark_the_parent_down(
    stack: Stack, tmp_path: Path
):
    fake = FakeOrigin(down=True)
    _, origin = await stack.start(origin_app(fake))
    _, parent = await stack.start(
        create_app(settings(tmp_path, "parent-1", origin, readahead_seconds=0))
    )
    _, child = await stack.start(
        create_app(settings(tmp_path, "a-1", origin, parent, readahead_seconds=0))
    )
    signed = f"{child}/p/{token()}"
    async with aiohttp.ClientSession() as client:
        async with client.get(signed + PLAY[-1]) as r:
            assert r.status == 503  # the origin's answer, through the parent and then directly
        fake.down = False
        await play(client, child, PLAY[-2:-1])
        through_parent = 'cadenza_edge_upstream_fetches_total{kind="parent",result="200"'
        assert await metric(client, child, through_parent) == 1


async def test_a_parent_refuses_a_child_without_a_credential(stack: Stack, tmp_path: Path):
    """A child that cannot sign (no keys) asks with the plain path: a parent that checks
    tokens refuses it, and the child goes to the origin rather than fail its player."""
    fake = FakeOrigin()
    _, origin = await stack.start(origin_app(fake))
    _, parent = await stack.start(create_app(settings(tmp_path, "parent-1", origin)))
    unsigned = settings(tmp_path, "a-1", origin, parent, token_keys={}, allow_unsigned=True)
    _, child = await stack.start(create_app(unsigned))
    path = PLAY[-1]
    async with aiohttp.ClientSession() as client:
        async with client.get(child + path) as r:
            assert (r.status, await r.read()) == (200, body_of(path))
        refused = 'cadenza_edge_upstream_fetches_total{kind="parent",result="403"'
        assert await metric(client, child, refused) == 1
        async with client.get(parent + path) as r:  # and nobody gets it from the parent
            assert r.status == 403
    assert fake.requests[path] == 1


async def test_a_loop_of_parents_is_refused_not_a_hang(stack: Stack, tmp_path: Path):
    """A names B as its parent and B names A: A's miss reaches B, B's reaches A with A in its
    Via, and A answers 508 at once; B then asks the origin. Nothing waits for a timeout."""
    fake = FakeOrigin()
    _, origin = await stack.start(origin_app(fake))
    sockets = [socket.socket(), socket.socket()]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    a_url, b_url = (f"http://127.0.0.1:{s.getsockname()[1]}" for s in sockets)
    apps = [
        create_app(settings(tmp_path, "edge-a", origin, b_url, readahead_seconds=0)),
        create_app(settings(tmp_path, "edge-b", origin, a_url, readahead_seconds=0)),
    ]
    for app, sock in zip(apps, sockets, strict=True):
        runner = web.AppRunner(app)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        stack.push_async_callback(stop_runner, runner)
    path = PLAY[-1]
    async with aiohttp.ClientSession() as client:
        async with asyncio.timeout(10):
            async with client.get(f"{a_url}/p/{token()}{path}") as r:
                assert (r.status, await r.read()) == (200, body_of(path))
            looped = 'cadenza_edge_upstream_fetches_total{kind="parent",result="508"'
            assert await metric(client, b_url, looped) == 1
            # A request that already passed through an edge is refused without a fetch.
            other = PLAY[-2]
            headers = {"Via": "1.1 somewhere, 1.1 edge-a"}
            async with client.get(f"{a_url}/p/{token()}{other}", headers=headers) as r:
                assert r.status == 508
    assert fake.requests[path] == 1 and fake.requests[other] == 0
