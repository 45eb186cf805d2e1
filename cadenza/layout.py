"""The content layout that the encoder writes, the origin serves and edges cache.

``tracks/{track_id}/master.m3u8`` is the only mutable object of a track; everything under
``tracks/{track_id}/{version}/`` is immutable once published.
"""

import re
from pathlib import PurePosixPath

TRACKS = "tracks"
MASTER_PLAYLIST = "master.m3u8"
MEDIA_PLAYLIST = "index.m3u8"
INIT_SEGMENT = "init.mp4"
METADATA = "metadata.json"
SEGMENT_TEMPLATE = "seg_%05d.m4s"

TRACK_ID = re.compile(r"[a-z0-9]{16}")
VERSION = re.compile(r"v[0-9a-f]{12}")


def track_prefix(track_id: str) -> PurePosixPath:
    return PurePosixPath(TRACKS, track_id)


def master_path(track_id: str) -> PurePosixPath:
    return track_prefix(track_id) / MASTER_PLAYLIST


def version_prefix(track_id: str, version: str) -> PurePosixPath:
    return track_prefix(track_id) / version


def segment_name(index: int) -> str:
    return SEGMENT_TEMPLATE % index


def segment_index(name: str) -> int | None:
    """``segment_name``'s inverse: the index in a segment's file name; None for any other name
    (another padding, a sign, non-ASCII digits, more than 9 digits)."""
    if not name.startswith("seg_") or not name.endswith(".m4s"):
        return None
    digits = name[4:-4]
    if not (5 <= len(digits) <= 9 and digits.isascii() and digits.isdigit()):
        return None
    index = int(digits)
    return index if segment_name(index) == name else None
