"""Cadenza's own player: one play of one track, from the locator's answer to the last segment.

The I/O shell around the pure parts: it asks the locator for the steered multivariant
playlist, follows the steering manifest in the background, lets the ABR rule pick each
segment's rung, fetches the rung's media playlist, init segment and segments from the leading
pathway (edge) with CMCD on every request, and fails over to the next pathway on any error,
retrying the same segment there. It does not decode audio: ``Playback`` keeps the buffer and
the account, and the loudness gain is reported, not applied.
"""

import asyncio
import contextlib
import secrets
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

from cadenza.errors import CadenzaError, ConfigError
from cadenza.hls import MediaPlaylist, Variant, parse_media_playlist
from cadenza.log import get_logger
from player import cmcd, hls, loudness, reports
from player.abr import (
    DEFAULT_MAX_BUFFER_S,
    DEFAULT_RULE,
    RULES,
    AbrRule,
    DownloadSample,
    PlayerState,
    make_rule,
)
from player.cache import ObjectSource, object_key
from player.qoe import Failure, Playback, QoE, SegmentRecord
from player.shaping import PlayClock, head_arrived, shaped
from player.traces import Trace

logger = get_logger("player")

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=3.0, sock_read=5.0)
PENALTY_S = 60.0  # a pathway that failed is passed over for this long
ROUNDS = 2  # every pathway may fail a segment this often before the play gives up
ROUND_PAUSE_S = 1.0  # between rounds, when every pathway has failed
STEERING_RETRY_S = 5.0  # after a steering manifest could not be loaded
FIRST_SEGMENT_S = 6.0  # the ladder's segment length, assumed until a media playlist is read
CHUNK = 16 * 1024
SegmentObserver = Callable[[SegmentRecord], None]


class PlaybackFailed(CadenzaError):
    """The play could not go on: the locator refused it, or no pathway served a segment."""


class _RequestFailed(Exception):
    """One request that failed on one pathway: refused, an HTTP error, cut short or garbled."""

    def __init__(self, what: str, message: str) -> None:
        super().__init__(message)
        self.what = what


@dataclass
class _Play:
    http: aiohttp.ClientSession
    clock: PlayClock
    trace: Trace | None
    track_id: str
    master: hls.Multivariant
    choice: hls.PathwayChoice
    rule: AbrRule
    max_buffer_s: float
    max_segments: int | None
    on_segment: SegmentObserver | None
    cache: ObjectSource | None = None  # looked at first for every immutable media object
    local_only: bool = False  # offline: every object comes from ``cache``, none from the network
    on_downloaded: Callable[[], None] | None = None
    bitrates: tuple[float, ...] = ()
    session_id: str = field(default_factory=lambda: secrets.token_hex(8))
    playback: Playback = field(default_factory=Playback)
    playlists: dict[tuple[str, int], tuple[str, MediaPlaylist]] = field(default_factory=dict)
    inits: set[int] = field(default_factory=set)  # rungs whose init segment is held
    durations: tuple[float, ...] | None = None
    last_rung: int | None = None
    pathway: str | None = None  # the one fetched from last
    throughput_kbps: float | None = None  # of the last segment download
    from_cache: bool = False  # whether the last object came from the device
    first_byte_s: float = 0.0  # of the last object: seconds from its request to its head
    reporter: reports.PlayReporter | None = None  # its play events

    def __post_init__(self) -> None:
        self.bitrates = tuple(v.kbps for v in self.master.ladder(self.master.pathways[0]))

    def measures_links(self) -> bool:
        """Whether a small download's time says something of the link: on a real link (real
        time) or a shaped one; a sped-up, unshaped play would read loopback's latency times
        its speed as a slow link."""
        return self.trace is not None or self.clock.speed == 1.0

    def wants(self, index: int) -> bool:
        """Whether segment ``index`` is to be played: it exists and the listener stays."""
        listens = self.max_segments is None or index < self.max_segments
        return listens and (self.durations is None or index < len(self.durations))


async def play(
    track_id: str,
    locator_url: str,
    *,
    territory: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    rule: str = DEFAULT_RULE,
    trace: Trace | None = None,
    speed: float = 1.0,
    max_buffer_s: float = DEFAULT_MAX_BUFFER_S,
    timeout_s: float | None = None,
    max_segments: int | None = None,
    on_segment: SegmentObserver | None = None,
    cache: ObjectSource | None = None,
    offline: hls.Multivariant | None = None,
    prepared: hls.Multivariant | None = None,
    on_downloaded: Callable[[], None] | None = None,
    listener: str | None = None,
    report: bool = True,
    abr: AbrRule | None = None,
) -> QoE:
    """Play ``track_id`` as the locator at ``locator_url`` steers it; the play's QoE.

    ``trace`` shapes every download; ``speed`` runs the play's clock (trace, buffer, steering
    TTL) that many times faster than the wall clock. ``timeout_s`` bounds the whole play in wall
    seconds. With ``max_segments`` the listener skips to the next track after that many
    segments (the play ends once they have played). ``on_segment`` hears of every segment as
    it arrives. Media objects are looked up in ``cache`` first (the player's local cache,
    ``player.cache``) and kept there. With ``offline``, the multivariant playlist of a
    downloaded track, the play asks no locator and fetches nothing: every object comes from
    ``cache`` (the offline store). ``prepared`` is the play's multivariant playlist when it was
    asked for ahead (``prepare``, for a gapless queue): the locator is not asked again.
    ``on_downloaded`` is called once every segment the listener will hear has arrived, while the
    buffer still plays: the moment to prepare the next track. ``listener`` names the listener
    to a locator in labs (``?listener=``); with ``report`` an online play's events go to the
    locator (``player.reports``), never holding the play up (an offline play journals its own).
    ``abr`` is a rule that goes on from earlier plays (a queue keeps one for all its tracks, so
    what it learnt of the link carries over); by default a fresh one named by ``rule``.
    ConfigError for bad arguments, PlaybackFailed when the play cannot go on.
    """
    _check(rule, lat, lon, speed, max_buffer_s, max_segments)
    if offline is not None and cache is None:
        raise ConfigError("an offline play needs the store its objects come from")
    clock = PlayClock(speed)
    where = {"lat": lat, "lon": lon, "territory": territory, "listener": listener}
    url = _play_url(locator_url, track_id, where)
    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as http:
        sender = reports.Sender(http, locator_url) if report and offline is None else None
        try:
            async with asyncio.timeout(timeout_s):
                master = offline or prepared or await _locate(http, clock, trace, url)
                p = _Play(
                    http, clock, trace, track_id, master,
                    hls.PathwayChoice(master.pathways, master.default_pathway),
                    abr or make_rule(rule), max_buffer_s, max_segments, on_segment, cache,
                    offline is not None, on_downloaded,
                )  # fmt: skip
                if sender is not None:
                    first = master.variants[0].uri
                    p.reporter = reports.PlayReporter.of(sender, first, track_id, territory)
                try:
                    await _play_through(p)
                finally:
                    _report(p, finished=True)
        except TimeoutError:
            raise PlaybackFailed(f"the play did not end within {timeout_s} s") from None
        finally:
            if sender is not None:
                await sender.close()
    gain = loudness.gain_db(loudness.from_session_data(master.session_data))
    return p.playback.summary(track_id, rule, master.pathways, gain)


async def prepare(
    track_id: str,
    locator_url: str,
    cache: ObjectSource,
    *,
    territory: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    rule: str = DEFAULT_RULE,
    max_buffer_s: float = DEFAULT_MAX_BUFFER_S,
    trace: Trace | None = None,
    speed: float = 1.0,
    listener: str | None = None,
    abr: AbrRule | None = None,
) -> hls.Multivariant:
    """Ask for the play of ``track_id`` ahead, and put in ``cache`` what its start reads: the
    lowest rung's media playlist (the first read, see ``_media_playlist``), and the playlist,
    init and first segment of the rung that ``rule`` will choose first. ``play(...,
    prepared=the answer, cache=cache)`` then starts from the device. A failure to fetch the
    objects only costs the play its head start; a refused play raises PlaybackFailed. ``abr``,
    the rule that will play the track, chooses that first rung; by default a fresh ``rule``."""
    _check(rule, lat, lon, speed, max_buffer_s, None)
    clock = PlayClock(speed)
    where = {"lat": lat, "lon": lon, "territory": territory, "listener": listener}
    url = _play_url(locator_url, track_id, where)
    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as http:
        master = await _locate(http, clock, trace, url)
        ladder = master.ladder(master.default_pathway or master.pathways[0])
        try:
            await _prefetch_start(
                http, clock, trace, cache, ladder, abr or make_rule(rule), max_buffer_s
            )
        except (aiohttp.ClientError, TimeoutError, ValueError, IndexError) as e:
            logger.info("the start of %s could not be fetched ahead: %s", track_id, _describe(e))
    return master


async def _prefetch_start(
    http: aiohttp.ClientSession,
    clock: PlayClock,
    trace: Trace | None,
    cache: ObjectSource,
    ladder: tuple[Variant, ...],
    rule: AbrRule,
    max_buffer_s: float,
) -> None:
    async def fetch(url: str) -> bytes:
        key, held = _held(cache, url)
        if held is not None:
            return held
        sent = clock.now()
        async with http.get(URL(url, encoded=True)) as response:
            body = await _read(response, clock, trace, sent)
            if response.status != 200:
                raise aiohttp.ClientError(f"{url}: {_reason(response, body)}")
        if key is not None:
            await asyncio.to_thread(_keep, cache, key, body)
        return body

    first = parse_media_playlist((await fetch(ladder[0].uri)).decode("utf-8", "replace"))
    bitrates = tuple(v.kbps for v in ladder)
    state = PlayerState(bitrates, 0.0, max_buffer_s, first.segments[0].duration, None, False)
    rung = min(max(rule.choose(state), 0), len(ladder) - 1)
    url = ladder[rung].uri
    playlist = first if rung == 0 else parse_media_playlist(
        (await fetch(url)).decode("utf-8", "replace")
    )  # fmt: skip
    await fetch(hls.resolve(url, playlist.init_uri))
    await fetch(hls.resolve(url, playlist.segments[0].uri))


def _check(
    rule: str, lat: float | None, lon: float | None, speed: float, buffer: float, most: int | None
) -> None:
    if rule not in RULES:
        raise ConfigError(f"no ABR rule {rule!r}; choose one of {', '.join(RULES)}")
    if (lat is None) != (lon is None):
        raise ConfigError("give both --lat and --lon, or neither")
    if not speed > 0:
        raise ConfigError(f"the speed must be positive, not {speed}")
    if not buffer >= 2 * FIRST_SEGMENT_S:
        raise ConfigError(f"the maximum buffer must hold two segments ({2 * FIRST_SEGMENT_S} s)")
    if most is not None and most < 1:
        raise ConfigError(f"max_segments must be at least 1, not {most}")


def _play_url(locator_url: str, track_id: str, where: dict[str, float | str | None]) -> str:
    base = f"{locator_url.rstrip('/')}/v1/play/{urllib.parse.quote(track_id)}"
    return hls.with_query(base, {k: str(v) for k, v in where.items() if v is not None})


async def _locate(
    http: aiohttp.ClientSession, clock: PlayClock, trace: Trace | None, url: str
) -> hls.Multivariant:
    try:
        sent = clock.now()
        async with http.get(url) as response:
            body = await _read(response, clock, trace, sent)
            if response.status != 200:
                raise PlaybackFailed(f"the locator refused the play: {_reason(response, body)}")
        return hls.parse_multivariant(body.decode("utf-8", "replace"), url)
    except (aiohttp.ClientError, TimeoutError) as e:
        raise PlaybackFailed(f"cannot reach the locator at {url}: {_describe(e)}") from e
    except ValueError as e:
        raise PlaybackFailed(f"the locator's answer is not a playlist: {e}") from e


async def _play_through(p: _Play) -> None:
    steering = None
    if p.master.steering_uri is not None:
        steering = asyncio.create_task(_follow_steering(p, p.master.steering_uri))
    try:
        if p.measures_links():
            with contextlib.suppress(_RequestFailed):  # the first segment's fetch fails over
                await _media_playlist(p, p.choice.choose(p.clock.now()), 0)
        index = 0
        while p.wants(index):
            await _fetch_next(p, index)
            index += 1
        if p.on_downloaded is not None:
            p.on_downloaded()
        await p.clock.sleep_until(p.playback.ends_at())
    finally:
        if steering is not None:
            steering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await steering


async def _fetch_next(p: _Play, index: int) -> None:
    """Wait for room in the buffer, let the rule pick a rung, fetch the segment at it."""
    segment_s = p.durations[index] if p.durations else FIRST_SEGMENT_S
    playing = p.playback.playing
    if playing:
        room = p.max_buffer_s - segment_s
        await p.clock.sleep(p.playback.level(p.clock.now()) - room)
    level = p.playback.level(p.clock.now())
    state = PlayerState(p.bitrates, level, p.max_buffer_s, segment_s, p.last_rung, playing)
    rung = min(max(p.rule.choose(state), 0), len(p.bitrates) - 1)
    record = await _fetch_with_failover(p, index, rung)
    p.playback.arrived(p.clock.now(), record)
    _report(p)
    p.last_rung = rung
    sample = DownloadSample(record.nbytes, record.seconds, record.duration_s, rung, p.first_byte_s)
    if not p.from_cache:  # a read from the device says nothing of the network
        p.throughput_kbps = sample.kbps
        p.rule.observe(sample)
    if p.on_segment is not None:
        p.on_segment(record)


async def _fetch_with_failover(p: _Play, index: int, rung: int) -> SegmentRecord:
    """The segment from the leading pathway, else from the next ones, round after round."""
    error = "no pathway"
    for attempt in range(ROUNDS * len(p.choice.known)):
        if attempt and attempt % len(p.choice.known) == 0:
            await p.clock.sleep(ROUND_PAUSE_S)
        pathway = p.choice.choose(p.clock.now())
        p.pathway = pathway
        try:
            return await _fetch_on(p, pathway, index, rung)
        except _RequestFailed as e:
            now, error = p.clock.now(), str(e)
            logger.warning("segment %d: %s on %s failed: %s", index, e.what, pathway, error)
            p.choice.penalise(pathway, now + PENALTY_S)
            p.playback.failed(Failure(index, pathway, e.what, error, now))
    raise PlaybackFailed(f"no edge could serve segment {index} of {p.track_id} (last: {error})")


async def _fetch_on(p: _Play, pathway: str, index: int, rung: int) -> SegmentRecord:
    url, playlist = await _media_playlist(p, pathway, rung)
    segments = playlist.segments
    segment_url = hls.resolve(url, segments[index].uri)
    if rung not in p.inits:
        init = await _get(p, hls.resolve(url, playlist.init_uri), cmcd.INIT, rung, segment_url)
        p.playback.fetched(len(init))
        p.inits.add(rung)
    after = hls.resolve(url, segments[index + 1].uri) if index + 1 < len(segments) else None
    sent = p.clock.now()
    body = await _get(p, segment_url, cmcd.AUDIO, rung, after)
    return SegmentRecord(
        index, rung, p.bitrates[rung], pathway, len(body), p.clock.now() - sent,
        segments[index].duration, sent,
    )  # fmt: skip


async def _media_playlist(p: _Play, pathway: str, rung: int) -> tuple[str, MediaPlaylist]:
    """The rung's media playlist on this pathway, fetched once."""
    if (pathway, rung) in p.playlists:
        return p.playlists[pathway, rung]
    ladder = p.master.ladder(pathway)
    if rung >= len(ladder):
        raise _RequestFailed("playlist", f"pathway {pathway} has no rung {rung}")
    url = ladder[rung].uri
    sent = p.clock.now()
    body = await _get(p, url, cmcd.MANIFEST, rung, None)
    p.playback.fetched(len(body))
    if p.last_rung is None and p.measures_links() and not p.from_cache:
        # As hls.js tests the bandwidth before its first choice: the lowest rung's playlist,
        # fetched first, is the rule's first sample, so a slow link does not start at the top.
        p.rule.observe(DownloadSample(len(body), p.clock.now() - sent, 0.0, rung, p.first_byte_s))
    try:
        playlist = parse_media_playlist(body.decode("utf-8", "replace"))
    except ValueError as e:
        raise _RequestFailed("playlist", f"not a media playlist: {e}") from e
    durations = tuple(s.duration for s in playlist.segments)
    if len(durations) != len(p.durations or durations):
        raise _RequestFailed("playlist", f"it lists {len(durations)} segments, unlike the others")
    p.durations = p.durations or durations
    p.playlists[pathway, rung] = (url, playlist)
    return url, playlist


async def _get(p: _Play, url: str, kind: cmcd.ObjectType, rung: int, next_url: str | None) -> bytes:
    """One media request with its CMCD; _RequestFailed on any failure."""
    level = p.playback.level(p.clock.now())
    nor = cmcd.relative_url(url, next_url) if next_url else None
    data = cmcd.Cmcd(
        p.session_id, p.track_id, kind, p.bitrates[rung], level, p.throughput_kbps, nor, level <= 0
    )
    what = {cmcd.MANIFEST: "playlist", cmcd.INIT: "init", cmcd.AUDIO: "segment"}[kind]
    key, body = _held(p.cache, url)
    p.from_cache = body is not None
    p.first_byte_s = 0.0
    if body is not None:
        p.playback.local_hits += 1
        return body
    if p.local_only:
        raise _RequestFailed(what, f"{key or url} is not on this device")
    try:
        sent = p.clock.now()
        async with p.http.get(URL(cmcd.with_cmcd(url, data), encoded=True)) as response:
            p.first_byte_s = await head_arrived(p.trace, p.clock, sent)
            body = await _read(response, p.clock, p.trace, sent)
            if response.status != 200:
                raise _RequestFailed(what, _reason(response, body))
    except (aiohttp.ClientError, TimeoutError) as e:
        raise _RequestFailed(what, _describe(e)) from e
    if p.cache is not None and key is not None:
        await asyncio.to_thread(_keep, p.cache, key, body)
    return body


def _held(cache: ObjectSource | None, url: str) -> tuple[str | None, bytes | None]:
    """The media object's key in the local cache (None if it has none, or there is no cache)
    and its bytes if the cache holds them."""
    key = object_key(url) if cache is not None else None
    return key, cache.get(key) if cache is not None and key is not None else None


def _keep(cache: ObjectSource, key: str, body: bytes) -> None:
    """A media object into the local cache; a full or failing disk only costs the next play
    its hit."""
    try:
        cache.put(key, body)
    except OSError as e:
        logger.warning("local cache: %s not kept: %s", key, e)


async def _read(
    response: aiohttp.ClientResponse, clock: PlayClock, trace: Trace | None, sent: float
) -> bytes:
    chunks = [c async for c in shaped(response.content.iter_chunked(CHUNK), trace, clock, sent)]
    return b"".join(chunks)


async def _follow_steering(p: _Play, uri: str) -> None:
    """Load the steering manifest now and again every TTL; errors keep the last order."""
    while True:
        throughput = p.throughput_kbps
        url = hls.steering_request(uri, p.pathway, throughput * 1000 if throughput else None)
        wait = STEERING_RETRY_S
        try:
            async with p.http.get(URL(url, encoded=True)) as response:
                response.raise_for_status()
                manifest = hls.parse_steering_manifest(await response.read(), url)
            p.choice.steer(manifest)
            uri, wait = manifest.reload_uri or uri, manifest.ttl_s
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            logger.info("steering manifest %s not loaded: %s", url, _describe(e))
        await p.clock.sleep(wait)


def _report(p: _Play, *, finished: bool = False) -> None:
    """Tell the play's reporter how much has been heard, as each segment arrives and at the
    end (played whole when every segment of the track has been)."""
    if p.reporter is None:
        return
    now, segments = p.clock.now(), p.playback.segments
    heard_ms = round(1000 * (sum(s.duration_s for s in segments) - p.playback.level(now)))
    kbps = segments[-1].bitrate_kbps if segments else 0.0
    edge, stalls = p.pathway or "", len(p.playback.stalls)
    if not finished:
        p.reporter.segment(heard_ms, edge, kbps, stalls)
        return
    whole = p.durations is not None and len(segments) >= len(p.durations)
    p.reporter.finish(heard_ms, edge, kbps, stalls, whole)


def _reason(response: aiohttp.ClientResponse, body: bytes) -> str:
    return f"HTTP {response.status} {body[:200].decode('utf-8', 'replace')}".strip()


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__
