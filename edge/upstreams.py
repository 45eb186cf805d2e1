"""Whom an edge asks for a miss, in order: the parents ranked for the object by rendezvous
hashing (music objects only, those not marked down), then the origin replicas (the healthy
first, and one retry on the next). The owner worker of the key comes before all of them (see
``edge.peers``); it walks this same plan.

A parent is another Cadenza edge, and checks tokens as every edge does. The edge asks it with
a credential of its own: a token it signs with its first key for the object's track, valid for
``CREDENTIAL_SECONDS``, territory ``ZZ``. The edge has checked the client's token and
territory before it fetches, and only hands the parent's answer to clients it admitted; the
parent checks the credential, the object's track, and takedowns of the track everywhere. An
edge without keys (``--allow-unsigned``) asks with the plain path, which only a parent that
also allows unsigned requests answers.
"""

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cadenza.failover import ATTEMPTS, Origins
from cadenza.log import get_logger
from cadenza.tokens import TokenClaims, join_token_path, sign
from cadenza.upstreams import DOWN_SECONDS, Health, rendezvous

logger = get_logger("edge.upstreams")

CREDENTIAL_SECONDS = 300  # covers clock skew between hosts; a fetch takes far less
PARENT, ORIGIN = "parent", "origin"


@dataclass(frozen=True)
class Upstream:
    kind: str  # PARENT or ORIGIN
    url: str  # its base URL
    target: str  # the request target to send it


class Upstreams:
    def __init__(
        self,
        origins: Origins,
        parents: Sequence[str] = (),
        token_keys: Mapping[str, bytes] | None = None,
        down_seconds: float = DOWN_SECONDS,
    ) -> None:
        self.origins = origins
        self.parents = tuple(p.rstrip("/") for p in parents)
        self.parent_health = Health(down_seconds)
        self._signer = next(iter((token_keys or {}).items()), None)

    def plan(self, key: str, target: str, *, music: bool) -> list[Upstream]:
        """The upstreams to try for an object, in order; ``target`` is its path at the origin."""
        now = time.time()
        chosen = []
        if music and self.parents:
            parent_target = self.credential_path(key, target, now)
            for url in rendezvous(key, self.parents):
                if self.parent_health.is_up(url, now):
                    chosen.append(Upstream(PARENT, url, parent_target))
        origins = self.origins.ordered()[:ATTEMPTS]
        return chosen + [Upstream(ORIGIN, url, target) for url in origins]

    def credential_path(self, key: str, target: str, now: float) -> str:
        """``target`` as this edge asks a parent for it: signed for the object's track."""
        if self._signer is None:
            return target
        kid, secret = self._signer
        track = "/".join(key.split("/")[:2])  # tracks/{track_id}
        claims = TokenClaims(f"/{track}/", int(now) + CREDENTIAL_SECONDS, kid, "ZZ")
        return join_token_path(sign(claims, secret), target)

    def failed(self, upstream: Upstream, why: object) -> None:
        if upstream.kind == ORIGIN:
            self.origins.failed(upstream.url, why)
        elif self.parent_health.failed(upstream.url, time.time()):
            logger.warning("parent %s is failing (%s); asking the next one", upstream.url, why)

    def succeeded(self, upstream: Upstream) -> None:
        if upstream.kind == ORIGIN:
            self.origins.succeeded(upstream.url)
        elif self.parent_health.succeeded(upstream.url):
            logger.info("parent %s answers again", upstream.url)
