"""What a player reads from HLS: the multivariant playlist and the content steering manifest.

Pure. The multivariant playlist names each variant once per pathway (one pathway per edge),
with absolute URIs; the steering manifest orders the pathways and says when to ask again.
Readers are lenient where a hint is malformed and strict where playing would be impossible.
"""

import json
import math
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

STREAM_INF = "#EXT-X-STREAM-INF:"
SESSION_DATA = "#EXT-X-SESSION-DATA:"
STEERING = "#EXT-X-CONTENT-STEERING:"
DEFAULT_PATHWAY = "."  # RFC 8216bis: variants without PATHWAY-ID belong to pathway "."
DEFAULT_TTL_S = 300.0  # the steering specification's default when TTL is missing
PATHWAY_QUERY = "_HLS_pathway"
THROUGHPUT_QUERY = "_HLS_throughput"

_ATTRIBUTE = re.compile(r'\s*([A-Z0-9-]+)=("[^"\r\n]*"|[^",\s]*)\s*(?:,|$)')
_PATHWAY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class Variant:
    """One rendition on one pathway; ``uri`` is absolute."""

    bandwidth: int  # peak bits/s
    average_bandwidth: int | None
    codecs: str | None
    pathway: str
    uri: str

    @property
    def kbps(self) -> float:
        """The rate a player plans with: the average when the playlist gives it, else the peak."""
        return (self.average_bandwidth or self.bandwidth) / 1000.0


@dataclass(frozen=True)
class Multivariant:
    variants: tuple[Variant, ...]
    steering_uri: str | None = None
    default_pathway: str | None = None
    session_data: Mapping[str, str] = field(default_factory=dict)

    @property
    def pathways(self) -> tuple[str, ...]:
        """Pathway ids in the playlist's order (the locator lists its first choice first)."""
        return tuple(dict.fromkeys(v.pathway for v in self.variants))

    def ladder(self, pathway: str) -> tuple[Variant, ...]:
        """The pathway's variants, lowest rate first: rung 0 is the lowest."""
        return tuple(sorted((v for v in self.variants if v.pathway == pathway), key=_rate))


def _rate(variant: Variant) -> tuple[float, int]:
    return variant.kbps, variant.bandwidth


@dataclass(frozen=True)
class SteeringManifest:
    ttl_s: float
    reload_uri: str | None  # absolute
    pathway_priority: tuple[str, ...]


def parse_attributes(text: str) -> dict[str, str]:
    """An attribute list, quoted values unquoted. ValueError when malformed."""
    attributes, position = {}, 0
    while position < len(text):
        match = _ATTRIBUTE.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"malformed attribute list at {text[position : position + 40]!r}")
        attributes[match[1]] = match[2].strip('"')
        position = match.end()
    return attributes


def parse_multivariant(text: str, base_url: str) -> Multivariant:
    """Variants, steering and session data of a multivariant playlist fetched from ``base_url``.

    Relative variant URIs are resolved against ``base_url``. ValueError if the text is not a
    multivariant playlist with at least one usable variant.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise ValueError("not a playlist: it does not start with #EXTM3U")
    variants: list[Variant] = []
    session: dict[str, str] = {}
    steering: dict[str, str] = {}
    pending: dict[str, str] | None = None
    for line in lines[1:]:
        if pending is not None and not line.startswith("#"):
            variants.append(_variant(pending, urllib.parse.urljoin(base_url, line)))
            pending = None
        elif line.startswith(STREAM_INF):
            pending = parse_attributes(line[len(STREAM_INF) :])
        elif line.startswith(SESSION_DATA):
            _session_data(line[len(SESSION_DATA) :], session)
        elif line.startswith(STEERING):
            steering = parse_attributes(line[len(STEERING) :])
    if not variants:
        raise ValueError("the playlist lists no variants")
    server = steering.get("SERVER-URI")
    return Multivariant(
        tuple(variants),
        urllib.parse.urljoin(base_url, server) if server else None,
        steering.get("PATHWAY-ID"),
        session,
    )


def _variant(attributes: dict[str, str], uri: str) -> Variant:
    try:
        bandwidth = int(attributes["BANDWIDTH"])
    except (KeyError, ValueError):
        raise ValueError(f"variant {uri} has no whole-number BANDWIDTH") from None
    average = attributes.get("AVERAGE-BANDWIDTH", "")
    return Variant(
        bandwidth,
        int(average) if average.isdigit() else None,
        attributes.get("CODECS"),
        attributes.get("PATHWAY-ID", DEFAULT_PATHWAY),
        uri,
    )


def _session_data(text: str, into: dict[str, str]) -> None:
    try:
        attributes = parse_attributes(text)
    except ValueError:
        return  # session data is informative; a bad tag does not stop playback
    if "DATA-ID" in attributes and "VALUE" in attributes:
        into[attributes["DATA-ID"]] = attributes["VALUE"]


def parse_steering_manifest(text: str | bytes, url: str) -> SteeringManifest:
    """The steering manifest fetched from ``url``.

    ValueError if it is not a version 1 manifest with a non-empty PATHWAY-PRIORITY; a missing
    or malformed TTL reads as the default, malformed pathway ids are skipped.
    """
    try:
        doc: Any = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"the steering manifest is not JSON: {e}") from e
    if not isinstance(doc, dict) or doc.get("VERSION") != 1:
        raise ValueError("not a version 1 steering manifest")
    priority = doc.get("PATHWAY-PRIORITY")
    if not isinstance(priority, list):
        raise ValueError("the steering manifest has no PATHWAY-PRIORITY list")
    pathways = tuple(
        dict.fromkeys(p for p in priority if isinstance(p, str) and _PATHWAY_ID.fullmatch(p))
    )
    if not pathways:
        raise ValueError("the steering manifest names no valid pathway")
    reload = doc.get("RELOAD-URI")
    return SteeringManifest(
        _ttl(doc.get("TTL")),
        urllib.parse.urljoin(url, reload) if isinstance(reload, str) and reload else None,
        pathways,
    )


def _ttl(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return DEFAULT_TTL_S
    return float(value) if math.isfinite(value) and value > 0 else DEFAULT_TTL_S


def steering_request(uri: str, pathway: str | None, throughput_bps: float | None) -> str:
    """The manifest's URL with the player's current pathway and measured throughput."""
    params = {}
    if pathway is not None:
        params[PATHWAY_QUERY] = pathway
    if throughput_bps is not None:
        params[THROUGHPUT_QUERY] = str(int(throughput_bps))
    return with_query(uri, params)


def with_query(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` added to its query, URL-encoded; those names replaced."""
    parts = urllib.parse.urlsplit(url)
    kept = [
        (k, v)
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if k not in params
    ]
    query = urllib.parse.urlencode([*kept, *params.items()], quote_via=urllib.parse.quote)
    return urllib.parse.urlunsplit(parts._replace(query=query))


def resolve(playlist_url: str, uri: str) -> str:
    """A segment or init URI of a media playlist, made absolute against the playlist's URL."""
    return urllib.parse.urljoin(playlist_url, uri)


class PathwayChoice:
    """Which pathway to fetch from: the steering manifest's first, passing over failed ones.

    Until a manifest arrives the playlist's default pathway leads. Pathways the manifest leaves
    out stay as last resorts, in the playlist's order, so that a play whose steering server is
    unreachable still fails over. A failed pathway is passed over until its penalty ends; when
    every pathway is penalised, the one whose penalty ends first is tried.
    """

    def __init__(self, pathways: Sequence[str], default: str | None = None) -> None:
        if not pathways:
            raise ValueError("a play needs at least one pathway")
        self.known: tuple[str, ...] = tuple(dict.fromkeys(pathways))
        lead = [default] if default is not None and default in self.known else []
        self.priority: tuple[str, ...] = tuple(dict.fromkeys([*lead, *self.known]))
        self._penalised: dict[str, float] = {}

    def steer(self, manifest: SteeringManifest) -> None:
        listed = [p for p in manifest.pathway_priority if p in self.known]
        if listed:
            self.priority = tuple(dict.fromkeys((*listed, *self.known)))

    def penalise(self, pathway: str, until: float) -> None:
        self._penalised[pathway] = until

    def choose(self, now: float) -> str:
        for pathway in self.priority:
            if self._penalised.get(pathway, -math.inf) <= now:
                return pathway
        return min(self.priority, key=lambda p: self._penalised[p])
