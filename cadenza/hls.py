"""The HLS playlists of Cadenza as one typed model: RFC 8216 media and multivariant playlists,
with the content steering of RFC 8216bis.

Pure. The encoder writes every playlist with it, the origin renders a version's master, the
locator re-homes that master on one pathway per edge, the edge and the player read them. Parsing
is strict and bounded: only the tags and attributes Cadenza uses, the attribute-list grammar of
RFC 8216 4.2, at most ``MAX_LINES`` lines of ``MAX_LINE_CHARS``, and every ValueError names the
line. Writing is canonical: ``write(parse(text)) == text`` for every playlist written here, and
``parse(write(playlist)) == playlist`` for every playlist the writer accepts.
"""

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from cadenza import layout

VERSION = 7  # what Cadenza writes (fMP4 segments under EXT-X-MAP)
MAX_LINES = 100_000  # 50,000 segments: over 3 days of 6 s segments
MAX_LINE_CHARS = 4096
MAX_CHARS = 8 * 1024 * 1024
DEFAULT_PATHWAY = "."  # RFC 8216bis: variants without PATHWAY-ID belong to pathway "."
PATHWAY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
PATHWAY_QUERY = "_HLS_pathway"  # the steering manifest's reload query (HLS Content Steering)
THROUGHPUT_QUERY = "_HLS_throughput"
LOUDNESS_DATA_ID = "org.cadenza.loudness"  # EXT-X-SESSION-DATA of the EBU R128 figures
LOUDNESS_INTEGRATED = f"{LOUDNESS_DATA_ID}.integrated-lufs"
LOUDNESS_TRUE_PEAK = f"{LOUDNESS_DATA_ID}.true-peak-dbtp"
LOUDNESS_RANGE = f"{LOUDNESS_DATA_ID}.range-lu"

PlaylistType = Literal["VOD", "EVENT"]

_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"\r\n]*"|[^",\s]+)')
_INTEGER = re.compile(r"[0-9]{1,20}")
_DURATION = re.compile(r"([0-9]{1,9}(?:\.[0-9]{1,9})?),([^\x00-\x1f\x7f]*)")
_URI = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+")  # RFC 3986 characters only
_BASE_URL = re.compile(r"https?://[A-Za-z0-9._~:/?\[\]@!$&'()*+,;=%-]+/")
_RELATIVE = re.compile(r"(?![a-zA-Z][a-zA-Z0-9+.-]*:)[^/]")
_DOT_SEGMENT = re.compile(r"(^|/)\.\.?(/|$)")


@dataclass(frozen=True)
class Segment:
    uri: str
    duration: float  # EXTINF seconds, as written: six decimals
    title: str = ""


@dataclass(frozen=True)
class MediaPlaylist:
    """A rendition: one init segment (EXT-X-MAP) and its media segments, in order."""

    init_uri: str
    segments: tuple[Segment, ...]
    target_duration: int
    version: int | None = None
    media_sequence: int | None = None
    playlist_type: PlaylistType | None = None
    independent_segments: bool = False
    endlist: bool = False


@dataclass(frozen=True)
class Variant:
    """One EXT-X-STREAM-INF and its URI."""

    uri: str
    bandwidth: int  # peak bits/s
    average_bandwidth: int | None = None
    codecs: str | None = None
    pathway_id: str | None = None

    @property
    def pathway(self) -> str:
        return self.pathway_id or DEFAULT_PATHWAY

    @property
    def kbps(self) -> float:
        """The rate to plan with: the average when the playlist gives it, else the peak."""
        return (self.average_bandwidth or self.bandwidth) / 1000.0


@dataclass(frozen=True)
class ContentSteering:
    server_uri: str
    pathway_id: str | None = None  # the pathway to play until the manifest is loaded


@dataclass(frozen=True)
class MultivariantPlaylist:
    """A master playlist; ``session_data`` maps each EXT-X-SESSION-DATA's DATA-ID to its VALUE."""

    variants: tuple[Variant, ...]
    version: int | None = None
    independent_segments: bool = False
    session_data: Mapping[str, str] = field(default_factory=dict)
    steering: ContentSteering | None = None

    @property
    def pathways(self) -> tuple[str, ...]:
        """Pathway ids in the playlist's order (the locator lists its first choice first)."""
        return tuple(dict.fromkeys(v.pathway for v in self.variants))

    @property
    def steering_uri(self) -> str | None:
        return self.steering.server_uri if self.steering else None

    @property
    def default_pathway(self) -> str | None:
        return self.steering.pathway_id if self.steering else None

    def ladder(self, pathway: str) -> tuple[Variant, ...]:
        """The pathway's variants, lowest rate first: rung 0 is the lowest."""
        chosen = (v for v in self.variants if v.pathway == pathway)
        return tuple(sorted(chosen, key=lambda v: (v.kbps, v.bandwidth)))


# -- numbers as written ------------------------------------------------------------------------


def extinf(duration: float) -> str:
    """EXTINF as written: six decimals, so every reader sees the same duration."""
    return f"{duration:.6f}"


def target_duration(durations: Iterable[float]) -> int:
    """RFC 8216 4.3.3.1: every EXTINF rounded to the nearest integer is <= the target."""
    return max([1, *(_rounded(d) for d in durations)])


def _rounded(duration: float) -> int:
    return math.floor(float(extinf(duration)) + 0.5)


# -- parsing -----------------------------------------------------------------------------------


def parse_media_playlist(text: str) -> MediaPlaylist:
    """A media playlist as Cadenza and ffmpeg's HLS muxer (fMP4) write it; ValueError naming
    the line otherwise."""
    header: dict[str, Any] = {}
    segments: list[Segment] = []
    pending: tuple[int, float, str] | None = None  # an EXTINF waiting for its URI
    endlist = False
    lines = _lines(text)
    number, line = 0, ""
    try:
        for number, line in lines:
            if not line.startswith("#"):
                if pending is None:
                    raise ValueError(f"segment {line!r} has no EXTINF")
                segments.append(Segment(_uri(line), pending[1], pending[2]))
                pending = None
                continue
            name, value = _tag(line)
            if name in _UNSUPPORTED_MEDIA:
                raise ValueError(f"{name} is not supported: Cadenza plays whole, clear segments")
            if name not in _MEDIA_TAGS:
                continue  # RFC 8216 6.3.1: clients ignore tags they do not recognise
            if pending is not None:
                raise ValueError(f"the EXTINF of line {pending[0]} has no URI before this tag")
            if name == "EXTINF":
                pending = (number, *_extinf(value))
            elif name == "EXT-X-ENDLIST":
                _once(endlist, name)
                endlist = _flag(value, name)
            elif name in _MEDIA_HEADER:
                if segments:
                    raise ValueError(f"{name} must come before the first segment")
                _once(name in header, name)
                header[name] = _MEDIA_HEADER[name](value)
            else:  # pragma: no cover - _MEDIA_TAGS lists exactly the branches above
                raise AssertionError(name)
    except ValueError as e:
        raise _naming(number, line, e) from None
    if pending is not None:
        raise ValueError(f"the EXTINF of line {pending[0]} has no URI")
    if not segments:
        raise ValueError("the media playlist lists no segments")
    for name in ("EXT-X-TARGETDURATION", "EXT-X-MAP"):
        if name not in header:
            raise ValueError(f"the media playlist has no {name}")
    return MediaPlaylist(
        header["EXT-X-MAP"],
        tuple(segments),
        header["EXT-X-TARGETDURATION"],
        header.get("EXT-X-VERSION"),
        header.get("EXT-X-MEDIA-SEQUENCE"),
        header.get("EXT-X-PLAYLIST-TYPE"),
        header.get("EXT-X-INDEPENDENT-SEGMENTS", False),
        endlist,
    )


def parse_multivariant(text: str, *, strict: bool = False) -> MultivariantPlaylist:
    """A multivariant (master) playlist; ValueError naming the line unless it is one of
    Cadenza's with at least one variant. Variant URIs are kept as written. A reader ignores
    tags and EXT-X-STREAM-INF attributes it does not know (RFC 8216 6.3.1); with ``strict``,
    for a writer that rewrites the playlist and would silently drop them, they are refused."""
    seen: dict[str, Any] = {}
    session: dict[str, str] = {}
    variants: list[Variant] = []
    pending: tuple[int, dict[str, str]] | None = None  # an EXT-X-STREAM-INF waiting for its URI
    lines = _lines(text)
    number, line = 0, ""
    try:
        for number, line in lines:
            if not line.startswith("#"):
                if pending is None:
                    raise ValueError("a URI that no EXT-X-STREAM-INF names")
                variants.append(_variant(pending[1], _uri(line)))
                pending = None
                continue
            name, value = _tag(line)
            if name not in _MASTER_TAGS and not strict:
                continue  # RFC 8216 6.3.1: clients ignore tags they do not recognise
            if pending is not None:
                raise ValueError(f"the variant of line {pending[0]} has no URI before this tag")
            if name == "EXT-X-STREAM-INF":
                pending = (number, _attributes(value, _STREAM_INF, strict=strict))
            elif name == "EXT-X-SESSION-DATA":
                data_id, data = _session_data(value)
                _once(data_id in session, f"EXT-X-SESSION-DATA of DATA-ID {data_id!r}")
                session[data_id] = data
            elif name in _MASTER_HEADER:
                _once(name in seen, name)
                seen[name] = _MASTER_HEADER[name](value)
            else:  # strict: a tag this model would drop
                raise ValueError(f"{name} is not a tag of Cadenza's multivariant playlists")
    except ValueError as e:
        raise _naming(number, line, e) from None
    if pending is not None:
        raise ValueError(f"the last variant has no URI (line {pending[0]})")
    if not variants:
        raise ValueError("the multivariant playlist lists no variants")
    return MultivariantPlaylist(
        tuple(variants),
        seen.get("EXT-X-VERSION"),
        seen.get("EXT-X-INDEPENDENT-SEGMENTS", False),
        session,
        seen.get("EXT-X-CONTENT-STEERING"),
    )


def attributes(text: str) -> dict[str, str]:
    """An RFC 8216 4.2 attribute list: names to values, quoted strings still quoted."""
    found: dict[str, str] = {}
    position = 0
    while True:
        match = _ATTRIBUTE.match(text, position)
        if match is None:
            raise ValueError(f"malformed attribute list at {text[position : position + 40]!r}")
        if match[1] in found:
            raise ValueError(f"attribute {match[1]} appears twice")
        found[match[1]] = match[2]
        position = match.end()
        if position == len(text):
            return found
        if text[position] != ",":
            raise ValueError(f"malformed attribute list at {text[position : position + 40]!r}")
        position += 1


def _lines(text: str) -> list[tuple[int, str]]:
    """(number, line) of the lines that carry something: blank lines and comments left out."""
    if len(text) > MAX_CHARS:
        raise ValueError(f"the playlist is longer than {MAX_CHARS} characters")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if len(lines) > MAX_LINES:
        raise ValueError(f"the playlist has more than {MAX_LINES} lines")
    if not lines or lines[0].removesuffix("\r") != "#EXTM3U":
        raise ValueError("the playlist does not start with #EXTM3U")
    kept = []
    for number, raw in enumerate(lines[1:], 2):
        line = raw.removesuffix("\r")
        if len(line) > MAX_LINE_CHARS:
            raise ValueError(f"line {number} is longer than {MAX_LINE_CHARS} characters")
        if line and not (line.startswith("#") and not line.startswith("#EXT")):
            kept.append((number, line))
    return kept


def _naming(number: int, line: str, error: ValueError) -> ValueError:
    return ValueError(f"line {number} ({line[:60]!r}): {error}")


def _tag(line: str) -> tuple[str, str | None]:
    name, colon, value = line[1:].partition(":")
    return name, value if colon else None


def _once(seen: bool, what: str) -> None:
    if seen:
        raise ValueError(f"a second {what}")


def _flag(value: str | None, name: str) -> bool:
    if value is not None:
        raise ValueError(f"{name} takes no value")
    return True


def _integer(value: str | None, name: str, low: int = 0, high: int = 2**64 - 1) -> int:
    if value is None or not _INTEGER.fullmatch(value) or not low <= int(value) <= high:
        raise ValueError(f"{name} must be a decimal-integer from {low} to {high}")
    return int(value)


def _version(value: str | None) -> int:
    if value is None or not _INTEGER.fullmatch(value) or not 1 <= int(value) <= 99:
        raise ValueError(f"EXT-X-VERSION {value!r} is not a protocol version (1 to 99)")
    return int(value)


def _playlist_type(value: str | None) -> PlaylistType:
    if value in ("VOD", "EVENT"):
        return cast(PlaylistType, value)
    raise ValueError("EXT-X-PLAYLIST-TYPE must be VOD or EVENT")


def _map(value: str | None) -> str:
    if "BYTERANGE" in attributes(value or ""):
        raise ValueError("EXT-X-MAP's BYTERANGE is not supported: Cadenza reads whole inits")
    return _quoted_uri(_attributes(value, {"URI"}), "URI", "EXT-X-MAP")


def _extinf(value: str | None) -> tuple[float, str]:
    match = _DURATION.fullmatch(value or "")
    if match is None:
        raise ValueError("EXTINF must be a duration in seconds, a comma and an optional title")
    return float(match[1]), match[2]


def _steering(value: str | None) -> ContentSteering:
    found = _attributes(value, {"SERVER-URI", "PATHWAY-ID"})
    server = _quoted_uri(found, "SERVER-URI", "EXT-X-CONTENT-STEERING")
    return ContentSteering(server, _pathway_id(found))


def _session_data(value: str | None) -> tuple[str, str]:
    found = _attributes(value, {"DATA-ID", "VALUE"})
    data_id, data = _quoted(found, "DATA-ID"), _quoted(found, "VALUE")
    if data_id is None or data is None:
        raise ValueError("EXT-X-SESSION-DATA needs DATA-ID and VALUE")
    return data_id, data


def _variant(found: dict[str, str], uri: str) -> Variant:
    if "BANDWIDTH" not in found:
        raise ValueError("EXT-X-STREAM-INF without BANDWIDTH")
    average = found.get("AVERAGE-BANDWIDTH")
    return Variant(
        uri,
        _integer(found["BANDWIDTH"], "BANDWIDTH"),
        None if average is None else _integer(average, "AVERAGE-BANDWIDTH"),
        _quoted(found, "CODECS"),
        _pathway_id(found),
    )


def _attributes(value: str | None, known: set[str], *, strict: bool = False) -> dict[str, str]:
    """The ``known`` attributes of a well-formed list; the others are ignored, as RFC 8216
    6.3.1 asks of clients (a later version's or another vendor's attributes), or refused when
    ``strict``."""
    found = attributes(value or "")
    unknown = sorted(set(found) - known)
    if unknown and strict:
        raise ValueError(f"attribute {unknown[0]} is not one Cadenza uses here")
    return {k: v for k, v in found.items() if k in known}


def _quoted(found: dict[str, str], name: str) -> str | None:
    value = found.get(name)
    if value is None:
        return None
    if len(value) < 2 or value[0] != '"':
        raise ValueError(f"{name} must be a quoted-string")
    return value[1:-1]


def _quoted_uri(found: dict[str, str], name: str, tag: str) -> str:
    value = _quoted(found, name)
    if value is None:
        raise ValueError(f"{tag} has no {name}")
    return _uri(value)


def _pathway_id(found: dict[str, str]) -> str | None:
    value = _quoted(found, "PATHWAY-ID")
    if value is not None and not PATHWAY_ID.fullmatch(value):
        raise ValueError(f"pathway id {value!r} is not 1 to 64 of [A-Za-z0-9._-]")
    return value


def _uri(text: str) -> str:
    check_uri("the URI", text)
    return text


_MEDIA_HEADER: dict[str, Callable[[str | None], Any]] = {
    "EXT-X-VERSION": _version,
    "EXT-X-TARGETDURATION": lambda v: _integer(v, "EXT-X-TARGETDURATION"),
    "EXT-X-MEDIA-SEQUENCE": lambda v: _integer(v, "EXT-X-MEDIA-SEQUENCE"),
    "EXT-X-PLAYLIST-TYPE": _playlist_type,
    "EXT-X-INDEPENDENT-SEGMENTS": lambda v: _flag(v, "EXT-X-INDEPENDENT-SEGMENTS"),
    "EXT-X-MAP": _map,
}
_MASTER_HEADER: dict[str, Callable[[str | None], Any]] = {
    "EXT-X-VERSION": _version,
    "EXT-X-INDEPENDENT-SEGMENTS": lambda v: _flag(v, "EXT-X-INDEPENDENT-SEGMENTS"),
    "EXT-X-CONTENT-STEERING": _steering,
}
_STREAM_INF = {"BANDWIDTH", "AVERAGE-BANDWIDTH", "CODECS", "PATHWAY-ID"}
_MEDIA_TAGS = {"EXTINF", "EXT-X-ENDLIST", *_MEDIA_HEADER}
_MASTER_TAGS = {"EXT-X-STREAM-INF", "EXT-X-SESSION-DATA", *_MASTER_HEADER}
# Tags whose meaning a player that ignored them would get wrong: parts of segments, encrypted
# segments, a change of encoding between segments. Refused rather than ignored.
_UNSUPPORTED_MEDIA = {"EXT-X-BYTERANGE", "EXT-X-KEY", "EXT-X-DISCONTINUITY"}


# -- writing -----------------------------------------------------------------------------------


def write_media_playlist(playlist: MediaPlaylist) -> str:
    """The playlist's text; ValueError if it breaks RFC 8216 (a URI that is not one, an EXTINF
    longer than the target duration allows, ...)."""
    if not playlist.segments:
        raise ValueError("a media playlist needs at least one segment")
    extinfs = [_checked_extinf(s) for s in playlist.segments]
    target = _checked_count(playlist.target_duration)
    if target_duration(s.duration for s in playlist.segments) > target:
        raise ValueError(f"a segment is longer than the target {target} s")
    lines = ["#EXTM3U"]
    if playlist.version is not None:
        lines.append(f"#EXT-X-VERSION:{_checked_version(playlist.version)}")
    lines.append(f"#EXT-X-TARGETDURATION:{target}")
    if playlist.media_sequence is not None:
        lines.append(f"#EXT-X-MEDIA-SEQUENCE:{_checked_count(playlist.media_sequence)}")
    if playlist.playlist_type is not None:
        lines.append(f"#EXT-X-PLAYLIST-TYPE:{_playlist_type(playlist.playlist_type)}")
    if playlist.independent_segments:
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    lines.append(f'#EXT-X-MAP:URI="{_uri(playlist.init_uri)}"')
    for segment, written in zip(playlist.segments, extinfs, strict=True):
        lines += [f"#EXTINF:{written}", _uri(segment.uri)]
    if playlist.endlist:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def write_multivariant(playlist: MultivariantPlaylist) -> str:
    """The playlist's text; ValueError if a value cannot be written as RFC 8216 asks."""
    lines = ["#EXTM3U"]
    if playlist.version is not None:
        lines.append(f"#EXT-X-VERSION:{_checked_version(playlist.version)}")
    if playlist.independent_segments:
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    for data_id, value in playlist.session_data.items():
        listed = f"DATA-ID={_quote('session data', data_id)},VALUE={_quote('session data', value)}"
        lines.append(f"#EXT-X-SESSION-DATA:{listed}")
    if playlist.steering is not None:
        steering = f'SERVER-URI="{_uri(playlist.steering.server_uri)}"'
        lines.append(f"#EXT-X-CONTENT-STEERING:{steering}{_pathway(playlist.steering.pathway_id)}")
    if not playlist.variants:
        raise ValueError("a multivariant playlist needs at least one variant")
    for v in playlist.variants:
        listed = f"BANDWIDTH={_checked_count(v.bandwidth)}"
        if v.average_bandwidth is not None:
            listed += f",AVERAGE-BANDWIDTH={_checked_count(v.average_bandwidth)}"
        if v.codecs is not None:
            listed += f",CODECS={_quote('codecs', v.codecs)}"
        lines += [f"#EXT-X-STREAM-INF:{listed}{_pathway(v.pathway_id)}", _uri(v.uri)]
    return "\n".join(lines) + "\n"


def _checked_version(version: int) -> int:
    return _version(str(version))


def _checked_count(value: int) -> int:
    return _integer(str(value), "a count")


def _checked_extinf(segment: Segment) -> str:
    if not (math.isfinite(segment.duration) and 0 <= segment.duration < 1e8):
        raise ValueError(f"segment {segment.uri!r}: duration {segment.duration!r} s")
    written = f"{extinf(segment.duration)},{segment.title}"
    if not _DURATION.fullmatch(written):
        raise ValueError(f"segment {segment.uri!r}: title {segment.title!r} has controls")
    return written


def _quote(what: str, value: str) -> str:
    if any(c in '"\r\n' for c in value):
        raise ValueError(f"{what} may not contain double quotes or line breaks: {value[:60]!r}")
    return f'"{value}"'


def _pathway(pathway_id: str | None) -> str:
    if pathway_id is None:
        return ""
    check_pathway_ids([pathway_id])
    return f',PATHWAY-ID="{pathway_id}"'


# -- what the origin and the locator make of playlists -----------------------------------------


def version_master(metadata: Mapping[str, Any]) -> MultivariantPlaylist:
    """A version's master playlist from its metadata, as ingest writes it and the origin
    rewrites it on publish: one variant per rung, the loudness as session data."""
    version = metadata["version"]
    variants = tuple(
        Variant(
            uri=f"{version}/{r['name']}/{layout.MEDIA_PLAYLIST}",
            bandwidth=r["peak_bps"],
            average_bandwidth=r["average_bps"],
            codecs=r["codecs"],
        )
        for r in metadata["rungs"]
    )
    return MultivariantPlaylist(variants, VERSION, True, _loudness(metadata.get("loudness")))


def _loudness(loudness: Mapping[str, Any] | None) -> dict[str, str]:
    if loudness is None:
        return {}

    def text(value: float | None) -> str:
        return "-inf" if value is None else f"{value:.1f}"

    return {
        LOUDNESS_INTEGRATED: text(loudness["integrated_lufs"]),
        LOUDNESS_TRUE_PEAK: text(loudness["true_peak_dbtp"]),
        LOUDNESS_RANGE: f"{loudness['range_lu']:.1f}",
    }


def on_pathways(
    master: MultivariantPlaylist,
    pathways: Sequence[tuple[str, str]],
    steering_uri: str,
    default_pathway: str | None = None,
) -> MultivariantPlaylist:
    """``master`` re-homed on ``pathways`` (id, base URL ending in ``/``), in their order: every
    variant once per pathway, its URI made absolute, steered by ``steering_uri``.

    Players use ``default_pathway`` (the first pathway unless given) until they have loaded the
    steering manifest. ValueError if a variant URI is not a relative path without dot segments,
    or an argument is malformed.
    """
    check_pathway_ids([pathway_id for pathway_id, _ in pathways])
    for pathway_id, base_url in pathways:
        if not _BASE_URL.fullmatch(base_url):
            raise ValueError(
                f"pathway {pathway_id!r}: {base_url!r} is not an http(s) URL ending in /"
            )
    default = pathways[0][0] if default_pathway is None else default_pathway
    if default not in {pathway_id for pathway_id, _ in pathways}:
        raise ValueError(f"default pathway {default!r} is not one of the pathways")
    check_uri("steering URI", steering_uri)
    for v in master.variants:
        if not _RELATIVE.match(v.uri) or _DOT_SEGMENT.search(v.uri.partition("?")[0]):
            raise ValueError(
                f"variant URI {v.uri[:60]!r} is not a relative path without dot segments"
            )
    variants = tuple(
        Variant(base + v.uri, v.bandwidth, v.average_bandwidth, v.codecs, pathway_id)
        for pathway_id, base in pathways
        for v in master.variants
    )
    steering = ContentSteering(steering_uri, default)
    return MultivariantPlaylist(
        variants, master.version or 1, master.independent_segments, master.session_data, steering
    )


def check_pathway_ids(ids: Sequence[str]) -> None:
    """ValueError unless ``ids`` are distinct pathway ids, at least one."""
    if not ids:
        raise ValueError("at least one pathway is needed")
    for pathway_id in ids:
        if not isinstance(pathway_id, str) or not PATHWAY_ID.fullmatch(pathway_id):
            raise ValueError(f"pathway id {pathway_id!r} is not 1 to 64 of [A-Za-z0-9._-]")
    if len(set(ids)) != len(ids):
        raise ValueError(f"pathway ids must be distinct: {list(ids)!r}")


def check_uri(what: str, text: str) -> None:
    """ValueError unless ``text`` can be written as a URI in a playlist or steering manifest."""
    if not _URI.fullmatch(text) or text.startswith("#"):
        raise ValueError(f"{what} {text[:60]!r} is not a URI of RFC 3986 characters")
