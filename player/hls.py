"""What a player makes of HLS: the locator's playlist with absolute URIs, the content steering
manifest, and the choice of pathway.

Pure. The multivariant playlist (read with ``cadenza.hls``) names each variant once per pathway
(one pathway per edge); the steering manifest orders the pathways and says when to ask again.
The steering manifest is read leniently where a hint is malformed and strictly where steering
would be impossible.
"""

import json
import math
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cadenza import hls
from cadenza.hls import PATHWAY_ID, PATHWAY_QUERY, THROUGHPUT_QUERY

DEFAULT_TTL_S = 300.0  # the steering specification's default when TTL is missing
Multivariant = hls.MultivariantPlaylist


def parse_multivariant(text: str, base_url: str) -> Multivariant:
    """The multivariant playlist fetched from ``base_url``, its variant and steering URIs made
    absolute against it. ValueError (naming the line) if it is not one that can be played."""
    playlist = hls.parse_multivariant(text)
    steering = playlist.steering
    if steering is not None:
        steering = replace(steering, server_uri=resolve(base_url, steering.server_uri))
    variants = tuple(replace(v, uri=resolve(base_url, v.uri)) for v in playlist.variants)
    return replace(playlist, variants=variants, steering=steering)


@dataclass(frozen=True)
class SteeringManifest:
    ttl_s: float
    reload_uri: str | None  # absolute
    pathway_priority: tuple[str, ...]


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
        dict.fromkeys(p for p in priority if isinstance(p, str) and PATHWAY_ID.fullmatch(p))
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
