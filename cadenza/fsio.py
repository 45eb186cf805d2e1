"""Durable, atomic file publication: write aside, fsync, rename into place.

A reader sees either the previous object or the complete new one, never a partial write, even
when the writer is killed mid-way.
"""

import os
import tempfile
from pathlib import Path

TEMP_PREFIX = ".tmp-"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (before renaming it into view)."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))


def publish_dir(staged: Path, final: Path) -> bool:
    """Rename a complete staged directory to its final name; False if it already exists."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fsync_tree(staged)
    try:
        staged.rename(final)
    except OSError:
        if final.is_dir():
            return False
        raise
    fsync_dir(final.parent)
    return True
