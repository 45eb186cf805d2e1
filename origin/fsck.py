"""``cadenza origin fsck``: prove that the catalog, the stored objects and the masters agree.

The catalog is the store of record. Every object of every published version must be stored
with the size and SHA-256 its manifest names, every track's master must be the one its current
version renders, and no temp file of a killed upload may be older than an hour. ``repair``
fixes what the catalog can rebuild: masters and ``metadata.json`` are rewritten, stale temp
files removed, and a missing or damaged object is forgotten by the catalog (a damaged one also
removed, so it is never served) so that the label's next upload of the version sends it again.

The origin runs ``check(..., deep=False)`` (masters and temp files, no hashing) at start-up.
"""

from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from cadenza import layout
from origin import publish
from origin.catalog import Catalog
from origin.publish import TrackLocks
from origin.storage import ObjectInfo, Storage

TEMP_MAX_AGE = 3600.0  # seconds; younger temp files may belong to an upload under way


class Problem(StrEnum):
    MISSING_OBJECT = "missing-object"
    DAMAGED_OBJECT = "damaged-object"
    MISSING_METADATA = "missing-metadata"
    STALE_MASTER = "stale-master"
    MISSING_MASTER = "missing-master"
    STRAY_MASTER = "stray-master"
    STALE_TEMP = "stale-temp-file"


@dataclass(frozen=True)
class Finding:
    problem: Problem
    key: str
    detail: str

    def line(self) -> str:
        return f"{self.problem}: {self.key}: {self.detail}"


def object_finding(key: str, size: int, sha256: str, found: ObjectInfo | None) -> Finding | None:
    """What is wrong with a published object, given what the store holds under its key."""
    if found is None:
        return Finding(Problem.MISSING_OBJECT, key, "published but not in the store")
    if (found.size, found.sha256) != (size, sha256):
        return Finding(
            Problem.DAMAGED_OBJECT,
            key,
            f"stored {found.size} bytes with SHA-256 {found.sha256}, "
            f"the catalog says {size} bytes with {sha256}",
        )
    return None


def master_finding(key: str, expected: bytes | None, stored: bytes | None) -> Finding | None:
    """What is wrong with a track's master, given the one its catalog entry renders."""
    if expected is None:
        if stored is None:
            return None
        return Finding(Problem.STRAY_MASTER, key, "the track has no published version")
    if stored is None:
        return Finding(Problem.MISSING_MASTER, key, "the track is published but has no master")
    if stored != expected:
        return Finding(Problem.STALE_MASTER, key, "does not name the catalog's current version")
    return None


async def check(catalog: Catalog, storage: Storage, *, deep: bool = True) -> list[Finding]:
    """Every disagreement found; ``deep`` also checks each published object's size and hash."""
    findings = [f async for f in _masters(catalog, storage)]
    if deep:
        findings += [f async for f in _objects(catalog, storage)]
    for name in await storage.stale_temp_files(TEMP_MAX_AGE):
        findings.append(Finding(Problem.STALE_TEMP, name, "left by an upload that never ended"))
    return findings


async def _masters(catalog: Catalog, storage: Storage) -> AsyncIterator[Finding]:
    for track_id in await catalog.current_versions():
        key = str(layout.master_path(track_id))
        expected = await publish.expected_master(catalog, track_id)
        found = master_finding(key, expected, await publish.read_object(storage, key))
        if found is not None:
            yield found


async def _objects(catalog: Catalog, storage: Storage) -> AsyncIterator[Finding]:
    for track_id, version in await catalog.published_versions():
        entry = await catalog.version(track_id, version)
        assert entry is not None
        prefix = layout.version_prefix(track_id, version)
        for path, expected in sorted(entry["manifest"].items()):
            key = f"{prefix}/{path}"
            stored = await storage.stat(key)
            found = object_finding(key, expected["size"], expected["sha256"], stored)
            if found is not None:
                yield found
        metadata_key = f"{prefix}/{layout.METADATA}"
        if await storage.stat(metadata_key) is None:
            yield Finding(Problem.MISSING_METADATA, metadata_key, "not in the store")


async def repair(
    catalog: Catalog, storage: Storage, locks: TrackLocks, findings: list[Finding]
) -> list[Finding]:
    """Fix what the catalog can rebuild; returns the findings that were repaired."""
    repaired: list[Finding] = []
    for finding in findings:
        if await _repair_one(catalog, storage, locks, finding):
            repaired.append(finding)
    return repaired


async def _repair_one(
    catalog: Catalog, storage: Storage, locks: TrackLocks, finding: Finding
) -> bool:
    parts = finding.key.split("/")
    match finding.problem:
        case Problem.STALE_MASTER | Problem.MISSING_MASTER:
            await publish.write_master(catalog, storage, locks, parts[1])
            return True
        case Problem.STRAY_MASTER:
            async with publish.holding(catalog, locks, parts[1]):
                if await publish.expected_master(catalog, parts[1]) is None:
                    await storage.delete(finding.key)
            return True
        case Problem.STALE_TEMP:
            await storage.remove_temp_file(finding.key)
            return True
        case Problem.MISSING_METADATA:
            entry = await catalog.version(parts[1], parts[2])
            assert entry is not None
            await publish.write_metadata(storage, parts[1], parts[2], entry["metadata"])
            return True
        case Problem.DAMAGED_OBJECT | Problem.MISSING_OBJECT:
            # Not fixed, only made fixable: the bytes exist nowhere but at the label.
            if finding.problem is Problem.DAMAGED_OBJECT:
                await storage.delete(finding.key)
            await catalog.forget_object(parts[1], parts[2], "/".join(parts[3:]))
            return False
    return False


def report(findings: list[Finding], repaired: list[Finding]) -> dict[str, Any]:
    """The JSON document ``fsck --json`` prints; ``ok`` when nothing is left to fix."""
    left = [f for f in findings if f not in repaired]
    return {
        "ok": not left,
        "findings": [asdict(f) for f in findings],
        "repaired": [asdict(f) for f in repaired],
    }
