"""Play sessions carried in their own steering URL, signed: whichever worker of whichever
locator a player's steering reload reaches can answer it, with nothing shared and nothing lost
when a worker or the locator restarts.

    session = kid "." b64url(JSON [track_id, expires, [pathway, ...]]) "." b64url(MAC[:12])
    MAC     = HMAC-SHA256(HMAC-SHA256(secret, PURPOSE), kid "." payload)

The key is derived from the token key ``kid`` for this purpose alone, so a session id is never a
playback token nor the reverse; keys rotate as tokens' do. Pure: the clock is passed in.
"""

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping

from locator.fleet import Session

PURPOSE = b"cadenza steering session v1"
MAC_BYTES = 12
MAX_SESSION_LENGTH = 1024  # longer is not one of ours: refused before any decoding


def session_id(session: Session, kid: str, secret: bytes) -> str:
    """``session`` as the path segment of its steering URL, signed with key ``kid``."""
    document = [session.track_id, int(session.expires), list(session.pathways)]
    payload = _b64(json.dumps(document, separators=(",", ":")).encode())
    return f"{kid}.{payload}.{_mac(secret, kid, payload)}"


def read_session(text: str, keys: Mapping[str, bytes], now: float) -> Session | None:
    """The session that ``text`` names if one of ``keys`` signed it and it has not expired."""
    if len(text) > MAX_SESSION_LENGTH or not text.isascii() or text.count(".") != 2:
        return None
    kid, payload, mac = text.split(".")
    secret = keys.get(kid)
    if secret is None or not hmac.compare_digest(mac, _mac(secret, kid, payload)):
        return None
    try:
        track_id, expires, pathways = json.loads(
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        )
    except (ValueError, binascii.Error, TypeError):
        return None  # signed by us, so only a program of another version wrote this
    if not (isinstance(expires, int) and now < expires):
        return None
    return Session(str(track_id), tuple(str(p) for p in pathways), float(expires))


def _mac(secret: bytes, kid: str, payload: str) -> str:
    key = hmac.new(secret, PURPOSE, hashlib.sha256).digest()
    return _b64(hmac.new(key, f"{kid}.{payload}".encode(), hashlib.sha256).digest()[:MAC_BYTES])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
