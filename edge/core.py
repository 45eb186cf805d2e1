"""The decision for a music request (``/tracks/...`` or ``/p/{token}/tracks/...``), pure.

Both shells call it, the lean lane for memory hits (``edge.front``) and the aiohttp handlers
(``edge.app``), so they cannot disagree about who may have what: the token and its ACL, the
object's key (never the token, never the query), and takedowns.
"""

from collections.abc import Mapping
from typing import NamedTuple

from cadenza import http
from cadenza.tokens import TokenClaims, TokenError, split_token_path, verify
from edge.memory import Entry
from edge.purge import Denials


class Admitted(NamedTuple):
    """Who may have what (a tuple: the lane makes one per memory hit)."""

    key: str  # the cache key: the object's storage key
    path: str  # the request path without the token
    claims: TokenClaims | None  # None: unsigned, where the edge allows it

    @property
    def acl(self) -> str | None:
        return self.claims.acl if self.claims else None


class Refused(NamedTuple):
    status: int
    reason: str


def admit(
    raw_path: str,
    token_keys: Mapping[str, bytes],
    allow_unsigned: bool,
    denials: Denials,
    now: float,
) -> Admitted | Refused:
    """Whether a music request may be served, and as which object."""
    try:
        token, path = split_token_path(raw_path.split("?", 1)[0])
        claims = verify(token, token_keys, path, now) if token else None
    except TokenError as e:
        return Refused(403, f"token refused: {e.reason}")
    if claims is None and not allow_unsigned:
        return Refused(403, "a signed path token (/p/{token}/...) is required")
    key = http.object_key(path)
    if key is None:
        return Refused(400, "not a valid track path")
    denial = denials.denied(key, claims.territory if claims else None)
    if denial is not None:
        return Refused(denial, "this track has been withdrawn here")
    return Admitted(key, path, claims)


def serves_from_cache(entry: Entry | None, now: float) -> bool:
    """A stored music object is answered without asking upstream while it is fresh (request
    directives are not heeded on /tracks/: players do not send them, and segments never change)."""
    return entry is not None and entry.stored.fresh(now)
