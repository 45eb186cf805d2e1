"""Play events for the tests of the play log and its consumers."""

import uuid

from cadenza.plays import PlayEvent

TRACK = "0123456789abcdef"
VERSION = "v0123456789ab"
AT = 1_795_000_000.0  # 2026-11-18


def event(kind: str = "start", *, play: str = "", played_ms: int = 0, at: float = AT,
          listener: str = "ann", track: str = TRACK, edge: str = "eu-west-1",
          territory: str = "FR") -> PlayEvent:  # fmt: skip
    return PlayEvent(
        id=uuid.uuid4().hex, play_id=play or uuid.uuid4().hex, kind=kind, at=at,
        track_id=track, version=VERSION, territory=territory, edge=edge,
        played_ms=played_ms, rung_kbps=160, stalls=0, listener=listener,
    )  # fmt: skip


def play(minutes_heard: float = 1.0, start: float = AT, **fields: object) -> list[PlayEvent]:
    """The start, progress and end events of one play that heard ``minutes_heard``."""
    play_id = uuid.uuid4().hex
    heard = int(minutes_heard * 60_000)
    kinds = [("start", 0)] + [("progress", ms) for ms in range(30_000, heard, 30_000)]
    kinds.append(("end" if heard >= 30_000 else "skip", heard))
    return [
        event(kind, play=play_id, played_ms=ms, at=start + ms / 1000, **fields)  # type: ignore[arg-type]
        for kind, ms in kinds
    ]
