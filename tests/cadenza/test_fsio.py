"""Atomic publication on a real file system: readers see the old object or the new one."""

from pathlib import Path

import pytest

from cadenza.fsio import TEMP_PREFIX, publish_dir, write_atomic


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
