"""Atomic publication on a real file system: readers see the old object or the new one."""

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cadenza.fsio import TEMP_PREFIX, make_dirs, make_tree_public, publish_dir, write_atomic


@pytest.fixture
def strict_umask() -> Iterator[None]:
    """The strictest umask an operator might run with; published modes must not depend on it."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX))


def test_write_atomic_creates_the_file_and_its_folders(tmp_path: Path) -> None:
    path = tmp_path / "tracks" / "abc" / "master.m3u8"
    write_atomic(path, b"#EXTM3U\n")
    assert path.read_bytes() == b"#EXTM3U\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["master.m3u8"]


def test_write_atomic_replaces_content(tmp_path: Path) -> None:
    path = tmp_path / "master.m3u8"
    path.write_bytes(b"old content that is longer than the new one\n")
    write_atomic(path, b"new\n")
    assert path.read_bytes() == b"new\n"
    write_atomic(path, b"")
    assert path.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["master.m3u8"]


def test_write_atomic_many_times_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "metadata.json"
    for i in range(20):
        write_atomic(path, str(i).encode())
    assert path.read_bytes() == b"19"
    assert _leftovers(tmp_path) == []


def test_failed_write_keeps_the_old_file_and_cleans_up(tmp_path: Path) -> None:
    path = tmp_path / "master.m3u8"
    path.write_bytes(b"old\n")
    with pytest.raises(TypeError):
        write_atomic(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old\n"
    assert _leftovers(tmp_path) == []


def _stage(root: Path) -> Path:
    staged = root / "staging" / "abc-v1"
    (staged / "aac_256").mkdir(parents=True)
    (staged / "aac_256" / "init.mp4").write_bytes(b"init")
    (staged / "aac_256" / "index.m3u8").write_text("#EXTM3U\n")
    (staged / "metadata.json").write_text("{}")
    return staged


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_publish_dir_renames_the_whole_tree(tmp_path: Path) -> None:
    staged = _stage(tmp_path)
    expected = _tree(staged)
    final = tmp_path / "tracks" / "abc" / "v1"
    assert publish_dir(staged, final) is True
    assert not staged.exists()
    assert (
        _tree(final)
        == expected
        == {
            "aac_256/init.mp4": b"init",
            "aac_256/index.m3u8": b"#EXTM3U\n",
            "metadata.json": b"{}",
        }
    )


def test_publish_dir_leaves_an_existing_version_untouched(tmp_path: Path) -> None:
    final = tmp_path / "tracks" / "abc" / "v1"
    final.mkdir(parents=True)
    (final / "metadata.json").write_text('{"published": "first"}')
    staged = _stage(tmp_path)
    assert publish_dir(staged, final) is False
    assert _tree(final) == {"metadata.json": b'{"published": "first"}'}
    assert _tree(staged)["metadata.json"] == b"{}"


def test_publish_dir_without_staged_dir_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        publish_dir(tmp_path / "staging" / "absent", tmp_path / "tracks" / "abc" / "v1")
    assert not (tmp_path / "tracks" / "abc" / "v1").exists()


def test_write_atomic_publishes_a_world_readable_file(tmp_path: Path) -> None:
    # mkstemp makes 0600 files whatever the umask: a web server running as another user
    # answered 403 for every master playlist.
    path = tmp_path / "master.m3u8"
    write_atomic(path, b"#EXTM3U\n")
    assert _mode(path) == 0o644
    write_atomic(path, b"#EXTM3U\n", mode=0o600)
    assert _mode(path) == 0o600


@pytest.mark.usefixtures("strict_umask")
def test_write_atomic_sets_modes_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "tracks" / "abc" / "master.m3u8"
    write_atomic(path, b"#EXTM3U\n")
    assert (_mode(path), _mode(path.parent), _mode(path.parent.parent)) == (0o644, 0o755, 0o755)


@pytest.mark.usefixtures("strict_umask")
def test_make_dirs_sets_the_mode_of_the_folders_it_creates_only(tmp_path: Path) -> None:
    existing = tmp_path / "private"
    existing.mkdir()
    assert _mode(existing) == 0o700
    make_dirs(existing / "a" / "b")
    make_dirs(existing / "a" / "b")  # already there: nothing to do
    assert [_mode(p) for p in (existing, existing / "a", existing / "a" / "b")] == [
        0o700,
        0o755,
        0o755,
    ]
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError):
        make_dirs(tmp_path / "file" / "sub")


@pytest.mark.usefixtures("strict_umask")
def test_publish_dir_makes_the_published_tree_world_readable(tmp_path: Path) -> None:
    staged = _stage(tmp_path)
    (staged / "link").symlink_to("metadata.json")
    final = tmp_path / "tracks" / "abc" / "v1"
    assert publish_dir(staged, final) is True
    tree = [final.parent.parent, final.parent, final, *final.rglob("*")]
    assert {p.relative_to(tmp_path).as_posix(): _mode(p) for p in tree if not p.is_symlink()} == {
        "tracks": 0o755,
        "tracks/abc": 0o755,
        "tracks/abc/v1": 0o755,
        "tracks/abc/v1/aac_256": 0o755,
        "tracks/abc/v1/aac_256/init.mp4": 0o644,
        "tracks/abc/v1/aac_256/index.m3u8": 0o644,
        "tracks/abc/v1/metadata.json": 0o644,
    }


def test_make_tree_public_fixes_modes_inside_the_tree_only(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("key")
    secret.chmod(0o600)
    tree = tmp_path / "v1"
    (tree / "aac_96").mkdir(parents=True)
    (tree / "aac_96").chmod(0o700)
    (tree / "aac_96" / "init.mp4").write_bytes(b"init")
    (tree / "aac_96" / "init.mp4").chmod(0o600)
    (tree / "link").symlink_to(secret)
    make_tree_public(tree)
    assert [_mode(p) for p in (tree, tree / "aac_96", tree / "aac_96" / "init.mp4")] == [
        0o755,
        0o755,
        0o644,
    ]
    assert _mode(secret) == 0o600
