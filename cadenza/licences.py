"""Offline licences: the locator's signed permission to play one track version on one device.

A listener marks a track for offline listening; the locator checks the track's rights in the
listener's territory and signs a licence, which the player keeps next to the downloaded audio.
Offline, the player plays the track only while the licence has not expired; online, it renews
the licence, and the locator refuses renewal once the track is taken down or no longer licensed
in the territory, so the track stops playing offline when its licence ends. Play events of an
offline play carry the licence as their credential (``cadenza.plays``).

Format, the same construction as the play tokens of ``cadenza.tokens`` (the same keys)::

    licence = b64url(payload) "." b64url(HMAC-SHA256(secret, b64url(payload))[:18])
    payload = "l1" "|" kid "|" issued "|" expires "|" territory "|" track_id "|" version
              "|" listener "|" device                                       (ASCII)
"""

import base64
import binascii
import hmac
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cadenza import layout
from cadenza.errors import InputError
from cadenza.tokens import (
    KID,
    LISTENER,
    SIGNED,
    TERRITORY,
    UNIX_SECONDS,
    b64encode,
    check_secret,
    mac,
)

VERSION = "l1"
MAX_LICENCE_LENGTH = 1024
DEFAULT_DAYS = 30
DEVICE = re.compile(r"[A-Za-z0-9_-]{8,64}")


class LicenceError(InputError):
    """A licence that does not allow what was asked; the message says why and what to do."""

    status = 403


@dataclass(frozen=True)
class Licence:
    kid: str
    issued: int  # unix seconds
    expires: int  # unix seconds; offline plays stop from here on
    territory: str
    track_id: str
    version: str
    listener: str
    device: str

    def __post_init__(self) -> None:
        if not KID.fullmatch(self.kid):
            raise ValueError(f"key id {self.kid!r} is not 1 to 32 of [A-Za-z0-9_-]")
        for name in ("issued", "expires"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value < 2**40:
                raise ValueError(f"{name} {value!r} is not unix seconds")
        if self.expires < self.issued:
            raise ValueError("a licence cannot expire before it is issued")
        if not TERRITORY.fullmatch(self.territory):
            raise ValueError(f"territory {self.territory!r} is not an ISO alpha-2 code")
        if not layout.TRACK_ID.fullmatch(self.track_id):
            raise ValueError(f"{self.track_id!r} is not a track id")
        if not layout.VERSION.fullmatch(self.version):
            raise ValueError(f"{self.version!r} is not a track version")
        if not LISTENER.fullmatch(self.listener):
            raise ValueError(f"listener {self.listener[:80]!r} is not 1 to 64 of [A-Za-z0-9_-]")
        if not DEVICE.fullmatch(self.device):
            raise ValueError(f"device {self.device[:80]!r} is not 8 to 64 of [A-Za-z0-9_-]")


def sign_licence(licence: Licence, secret: bytes) -> str:
    """The licence's text under ``secret``, the key that ``licence.kid`` names."""
    check_secret(licence.kid, secret)
    fields = (
        VERSION, licence.kid, str(licence.issued), str(licence.expires), licence.territory,
        licence.track_id, licence.version, licence.listener, licence.device,
    )  # fmt: skip
    payload = b64encode("|".join(fields).encode("ascii"))
    return f"{payload}.{mac(secret, payload)}"


def read_licence(text: str, keys: Mapping[str, bytes]) -> Licence:
    """The licence that ``text`` is, if a key of ``keys`` signed it; LicenceError otherwise.
    Whether it is still valid is the caller's question (``Licence.expires``)."""
    payload, signature, parts = _split(text)
    secret = keys.get(parts[1])
    if secret is None:
        raise LicenceError(f"the licence's key {parts[1][:40]!r} is not active: renew it online")
    check_secret(parts[1], secret)
    if not hmac.compare_digest(mac(secret, payload), signature):
        raise LicenceError("the licence's signature does not match its contents")
    return _fields(parts)


def unverified_licence(text: str) -> Licence:
    """What ``text`` says, without checking its signature: for a player, which holds no keys,
    to know which track, version and expiry its licence names. Never a permission: whoever
    grants anything on a licence reads it with ``read_licence``. LicenceError if malformed."""
    return _fields(_split(text)[2])


def _split(text: str) -> tuple[str, str, list[str]]:
    match = SIGNED.fullmatch(text) if len(text) <= MAX_LICENCE_LENGTH else None
    if match is None:
        raise LicenceError("the licence is not of the form PAYLOAD.SIGNATURE")
    payload, mac = match[1], match[2]
    try:
        fields = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        raise LicenceError("the licence's payload is not base64url ASCII") from None
    parts = fields.split("|")
    if len(parts) != 9 or parts[0] != VERSION:
        raise LicenceError(f"the licence is not an {VERSION} licence")
    return payload, mac, parts


def _fields(parts: list[str]) -> Licence:
    _, kid, issued, expires, territory, track_id, version, listener, device = parts
    if not (UNIX_SECONDS.fullmatch(issued) and UNIX_SECONDS.fullmatch(expires)):
        raise LicenceError("the licence's times are not unix seconds")
    try:
        return Licence(kid, int(issued), int(expires), territory, track_id, version, listener,
                       device)  # fmt: skip
    except ValueError as e:
        raise LicenceError(f"the licence is malformed: {e}") from None


def check_valid(licence: Licence, now: float) -> None:
    """LicenceError, saying to go online, once ``licence`` has expired at ``now``."""
    if not math.isfinite(now):
        raise ValueError(f"clock {now!r} is not finite")
    if now >= licence.expires:
        raise LicenceError(
            f"the offline licence of track {licence.track_id} expired at {licence.expires} "
            "(unix time): go online and run 'cadenza offline renew' to play it again"
        )
