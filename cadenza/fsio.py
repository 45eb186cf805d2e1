"""Durable, atomic file publication: write aside, fsync, rename into place.

A reader sees either the previous object or the complete new one, never a partial write, even
when the writer is killed mid-way. What is published is web content: every file and folder these
functions create gets an explicit world-readable mode, whatever the process umask, so a web
server running as another user can serve it.
"""

import os
import stat
import tempfile
from pathlib import Path

TEMP_PREFIX = ".tmp-"
PUBLIC_FILE = 0o644
PUBLIC_DIR = 0o755


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path, mode: int = PUBLIC_DIR) -> None:
    """Create ``path`` and its missing parents, each with ``mode`` (not umask-filtered)."""
    missing = []
    folder = path
    while not folder.is_dir() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # another process made it, and sets its mode
        folder.chmod(mode)


def write_atomic(path: Path, data: bytes, mode: int = PUBLIC_FILE) -> None:
    """Replace ``path`` with ``data`` atomically and durably; the file gets ``mode``."""
    make_dirs(path.parent)
    # mkstemp creates 0600 files; the mode is set before the rename so no reader ever sees it.
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def make_tree_public(root: Path) -> None:
    """Give every folder under ``root`` PUBLIC_DIR and every file PUBLIC_FILE (links untouched).

    Modes already right are left alone, so a tree owned by another user that is already public
    needs no permission to change.
    """
    _set_mode(str(root), PUBLIC_DIR)
    for folder, dirs, files in os.walk(root):
        for names, mode in ((dirs, PUBLIC_DIR), (files, PUBLIC_FILE)):
            for name in names:
                _set_mode(os.path.join(folder, name), mode)


def _set_mode(path: str, mode: int) -> None:
    info = os.lstat(path)
    if not stat.S_ISLNK(info.st_mode) and stat.S_IMODE(info.st_mode) != mode:
        os.chmod(path, mode)


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
    """Rename a complete staged directory to its final name; False if it already exists.

    Whatever modes the staged files were written with (ffmpeg follows the umask), the
    published tree is world-readable.
    """
    make_dirs(final.parent)
    make_tree_public(staged)
    fsync_tree(staged)
    try:
        staged.rename(final)
    except OSError:
        if final.is_dir():
            return False
        raise
    fsync_dir(final.parent)
    return True
