"""Offline licences from the locator: ``POST /v1/licences`` and ``POST /v1/licences/renew``.

A licence (``cadenza.licences``) lets one listener play one track version on one device while
offline, until it expires (``licence_days`` after it is issued). The locator grants it on the
same grounds as a play: the listener comes from ``listener_of`` (a licence without a listener is
refused: it would bind no one), the territory from the client's location, and the track's rights
in that territory from the origin, exactly as ``GET /v1/play`` checks them. The answer names the
version the licence is for and the play URL to download it from (the usual steered play, with
this request's location and listener).

Renewal takes licences the locator signed, for the same listener and device, and grants each a
new expiry when the track may still be played where the client is now. It is refused, with the
reason, when

- the licence is not the locator's (a bad signature, a retired key) or not this listener's or
  device's (403);
- the track is taken down (410), unknown (404) or not licensed in the client's territory (451);
- a newer version replaced the one licensed (409): the old version stays playable until its
  licence ends, and ``cadenza offline add`` downloads the new one with a new licence.

Both answer 200 with one result per track or licence, so that one refusal does not stop the
rest; a request that cannot be read at all (no listener, no device, a malformed body) is a 4xx.
"""

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from cadenza import layout
from cadenza.errors import HttpError
from cadenza.licences import DEVICE, Licence, LicenceError, read_licence, sign_licence
from cadenza.web import read_body
from locator.fleet import Rights
from locator.geo import Location
from locator.listeners import listener_of
from locator.settings import LocatorSettings

DAY = 86400
MAX_TRACKS = 100  # tracks or licences in one request
MAX_BODY = 256 * 1024


class LicenceRefused(HttpError):
    """A licence request that cannot be read or answered at all."""


@dataclass(frozen=True)
class Admission:
    """What a licence is checked with: the play path's own checks, handed over by the app so
    that licences and plays can never disagree about a track."""

    settings: LocatorSettings
    locate: Callable[[web.Request], Location]  # where the client is
    rights: Callable[[web.Application, str, str], Awaitable[Rights]]  # the track's, cached
    master: Callable[[web.Application, str], Awaitable[str]]  # its current master playlist
    registry: CollectorRegistry  # the worker's metrics


ADMISSION = web.AppKey("licence_admission", Admission)
COUNTS = web.AppKey("licence_counts", Counter)


def add_routes(app: web.Application, admission: Admission) -> None:
    app[ADMISSION] = admission
    app[COUNTS] = Counter(
        "cadenza_locator_licences",
        "Offline licences asked for, by action (issue, renew) and result (ok, or the refusal's "
        "status)",
        ["action", "result"],
        registry=admission.registry,
    )
    app.router.add_post("/v1/licences", issue, name="licences")
    app.router.add_post("/v1/licences/renew", renew, name="renew_licences")


def version_of(master: str) -> str:
    """The track version a master playlist names (its variants' first path segment);
    ValueError when it names none, or several."""
    uris = [line.strip() for line in master.splitlines() if line.strip()[:1] not in ("", "#")]
    versions = {uri.split("/", 1)[0] for uri in uris}
    if len(versions) != 1 or not layout.VERSION.fullmatch(next(iter(versions))):
        raise ValueError(f"the master playlist names versions {sorted(versions)[:4]}, not one")
    return versions.pop()


async def issue(request: web.Request) -> web.Response:
    """Licences for ``{"tracks": [id, ...]}`` (or ``{"track": id}``) on ``{"device": id}``."""
    admission = request.app[ADMISSION]
    listener = _listener(request, admission.settings)
    body = await _body(request)
    device = _device(body)
    tracks = body.get("tracks", [body["track"]] if "track" in body else None)
    if not isinstance(tracks, list) or not 1 <= len(tracks) <= MAX_TRACKS:
        raise LicenceRefused(400, f'send {{"tracks": [TRACK_ID, ...]}}: 1 to {MAX_TRACKS} ids')
    territory = _territory(admission.locate(request))
    now = int(time.time())
    results = []
    for track_id in dict.fromkeys(tracks):
        try:
            if not isinstance(track_id, str) or not layout.TRACK_ID.fullmatch(track_id):
                raise LicenceRefused(400, f"{str(track_id)[:40]!r} is not a track id")
            version = await _playable(request, track_id, territory)
            licence = _licence(admission, now, territory, track_id, version, listener, device)
            results.append(_granted(request, admission, licence))
        except HttpError as e:
            results.append(_refused(str(track_id)[:40], e))
    return _answer(request, "issue", listener, device, territory, results)


async def renew(request: web.Request) -> web.Response:
    """New expiries for ``{"licences": [text, ...], "device": id}``, each checked anew."""
    admission = request.app[ADMISSION]
    listener = _listener(request, admission.settings)
    body = await _body(request)
    device = _device(body)
    texts = body.get("licences")
    if not isinstance(texts, list) or not 1 <= len(texts) <= MAX_TRACKS:
        raise LicenceRefused(400, f'send {{"licences": [LICENCE, ...]}}: 1 to {MAX_TRACKS}')
    territory = _territory(admission.locate(request))
    now = int(time.time())
    results = []
    for text in texts:
        track_id = None
        try:
            old = _own_licence(text, admission.settings, listener, device)
            track_id = old.track_id
            version = await _playable(request, track_id, territory)
            if version != old.version:
                raise LicenceRefused(
                    409, f"track {track_id}: version {old.version} was replaced by {version}; "
                    f"run 'cadenza offline add {track_id}' to download the new one"
                )  # fmt: skip
            licence = _licence(admission, now, territory, track_id, version, listener, device)
            results.append(_granted(request, admission, licence))
        except HttpError as e:
            results.append(_refused(track_id, e))
    return _answer(request, "renew", listener, device, territory, results)


def _listener(request: web.Request, settings: LocatorSettings) -> str:
    listener = listener_of(
        request.headers,
        request.query,
        header=settings.listener_header,
        from_query=settings.listener_query,
    )
    if not listener:
        raise LicenceRefused(
            403, "an offline licence is for one listener, and this request names none "
            "(the front end's listener header, or in labs ?listener=ID)"
        )  # fmt: skip
    return listener


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await read_body(request, MAX_BODY)
    if raw is None:
        raise LicenceRefused(413, f"a licence request is at most {MAX_BODY} bytes")
    try:
        body = json.loads(raw)
    except ValueError:
        raise LicenceRefused(400, "the request body is not JSON") from None
    if not isinstance(body, dict):
        raise LicenceRefused(400, "the request body must be a JSON object")
    return body


def _device(body: dict[str, Any]) -> str:
    device = body.get("device")
    if not isinstance(device, str) or not DEVICE.fullmatch(device):
        raise LicenceRefused(400, 'send "device": the device id (8 to 64 of [A-Za-z0-9_-])')
    return device


def _territory(client: Location) -> str:
    if client.territory is None:
        raise LicenceRefused(451, "the client's territory is unknown, so its rights are too")
    return client.territory


async def _playable(request: web.Request, track_id: str, territory: str) -> str:
    """The track's current version, when it may be played in ``territory``; HttpError if not."""
    admission = request.app[ADMISSION]
    rights = await admission.rights(request.app, track_id, territory)
    if rights.status != 200:
        raise LicenceRefused(rights.status, f"track {track_id}: {rights.reason}")
    master = await admission.master(request.app, track_id)
    try:
        return version_of(master)
    except ValueError as e:
        raise LicenceRefused(502, f"track {track_id}: {e}") from None


def _own_licence(text: Any, settings: LocatorSettings, listener: str, device: str) -> Licence:
    if not isinstance(text, str):
        raise LicenceRefused(400, "a licence is a string")
    try:
        licence = read_licence(text, settings.token_keys)
    except LicenceError as e:
        raise LicenceRefused(403, str(e)) from None
    if licence.listener != listener or licence.device != device:
        raise LicenceRefused(
            403, f"the licence of track {licence.track_id} is another listener's or device's"
        )
    return licence


def _licence(admission: Admission, now: int, territory: str, track_id: str, version: str,
             listener: str, device: str) -> Licence:  # fmt: skip
    expires = now + int(admission.settings.licence_days * DAY)
    kid = admission.settings.signer[0]
    return Licence(kid, now, expires, territory, track_id, version, listener, device)


def _granted(request: web.Request, admission: Admission, licence: Licence) -> dict[str, Any]:
    public = admission.settings.public_url or str(request.url.origin())
    query = f"?{request.query_string}" if request.query_string else ""  # location, listener
    return {
        "track_id": licence.track_id,
        "status": "ok",
        "licence": sign_licence(licence, admission.settings.token_keys[licence.kid]),
        "version": licence.version,
        "territory": licence.territory,
        "issued": licence.issued,
        "expires": licence.expires,
        "play": f"{public}/v1/play/{licence.track_id}{query}",
    }


def _refused(track_id: str | None, error: HttpError) -> dict[str, Any]:
    return {"track_id": track_id, "status": "refused", "code": error.status, "error": str(error)}


def _answer(
    request: web.Request,
    action: str,
    listener: str,
    device: str,
    territory: str,
    results: list[dict[str, Any]],
) -> web.Response:
    for result in results:
        request.app[COUNTS].labels(action, str(result.get("code", "ok"))).inc()
    doc = {"listener": listener, "device": device, "territory": territory, "licences": results}
    return web.json_response(doc, headers={"Cache-Control": "no-store"})
