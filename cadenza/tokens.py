"""Signed playback tokens: the locator signs them, edges check them locally with no call home.

A token rides in the request path, ``/p/{token}/tracks/{track_id}/...``, so relative URIs in
playlists keep it, and it grants only paths under its ACL until it expires. Format, version 1::

    token   = b64url(payload) "." b64url(HMAC-SHA256(secret, b64url(payload))[:18])
    payload = "v1" "|" kid "|" expires "|" territory "|" acl [ "|" listener ]   (ASCII)

``b64url`` is URL-safe base64 without padding; the MAC covers the *encoded* payload, so any change
to a character of it breaks the MAC. It is truncated to 18 bytes (144 bits, a multiple of three
bytes, so its 24 characters carry no padding bits and every MAC has exactly one spelling). A token
is thus made only of ``[A-Za-z0-9_-]`` and one ``.``, safe in a path segment, and at most
``MAX_TOKEN_LENGTH`` characters. The fields:

- ``kid``: the key id, ``[A-Za-z0-9_-]{1,32}``; verifiers hold ``{kid: secret}`` and several keys
  can be active at once, so keys rotate by adding a new kid, signing with it, then removing the old
  one once its tokens have expired.
- ``expires``: unix seconds, a decimal integer; the token is good while ``now < expires + leeway``.
- ``territory``: ISO 3166-1 alpha-2 code of the client, ``[A-Z]{2}``.
- ``acl``: a path prefix that starts and ends with ``/``, such as ``/tracks/{track_id}/``, made of
  non-empty segments of ``[A-Za-z0-9._~-]`` other than ``.`` and ``..``; it grants a request path
  when the path starts with it, so it matches on segment boundaries only.
- ``listener`` (optional): the listener the play is for, ``[A-Za-z0-9_-]{1,64}``, as the locator
  learnt it from a trusted front end; play events and licences are credited to it. Edges ignore
  it. A token without one carries no sixth field, so its spelling is unchanged.

Worked example: with secret ``b"cadenza-example-secret-0123456789"`` the claims
``TokenClaims(acl="/tracks/0123456789abcdef/", expires=1767225600, kid="k1", territory="SE")``
give the payload ``v1|k1|1767225600|SE|/tracks/0123456789abcdef/`` and the token::

    djF8azF8MTc2NzIyNTYwMHxTRXwvdHJhY2tzLzAxMjM0NTY3ODlhYmNkZWYv.1Vs8XejhBh-PwjCARHbFG4KC

Request paths are checked as strictly as the ACL: they must be canonical (no ``//``, ``.`` or
``..`` segments) and made of the same characters plus ``/``, so percent-encoded tricks such as
``%2e%2e`` or ``%2f`` never reach the prefix match. Cadenza's content layout needs nothing else.
"""

import base64
import binascii
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from cadenza.errors import InputError

TOKEN_PREFIX = "/p/"
VERSION = "v1"
MAX_TOKEN_LENGTH = 512
MAX_PATH_LENGTH = 2048
MAC_BYTES = 18
MIN_SECRET_BYTES = 16
MAX_EXPIRES = 2**40  # about the year 36800; keeps the field short and the check cheap

_FIELD_SEPARATOR = "|"
_B64 = r"[A-Za-z0-9_-]"
# PAYLOAD.SIGNATURE, the form of tokens and of licences (``cadenza.licences``).
SIGNED = re.compile(rf"({_B64}+)\.({_B64}{{{4 * MAC_BYTES // 3}}})")
KID = re.compile(r"[A-Za-z0-9_-]{1,32}")
UNIX_SECONDS = re.compile(r"0|[1-9][0-9]{0,12}")
TERRITORY = re.compile(r"[A-Z]{2}")
LISTENER = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A canonical absolute path: "/" alone, or non-empty segments of unreserved characters.
_PATH = re.compile(r"/|(/[A-Za-z0-9._~-]+)+/?")
_DOT_SEGMENT = re.compile(r"/\.\.?(/|\Z)")

Reason = Literal["malformed", "bad_signature", "unknown_key", "expired", "wrong_acl"]


class TokenError(InputError):
    """A request whose token does not grant it; ``reason`` says which check failed."""

    status = 403

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"token rejected ({reason}): {message}")
        self.reason: Reason = reason


@dataclass(frozen=True)
class TokenClaims:
    """What a token grants: paths under ``acl``, until ``expires``, for a client in ``territory``.

    Invalid claims raise ValueError on construction, so a signer cannot emit a token that its
    verifiers would refuse as malformed.
    """

    acl: str
    expires: int
    kid: str
    territory: str
    listener: str = ""  # "" when the play is anonymous

    def __post_init__(self) -> None:
        if not is_canonical_path(self.acl) or not self.acl.endswith("/"):
            raise ValueError(f"ACL {self.acl!r} is not a canonical path prefix ending in '/'")
        if type(self.expires) is not int or not 0 <= self.expires < MAX_EXPIRES:
            raise ValueError(f"expiry {self.expires!r} is not unix seconds in [0, 2**40)")
        if not KID.fullmatch(self.kid):
            raise ValueError(f"key id {self.kid!r} is not 1 to 32 of [A-Za-z0-9_-]")
        if not TERRITORY.fullmatch(self.territory):
            raise ValueError(f"territory {self.territory!r} is not an ISO alpha-2 code")
        if self.listener and not LISTENER.fullmatch(self.listener):
            raise ValueError(f"listener {self.listener[:80]!r} is not 1 to 64 of [A-Za-z0-9_-]")


def sign(claims: TokenClaims, secret: bytes) -> str:
    """The token for ``claims`` under ``secret``, the key that ``claims.kid`` names."""
    check_secret(claims.kid, secret)
    fields: tuple[str, ...] = (
        VERSION, claims.kid, str(claims.expires), claims.territory, claims.acl
    )  # fmt: skip
    if claims.listener:
        fields += (claims.listener,)
    payload = b64encode(_FIELD_SEPARATOR.join(fields).encode("ascii"))
    token = f"{payload}.{mac(secret, payload)}"
    if len(token) > MAX_TOKEN_LENGTH:
        raise ValueError(f"token for ACL {claims.acl!r} is over {MAX_TOKEN_LENGTH} characters")
    return token


def verify(
    token: str, keys: Mapping[str, bytes], path: str, now: float, *, leeway: float = 0
) -> TokenClaims:
    """The claims of ``token`` if it grants ``path`` at time ``now``; TokenError otherwise.

    ``path`` is the request path after the ``/p/{token}`` prefix and without the query string,
    e.g. ``/tracks/abc/v1/aac_96/seg_00001.m4s``. Checks run in order: form, key id, signature,
    expiry (with ``leeway`` seconds of clock skew allowed), then the path against the ACL.
    A non-finite clock or a key under ``MIN_SECRET_BYTES`` is a ValueError: a bug, not a request.
    """
    if not math.isfinite(now) or not (math.isfinite(leeway) and leeway >= 0):
        raise ValueError(f"clock {now!r} and leeway {leeway!r} must be finite, leeway >= 0")
    payload, signature = _split(token)
    fields = _fields(payload)
    secret = keys.get(fields[1])
    if secret is None:
        raise TokenError("unknown_key", f"key id {fields[1][:40]!r} is not active on this server")
    check_secret(fields[1], secret)
    if not hmac.compare_digest(mac(secret, payload), signature):
        raise TokenError("bad_signature", "the signature does not match the token's contents")
    claims = _claims(fields)
    if now >= claims.expires + leeway:
        raise TokenError("expired", f"expired at {claims.expires}; ask the locator for a new URL")
    if not is_canonical_path(path):
        raise TokenError("malformed", f"request path {path[:80]!r} is not a canonical path")
    if not path.startswith(claims.acl):
        raise TokenError("wrong_acl", f"path {path[:80]!r} is outside {claims.acl!r}")
    return claims


def split_token_path(raw_path: str) -> tuple[str | None, str]:
    """``/p/{token}/rest`` -> ``(token, "/rest")``; other paths -> ``(None, path)``."""
    if not raw_path.startswith(TOKEN_PREFIX):
        if raw_path == TOKEN_PREFIX.rstrip("/"):
            raise TokenError("malformed", "the path '/p' names no token")
        return None, raw_path
    token, slash, rest = raw_path[len(TOKEN_PREFIX) :].partition("/")
    if not token or not slash:
        raise TokenError("malformed", "a '/p/' path needs '/p/{token}/{path}'")
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("malformed", f"the token is over {MAX_TOKEN_LENGTH} characters")
    return token, slash + rest


def join_token_path(token: str, path: str) -> str:
    """The inverse of split_token_path: ``path`` (starting with ``/``) carrying ``token``."""
    return f"{TOKEN_PREFIX}{token}{path}"


def is_canonical_path(path: str) -> bool:
    """Whether ``path`` is absolute, has no empty, ``.`` or ``..`` segments and needs no escapes."""
    return (
        len(path) <= MAX_PATH_LENGTH
        and _PATH.fullmatch(path) is not None
        and _DOT_SEGMENT.search(path) is None
    )


def _split(token: str) -> tuple[str, str]:
    match = SIGNED.fullmatch(token) if len(token) <= MAX_TOKEN_LENGTH else None
    if match is None:
        raise TokenError("malformed", "the token is not of the form PAYLOAD.SIGNATURE")
    return match[1], match[2]


def _fields(payload: str) -> list[str]:
    """The payload's fields; only the version and key id are trusted before the MAC is checked."""
    try:
        text = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        raise TokenError("malformed", "the token's payload is not base64url ASCII") from None
    fields = text.split(_FIELD_SEPARATOR)
    if len(fields) not in (5, 6) or fields[0] != VERSION:
        raise TokenError("malformed", f"the token's payload is not a {VERSION} payload")
    return fields


def _claims(fields: list[str]) -> TokenClaims:
    _, kid, expires, territory, acl, *listener = fields
    if not UNIX_SECONDS.fullmatch(expires):
        raise TokenError("malformed", f"the token's expiry {expires!r} is not unix seconds")
    if listener == [""]:
        raise TokenError("malformed", "the token's listener field is empty")
    try:
        return TokenClaims(
            acl=acl, expires=int(expires), kid=kid, territory=territory, listener="".join(listener)
        )
    except ValueError as e:
        raise TokenError("malformed", str(e)) from None


def check_secret(kid: str, secret: bytes) -> None:
    """ValueError for a key under ``MIN_SECRET_BYTES``: a configuration bug, not a request."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the secret of key id {kid!r} is under {MIN_SECRET_BYTES} bytes")


def mac(secret: bytes, payload: str) -> str:
    """The signature of an encoded payload: HMAC-SHA256 truncated to ``MAC_BYTES``, base64url.
    Licences (``cadenza.licences``) are signed the same way."""
    digest = hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest()
    return b64encode(digest[:MAC_BYTES])


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_secret(nbytes: int) -> str:
    """``nbytes`` random bytes in URL-safe base64, never beginning with ``-``: a secret that an
    operator passes as an option's value (``--operator-key KEY``) would otherwise read as an
    option, once in 64 keys."""
    while (secret := secrets.token_urlsafe(nbytes)).startswith("-"):
        pass
    return secret
