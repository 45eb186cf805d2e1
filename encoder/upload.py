"""Uploading encoded versions to an origin: declare, send what is missing, publish.

The origin answers which objects of a version it still lacks, so a re-upload of an existing
version sends nothing. Objects are streamed from disk, several at once, and retried on
connection errors and 5xx answers; the origin refuses the publish until every object is in
place, and says which are missing.
"""

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from cadenza import layout
from cadenza.errors import ConfigError
from encoder.errors import UploadError
from encoder.pipeline import EncodedTrack

PARALLEL_OBJECTS = 8
ATTEMPTS = 4
BACKOFF_SECONDS = 0.5
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
TERRITORIES_FILE = "territories.txt"
_TERRITORY = re.compile(r"[A-Z]{2}")


@dataclass(frozen=True)
class OriginTarget:
    url: str
    label: str
    api_key: str
    territories: tuple[str, ...] | None = None  # None: worldwide

    def endpoint(self, path: str) -> str:
        return f"{self.url.rstrip('/')}{path}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "X-Cadenza-Label": self.label}


def parse_territories(text: str, where: str) -> tuple[str, ...] | None:
    """Codes separated by commas or white space, '#' comments; empty or 'worldwide': None."""
    words = [w for line in text.splitlines() for w in re.split(r"[\s,]+", line.split("#")[0]) if w]
    if not words or [w.lower() for w in words] == ["worldwide"]:
        return None
    codes = tuple(sorted({w.upper() for w in words}))
    bad = [c for c in codes if not _TERRITORY.fullmatch(c)]
    if bad:
        raise ConfigError(f"{where}: {bad[0]!r} is not an ISO 3166 alpha-2 territory code")
    return codes


def territories_for(source: Path, default: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """A ``territories.txt`` beside the master overrides the batch's --territories."""
    file = source.parent / TERRITORIES_FILE
    if file.is_file():
        return parse_territories(file.read_text(), str(file))
    return default


async def check_credentials(session: aiohttp.ClientSession, target: OriginTarget) -> None:
    """Fail the whole command early (exit 2) when the origin refuses the key or is not there."""
    url = target.endpoint("/v1/labels/me")
    try:
        async with session.get(url, headers=target.headers) as response:
            if response.status in (401, 403):
                detail = (await response.json(content_type=None)).get("error", "")
                raise ConfigError(
                    f"the origin refused the API key for label {target.label!r}: {detail}"
                )
            response.raise_for_status()
    except aiohttp.ClientError as e:
        raise ConfigError(
            f"cannot reach the origin at {target.url} ({e}); check --origin"
        ) from None


async def upload_track(
    session: aiohttp.ClientSession,
    target: OriginTarget,
    out_root: Path,
    track: EncodedTrack,
    territories: tuple[str, ...] | None,
) -> int:
    """Upload and publish one encoded track; returns how many objects were sent."""
    version_dir = out_root / layout.version_prefix(track.track_id, track.version)
    metadata = json.loads((version_dir / layout.METADATA).read_text())
    base = f"/v1/tracks/{track.track_id}/versions/{track.version}"
    staged = await _call(
        session, "PUT", target, base,
        json_body={
            "metadata": metadata,
            "manifest": metadata["files"],
            "territories": list(territories) if territories else None,
        },
    )  # fmt: skip
    missing: list[str] = staged["missing"]
    slots = asyncio.Semaphore(PARALLEL_OBJECTS)

    async def send(path: str) -> None:
        async with slots:
            await _call(session, "PUT", target, f"{base}/objects/{path}", file=version_dir / path)

    await asyncio.gather(*(send(p) for p in missing))
    await _call(session, "POST", target, f"{base}/publish")
    return len(missing)


async def _call(
    session: aiohttp.ClientSession,
    method: str,
    target: OriginTarget,
    path: str,
    *,
    json_body: Any = None,
    file: Path | None = None,
) -> dict[str, Any]:
    """One API call, retried on connection errors and 5xx answers with growing pauses."""
    last = ""
    for attempt in range(ATTEMPTS):
        if attempt:
            await asyncio.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
        try:
            with file.open("rb") if file is not None else contextlib.nullcontext() as body:
                async with session.request(
                    method, target.endpoint(path), headers=target.headers, json=json_body, data=body
                ) as response:
                    answer = await response.json(content_type=None)
            if not isinstance(answer, dict):
                answer = {}
            if response.status < 400:
                return answer
            last = f"{response.status} {answer.get('error', '')}"
            if answer.get("missing"):
                last += f" (missing: {', '.join(answer['missing'][:5])})"
            if response.status < 500:
                break
        except (TimeoutError, aiohttp.ClientError, json.JSONDecodeError) as e:
            last = f"{type(e).__name__}: {e}"
    raise UploadError(f"origin {method} {path} failed: {last.strip()}")
