"""Play events: what a player reports about each play, in the one form every part shares.

A play sends ``start`` when its first segment plays, ``progress`` about every 30 s of audio, and
``end`` (played to the end) or ``skip`` (left early) once. Each event has its own id, so that an
event sent twice (a retry, an offline play reported later) is counted once, and the id of its
play, so that the events of one play go together. ``credential`` is what names the listener: the
play's token (``cadenza.tokens``), or for an offline play its licence. The locator takes the
listener from the credential it checked and ignores any ``listener`` a client sends.

On the wire (``POST /v1/plays`` on the locator) a batch is ``{"events": [event, ...]}`` with at
most ``MAX_BATCH`` events, each the JSON object of ``PlayEvent.to_json``.
"""

import math
import re
from dataclasses import dataclass
from typing import Any

from cadenza import layout
from cadenza.errors import InputError
from cadenza.tokens import LISTENER, MAX_TOKEN_LENGTH, TERRITORY

KINDS = ("start", "progress", "end", "skip")
MAX_BATCH = 500
MAX_PLAYED_MS = 24 * 3600 * 1000  # a day: no track plays longer
MAX_KBPS = 10_000
MAX_STALLS = 100_000
MAX_CREDENTIAL_LENGTH = 4 * MAX_TOKEN_LENGTH  # a token or a licence
EARLIEST_AT = 1_500_000_000.0  # 2017: a clock before this is wrong, not old
STREAM_MS = 30_000  # the industry's rule: a play counts as a stream once 30 s are heard
_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_EDGE = re.compile(r"[A-Za-z0-9._-]{0,64}")


class PlayEventError(InputError):
    """An event that cannot be taken; the message names the field and what it must be."""


@dataclass(frozen=True)
class PlayEvent:
    id: str  # unique per event: 16 to 64 of [A-Za-z0-9_-] (a uuid4's hex)
    play_id: str  # the play it belongs to, same form
    kind: str  # one of KINDS
    at: float  # unix seconds on the player's clock when it happened
    track_id: str
    version: str  # the track version played, as in its playlists' paths (v + 12 hex)
    territory: str  # where it was played, ISO alpha-2
    edge: str  # id of the edge that served it, "" offline or unknown
    played_ms: int  # audio heard so far in this play
    rung_kbps: int  # the rung playing when the event was made
    stalls: int  # stalls so far in this play
    offline: bool = False
    credential: str = ""  # the play's token, or the offline licence
    listener: str = ""  # set by whoever checked the credential; "" anonymous

    def __post_init__(self) -> None:
        _check(self)

    @property
    def is_stream(self) -> bool:
        """Does this event show the play counts as a stream (30 s heard)?"""
        return self.played_ms >= STREAM_MS

    def to_json(self) -> dict[str, Any]:
        # Every field is a scalar: a flat dict is what asdict makes, without its deep copies.
        return {name: getattr(self, name) for name in _FIELDS}

    def credited(self, listener: str, territory: str) -> "PlayEvent":
        """This event credited to ``listener`` in ``territory`` (what its checked credential
        says), without its credential; only the two new fields are checked again."""
        if listener and not LISTENER.fullmatch(listener):
            raise PlayEventError(f"listener {listener[:80]!r} is not a listener id")
        if not TERRITORY.fullmatch(territory):
            raise PlayEventError(f"territory {territory[:8]!r} is not an ISO alpha-2 code")
        event = object.__new__(PlayEvent)
        # Frozen: built whole, as __init__ would, without checking again what was checked.
        event.__dict__.update(self.__dict__, listener=listener, territory=territory, credential="")
        return event

    @classmethod
    def from_json(cls, doc: Any) -> "PlayEvent":
        """An event from its JSON object; PlayEventError naming the first bad field."""
        if not isinstance(doc, dict):
            raise PlayEventError("a play event must be a JSON object")
        unknown = set(doc) - set(cls.__dataclass_fields__)
        if unknown:
            raise PlayEventError(f"unknown play event fields: {', '.join(sorted(unknown))[:200]}")
        try:
            return cls(**doc)
        except TypeError as e:
            raise PlayEventError(f"a play event is missing fields: {e}") from None


_FIELDS = tuple(PlayEvent.__dataclass_fields__)


def _check(e: PlayEvent) -> None:
    def bad(name: str, what: str) -> PlayEventError:
        value = repr(getattr(e, name))[:80]
        return PlayEventError(f"play event field {name} = {value}: must be {what}")

    for name in ("id", "play_id"):
        value = getattr(e, name)
        if not isinstance(value, str) or not _ID.fullmatch(value):
            raise bad(name, "16 to 64 of [A-Za-z0-9_-]")
    if e.kind not in KINDS:
        raise bad("kind", " or ".join(KINDS))
    if type(e.at) not in (int, float) or not math.isfinite(e.at) or not EARLIEST_AT <= e.at < 2**40:
        raise bad("at", "unix seconds")
    if not isinstance(e.track_id, str) or not layout.TRACK_ID.fullmatch(e.track_id):
        raise bad("track_id", "a track id (16 of [a-z0-9])")
    if not isinstance(e.version, str) or not layout.VERSION.fullmatch(e.version):
        raise bad("version", "a version (v and 12 hex digits)")
    if not isinstance(e.territory, str) or not TERRITORY.fullmatch(e.territory):
        raise bad("territory", "an ISO alpha-2 code such as SE")
    if not isinstance(e.edge, str) or not _EDGE.fullmatch(e.edge):
        raise bad("edge", "an edge id (up to 64 of [A-Za-z0-9._-])")
    for name, most in (
        ("played_ms", MAX_PLAYED_MS), ("rung_kbps", MAX_KBPS), ("stalls", MAX_STALLS)
    ):  # fmt: skip
        value = getattr(e, name)
        if type(value) is not int or not 0 <= value <= most:
            raise bad(name, f"a whole number from 0 to {most}")
    if type(e.offline) is not bool:
        raise bad("offline", "true or false")
    if not isinstance(e.credential, str) or len(e.credential) > MAX_CREDENTIAL_LENGTH:
        raise bad("credential", f"a token or licence of at most {MAX_CREDENTIAL_LENGTH} characters")
    if not isinstance(e.listener, str) or (e.listener and not LISTENER.fullmatch(e.listener)):
        raise bad("listener", "a listener id (1 to 64 of [A-Za-z0-9_-])")


def batch_from_json(doc: Any) -> list[PlayEvent]:
    """The events of a ``POST /v1/plays`` body; PlayEventError if the batch is malformed (a
    malformed event spoils its batch: the player keeps it and the error names it)."""
    events = doc.get("events") if isinstance(doc, dict) else None
    if not isinstance(events, list):
        raise PlayEventError('a batch of play events is {"events": [...]}')
    if not 1 <= len(events) <= MAX_BATCH:
        raise PlayEventError(f"a batch holds 1 to {MAX_BATCH} events, not {len(events)}")
    out = []
    for n, event in enumerate(events):
        try:
            out.append(PlayEvent.from_json(event))
        except PlayEventError as e:
            raise PlayEventError(f"event {n}: {e}") from None
    return out
