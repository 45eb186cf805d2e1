"""The version lifecycle: every state a version can be in and every move between them.

Everything that changes a version's state is decided here, before anything is committed:
the catalog asks ``transition`` and writes only what it allows; the master playlist a publish
will write is rendered (and so validated) when the version is declared, and again before the
switch. Pure: no I/O, no clock.

    (none) ──declare──► DECLARED ──store (last missing object)──► STAGED ──publish──► PUBLISHED
                          │  ▲                                                        │
                          └──┘ store                         takedown of the track    ▼
                                                                                  WITHDRAWN

The catalog stores 'staged' or 'published' per version; DECLARED and STAGED differ by whether
objects are missing, WITHDRAWN is a published version of a globally withdrawn track.
"""

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cadenza import hls, layout
from origin.errors import Conflict

MAX_RUNGS = 16
MAX_BPS = 1 << 40
SHOWN_MISSING = 10  # paths named in a Conflict message; ``.missing`` has them all
_RUNG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_CODECS = re.compile(r"[A-Za-z0-9.,_ -]{1,128}")


class State(StrEnum):
    DECLARED = "declared"
    STAGED = "staged"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


class Action(StrEnum):
    DECLARE = "declare"
    STORE = "store"
    PUBLISH = "publish"


@dataclass(frozen=True)
class VersionFacts:
    """What the catalog knows of a version when a transition is asked for."""

    track_id: str
    version: str
    stored: str | None  # the catalog's column: None (not declared), 'staged' or 'published'
    missing: tuple[str, ...]  # manifest paths without a verified object, sorted
    withdrawn: bool  # the track is taken down everywhere
    current: bool  # the track's current version is this one


def state_of(facts: VersionFacts) -> State | None:
    if facts.stored is None:
        return None
    if facts.stored == State.PUBLISHED:
        return State.WITHDRAWN if facts.withdrawn else State.PUBLISHED
    return State.DECLARED if facts.missing else State.STAGED


def transition(facts: VersionFacts, action: Action) -> State:
    """The state after ``action``; Conflict (with the missing objects) when it is not allowed.

    DECLARE keeps every declared state (a re-declaration with the same manifest is a no-op,
    checked by the catalog); STORE is allowed in every declared state, so an object that
    ``cadenza origin fsck --repair`` found missing can be sent again; PUBLISH needs STAGED or
    PUBLISHED (then it only makes the version current again).
    """
    state = state_of(facts)
    name = f"track {facts.track_id} version {facts.version}"
    if action is Action.DECLARE:
        return state or State.DECLARED
    if state is None:
        raise Conflict(f"{name} is not declared; declare it (PUT the version) first")
    if action is Action.STORE:
        return state
    if state is State.WITHDRAWN:
        raise Conflict(f"cannot publish {name}: the track is withdrawn everywhere")
    if facts.missing:
        missing = facts.missing
        shown = ", ".join(missing[:SHOWN_MISSING])
        more = f" and {len(missing) - SHOWN_MISSING} more" if len(missing) > SHOWN_MISSING else ""
        raise Conflict(
            f"cannot publish {name}: {len(missing)} objects are not uploaded ({shown}{more}); "
            "upload them, then publish again",
            missing,
        )
    return State.PUBLISHED


def master_playlist(metadata: Any, manifest: dict[str, Any] | None = None) -> bytes:
    """The master playlist a version's metadata gives; ValueError naming what is wrong.

    Checked strictly because the text goes into a playlist every player parses: rung names and
    codecs cannot carry quotes or line breaks, rates are bounded integers, and with ``manifest``
    every rung's media playlist must be one of the version's objects.
    """
    if not isinstance(metadata, dict):
        raise ValueError("the metadata must be a JSON object")
    version = metadata.get("version")
    if not isinstance(version, str) or not layout.VERSION.fullmatch(version):
        raise ValueError("the metadata needs its version ('v' and 12 hexadecimal digits)")
    rungs = metadata.get("rungs")
    if not isinstance(rungs, list) or not 1 <= len(rungs) <= MAX_RUNGS:
        raise ValueError(f"the metadata needs 'rungs': a list of 1 to {MAX_RUNGS} renditions")
    for index, rung in enumerate(rungs):
        _check_rung(rung, index, manifest)
    _check_loudness(metadata.get("loudness"))
    return hls.write_multivariant(hls.version_master(metadata)).encode()


def _check_rung(rung: Any, index: int, manifest: dict[str, Any] | None) -> None:
    where = f"metadata rung {index}"
    if not isinstance(rung, dict):
        raise ValueError(f"{where} must be an object with name, codecs, peak_bps, average_bps")
    name, codecs = rung.get("name"), rung.get("codecs")
    if not isinstance(name, str) or not _RUNG_NAME.fullmatch(name):
        raise ValueError(f"{where}: name must be 1 to 64 of letters, digits, '.', '_', '-'")
    if not isinstance(codecs, str) or not _CODECS.fullmatch(codecs):
        raise ValueError(f"{where}: codecs must be an RFC 6381 list such as 'mp4a.40.2'")
    rates = [rung.get("peak_bps"), rung.get("average_bps")]
    if not all(type(r) is int and 0 < r <= MAX_BPS for r in rates):
        raise ValueError(f"{where}: peak_bps and average_bps must be positive integers")
    playlist = f"{name}/{layout.MEDIA_PLAYLIST}"
    if manifest is not None and playlist not in manifest:
        raise ValueError(f"{where}: its media playlist {playlist} is not in the manifest")


def _check_loudness(loudness: Any) -> None:
    if loudness is None:
        return
    if not isinstance(loudness, dict):
        raise ValueError("metadata loudness must be an object or null")
    for field, nullable in (
        ("integrated_lufs", True),
        ("true_peak_dbtp", True),
        ("range_lu", False),
    ):
        value = loudness.get(field)
        if value is None and nullable:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"metadata loudness {field} must be a number of dB or LU")
        if not math.isfinite(value) or abs(value) > 1000:
            raise ValueError(f"metadata loudness {field} must be a number of dB or LU")
