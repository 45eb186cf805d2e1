"""``cadenza offline``: tracks downloaded for listening without a network, under licence.

``add`` asks the locator for licences (``POST /v1/licences``), then downloads each track's
chosen rung (media playlist, init, segments) through the usual steered play into the offline
store (``player.store``); ``renew`` renews every licence while online (``POST
/v1/licences/renew``) and reports the offline plays; ``sync`` only reports them; ``list`` and
``remove`` look after the store. ``cadenza play --offline TRACK`` (``play_offline``) plays a
downloaded track through the player's usual path (``player.session``) with no network at all,
while its licence has not expired, and journals its play events for the next ``sync``.

The licence check reads the clock from ``CADENZA_OFFLINE_NOW`` (unix seconds) when it is set,
and nothing else does: it lets tests and demonstrations move a device's clock past a licence's
expiry. Like any clock on a device the listener controls, it is the listener's to set; what
protects the rights holders is renewal, which the locator refuses once a track may no longer
be played, and play events, which the locator checks against the licence's signature.
"""

import argparse
import asyncio
import json
import math
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cadenza.errors import CadenzaError, ConfigError
from player.abr import DEFAULT_MAX_BUFFER_S

if TYPE_CHECKING:
    import aiohttp

    from cadenza.licences import Licence
    from player import hls
    from player.qoe import QoE, SegmentRecord
    from player.store import OfflineStore, OfflineTrack

ENV_NOW = "CADENZA_OFFLINE_NOW"
PATHWAY = "offline"
LOCAL_BASE = "http://offline.invalid/"  # never asked: an offline play reads every object locally
PROGRESS_MS = 30_000  # a progress event for every 30 s of audio heard
CONNECT_S = 5.0
READ_S = 30.0
QUALITIES = ("low", "high")
Progress = Callable[[str, int, int], None]  # track id, objects done, objects in all

DESCRIPTION = """\
Keep tracks on this device to play them without a network, under a licence from the locator
that names the listener, this device, the track's version and the territory, and expires
(30 days by default) unless renewed while online.

  add TRACK...   licence and download each track's rung (--quality high, the default, or low,
                 or --rung KBPS: the highest rung at most that rate) into the offline store
  renew          renew every licence, and report the offline plays; the locator refuses a
                 track that was taken down, is no longer licensed where you are, or was
                 replaced by a new version (add it again): it stops playing when its licence ends
  sync           report the offline plays' events to the locator (kept until it takes them)
  list           the downloaded tracks and their licences
  remove TRACK   delete a track and its licence

Play with 'cadenza play --offline TRACK': no locator, no edge. The store is --store DIR
(default $XDG_DATA_HOME/cadenza/offline); the device id is made there once. The licence check
reads its clock from CADENZA_OFFLINE_NOW (unix seconds) when set, for tests.
Exit status: 0 all done, 1 some tracks failed or were refused, 2 bad arguments.
"""


class OfflineFailed(CadenzaError):
    """The locator or an edge could not be asked, or refused the whole request."""


# -- the command line -------------------------------------------------------------------------


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "offline",
        help="download tracks for offline listening, renew their licences",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="licence and download tracks")
    add.add_argument("tracks", nargs="+", metavar="TRACK")
    rung = add.add_mutually_exclusive_group()
    rung.add_argument("--rung", type=float, metavar="KBPS", help="the highest rung at most KBPS")
    rung.add_argument("--quality", choices=QUALITIES, default="high", help="default: high")
    renew = actions.add_parser("renew", help="renew every licence, report offline plays")
    sync = actions.add_parser("sync", help="report the offline plays' events")
    for online in (add, renew, sync):
        online.add_argument("--locator", required=True, metavar="URL", help="the locator's URL")
    for located in (add, renew):
        located.add_argument("--listener", metavar="ID", help="labs: the listener id to send")
        located.add_argument("--territory", metavar="CC", help="the listener's country, e.g. FR")
        located.add_argument("--lat", type=float, metavar="X", help="the listener's latitude")
        located.add_argument("--lon", type=float, metavar="Y", help="the listener's longitude")
    listing = actions.add_parser("list", help="the downloaded tracks and their licences")
    remove = actions.add_parser("remove", help="delete a downloaded track")
    remove.add_argument("track", metavar="TRACK")
    for action in (add, renew, sync, listing, remove):
        action.add_argument("--store", type=Path, metavar="DIR", help="the offline store")
        action.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from player.store import OfflineStore

    store = OfflineStore(store_dir(args.store))
    if (getattr(args, "lat", None) is None) != (getattr(args, "lon", None) is None):
        raise ConfigError("give both --lat and --lon, or neither")
    actions: dict[str, Callable[[argparse.Namespace, OfflineStore], int]] = {
        "add": _add, "renew": _renew, "sync": _sync, "list": _list, "remove": _remove,
    }  # fmt: skip
    return actions[args.action](args, store)


def store_dir(flag: Path | None) -> Path:
    """``--store``, else ``$XDG_DATA_HOME/cadenza/offline`` (``~/.local/share`` by default)."""
    if flag is not None:
        return flag
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "cadenza" / "offline"


def licence_clock(environ: dict[str, str] | os._Environ[str] = os.environ) -> float:
    """Now, for the licence check: ``CADENZA_OFFLINE_NOW`` when set, else the system clock."""
    raw = environ.get(ENV_NOW)
    if raw is None or raw == "":
        return time.time()
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{ENV_NOW}={raw[:40]!r} is not unix seconds")
    return value


def _where(args: argparse.Namespace) -> dict[str, str]:
    where = {"territory": args.territory, "lat": args.lat, "lon": args.lon}
    where["listener"] = args.listener
    return {k: str(v) for k, v in where.items() if v is not None}


def _add(args: argparse.Namespace, store: "OfflineStore") -> int:
    from cadenza import layout

    bad = [t for t in args.tracks if not layout.TRACK_ID.fullmatch(t)]
    if bad:
        raise ConfigError(f"{bad[0]!r} is not a track id (16 of [a-z0-9])")
    pick = rung_picker(args.quality, args.rung)
    with _progress(enabled=not args.json and sys.stderr.isatty()) as progress:
        results = asyncio.run(
            add_tracks(store, args.locator, args.tracks, _where(args), pick, progress)
        )
    return _results(args, "tracks", results, lambda r: f"{r['bytes']:,} bytes, {_until(r)}")


def _renew(args: argparse.Namespace, store: "OfflineStore") -> int:
    results, events = asyncio.run(renew_all(store, args.locator, _where(args)))
    if events["error"]:
        print(f"cadenza: warning: play events not reported: {events['error']}", file=sys.stderr)
    return _results(args, "licences", results, _until, {"events": events})


def _sync(args: argparse.Namespace, store: "OfflineStore") -> int:
    events = asyncio.run(_with_http(lambda http: sync_events(store, args.locator, http)))
    if args.json:
        print(json.dumps(events, indent=2))
    else:
        refused = f", {events['refused']} refused" if events["refused"] else ""
        print(f"{events['sent']} play events reported{refused}, {events['pending']} pending")
    if events["error"]:
        print(f"cadenza: error: {events['error']}", file=sys.stderr)
        return 1
    return 0


def _list(args: argparse.Namespace, store: "OfflineStore") -> int:
    now = licence_clock()
    rows = []
    for entry in store.tracks():
        terms = entry.terms
        rows.append({
            "track_id": entry.track_id, "version": terms.version,
            "rung_kbps": round((entry.average_bandwidth or entry.bandwidth) / 1000),
            "bytes": entry.bytes, "listener": terms.listener, "territory": terms.territory,
            "expires": terms.expires, "expired": now >= terms.expires,
        })  # fmt: skip
    pending = sum(len(events) for _, events in store.pending())
    if args.json:
        doc = {"store": str(store.root), "tracks": rows, "pending_events": pending}
        print(json.dumps(doc, indent=2))
        return 0
    for row in rows:
        state = "EXPIRED: go online and renew" if row["expired"] else _until(row)
        print(f"{row['track_id']}  {row['version']}  {row['rung_kbps']:>4} kbit/s  "
              f"{row['bytes']:>12,} bytes  {state}")  # fmt: skip
    print(f"{len(rows)} tracks, {pending} play events to report")
    return 0


def _remove(args: argparse.Namespace, store: "OfflineStore") -> int:
    removed = store.remove(args.track)
    if args.json:
        print(json.dumps({"track_id": args.track, "removed": removed}, indent=2))
    elif removed:
        print(f"removed {args.track}")
    if not removed:
        print(f"cadenza: error: track {args.track} is not downloaded", file=sys.stderr)
        return 1
    return 0


def _until(row: dict[str, Any]) -> str:
    expires = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(row["expires"]))
    return f"licensed until {expires}"


def _results(
    args: argparse.Namespace,
    name: str,
    results: list[dict[str, Any]],
    describe: Callable[[dict[str, Any]], str],
    extra: dict[str, Any] | None = None,
) -> int:
    if args.json:
        print(json.dumps({name: results, **(extra or {})}, indent=2))
    for r in results:
        if r["status"] == "ok" and not args.json:
            print(f"{r['track_id']}  ok  {describe(r)}")
        elif r["status"] != "ok":
            print(f"cadenza: error: {r['track_id']}: {r['error']}", file=sys.stderr)
    return 0 if all(r["status"] == "ok" for r in results) else 1


@contextmanager
def _progress(*, enabled: bool) -> Iterator[Progress]:
    """Download progress on stderr, one bar per track, on a terminal only."""
    if not enabled:
        yield lambda track, done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
    from rich.progress import Progress as Bars

    bars = Bars(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        console=Console(stderr=True), transient=False,
    )  # fmt: skip
    tasks: dict[str, Any] = {}

    def update(track: str, done: int, total: int) -> None:
        if track not in tasks:
            tasks[track] = bars.add_task(track, total=total)
        bars.update(tasks[track], completed=done, total=total)

    with bars:
        yield update


# -- licences and downloads -------------------------------------------------------------------


def rung_picker(quality: str, kbps: float | None) -> Callable[[Sequence[float]], int]:
    """Which rung of a ladder (rates lowest first) to download: the highest at most ``kbps``
    (the lowest when none is), else the lowest or highest for ``quality``."""

    def pick(rates: Sequence[float]) -> int:
        if kbps is not None:
            fitting = [i for i, rate in enumerate(rates) if rate <= kbps]
            return fitting[-1] if fitting else 0
        return 0 if quality == "low" else len(rates) - 1

    return pick


async def _with_http(job: Callable[["aiohttp.ClientSession"], Awaitable[Any]]) -> Any:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_S, sock_read=READ_S)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        return await job(http)


async def _post(http: "aiohttp.ClientSession", url: str, doc: Any) -> Any:
    import aiohttp

    try:
        async with http.post(url, json=doc) as response:
            body = await response.read()
            if response.status // 100 != 2:
                reason = body[:300].decode("utf-8", "replace")
                raise OfflineFailed(f"{url} answered HTTP {response.status}: {reason}")
            return json.loads(body) if body else None
    except (aiohttp.ClientError, TimeoutError) as e:
        raise OfflineFailed(f"cannot reach {url}: {e or type(e).__name__}") from e
    except ValueError as e:
        raise OfflineFailed(f"{url} did not answer JSON: {e}") from e


def _url(locator: str, path: str, query: dict[str, str]) -> str:
    from player import hls

    return hls.with_query(f"{locator.rstrip('/')}{path}", query)


async def add_tracks(
    store: "OfflineStore",
    locator: str,
    tracks: Sequence[str],
    where: dict[str, str],
    pick: Callable[[Sequence[float]], int],
    progress: Progress,
) -> list[dict[str, Any]]:
    """Licence and download ``tracks``; one result per track (``status`` ok or failed)."""
    device = store.device_id()

    async def job(http: "aiohttp.ClientSession") -> list[dict[str, Any]]:
        doc = {"tracks": list(tracks), "device": device}
        answer = await _post(http, _url(locator, "/v1/licences", where), doc)
        results = []
        for item in _licence_items(answer, locator):
            if item.get("status") != "ok":
                results.append(_failure(item.get("track_id"), str(item.get("error"))))
                continue
            try:
                results.append(await _download(http, store, item, pick, progress))
            except CadenzaError as e:
                results.append(_failure(item.get("track_id"), str(e)))
        return results

    result: list[dict[str, Any]] = await _with_http(job)
    return result


def _licence_items(answer: Any, locator: str) -> list[dict[str, Any]]:
    items = answer.get("licences") if isinstance(answer, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise OfflineFailed(f"the locator at {locator} answered no list of licences")
    return items


def _failure(track_id: Any, error: str) -> dict[str, Any]:
    return {"track_id": track_id, "status": "failed", "error": error}


async def _download(
    http: "aiohttp.ClientSession",
    store: "OfflineStore",
    item: dict[str, Any],
    pick: Callable[[Sequence[float]], int],
    progress: Progress,
) -> dict[str, Any]:
    """One licensed track's rung into the store, each object from the first pathway that
    serves it; the track's entry is saved last."""
    from cadenza.hls import parse_media_playlist
    from cadenza.licences import LicenceError, unverified_licence
    from player import hls
    from player.cache import object_key
    from player.store import OfflineTrack

    try:
        terms = unverified_licence(str(item.get("licence")))
    except LicenceError as e:
        raise OfflineFailed(f"the locator's licence cannot be read: {e}") from None
    text = (await _fetch(http, [str(item.get("play"))], "the play")).decode("utf-8", "replace")
    try:
        master = hls.parse_multivariant(text, str(item["play"]))
    except ValueError as e:
        raise OfflineFailed(f"the play answer is not a playlist: {e}") from None
    pathways = _pathway_order(master)
    rung = pick([v.kbps for v in master.ladder(pathways[0])])
    variants = [master.ladder(p)[rung] for p in pathways if rung < len(master.ladder(p))]
    key = object_key(variants[0].uri)
    if key is None or not key.startswith(f"tracks/{terms.track_id}/{terms.version}/"):
        raise OfflineFailed(
            f"track {terms.track_id} changed version while it was being licensed; run "
            "'cadenza offline add' again"
        )
    playlist_urls = [v.uri for v in variants]
    body = await _fetch(http, playlist_urls, "the media playlist")
    try:
        playlist = parse_media_playlist(body.decode("utf-8", "replace"))
    except ValueError as e:
        raise OfflineFailed(f"the media playlist of {terms.track_id} is not one: {e}") from None
    objects = [(key, body)]
    uris = [playlist.init_uri, *(s.uri for s in playlist.segments)]
    for n, uri in enumerate(uris):
        progress(terms.track_id, n, len(uris))
        urls = [hls.resolve(u, uri) for u in playlist_urls]
        object_name = object_key(urls[0])
        if object_name is None or not object_name.startswith(key.rsplit("/", 1)[0]):
            raise OfflineFailed(f"the media playlist of {terms.track_id} names {uri!r}")
        objects.append((object_name, await _fetch(http, urls, uri)))
    progress(terms.track_id, len(uris), len(uris))
    for name, data in objects:
        await asyncio.to_thread(store.keep, name, data)
    variant = variants[0]
    entry = OfflineTrack(
        terms.track_id, str(item["licence"]), key, variant.bandwidth,
        variant.average_bandwidth, variant.codecs, dict(master.session_data),
        sum(len(data) for _, data in objects),
    )  # fmt: skip
    store.save(entry)
    return {
        "track_id": terms.track_id, "status": "ok", "version": terms.version,
        "rung_kbps": round(variant.kbps), "bytes": entry.bytes, "expires": terms.expires,
    }  # fmt: skip


def _pathway_order(master: "hls.Multivariant") -> list[str]:
    lead = [master.default_pathway] if master.default_pathway in master.pathways else []
    return list(dict.fromkeys([*lead, *master.pathways]))


async def _fetch(http: "aiohttp.ClientSession", urls: Sequence[str], what: str) -> bytes:
    """The body of the first of ``urls`` (one per pathway) that serves it."""
    import aiohttp

    errors = []
    for url in urls:
        try:
            async with http.get(url) as response:
                body = await response.read()
                if response.status == 200:
                    return body
                errors.append(f"HTTP {response.status} {body[:120].decode('utf-8', 'replace')}")
        except (aiohttp.ClientError, TimeoutError) as e:
            errors.append(str(e) or type(e).__name__)
    raise OfflineFailed(f"{what} could not be downloaded: {'; '.join(errors)[:500]}")


async def renew_all(
    store: "OfflineStore", locator: str, where: dict[str, str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Report the offline plays, then renew every licence; per licence results, and what
    became of the events."""
    entries = store.tracks()
    device = store.device_id()

    async def job(http: "aiohttp.ClientSession") -> tuple[list[dict[str, Any]], dict[str, Any]]:
        events = await sync_events(store, locator, http)
        by_listener: dict[str, list[OfflineTrack]] = {}
        for entry in entries:
            listener = where.get("listener") or entry.terms.listener
            by_listener.setdefault(listener, []).append(entry)
        results = []
        for listener, group in by_listener.items():
            query = {**where, "listener": listener}
            doc = {"licences": [e.licence for e in group], "device": device}
            answer = await _post(http, _url(locator, "/v1/licences/renew", query), doc)
            items = _licence_items(answer, locator)
            if len(items) != len(group):
                raise OfflineFailed(f"the locator at {locator} answered for other licences")
            results += [
                _renewed(store, entry, item) for entry, item in zip(group, items, strict=True)
            ]
        return results, events

    answer: tuple[list[dict[str, Any]], dict[str, Any]] = await _with_http(job)
    return answer


def _renewed(store: "OfflineStore", entry: "OfflineTrack", item: dict[str, Any]) -> dict[str, Any]:
    from cadenza.licences import LicenceError, unverified_licence

    track_id = entry.track_id
    if item.get("status") != "ok":
        expires = entry.terms.expires
        error = f"{item.get('error')}; it plays offline until its licence ends ({expires})"
        return {**_failure(track_id, error), "code": item.get("code"), "expires": expires}
    try:
        terms = unverified_licence(str(item.get("licence")))
    except LicenceError as e:
        return _failure(track_id, f"the locator's licence cannot be read: {e}")
    if (terms.track_id, terms.version) != (track_id, entry.version):
        return _failure(track_id, "the locator renewed another track or version")
    store.save(replace(entry, licence=str(item["licence"])))
    return {
        "track_id": track_id, "status": "ok", "version": terms.version, "expires": terms.expires
    }  # fmt: skip


async def sync_events(
    store: "OfflineStore", locator: str, http: "aiohttp.ClientSession"
) -> dict[str, Any]:
    """Post the journaled events to the locator's ``POST /v1/plays``, a play's events dropped
    from the journal only once every batch holding them was accepted (2xx)."""
    from cadenza.plays import MAX_BATCH

    sent = 0
    pending = store.pending()
    batches: list[tuple[list[str], list[dict[str, Any]]]] = [([], [])]
    for play_id, events in pending:
        docs = [e.to_json() for e in events]
        while docs:
            room = MAX_BATCH - len(batches[-1][1])
            if room == 0:
                batches.append(([], []))
                continue
            batches[-1][1].extend(docs[:room])
            docs = docs[room:]
            if not docs:
                batches[-1][0].append(play_id)  # settled with the batch holding its last event
    error = None
    refused = 0
    url = _url(locator, "/v1/plays", {})
    for play_ids, docs in batches:
        while docs:
            try:
                status, answer = await _post_events(http, url, docs)
            except OfflineFailed as e:
                error = str(e)
                break
            if status // 100 == 2:
                sent += len(docs)
                break
            bad = answer.get("event") if isinstance(answer, dict) else None
            if 400 <= status < 500 and isinstance(bad, int) and 0 <= bad < len(docs):
                # A batch is taken whole or not at all, and the answer names the event that
                # spoiled it: that one can never be taken, the others are sent again.
                refused += 1
                docs = docs[:bad] + docs[bad + 1 :]
                continue
            if 400 <= status < 500:  # the whole batch can never be taken: sending it again won't
                refused += len(docs)
                break
            error = f"{url} answered HTTP {status}"
            break
        if error is not None:
            break
        store.settle(play_ids)
    left = sum(len(events) for _, events in store.pending())
    return {"sent": sent, "refused": refused, "pending": left, "error": error}


async def _post_events(
    http: "aiohttp.ClientSession", url: str, docs: list[dict[str, Any]]
) -> tuple[int, Any]:
    """POST a batch of play events: the status and the JSON answer (None if it is not JSON);
    OfflineFailed only when the locator cannot be reached."""
    import aiohttp

    try:
        async with http.post(url, json={"events": docs}) as response:
            body = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as e:
        raise OfflineFailed(f"cannot reach {url}: {e or type(e).__name__}") from e
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, None


# -- playing offline --------------------------------------------------------------------------


class PlayJournal:
    """The play events of one offline play, journaled in the store as they happen: ``start``
    with the first segment, ``progress`` every 30 s heard, ``end`` or ``skip`` once; each with
    its own id, the real time it happened, and the licence as its credential."""

    def __init__(
        self,
        store: "OfflineStore",
        licence: str,
        terms: "Licence",
        rung_kbps: float,
        max_buffer_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.licence = licence
        self.terms = terms
        self.rung_kbps = min(max(round(rung_kbps), 0), 10_000)
        self.max_buffer_s = max_buffer_s
        self.clock = clock
        self.play_id = uuid.uuid4().hex
        self.events: list[Any] = []
        self.arrived_s = 0.0
        self.heard_ms = 0

    def segment(self, record: "SegmentRecord") -> None:
        """A segment is in the buffer: the ones before it have (about) played, but for a full
        buffer's worth."""
        if not self.events:
            self._add("start", 0, 0)
        heard = max(0.0, self.arrived_s - self.max_buffer_s + record.duration_s)
        self.arrived_s += record.duration_s
        if int(heard * 1000) // PROGRESS_MS > self.heard_ms // PROGRESS_MS:
            self._add("progress", int(heard * 1000), 0)
        self.heard_ms = max(self.heard_ms, int(heard * 1000))

    def end(self, qoe: "QoE", *, ended: bool = True) -> None:
        if not self.events:
            self._add("start", 0, 0)
        self._add("end" if ended else "skip", int(qoe.duration_s * 1000), qoe.stalls)

    def failed(self) -> None:
        if self.events:
            self._add("skip", self.heard_ms, 0)

    def _add(self, kind: str, played_ms: int, stalls: int) -> None:
        from cadenza.plays import MAX_PLAYED_MS, PlayEvent

        event = PlayEvent(
            uuid.uuid4().hex, self.play_id, kind, self.clock(), self.terms.track_id,
            self.terms.version, self.terms.territory, "", min(played_ms, MAX_PLAYED_MS),
            self.rung_kbps, stalls, offline=True, credential=self.licence,
            listener=self.terms.listener,
        )  # fmt: skip
        self.events.append(event)
        self.store.journal(self.events)


def play_offline(
    track_id: str,
    root: Path,
    *,
    rule: str | None = None,
    speed: float = 1.0,
    max_buffer_s: float = DEFAULT_MAX_BUFFER_S,
    timeout_s: float | None = None,
    now: float | None = None,
) -> "QoE":
    """Play a downloaded track with no network, if its licence is valid at ``now`` (default:
    ``licence_clock()``); LicenceError saying to go online once it has expired, StoreError
    when the track is not downloaded, PlaybackFailed when the store lacks an object."""
    from cadenza.hls import MultivariantPlaylist, Variant
    from cadenza.licences import check_valid
    from player.abr import DEFAULT_RULE
    from player.session import PlaybackFailed, play
    from player.store import OfflineStore, StoreError

    store = OfflineStore(root)
    entry = store.track(track_id)
    if entry is None:
        raise StoreError(
            f"track {track_id} is not downloaded in {root}: run 'cadenza offline add "
            f"{track_id}' while online"
        )
    terms = entry.terms
    check_valid(terms, licence_clock() if now is None else now)
    variant = Variant(LOCAL_BASE + entry.playlist, entry.bandwidth, entry.average_bandwidth,
                      entry.codecs, PATHWAY)  # fmt: skip
    master = MultivariantPlaylist((variant,), session_data=entry.session_data)
    journal = PlayJournal(store, entry.licence, terms, variant.kbps, max_buffer_s)
    try:
        qoe = asyncio.run(
            play(
                track_id, LOCAL_BASE, rule=rule or DEFAULT_RULE, speed=speed,
                max_buffer_s=max_buffer_s, timeout_s=timeout_s, on_segment=journal.segment,
                cache=store, offline=master,
            )
        )  # fmt: skip
    except PlaybackFailed:
        journal.failed()
        raise
    journal.end(qoe)
    return qoe
