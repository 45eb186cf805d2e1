"""The player's play events: what a play reports, and a sender that never holds a play up."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from cadenza.plays import PlayEvent
from cadenza.tokens import TokenClaims, sign
from player import reports
from player.reports import PlayReporter, Sender, play_of
from tests.loopback import serve

TRACK = "0123456789abcdef"
TOKEN = sign(TokenClaims(f"/tracks/{TRACK}/", 2_000_000_000, "k1", "FR", "ann"), b"k" * 32)
URI = f"http://127.0.0.1:1/p/{TOKEN}/tracks/{TRACK}/v0123456789ab/aac_160/index.m3u8"


@dataclass
class FakeLocator:
    """Answers POST /v1/plays as told: first ``failures`` 503s, refusing events by kind."""

    failures: int = 0
    refuse: set[str] = field(default_factory=set)
    batches: list[list[dict[str, Any]]] = field(default_factory=list)

    async def plays(self, request: web.Request) -> web.Response:
        events = (await request.json())["events"]
        if self.failures:
            self.failures -= 1
            return web.json_response({"error": "log away"}, status=503)
        for n, e in enumerate(events):
            if e["kind"] in self.refuse:
                return web.json_response({"error": "bad", "event": n, "id": e["id"]}, status=403)
        self.batches.append(events)
        return web.json_response({"accepted": len(events)}, status=202)


@pytest.fixture
async def locator(request) -> AsyncIterator[tuple[FakeLocator, str]]:
    fake = FakeLocator(**getattr(request, "param", {}))
    app = web.Application()
    app.router.add_post("/v1/plays", fake.plays)
    runner, url = await serve(app)
    yield fake, url
    await runner.cleanup()


def test_a_variant_uri_names_the_plays_token_and_version():
    assert play_of(URI) == (TOKEN, "v0123456789ab")
    assert play_of("http://edge/tracks/x/v0123456789ab/a.m3u8") is None
    assert play_of(f"http://edge/p/{TOKEN}/other/x") is None


async def _report(url: str, heard: list[int], whole: bool) -> Sender:
    """One play's events, all queued before the sender runs: they go as one batch."""
    async with aiohttp.ClientSession() as http:
        sender = Sender(http, url)
        reporter = PlayReporter.of(sender, URI, TRACK, "fr")
        assert reporter is not None
        for ms in heard:
            reporter.segment(ms, "eu-west-1", 160.0, 0)
        reporter.finish(heard[-1] + 6000, "eu-west-1", 160.0, 0, whole)
        await sender.close()
        return sender


async def test_a_play_reports_start_progress_every_30_s_then_end(locator):
    fake, url = locator
    await _report(url, list(range(0, 96_000, 6000)), whole=True)
    events = [PlayEvent.from_json(e) for batch in fake.batches for e in batch]
    assert [(e.kind, e.played_ms) for e in events] == [
        ("start", 0), ("progress", 30_000), ("progress", 60_000), ("progress", 90_000),
        ("end", 96_000),
    ]  # fmt: skip
    assert len({e.id for e in events}) == 5 and len({e.play_id for e in events}) == 1
    assert {(e.credential, e.territory, e.version) for e in events} == {
        (TOKEN, "FR", "v0123456789ab")
    }


@pytest.mark.parametrize("locator", [{"failures": 2}], indirect=True)
async def test_a_failed_post_is_sent_again(locator):
    fake, url = locator
    await _report(url, [0, 6000], whole=False)
    kinds = [e["kind"] for batch in fake.batches for e in batch]
    assert sorted(kinds) == ["skip", "start"]


@pytest.mark.parametrize("locator", [{"refuse": {"start"}}], indirect=True)
async def test_a_refused_event_is_dropped_and_the_rest_sent(locator):
    fake, url = locator
    sender = await _report(url, [0, 6000], whole=False)
    assert [[e["kind"] for e in batch] for batch in fake.batches] == [["skip"]]
    assert (sender.sent, sender.dropped) == (1, 1)


async def test_an_unreachable_locator_costs_the_play_a_bounded_flush(monkeypatch):
    monkeypatch.setattr(reports, "FLUSH_S", 0.3)
    sender = await _report("http://127.0.0.1:9", [0, 6000], whole=False)
    assert sender.sent == 0 and sender._task.done()
