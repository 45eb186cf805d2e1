"""What every object store backend shares: keys, object facts and the meter that checks a put.

Backends import this module and nothing else of the storage layer, so ``origin.storage`` can
import the backends without a cycle.
"""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from origin.errors import ContentMismatch, InvalidKey, ObjectTooLarge

CHUNK_SIZE = 64 * 1024  # the largest chunk read() yields
MAX_KEY_LENGTH = 1024
MAX_KEY_SEGMENTS = 16

# A segment never starts with '.', so keys cannot be '.', '..' or hidden temporary files.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str  # lowercase hex of the content


@dataclass(frozen=True)
class Expected:
    """What a put promises to store: the object is committed only if its bytes match."""

    size: int
    sha256: str


@dataclass(frozen=True)
class StorageConfig:
    backend: str = "filesystem"  # or "s3"
    root: Path = Path("data/objects")  # filesystem backend
    bucket: str = ""  # s3
    prefix: str = ""  # s3, a folder prepended to every key (no leading slash)
    endpoint_url: str | None = None  # s3, e.g. http://127.0.0.1:PORT for moto/minio
    region: str = "us-east-1"
    access_key_id: str | None = None  # None: the usual AWS_* environment variables / config
    secret_access_key: str | None = None


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative POSIX path, else raise InvalidKey saying why."""
    rule = (
        f"a key is 1 to {MAX_KEY_SEGMENTS} '/'-separated segments of at most 128 letters, digits,"
        f" '.', '_' or '-', each starting with a letter or digit; {MAX_KEY_LENGTH} characters at"
        " most"
    )
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"invalid object key of {len(key)} characters: {rule}")
    segments = key.split("/")
    if len(segments) > MAX_KEY_SEGMENTS:
        raise InvalidKey(f"invalid object key {key!r} of {len(segments)} segments: {rule}")
    for segment in segments:
        if not _SEGMENT.fullmatch(segment):
            raise InvalidKey(f"invalid object key {key!r}, segment {segment!r}: {rule}")
    return key


def is_key(name: str) -> bool:
    try:
        validate_key(name)
    except InvalidKey:
        return False
    return True


def check_range(start: int, end: int | None) -> None:
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"invalid byte range [{start}, {end}): need 0 <= start <= end")


class Meter:
    """Counts and hashes a put's bytes as they stream by, and enforces its byte limit."""

    def __init__(self, key: str, max_bytes: int | None, expect: Expected | None = None) -> None:
        self.key = key
        self.max_bytes = max_bytes
        self.expect = expect
        self.size = 0
        self._sha256 = hashlib.sha256()

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise ObjectTooLarge(
                f"object {self.key!r} is larger than its limit of {self.max_bytes} bytes;"
                " nothing was stored"
            )
        if self.expect is not None and self.size > self.expect.size:
            raise self._mismatch()
        self._sha256.update(chunk)

    def verified(self) -> ObjectInfo:
        """The stored object's facts; ContentMismatch when they are not the expected ones."""
        info = ObjectInfo(self.key, self.size, self._sha256.hexdigest())
        if self.expect is not None and (info.size, info.sha256) != (
            self.expect.size,
            self.expect.sha256.lower(),
        ):
            raise self._mismatch(info)
        return info

    def _mismatch(self, info: ObjectInfo | None = None) -> ContentMismatch:
        assert self.expect is not None
        got = (
            f"more than {self.expect.size} bytes"
            if info is None
            else (f"{info.size} bytes with SHA-256 {info.sha256}")
        )
        return ContentMismatch(
            f"object {self.key!r}: got {got}, expected {self.expect.size} bytes with SHA-256 "
            f"{self.expect.sha256}; nothing was stored, send the right file"
        )
