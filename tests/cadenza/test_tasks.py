"""Background tasks: started with the app, stopped within their deadline, crashes told."""

import asyncio
import logging

import aiohttp
import pytest
from aiohttp import web

from cadenza import tasks
from tests.loopback import serve

LOGGER = logging.getLogger("cadenza.test.tasks")
TOKEN = "/p/c2VjcmV0LXRva2Vu/tracks/0123456789abcdef/"


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER.name]


async def test_a_job_runs_while_the_app_serves_and_is_cancelled_when_it_stops():
    started, ended = asyncio.Event(), asyncio.Event()
    ticks = 0

    async def job(app: web.Application) -> None:
        nonlocal ticks
        started.set()
        try:
            while ticks < 10_000:
                ticks += 1
                await asyncio.sleep(0.01)
        finally:
            ended.set()

    async def ticked(request: web.Request) -> web.Response:
        return web.json_response({"ticks": ticks})

    app = web.Application()
    app.cleanup_ctx.append(tasks.background("tick", job, logger=LOGGER))
    app.router.add_get("/", ticked)
    runner, url = await serve(app)
    try:
        await asyncio.wait_for(started.wait(), 5)
        async with aiohttp.ClientSession() as client, client.get(url) as response:
            assert response.status == 200
        assert not ended.is_set()
    finally:
        await runner.cleanup()
    assert ended.is_set()  # cancelled and awaited by the time cleanup returns


async def test_a_crash_is_logged_with_the_task_name_and_the_job_runs_again(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(tasks, "RESTART_DELAY", 0.01)
    runs = 0
    third = asyncio.Event()

    async def job(app: web.Application) -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError(f"lost {TOKEN}")
        third.set()
        await asyncio.sleep(60)

    app = web.Application()
    app.cleanup_ctx.append(tasks.background("follow", job, restart=True, logger=LOGGER))
    runner, _ = await serve(app)
    try:
        await asyncio.wait_for(third.wait(), 5)
    finally:
        await runner.cleanup()
    crashes = [m for m in _messages(caplog) if "crashed" in m]
    assert (
        crashes
        == ["background task follow crashed: lost /p/[redacted]/tracks/0123456789abcdef/"] * 2
    )
    assert "background task follow starts again in 0.0 s" in _messages(caplog)
    assert runs == 3


async def test_a_crashed_job_stays_down_unless_restart_is_asked(caplog: pytest.LogCaptureFixture):
    async def job() -> None:
        raise KeyError("seq")

    await asyncio.wait_for(tasks.supervise("once", job, restart=False, logger=LOGGER), 5)
    assert _messages(caplog) == ["background task once crashed: 'seq'"]
    assert caplog.records[-1].exc_info is not None  # the traceback goes to the log


async def test_a_job_that_returns_is_done_and_not_restarted(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, LOGGER.name)
    runs = 0

    async def job() -> None:
        nonlocal runs
        runs += 1

    await asyncio.wait_for(tasks.supervise("short", job, restart=True, logger=LOGGER), 5)
    assert runs == 1 and _messages(caplog) == ["background task short finished"]


async def test_the_restart_delay_doubles_up_to_its_bound(monkeypatch: pytest.MonkeyPatch):
    waits: list[float] = []
    sleep = asyncio.sleep

    async def recorded(seconds: float) -> None:
        waits.append(seconds)
        await sleep(0)

    monkeypatch.setattr(asyncio, "sleep", recorded)
    runs = 0

    async def job() -> None:
        nonlocal runs
        runs += 1
        if runs < 7:
            raise OSError("down")

    await asyncio.wait_for(
        tasks.supervise("backoff", job, restart=True, logger=LOGGER, delay=1, max_delay=8), 5
    )
    assert waits == [1, 2, 4, 8, 8, 8]


async def test_a_task_that_ignores_cancellation_does_not_hold_up_the_stop(
    caplog: pytest.LogCaptureFixture,
):
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    await asyncio.wait_for(tasks.stop([task], within=0.05, logger=LOGGER), 5)
    assert not task.done()
    assert _messages(caplog) == ["task stubborn did not stop within 0.1 s of being cancelled"]
    release.set()
    await asyncio.wait_for(task, 5)


async def test_spawned_tasks_are_held_until_they_end():
    held: set[asyncio.Task[int]] = set()
    gate = asyncio.Event()

    async def work() -> int:
        await gate.wait()
        return 7

    task = tasks.spawn(held, work(), name="work")
    assert held == {task} and task.get_name() == "work"
    gate.set()
    assert await asyncio.wait_for(task, 5) == 7
    await asyncio.sleep(0)  # done callbacks run on the next turn of the loop
    assert held == set()
    await tasks.stop(held)  # nothing left: returns at once
