"""What ffprobe reports about a master, and which masters Cadenza accepts."""

import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from encoder.errors import MasterError
from encoder.headers import Declared
from encoder.probe import (
    ISRC,
    MOOV_MISSING,
    WHAT_TO_DO,
    Cover,
    FileBytes,
    Master,
    Tags,
    parse_probe,
    parse_tags,
    probe,
    read_declared,
)

PATH = Path("masters/01 Sinnerman.flac")
MAX = 7200.0


def _audio(codec: str = "flac", **fields: Any) -> dict[str, Any]:
    stream = {
        "index": 0,
        "codec_name": codec,
        "codec_type": "audio",
        "sample_fmt": "s32",
        "sample_rate": "44100",
        "channels": 2,
        "channel_layout": "stereo",
        "bits_per_raw_sample": "24",
        "time_base": "1/44100",
        "duration_ts": 573300,
        "duration": "13.000000",
        "disposition": {"default": 0, "attached_pic": 0},
    }
    return {**stream, **fields}


def _picture(codec: str = "png", attached: int = 1, **fields: Any) -> dict[str, Any]:
    stream = {
        "index": 1,
        "codec_name": codec,
        "codec_type": "video",
        "width": 600,
        "height": 600,
        "disposition": {"default": 0, "attached_pic": attached},
        "tags": {"comment": "Cover (front)"},
    }
    return {**stream, **fields}


def _probe(format_name: str = "flac", *streams: dict[str, Any], **fields: Any) -> dict[str, Any]:
    fmt = {
        "filename": str(PATH),
        "nb_streams": len(streams),
        "format_name": format_name,
        "format_long_name": "raw FLAC",
        "duration": "13.000000",
        "size": "2345678",
        "bit_rate": "1443494",
        **fields,
    }
    return {"streams": list(streams or [_audio()]), "format": fmt}


def _error(data: dict[str, Any], max_duration: float = MAX) -> str:
    with pytest.raises(MasterError) as info:
        parse_probe(data, PATH, max_duration)
    return str(info.value)


def test_flac_master() -> None:
    data = _probe(
        "flac",
        _audio(),
        _picture("png"),
        tags={"TITLE": "Sinnerman", "ARTIST": "Nina Simone", "TRACKNUMBER": "7"},
    )
    assert parse_probe(data, PATH, MAX) == Master(
        path=PATH,
        container="FLAC",
        codec="flac",
        audio_index=0,
        sample_rate=44100,
        channels=2,
        duration=13.0,
        tags=Tags(title="Sinnerman", artist="Nina Simone", track_number=7),
        cover=Cover(0, "png"),
        warnings=(),
    )


@pytest.mark.parametrize(
    ("format_name", "codec", "container"),
    [
        ("wav", "pcm_s16le", "WAV"),
        ("wav", "pcm_s24le", "WAV"),
        ("wav", "pcm_f32le", "WAV"),
        ("flac", "flac", "FLAC"),
        ("aiff", "pcm_s16be", "AIFF"),
        ("aiff", "pcm_s24be", "AIFF"),
        ("mp3", "mp3", "MP3"),
        ("mov,mp4,m4a,3gp,3g2,mj2", "aac", "M4A"),
        ("mov,mp4,m4a,3gp,3g2,mj2", "alac", "M4A"),
    ],
)
def test_accepted_containers_and_codecs(format_name: str, codec: str, container: str) -> None:
    master = parse_probe(_probe(format_name, _audio(codec)), PATH, MAX)
    assert (master.container, master.codec) == (container, codec)


@pytest.mark.parametrize(
    ("fmt", "named"),
    [
        ({"format_name": "ogg", "format_long_name": "Ogg"}, "'Ogg'"),
        ({"format_name": "matroska,webm", "format_long_name": ""}, "'matroska,webm'"),
        ({"format_name": "", "format_long_name": ""}, "'unknown'"),
    ],
)
def test_unsupported_container(fmt: dict[str, str], named: str) -> None:
    message = _error(_probe(**fmt))
    assert message == f"unsupported container {named}; {WHAT_TO_DO}"


def test_no_format_at_all() -> None:
    assert _error({"streams": [_audio()]}).startswith("unsupported container 'unknown'")
    assert _error({}).startswith("unsupported container 'unknown'")


def test_no_audio_stream() -> None:
    assert _error(_probe("mp3", _picture("mjpeg"))) == (
        f"no audio stream in this MP3 file; {WHAT_TO_DO}"
    )
    assert _error({"format": {"format_name": "wav"}}).startswith("no audio stream in this WAV")


@pytest.mark.parametrize("codec", ["mp3", "opus", "ac3", "flac"])
def test_m4a_must_be_aac_or_alac(codec: str) -> None:
    message = _error(_probe("mov,mp4,m4a,3gp,3g2,mj2", _audio(codec)))
    assert message == f"M4A audio must be AAC or ALAC, not {codec}; {WHAT_TO_DO}"


@pytest.mark.parametrize(
    ("format_name", "container", "codec"),
    [("wav", "WAV", "adpcm_ms"), ("wav", "WAV", "mp3"), ("aiff", "AIFF", "adpcm_ima_qt")],
)
def test_wav_and_aiff_must_be_pcm(format_name: str, container: str, codec: str) -> None:
    message = _error(_probe(format_name, _audio(codec)))
    assert message == f"{container} audio must be PCM, not {codec}; {WHAT_TO_DO}"


@pytest.mark.parametrize(
    ("rate", "reported"), [("37800", 37800), ("44101", 44101), ("0", 0), (None, 0), ("N/A", 0)]
)
def test_unsupported_sample_rate(rate: str | None, reported: int) -> None:
    message = _error(_probe("flac", _audio(sample_rate=rate)))
    assert message.startswith(f"unsupported sample rate {reported} Hz; resample to 44100 or 48000")


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000, 96000, 192000])
def test_supported_sample_rates(rate: int) -> None:
    assert parse_probe(_probe("flac", _audio(sample_rate=str(rate))), PATH, MAX).sample_rate == rate


@pytest.mark.parametrize("channels", [0, 9, None])
def test_unsupported_channel_count(channels: int | None) -> None:
    message = _error(_probe("wav", _audio("pcm_s16le", channels=channels)))
    assert message == (
        f"unsupported channel count {channels or 0}; deliver mono, stereo or up to 7.1"
    )


@pytest.mark.parametrize("channels", [1, 2, 6, 8])
def test_supported_channel_counts(channels: int) -> None:
    master = parse_probe(_probe("wav", _audio("pcm_s16le", channels=channels)), PATH, MAX)
    assert master.channels == channels


@pytest.mark.parametrize(
    ("stream_duration", "format_duration", "expected"),
    [
        ("12.5", "13.0", 12.5),
        (None, "13.0", 13.0),
        ("N/A", "13.0", 13.0),
        ("0.000000", "13.0", 13.0),
        ("12.5", None, 12.5),
    ],
)
def test_duration_prefers_the_stream(
    stream_duration: str | None, format_duration: str | None, expected: float
) -> None:
    data = _probe("flac", _audio(duration=stream_duration), duration=format_duration)
    assert parse_probe(data, PATH, MAX).duration == expected


@pytest.mark.parametrize(
    ("stream_duration", "format_duration"),
    [(None, None), ("0.000000", "0.000000"), ("N/A", "N/A"), ("-1.0", None)],
)
def test_missing_or_zero_duration(stream_duration: str | None, format_duration: str | None) -> None:
    data = _probe("flac", _audio(duration=stream_duration), duration=format_duration)
    assert _error(data) == f"the audio has no duration (empty or damaged); {WHAT_TO_DO}"


def test_too_long() -> None:
    data = _probe("flac", _audio(duration="7300.0"))
    assert _error(data, max_duration=7200.0) == (
        "duration 7300.0 s exceeds the limit of 7200.0 s; "
        "split the master or raise max_duration_seconds in the ladder"
    )


def test_exactly_the_limit_is_accepted() -> None:
    data = _probe("flac", _audio(duration="7200.0"))
    assert parse_probe(data, PATH, 7200.0).duration == 7200.0


def test_first_audio_stream_is_used() -> None:
    data = _probe(
        "mov,mp4,m4a,3gp,3g2,mj2",
        _picture("mjpeg", index=0),
        _audio("aac", index=1, sample_rate="48000", channels=1),
        _audio("alac", index=2, sample_rate="96000", channels=2),
    )
    master = parse_probe(data, PATH, MAX)
    summary = (master.audio_index, master.codec, master.sample_rate, master.channels)
    assert summary == (0, "aac", 48000, 1)
    assert master.cover == Cover(0, "jpg")


@pytest.mark.parametrize(
    ("pictures", "cover"),
    [
        ([_picture("mjpeg")], Cover(0, "jpg")),
        ([_picture("png")], Cover(0, "png")),
        ([_picture("png", attached=0)], None),
        ([_picture("gif")], None),
        ([_picture("bmp")], None),
        ([{**_picture("png"), "disposition": None}], None),
        ([{k: v for k, v in _picture("png").items() if k != "disposition"}], None),
        ([_picture("h264", attached=0), _picture("png")], Cover(1, "png")),
        ([_picture("gif"), _picture("mjpeg")], Cover(1, "jpg")),
        ([_picture("png"), _picture("mjpeg")], Cover(0, "png")),
    ],
)
def test_cover_art(pictures: list[dict[str, Any]], cover: Cover | None) -> None:
    assert parse_probe(_probe("mp3", _audio("mp3"), *pictures), PATH, MAX).cover == cover


def test_cover_index_counts_video_streams_only() -> None:
    data = _probe(
        "flac",
        _audio(index=0),
        _audio(index=1),
        _picture("gif", index=2),
        _picture("png", index=3),
    )
    assert parse_probe(data, PATH, MAX).cover == Cover(1, "png")


def test_tags_merge_format_and_stream_tags_case_insensitively() -> None:
    data = _probe(
        "flac",
        _audio(tags={"Title": "Stream title", "ISRC": "us-rc1-76-07839"}),
        tags={"TITLE": "Format title", "ARTIST": "Nina Simone", "album": "Pastel Blues"},
    )
    master = parse_probe(data, PATH, MAX)
    assert master.tags == Tags(
        title="Stream title", artist="Nina Simone", album="Pastel Blues", isrc="USRC17607839"
    )
    assert master.warnings == ()


def test_tag_warnings_reach_the_master() -> None:
    data = _probe("flac", _audio(), tags={"ISRC": "US-RC1-76", "BARCODE": "12345"})
    master = parse_probe(data, PATH, MAX)
    assert master.tags == Tags()
    assert master.warnings == (
        "ignored invalid ISRC 'US-RC1-76'",
        "ignored invalid UPC/barcode '12345'",
    )


def test_numeric_tag_values_become_text() -> None:
    data = _probe("mp3", _audio("mp3"), tags={"track": 5, "title": "Five"})
    assert parse_probe(data, PATH, MAX).tags == Tags(title="Five", track_number=5)


# parse_tags


@pytest.mark.parametrize(
    "raw",
    ["USRC17607839", "US-RC1-76-07839", "us-rc1-76-07839", " US RC1 76 07839 ", "usrc17607839"],
)
def test_isrc_is_normalised(raw: str) -> None:
    assert parse_tags({"isrc": raw}) == (Tags(isrc="USRC17607839"), [])


def test_isrc_from_id3_tsrc() -> None:
    assert parse_tags({"tsrc": "GB-AYE-05-00001"}) == (Tags(isrc="GBAYE0500001"), [])


def test_isrc_tag_wins_over_tsrc() -> None:
    tags, _ = parse_tags({"isrc": "USRC17607839", "tsrc": "GBAYE0500001"})
    assert tags.isrc == "USRC17607839"


@pytest.mark.parametrize(
    "raw",
    [
        "USRC1760783",  # 11 characters
        "USRC176078390",  # 13 characters
        "U1RC17607839",  # a digit in the country code
        "USRC1760783X",  # a letter in the designation code
        "USR_17607839",
        "not an isrc",
    ],
)
def test_invalid_isrc_is_dropped_with_a_warning(raw: str) -> None:
    assert parse_tags({"isrc": raw}) == (Tags(), [f"ignored invalid ISRC {raw!r}"])


@pytest.mark.parametrize(
    ("key", "raw", "upc"),
    [
        ("upc", "012345678905", "012345678905"),
        ("barcode", "5012345678900", "5012345678900"),
        ("ean", " 00012345678905 ", "00012345678905"),
        ("upc", "12345678901234", "12345678901234"),
    ],
)
def test_upc(key: str, raw: str, upc: str) -> None:
    assert parse_tags({key: raw}) == (Tags(upc=upc), [])


@pytest.mark.parametrize(
    "raw", ["12345678901", "123456789012345", "01234567890A", "0123-4567-8905"]
)
def test_invalid_upc_is_dropped_with_a_warning(raw: str) -> None:
    assert parse_tags({"upc": raw}) == (Tags(), [f"ignored invalid UPC/barcode {raw!r}"])


@pytest.mark.parametrize(
    ("tags", "number"),
    [
        ({"track": "3/12"}, 3),
        ({"track": "07"}, 7),
        ({"tracknumber": " 5 "}, 5),
        ({"trck": "11/11"}, 11),
        ({"track": "", "tracknumber": "2"}, 2),
        ({"track": "A1"}, None),
        ({"track": "/12"}, None),
        ({}, None),
    ],
)
def test_track_number(tags: dict[str, str], number: int | None) -> None:
    assert parse_tags(tags)[0].track_number == number


def test_artist_falls_back_to_album_artist_and_blank_values_are_absent() -> None:
    tags, warnings = parse_tags(
        {"title": "  ", "artist": "", "album_artist": "Various Artists", "album": " Live "}
    )
    assert tags == Tags(artist="Various Artists", album="Live")
    assert warnings == []


_ISRCS = st.from_regex(r"[A-Za-z]{2}[A-Za-z0-9]{3}[0-9]{7}", fullmatch=True)


@given(_ISRCS, st.lists(st.integers(0, 12), max_size=4))
def test_any_valid_isrc_spelling_normalises(isrc: str, hyphens: list[int]) -> None:
    spelled = isrc
    for at in sorted(hyphens, reverse=True):
        spelled = spelled[:at] + "-" + spelled[at:]
    assert parse_tags({"isrc": spelled}) == (Tags(isrc=isrc.upper()), [])


@given(st.text(max_size=20))
def test_an_isrc_is_valid_or_dropped_with_a_warning(raw: str) -> None:
    tags, warnings = parse_tags({"isrc": raw})
    if tags.isrc is None:
        assert warnings == ([f"ignored invalid ISRC {raw.strip()!r}"] if raw.strip() else [])
    else:
        assert ISRC.fullmatch(tags.isrc)
        assert warnings == []


# probe() refuses missing and empty files before running ffprobe


async def test_probe_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MasterError, match=r"^no such file$"):
        await probe(tmp_path / "absent.wav", MAX)


async def test_probe_directory(tmp_path: Path) -> None:
    with pytest.raises(MasterError, match=r"^no such file$"):
        await probe(tmp_path, MAX)


async def test_probe_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.touch()
    with pytest.raises(MasterError) as info:
        await probe(empty, MAX)
    assert str(info.value) == f"the file is empty (0 bytes); {WHAT_TO_DO}"


# What the header declares, next to what ffprobe reports


def test_a_truncated_declaration_refuses_the_master() -> None:
    half = Declared("WAV", 8.0, 3.97, 705_600)
    data = _probe("wav", _audio("pcm_s16le", duration="3.970000"))
    assert _declared_error(data, half) == half.problem()


def test_the_longer_of_ffprobe_and_the_header_is_the_duration_to_decode() -> None:
    data = _probe("mp3", _audio("mp3", duration="13.000000"))
    assert parse_probe(data, PATH, MAX, Declared("MP3", 13.05)).duration == 13.05
    assert parse_probe(data, PATH, MAX, Declared("MP3", 12.5)).duration == 13.0
    assert parse_probe(data, PATH, MAX, None).duration == 13.0


def test_the_duration_limit_applies_to_the_declared_duration() -> None:
    data = _probe("flac", _audio(duration="13.000000"))
    assert "exceeds the limit" in _declared_error(data, Declared("FLAC", MAX + 1))


def _declared_error(data: dict[str, Any], declared: Declared) -> str:
    with pytest.raises(MasterError) as info:
        parse_probe(data, PATH, MAX, declared)
    return str(info.value)


def _ffmpeg(target: Path, *args: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=d=2", *args,
         str(target)],
        check=True,
        timeout=60,
    )  # fmt: skip
    return target


@pytest.mark.parametrize(
    ("name", "container"),
    [("a.wav", "WAV"), ("a.aiff", "AIFF"), ("a.flac", "FLAC"), ("a.mp3", "MP3")],
)
def test_read_declared_on_files_ffmpeg_wrote(tmp_path: Path, name: str, container: str) -> None:
    path = _ffmpeg(tmp_path / name, "-ac", "2")
    declared = read_declared(path, container)
    assert declared is not None and not declared.truncated
    # MP3 declares whole frames, encoder delay and padding included (< 0.1 s).
    assert declared.seconds == pytest.approx(2.0, abs=0.1)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    cut = read_declared(path, container)
    assert cut is not None and cut.seconds == declared.seconds
    assert cut.truncated == (container != "FLAC")  # FLAC's cut shows only when decoded


def test_file_bytes_slices_like_bytes(tmp_path: Path) -> None:
    path = tmp_path / "f"
    content = bytes(range(256)) * 3
    path.write_bytes(content)
    with path.open("rb") as f:
        view = FileBytes(f.fileno())
        assert len(view) == len(content)
        for key in (slice(0, 4), slice(10, 700), slice(760, 800), slice(900, 910), slice(5, 2)):
            assert view[key] == content[key]


async def test_probe_refuses_a_cut_wav_that_ffprobe_reads_as_a_shorter_one(tmp_path: Path) -> None:
    path = _ffmpeg(tmp_path / "half.wav")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(MasterError, match=r"^truncated: the WAV header declares 2\.00 s"):
        await probe(path, MAX)


async def test_probe_says_an_m4a_without_its_index_is_truncated(tmp_path: Path) -> None:
    path = _ffmpeg(tmp_path / "cut.m4a", "-c:a", "aac")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # the index comes last
    with pytest.raises(MasterError) as info:
        await probe(path, MAX)
    assert str(info.value) == MOOV_MISSING
