"""``POST /v1/plays``: players report their plays; the locator checks and logs them.

Each event's credential names its listener: the play's token (signed by the locator with its
token keys, its ACL the event's track; checked with a leeway of ``plays_report_window`` after
its expiry, since events are sent after the play, sometimes much later), or for an offline
play the track's licence (signed likewise; the track and version must match, and the event
must fall within the licence's life, give or take ``LICENCE_GRACE_S``). The listener and the
territory written to the log are the credential's, never the client's; the credential itself
is not written (the log needs the listener, not a key to act as them).

A batch is all or nothing: one bad event refuses the batch (400 malformed, 403 credential),
the answer naming the event by index and id, so the player drops that one and sends the rest
again. A good batch is appended to the log (``plays.log``) before the answer, 202 with counts:
``accepted`` events, of which ``new`` (an id seen before is dropped by the log).

Also ``GET /v1/history/{listener}`` and the popularity that ``/v1/hot`` serves, read from the
consumers' results (``plays_results``) when configured.
"""

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar

from aiohttp import web

from cadenza.errors import HttpError
from cadenza.licences import LicenceError, read_licence
from cadenza.log import get_logger
from cadenza.plays import MAX_BATCH, MAX_CREDENTIAL_LENGTH, PlayEvent, PlayEventError
from cadenza.plays import batch_from_json as check_batch
from cadenza.tokens import LISTENER, TokenError, verify
from cadenza.web import read_body
from locator.listeners import listener_of
from locator.metrics import LocatorMetrics
from locator.settings import LocatorSettings
from plays import results
from plays.log import PlayLog, open_log

logger = get_logger("locator.plays")
T = TypeVar("T")

# An event is at most its credential and about 500 bytes of fields.
MAX_BODY = MAX_BATCH * (MAX_CREDENTIAL_LENGTH + 1024)
LICENCE_GRACE_S = 300.0  # a device clock this far off a licence's life still reports
APPEND_TIMEOUT_S = 5.0  # a log that cannot take a batch by then: 503, the player sends it later
HISTORY_LIMIT = 50


class PlaysRefused(HttpError):
    """A batch refused because of one event, which the answer names."""

    def __init__(
        self, status: int, message: str, reason: str, index: int | None = None,
        event_id: Any = None,
    ) -> None:  # fmt: skip
        super().__init__(status, message)
        self.reason = reason  # the metric's outcome
        self.index = index
        self.event_id = event_id if isinstance(event_id, str) else None

    def details(self) -> dict[str, Any]:
        return {} if self.index is None else {"event": self.index, "id": self.event_id}


class PlaysLog:
    """The log, opened at the first batch: a locator that is never sent plays never opens it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._log: PlayLog | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> PlayLog:
        async with self._lock:
            if self._log is None:
                self._log = await open_log(self.url)
            return self._log

    async def close(self) -> None:
        if self._log is not None:
            await self._log.close()


Credited = dict[tuple[str, bool, str, str], tuple[str, str, int, int]]


def check_event(
    event: PlayEvent,
    keys: Mapping[str, bytes],
    now: float,
    window_s: float,
    checked: Credited | None = None,
) -> PlayEvent:
    """The event as it is logged: listener and territory from its credential, which is checked
    and left out; TokenError or LicenceError when the credential does not cover the event.

    ``checked`` holds the credentials already checked in this batch (a play's events share
    one), so that each is verified once."""
    if not event.credential:
        raise TokenError("malformed", "the event carries no credential (the play's token)")
    key = (event.credential, event.offline, event.track_id, event.version)
    found = checked.get(key) if checked is not None else None
    if found is None:
        found = _credential(event, keys, now, window_s)
        if checked is not None:
            checked[key] = found
    listener, territory, issued, expires = found
    if event.offline and not issued - LICENCE_GRACE_S <= event.at <= expires + LICENCE_GRACE_S:
        raise LicenceError("the event falls outside its licence's life")
    return event.credited(listener, territory)


def _credential(
    event: PlayEvent, keys: Mapping[str, bytes], now: float, window_s: float
) -> tuple[str, str, int, int]:
    """Listener, territory and (for a licence) its life, of the event's checked credential."""
    if event.offline:
        licence = read_licence(event.credential, keys)
        if (licence.track_id, licence.version) != (event.track_id, event.version):
            raise LicenceError(f"the licence is for {licence.track_id} {licence.version}, "
                               f"not {event.track_id} {event.version}")  # fmt: skip
        return licence.listener, licence.territory, licence.issued, licence.expires
    claims = verify(event.credential, keys, f"/tracks/{event.track_id}/", now, leeway=window_s)
    return claims.listener, claims.territory, 0, 0


async def accept(request: web.Request) -> web.Response:
    """A batch of play events: checked, appended to the log, 202 with counts."""
    app = request.app
    settings, metrics = app[SETTINGS], app[METRICS]
    try:
        events = _events(await _body(request))
        now, window = time.time(), settings.plays_report_window
        credentials: Credited = {}
        checked = []
        for n, event in enumerate(events):
            try:
                checked.append(check_event(event, settings.token_keys, now, window, credentials))
            except (TokenError, LicenceError) as e:
                reason = f"token_{e.reason}" if isinstance(e, TokenError) else "licence"
                message = f"event {n} ({event.id}): {e}"
                raise PlaysRefused(403, message, reason, n, event.id) from None
    except PlaysRefused as e:
        metrics.play_events.labels(e.reason).inc()
        raise
    try:
        log = await app[LOG].get()
        async with asyncio.timeout(APPEND_TIMEOUT_S):
            new = await log.append(checked)
    except Exception as e:
        logger.warning("play log %s cannot take a batch: %s", _safe(settings.plays_log), e)
        metrics.play_events.labels("log_unavailable").inc(len(checked))
        raise HttpError(503, "the play log cannot take events now; send them again later") from e
    metrics.play_events.labels("accepted").inc(new)
    metrics.play_events.labels("duplicate").inc(len(checked) - new)
    body = {"accepted": len(checked), "new": new, "duplicates": len(checked) - new}
    return web.json_response(body, status=202, headers=CORS)


async def _body(request: web.Request) -> bytes:
    """The request body, refused (413) past MAX_BODY without reading the rest."""
    body = await read_body(request, MAX_BODY)
    if body is None:
        raise PlaysRefused(413, f"a batch of events is at most {MAX_BODY} bytes", "too_large")
    return body


def _events(body: bytes) -> list[PlayEvent]:
    try:
        doc = json.loads(body)
    except ValueError:
        message = 'the body is not JSON: send {"events": [...]}'
        raise PlaysRefused(400, message, "malformed") from None
    try:
        return check_batch(doc)
    except PlayEventError as e:
        index = _index(str(e))
        bad = doc["events"][index] if index is not None else None
        event_id = bad.get("id") if isinstance(bad, dict) else None
        raise PlaysRefused(400, str(e), "malformed", index, event_id) from None


def _index(message: str) -> int | None:
    match = re.match(r"event (\d+):", message)
    return int(match[1]) if match else None


# -- what the consumers made ------------------------------------------------------------------


async def history(request: web.Request) -> web.Response:
    """A listener's plays, the latest first (``?limit=``, at most results.MAX_HISTORY)."""
    settings = request.app[SETTINGS]
    listener = request.match_info["listener"]
    if not LISTENER.fullmatch(listener):
        raise HttpError(400, f"{listener[:80]!r} is not a listener id (1 to 64 of [A-Za-z0-9_-])")
    if settings.listener_header:
        asking = listener_of(request.headers, {}, header=settings.listener_header,
                             from_query=False)  # fmt: skip
        if asking != listener:
            raise HttpError(403, "a listener's history is theirs alone to read")
    if settings.plays_results is None:
        raise HttpError(404, "this locator keeps no history: set plays_results")
    try:
        limit = int(request.query.get("limit", HISTORY_LIMIT))
    except ValueError:
        raise HttpError(400, "limit must be a whole number") from None
    none: list[dict[str, Any]] = []
    plays = await _read_results(settings, lambda db: results.history(db, listener, limit), none)
    headers = {**CORS, "Cache-Control": "private, no-store"}
    return web.json_response({"listener": listener, "plays": plays}, headers=headers)


async def popular(app: web.Application, region: str, limit: int) -> list[tuple[str, float]] | None:
    """The region's most played tracks from the popularity consumer's results; None when there
    are none to read (not configured, or unreadable: ``/v1/hot`` counts its own plays then)."""
    settings = app[SETTINGS]
    if settings.plays_results is None:
        return None
    edges = [e.id for e in settings.edges if not region or e.region == region]
    now = time.time()
    try:
        top: list[tuple[str, float]] | None = await _read_results(
            settings, lambda db: results.hot(db, edges, limit, now), None
        )
        return top
    except HttpError:
        return None


async def _read_results(
    settings: LocatorSettings, read: Callable[[sqlite3.Connection], T], none_yet: T
) -> T:
    """What ``read`` finds in the results, ``none_yet`` before a consumer has made them."""
    assert settings.plays_results is not None
    path = settings.plays_results

    def query() -> T:
        if not path.exists():
            return none_yet
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2.0)
        try:
            return read(db)
        finally:
            db.close()

    try:
        return await asyncio.to_thread(query)
    except sqlite3.Error as e:
        logger.warning("the plays' results %s cannot be read: %s", path, e)
        raise HttpError(503, "the plays' results cannot be read now; try again") from None


def _safe(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//", url)


# -- wiring -----------------------------------------------------------------------------------

SETTINGS = web.AppKey("plays_settings", LocatorSettings)
METRICS = web.AppKey("plays_metrics", LocatorMetrics)
LOG = web.AppKey("plays_log", PlaysLog)
CORS = {"Access-Control-Allow-Origin": "*"}


def add_routes(app: web.Application, settings: LocatorSettings, metrics: LocatorMetrics) -> None:
    """``POST /v1/plays`` and ``GET /v1/history/{listener}`` on the locator's app (any worker)."""
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[LOG] = PlaysLog(settings.plays_log)
    app.cleanup_ctx.append(_close_log)
    app.router.add_post("/v1/plays", accept, name="plays")
    app.router.add_get("/v1/history/{listener}", history, name="history")


async def _close_log(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[LOG].close()
