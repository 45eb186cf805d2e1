"""Background tasks of a service: started with its app, stopped with a deadline, crashes told.

A service's long-running work (following the origin's events, polling edges, pre-positioning)
runs as one named task per job. ``background`` makes the aiohttp ``cleanup_ctx`` entry: the task
starts when the app starts; on cleanup it is cancelled and awaited for at most ``stop_within``
seconds, so a task that ignores cancellation cannot hang a shutdown. A crash is logged with the
task's name and its traceback (redacted like every log line) and, where asked, the job starts
again after a delay that doubles up to ``MAX_RESTART_DELAY``. Short-lived tasks (readahead) go
through ``spawn``, which keeps a reference until they end (a task nobody holds can be
garbage-collected mid-flight).
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

from aiohttp import web

from cadenza.log import get_logger, redact

T = TypeVar("T")
CleanupContext = Callable[[web.Application], AsyncIterator[None]]

RESTART_DELAY = 1.0  # seconds before a crashed job runs again, doubled after each crash
MAX_RESTART_DELAY = 30.0
STOP_WITHIN = 5.0  # seconds a cancelled task has to end

_logger = get_logger("tasks")
_abandoned: set[asyncio.Task[Any]] = set()  # tasks that outlived their deadline, still held


async def supervise(
    name: str,
    job: Callable[[], Awaitable[None]],
    *,
    restart: bool,
    logger: logging.Logger = _logger,
    delay: float | None = None,
    max_delay: float = MAX_RESTART_DELAY,
) -> None:
    """Run ``job`` until it returns, or until it crashes (logged; run again if ``restart``)."""
    loop = asyncio.get_running_loop()
    delay = RESTART_DELAY if delay is None else delay
    wait = delay
    while True:
        started = loop.time()
        try:
            await job()
        except Exception as e:
            cause = redact(str(e) or type(e).__name__)
            logger.error("background task %s crashed: %s", name, cause, exc_info=e)
            if not restart:
                return
            if loop.time() - started > max_delay:
                wait = delay  # it ran well for a while: this is a new failure, not a loop
            logger.warning("background task %s starts again in %.1f s", name, wait)
            await asyncio.sleep(wait)
            wait = min(wait * 2, max_delay)
            continue
        logger.info("background task %s finished", name)
        return


async def stop(
    tasks: Iterable[asyncio.Task[T]],
    within: float = STOP_WITHIN,
    logger: logging.Logger = _logger,
) -> None:
    """Cancel ``tasks`` and wait at most ``within`` seconds for them to end."""
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if not pending:
        return
    _, late = await asyncio.wait(pending, timeout=within)
    for task in late:
        logger.warning("task %s did not stop within %.1f s of being cancelled",
                       task.get_name(), within)  # fmt: skip
        _abandoned.add(task)
        task.add_done_callback(_abandoned.discard)


def spawn(
    held: set[asyncio.Task[Any]], work: Coroutine[Any, Any, T], *, name: str | None = None
) -> asyncio.Task[T]:
    """Start ``work`` as a task kept in ``held`` until it ends."""
    task = asyncio.create_task(work, name=name)
    held.add(task)
    task.add_done_callback(held.discard)
    return task


def background(
    name: str,
    job: Callable[[web.Application], Awaitable[None]],
    *,
    restart: bool = False,
    stop_within: float = STOP_WITHIN,
    logger: logging.Logger = _logger,
) -> CleanupContext:
    """The ``cleanup_ctx`` entry running ``job(app)`` as the task ``name`` (see module doc)."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(
            supervise(name, lambda: job(app), restart=restart, logger=logger), name=name
        )
        yield
        await stop([task], stop_within, logger)

    return context
