"""Generated masters have the format, channels, tags and cover that were asked for."""

from pathlib import Path

from bench.catalog import MasterSpec, write_album, write_master
from encoder.probe import probe


async def test_a_master_has_what_its_spec_asks_for(tmp_path: Path):
    spec = MasterSpec(3, seed=2, sample_rate=22050, channels=1, tags={"title": "T"}, cover=True)
    master = await probe(write_master(tmp_path / "m.mp3", spec), 60)
    assert (master.container, master.sample_rate, master.channels) == ("MP3", 22050, 1)
    assert abs(master.duration - 3) < 0.1
    assert master.tags.title == "T"
    assert master.cover is not None and master.cover.extension == "jpg"


async def test_an_album_is_tagged_and_numbered(tmp_path: Path):
    paths = write_album(tmp_path, 3, 2, 4, seed=5)
    assert [p.name for p in paths] == [f"0{n} Étude No. {n}.flac" for n in (1, 2, 3)]
    masters = [await probe(p, 60) for p in paths]
    assert [m.tags.track_number for m in masters] == [1, 2, 3]
    assert len({m.tags.isrc for m in masters}) == 3
    assert all(2 <= m.duration <= 4.1 for m in masters)
    assert [m.cover is not None for m in masters] == [True, False, False]


def test_the_same_seed_gives_the_same_audio(tmp_path: Path):
    one = write_master(tmp_path / "a.wav", MasterSpec(2, seed=3))
    two = write_master(tmp_path / "b.wav", MasterSpec(2, seed=3))
    other = write_master(tmp_path / "c.wav", MasterSpec(2, seed=4))
    assert one.read_bytes() == two.read_bytes() != other.read_bytes()
