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

from cadenza import hls
from cadenza.hls import PATHWAY_ID, PATHWAY_QUERY, THROUGHPUT_QUERY

MANIFEST_VERSION = 1
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


def multivariant_playlist(
    master: str,
    pathways: Sequence[tuple[str, str]],
    steering_uri: str,
    default_pathway: str | None = None,
) -> str:
    """The origin's ``master`` playlist re-homed on ``pathways`` (id, base URL), in their order.

    ``steering_uri`` is the steering manifest's URL; players use ``default_pathway`` (the first
    pathway unless given) until they have loaded it. ValueError if the master is not a
    multivariant playlist with relative variant URIs, or an argument is malformed.
    """
    parsed = hls.parse_multivariant(master, strict=True)  # it is rewritten: nothing dropped
    return hls.write_multivariant(hls.on_pathways(parsed, pathways, steering_uri, default_pathway))


def steering_manifest(
    pathway_priority: Sequence[str], ttl_s: int, reload_uri: str | None = None
) -> dict[str, Any]:
    """The steering manifest, to send as JSON: pathways best first, reloaded after ``ttl_s``.

    ``reload_uri``, if given, is where the player fetches the next manifest (relative to this
    one's URL); it can carry session state, such as the track and the client's territory.
    """
    hls.check_pathway_ids(pathway_priority)
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s < 1:
        raise ValueError(f"TTL {ttl_s!r} must be a whole number of seconds, at least 1")
    manifest: dict[str, Any] = {"VERSION": MANIFEST_VERSION, "TTL": ttl_s}
    if reload_uri is not None:
        hls.check_uri("reload URI", reload_uri)
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
