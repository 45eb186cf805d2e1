"""HLS content steering: one pathway per edge, and the manifest that orders them.

Pure text and dictionaries, per RFC 8216bis (EXT-X-CONTENT-STEERING, PATHWAY-ID) and Apple's
HLS Content Steering specification (the steering manifest and its query parameters). The
multivariant playlist repeats every variant of the origin's master once per pathway, its URI
made absolute against that pathway's base; a player plays the pathway that the manifest puts
first and falls back to the next one on errors, and reloads the manifest every TTL seconds.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

MANIFEST_VERSION = 1
PATHWAY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
PATHWAY_QUERY = "_HLS_pathway"
THROUGHPUT_QUERY = "_HLS_throughput"

_STREAM_INF = "#EXT-X-STREAM-INF:"
_VERSION = "#EXT-X-VERSION:"
_STEERING = "#EXT-X-CONTENT-STEERING:"
_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"\r\n]*"|[^",\s]*)(,|$)')
_URL = re.compile(r"https?://[^\s\"'<>\\^`{|}]+/")
_RELATIVE = re.compile(r"(?![a-zA-Z][a-zA-Z0-9+.-]*:)[^/\s\"][^\s\"]*")
_DOT_SEGMENT = re.compile(r"(^|/)\.\.?(/|$)")
_THROUGHPUT = re.compile(r"[0-9]{1,15}(\.[0-9]*)?")


class Pathway(NamedTuple):
    """A pathway: its id, and the absolute URL prefix (ending in ``/``) its variants live under,
    such as ``http://edge.example:8081/p/{token}/tracks/{track_id}/``."""

    id: str
    base_url: str


@dataclass(frozen=True)
class SteeringQuery:
    """What a player says when it reloads the steering manifest; None when it did not say."""

    pathway: str | None
    throughput_bps: int | None


@dataclass(frozen=True)
class _Master:
    version: int | None
    session_tags: tuple[str, ...]
    variants: tuple[tuple[tuple[tuple[str, str], ...], str], ...]  # (attributes, URI)


def multivariant_playlist(
    master: str,
    pathways: Sequence[tuple[str, str]],
    steering_uri: str,
    default_pathway: str | None = None,
) -> str:
    """The origin's ``master`` playlist re-homed on ``pathways`` (id, base URL), in their order.

    ``steering_uri`` is the steering manifest's URL; players use ``default_pathway`` (the first
    pathway unless given) until they have loaded it. Session tags of the master, such as
    EXT-X-SESSION-DATA and EXT-X-INDEPENDENT-SEGMENTS, are kept once. ValueError if the master
    is not a multivariant playlist with relative variant URIs, or an argument is malformed.
    """
    parsed = _parse_master(master)
    homes = [Pathway(*p) for p in pathways]
    _check_pathway_ids([p.id for p in homes])
    for p in homes:
        if not _URL.fullmatch(p.base_url):
            raise ValueError(f"pathway {p.id!r}: {p.base_url!r} is not an http(s) URL ending in /")
    default = homes[0].id if default_pathway is None else default_pathway
    if default not in {p.id for p in homes}:
        raise ValueError(f"default pathway {default!r} is not one of the pathways")
    _check_quotable("steering URI", steering_uri)
    lines = ["#EXTM3U", f"{_VERSION}{parsed.version or 1}", *parsed.session_tags]
    lines.append(f'{_STEERING}SERVER-URI="{steering_uri}",PATHWAY-ID="{default}"')
    for pathway in homes:
        for attributes, uri in parsed.variants:
            listed = ",".join(f"{name}={value}" for name, value in attributes)
            lines += [f'{_STREAM_INF}{listed},PATHWAY-ID="{pathway.id}"', pathway.base_url + uri]
    return "\n".join(lines) + "\n"


def steering_manifest(
    pathway_priority: Sequence[str], ttl_s: int, reload_uri: str | None = None
) -> dict[str, Any]:
    """The steering manifest, to send as JSON: pathways best first, reloaded after ``ttl_s``.

    ``reload_uri``, if given, is where the player fetches the next manifest (relative to this
    one's URL); it can carry session state, such as the track and the client's territory.
    """
    _check_pathway_ids(pathway_priority)
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s < 1:
        raise ValueError(f"TTL {ttl_s!r} must be a whole number of seconds, at least 1")
    manifest: dict[str, Any] = {"VERSION": MANIFEST_VERSION, "TTL": ttl_s}
    if reload_uri is not None:
        _check_quotable("reload URI", reload_uri)
        manifest["RELOAD-URI"] = reload_uri
    manifest["PATHWAY-PRIORITY"] = list(pathway_priority)
    return manifest


def parse_steering_query(query: Mapping[str, str]) -> SteeringQuery:
    """``_HLS_pathway`` and ``_HLS_throughput`` (bits/s) from a manifest reload's query.

    Both are hints: a missing or malformed value reads as None rather than failing the reload.
    A quoted pathway is unquoted first.
    """
    pathway = query.get(PATHWAY_QUERY)
    if pathway is not None:
        if len(pathway) >= 2 and pathway[0] == pathway[-1] == '"':
            pathway = pathway[1:-1]
        if not PATHWAY_ID.fullmatch(pathway):
            pathway = None
    throughput = query.get(THROUGHPUT_QUERY)
    if throughput is not None and _THROUGHPUT.fullmatch(throughput):
        return SteeringQuery(pathway, int(throughput.partition(".")[0]))
    return SteeringQuery(pathway, None)


def _parse_master(text: str) -> _Master:
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not (line[0] == "#" and line[:4] != "#EXT")]
    if not lines or lines[0] != "#EXTM3U":
        raise ValueError("the master playlist does not start with #EXTM3U")
    version: int | None = None
    session: list[str] = []
    variants = []
    pending: tuple[tuple[str, str], ...] | None = None
    for line in lines[1:]:
        if pending is not None:
            if line.startswith("#"):
                raise ValueError(f"a variant has no URI before {line[:40]!r}")
            variants.append((pending, _relative_uri(line)))
            pending = None
        elif line.startswith(_STREAM_INF):
            attributes = _attributes(line[len(_STREAM_INF) :])
            if "BANDWIDTH" not in dict(attributes):
                raise ValueError(f"EXT-X-STREAM-INF without BANDWIDTH: {line[:60]!r}")
            pending = tuple((name, value) for name, value in attributes if name != "PATHWAY-ID")
        elif line.startswith(_VERSION):
            version = _version(line[len(_VERSION) :])
        elif line.startswith(_STEERING):
            continue  # the locator steers now
        elif line.startswith("#"):
            if _names_a_uri(line):
                raise ValueError(f"cannot re-home the tag {line[:40]!r} on pathways")
            if line not in session:
                session.append(line)
        else:
            raise ValueError(f"the line {line[:40]!r} is a URI that no EXT-X-STREAM-INF names")
    if pending is not None:
        raise ValueError("the last variant has no URI")
    if not variants:
        raise ValueError("the master playlist lists no variants")
    return _Master(version, tuple(session), tuple(variants))


def _attributes(text: str) -> list[tuple[str, str]]:
    attributes, position = [], 0
    while position < len(text):
        match = _ATTRIBUTE.match(text, position)
        if match is None:
            raise ValueError(f"malformed attribute list at {text[position : position + 40]!r}")
        attributes.append((match[1], match[2]))
        position = match.end()
    return attributes


def _names_a_uri(tag: str) -> bool:
    """Whether ``tag`` names a resource or belongs in a media playlist: not for pathways."""
    if tag.startswith(("#EXTINF", "#EXT-X-I-FRAME-STREAM-INF", "#EXT-X-MAP")):
        return True
    _, colon, rest = tag.partition(":")
    try:
        return bool(colon) and any(name == "URI" for name, _ in _attributes(rest))
    except ValueError:
        return False  # a value, not an attribute list


def _version(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 99:
        raise ValueError(f"EXT-X-VERSION {text[:10]!r} is not a protocol version")
    return int(text)


def _relative_uri(uri: str) -> str:
    if not _RELATIVE.fullmatch(uri) or _DOT_SEGMENT.search(uri.partition("?")[0]):
        raise ValueError(f"variant URI {uri[:60]!r} is not a relative path without dot segments")
    return uri


def _check_pathway_ids(ids: Sequence[str]) -> None:
    if not ids:
        raise ValueError("at least one pathway is needed")
    for pathway_id in ids:
        if not isinstance(pathway_id, str) or not PATHWAY_ID.fullmatch(pathway_id):
            raise ValueError(f"pathway id {pathway_id!r} is not 1 to 64 of [A-Za-z0-9._-]")
    if len(set(ids)) != len(ids):
        raise ValueError(f"pathway ids must be distinct: {list(ids)!r}")


def _check_quotable(what: str, text: str) -> None:
    if not text or any(c == '"' or c.isspace() or not c.isprintable() for c in text):
        raise ValueError(f"{what} {text[:60]!r} is empty or has quotes, spaces or controls")
