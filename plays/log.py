"""The play-event log: one small interface, two engines, chosen by URL.

The locator appends checked events; consumers read them in order within a consumer group and
acknowledge what they have committed. Delivery is at least once: an event read but not
acknowledged (the consumer died) is read again. Consumers make their results exactly once by
event id (``plays.results``), so a redelivered event changes nothing.

- ``sqlite:///path/plays.sqlite3``: the embedded default, a SQLite file in WAL mode that every
  locator worker appends to; an event id is stored once (a duplicate is dropped). A group's
  position is one sequence number, advanced by acknowledgement: one consumer per group.
- ``redis://host:port/db?stream=plays&maxlen=1000000``: Redis Streams for fleets, with
  consumer groups (several consumers per group), a bounded stream and the entries of a dead
  consumer claimed by another (``plays.redis_log``).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from cadenza.errors import ConfigError
from cadenza.plays import PlayEvent

SCHEMES = ("sqlite", "redis")
MAX_READ = 1000  # events one read returns at most


@dataclass(frozen=True)
class Entry:
    """An event as read from the log, with its position there (what is acknowledged)."""

    position: str
    event: PlayEvent


class PlayLog(Protocol):
    """What the locator and the consumers need of a log engine."""

    async def append(self, events: Sequence[PlayEvent]) -> int:
        """Store ``events`` durably; how many were new (an id already stored is dropped)."""
        ...

    async def read(self, group: str, consumer: str, count: int, block_s: float) -> list[Entry]:
        """Up to ``count`` entries not yet acknowledged by ``group``, oldest first: first those
        delivered before and never acknowledged, then new ones, waiting up to ``block_s``."""
        ...

    async def ack(self, group: str, entries: Sequence[Entry]) -> None:
        """``group`` is done with ``entries`` (their results are committed)."""
        ...

    async def lag(self, group: str) -> int:
        """Entries appended that ``group`` has not acknowledged yet."""
        ...

    async def close(self) -> None: ...


def check_url(url: str, where: str = "plays_log") -> str:
    """``url`` if it names an engine; ConfigError naming the setting otherwise."""
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES or (scheme == "sqlite" and not url.startswith("sqlite:///")):
        raise ConfigError(
            f"{where} {url!r} names no play log: use sqlite:///PATH or redis://HOST:PORT/DB"
        )
    return url


async def open_log(url: str) -> PlayLog:
    """The log at ``url`` (see the module's docstring), opened and ready."""
    check_url(url)
    if url.startswith("sqlite:"):
        from plays.sqlite_log import SqliteLog

        return await SqliteLog.open(url.removeprefix("sqlite://"))
    from plays.redis_log import RedisLog

    return await RedisLog.open(url)
