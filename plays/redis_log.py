"""The play log of fleets: a Redis stream with consumer groups.

Appending is one Lua script per batch, so that an event id seen within ``DEDUPE_S`` is dropped
(a ``SET NX`` marker per id) and the stream stays bounded (``XADD MAXLEN ~``: Redis trims whole
nodes, so the stream holds about ``maxlen`` entries, never far more). Consumers read with
``XREADGROUP``: a consumer that starts reads its own pending entries first (delivered to it
before it died, never acknowledged), then new ones; it also claims the entries that another
consumer of its group left pending for ``claim_idle_s`` (``XAUTOCLAIM``, looked for twice in
that time), so a consumer that died for good does not hold its events forever.

    redis://HOST:PORT/DB?stream=plays&maxlen=1000000&claim_idle_s=60
"""

import json
import math
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as redis
from redis.exceptions import ResponseError

from cadenza.errors import ConfigError
from cadenza.plays import PlayEvent
from plays.log import MAX_READ, Entry

DEFAULT_STREAM = "plays"
DEFAULT_MAXLEN = 1_000_000
DEFAULT_CLAIM_IDLE_S = 60.0
DEDUPE_S = 7 * 24 * 3600  # an id is remembered this long: the reporting window of events
FIELD = "e"

APPEND = """
local added = 0
for i = 3, #ARGV, 2 do
  if redis.call('SET', KEYS[2] .. ARGV[i], '1', 'NX', 'EX', ARGV[2]) then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[i + 1])
    added = added + 1
  end
end
return added
"""


class RedisLog:
    def __init__(
        self, client: "redis.Redis", stream: str, maxlen: int, claim_idle_s: float
    ) -> None:
        self.client = client
        self.stream = stream
        self.maxlen = maxlen
        self.claim_idle_ms = int(claim_idle_s * 1000)
        self._append = client.register_script(APPEND)
        self._groups: set[str] = set()
        self._backlog: set[tuple[str, str]] = set()  # (group, consumer) whose own pending is read
        self._claimed_at: dict[str, float] = {}  # group: when its idle entries were last claimed

    @classmethod
    async def open(cls, url: str) -> "RedisLog":
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query))
        try:
            stream = options.pop("stream", DEFAULT_STREAM)
            maxlen = int(options.pop("maxlen", DEFAULT_MAXLEN))
            claim_idle_s = float(options.pop("claim_idle_s", DEFAULT_CLAIM_IDLE_S))
        except ValueError as e:
            raise ConfigError(f"play log {_safe(url)}: {e}") from None
        if maxlen < 1 or claim_idle_s < 0 or not stream:
            raise ConfigError(f"play log {_safe(url)}: maxlen >= 1, claim_idle_s >= 0, a stream")
        rest = urlunsplit(parts._replace(query=urlencode(options)))
        client = redis.Redis.from_url(rest, socket_timeout=10, socket_connect_timeout=5)
        return cls(client, stream, maxlen, claim_idle_s)

    async def append(self, events: Sequence[PlayEvent]) -> int:
        args: list[Any] = [self.maxlen, DEDUPE_S]
        for e in events:
            args += [e.id, json.dumps(e.to_json(), separators=(",", ":"))]
        added = await self._append(keys=[self.stream, f"{self.stream}:id:"], args=args)
        return int(added)

    async def _group(self, group: str) -> None:
        if group in self._groups:
            return
        try:
            await self.client.xgroup_create(self.stream, group, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        self._groups.add(group)

    async def read(self, group: str, consumer: str, count: int, block_s: float) -> list[Entry]:
        count = max(1, min(count, MAX_READ))
        await self._group(group)
        if (group, consumer) not in self._backlog:
            own = await self._read(group, consumer, count, "0", None)
            if own:
                return own
            self._backlog.add((group, consumer))
        entries = await self._claim(group, consumer, count)
        if entries:
            return entries
        return await self._read(group, consumer, count, ">", max(1, int(block_s * 1000)))

    async def _claim(self, group: str, consumer: str, count: int) -> list[Entry]:
        """Entries another consumer left pending for ``claim_idle_s``, looked for twice in
        that time (not at every read: it is a round trip)."""
        now = time.monotonic()
        if now - self._claimed_at.get(group, -math.inf) < self.claim_idle_ms / 2000:
            return []
        claimed = await self.client.xautoclaim(
            self.stream, group, consumer, self.claim_idle_ms, "0-0", count=count
        )
        entries = _entries(claimed[1])
        if not entries:  # none left: wait before the next look
            self._claimed_at[group] = now
        return entries

    async def _read(
        self, group: str, consumer: str, count: int, start: str, block_ms: int | None
    ) -> list[Entry]:
        answer: Any = await self.client.xreadgroup(
            group, consumer, {self.stream: start}, count=count, block=block_ms
        )
        return [entry for _, messages in answer or () for entry in _entries(messages)]

    async def ack(self, group: str, entries: Sequence[Entry]) -> None:
        if entries:
            await self.client.xack(self.stream, group, *(e.position for e in entries))

    async def lag(self, group: str) -> int:
        await self._group(group)
        for info in await self.client.xinfo_groups(self.stream):
            if _text(info["name"]) == group:
                lag = info.get("lag")
                pending = int(info.get("pending") or 0)
                return pending + int(lag if lag is not None else await self._unread(info))
        return 0

    async def _unread(self, info: dict[Any, Any]) -> int:
        """When Redis cannot say the lag (after trimming), count what follows the group."""
        after = _text(info["last-delivered-id"])
        entries: Any = await self.client.xrange(self.stream, f"({after}", "+")
        return len(entries)

    async def close(self) -> None:
        await self.client.aclose()


def _entries(messages: Any) -> list[Entry]:
    """Stream messages as entries; a trimmed one (no fields) is skipped."""
    out = []
    for message_id, fields in messages or ():
        if not fields:
            continue
        body = fields.get(FIELD.encode()) or fields.get(FIELD)
        out.append(Entry(_text(message_id), PlayEvent.from_json(json.loads(body))))
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _safe(url: str) -> str:
    """The URL without a password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))
