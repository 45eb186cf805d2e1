"""The upload client: territory lists, and retries against a fake origin at the outer edge."""

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from cadenza.errors import ConfigError
from encoder import upload
from encoder.errors import UploadError
from encoder.upload import OriginTarget, parse_territories, territories_for


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("DE,FR", ("DE", "FR")),
        ("fr de\nde # twice\n", ("DE", "FR")),
        ("", None),
        ("# nothing\n", None),
        ("worldwide", None),
    ],
)
def test_parse_territories(text, codes):
    assert parse_territories(text, "x") == codes


@pytest.mark.parametrize("text", ["Germany", "D", "DE1", "worldwide DE"])
def test_bad_territories_name_the_code(text):
    with pytest.raises(ConfigError, match="is not an ISO 3166 alpha-2"):
        parse_territories(text, "x")


def test_a_territories_file_beside_the_master_wins(tmp_path: Path):
    master = tmp_path / "album" / "01.flac"
    master.parent.mkdir()
    assert territories_for(master, ("US",)) == ("US",)
    (master.parent / "territories.txt").write_text("AT CH\n")
    assert territories_for(master, ("US",)) == ("AT", "CH")


class FlakyOrigin:
    """Answers 503 ``failures`` times, then 200; counts what it was asked."""

    def __init__(self, failures: int, status: int = 503) -> None:
        self.failures, self.status, self.calls = failures, status, 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        assert request.headers["Authorization"] == "Bearer k"
        assert request.headers["X-Cadenza-Label"] == "acme"
        if self.calls <= self.failures:
            return web.json_response({"error": "busy"}, status=self.status)
        return web.json_response({"ok": True, "body": len(await request.read())})


@pytest.fixture
async def flaky(request: pytest.FixtureRequest) -> AsyncIterator[tuple[FlakyOrigin, str]]:
    fake = FlakyOrigin(*request.param)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield fake, f"http://{host}:{port}"
    await runner.cleanup()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upload, "BACKOFF_SECONDS", 0.01)


@pytest.mark.parametrize("flaky", [(2,)], indirect=True)
async def test_transient_failures_are_retried(flaky, tmp_path: Path):
    fake, url = flaky
    body = tmp_path / "seg.m4s"
    body.write_bytes(b"x" * 1000)
    async with aiohttp.ClientSession() as session:
        answer = await upload._call(session, "PUT", OriginTarget(url, "acme", "k"), "/o", file=body)
    assert answer == {"ok": True, "body": 1000}
    assert fake.calls == 3


@pytest.mark.parametrize("flaky", [(10,)], indirect=True)
async def test_retries_give_up_with_the_last_answer(flaky):
    fake, url = flaky
    async with aiohttp.ClientSession() as session:
        with pytest.raises(UploadError, match="503 busy"):
            await upload._call(session, "POST", OriginTarget(url, "acme", "k"), "/publish")
    assert fake.calls == upload.ATTEMPTS


@pytest.mark.parametrize("flaky", [(10, 409)], indirect=True)
async def test_a_refusal_is_not_retried(flaky):
    fake, url = flaky
    async with aiohttp.ClientSession() as session:
        with pytest.raises(UploadError, match="409"):
            await upload._call(session, "POST", OriginTarget(url, "acme", "k"), "/publish")
    assert fake.calls == 1
