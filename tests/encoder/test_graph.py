"""The ffmpeg command: one input, explicit audio maps, the loudness branch, the cover file."""

from pathlib import Path

from encoder.graph import build_command, cover_name
from encoder.ladder import DEFAULT_LADDER
from encoder.probe import Cover, Master, Tags


def master(channels: int = 2, cover: Cover | None = None) -> Master:
    return Master(Path("/in/a b.wav"), "WAV", "pcm_s16le", 0, 44100, channels, 60.0, Tags(), cover)


def _maps(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == "-map"]


def _filters(args: list[str]) -> str:
    return args[args.index("-filter_complex") + 1]


def test_one_input_decoded_once_and_split_to_every_rung_and_the_meter():
    args = build_command(master(), DEFAULT_LADDER, Path("/work"))
    assert args.count("-i") == 1
    assert args[args.index("-i") + 1] == "file:/in/a b.wav"
    graph = _filters(args)
    assert graph.count("asplit=5") == 1
    assert "ebur128=framelog=verbose:peak=true" in graph
    maps = _maps(args)
    assert len(maps) == 5 and all(m.startswith("[") for m in maps)


def test_every_rung_is_fmp4_hls_at_its_bitrate():
    args = build_command(master(), DEFAULT_LADDER, Path("/work"))
    for rung in DEFAULT_LADDER.rungs:
        playlist = args.index(f"/work/{rung.name}/index.m3u8")
        section = args[: playlist + 1]
        start = len(section) - 1 - section[::-1].index("-map")
        options = section[start:]
        pairs = dict(zip(options[::2], options[1::2], strict=False))
        assert pairs["-b:a"] == f"{rung.bitrate_kbps}k"
        assert pairs["-c:a"] == "aac"
        assert pairs["-hls_segment_type"] == "fmp4"
        assert pairs["-hls_playlist_type"] == "vod"
        assert pairs["-hls_segment_filename"] == f"/work/{rung.name}/seg_%05d.m4s"


def test_without_loudness_there_is_no_meter():
    args = build_command(master(), DEFAULT_LADDER, Path("/work"), measure_loudness=False)
    assert "ebur128" not in _filters(args)
    assert "asplit=4" in _filters(args)
    assert "null" not in args


def test_mono_is_mapped_to_both_channels_before_resampling():
    graph = _filters(build_command(master(channels=1), DEFAULT_LADDER, Path("/w")))
    assert graph.index("channelmap=channel_layout=stereo:map=0-0|0-1") < graph.index("aresample")
    assert "channelmap" not in _filters(build_command(master(), DEFAULT_LADDER, Path("/w")))


def test_cover_art_is_copied_to_a_file_and_mapped_nowhere_else():
    with_cover = master(cover=Cover(0, "jpg"))
    args = build_command(with_cover, DEFAULT_LADDER, Path("/w"))
    assert _maps(args).count("0:v:0") == 1
    cover_at = args.index("/w/cover.jpg")
    assert args[cover_at - 8 : cover_at].count("copy") == 1
    assert cover_name(with_cover) == "cover.jpg"
    assert cover_name(master()) is None
    assert "0:v:0" not in _maps(build_command(master(), DEFAULT_LADDER, Path("/w")))


def test_global_options_come_before_the_input():
    args = build_command(master(), DEFAULT_LADDER, Path("/w"))
    assert args[0] == "ffmpeg"
    before_input = args[: args.index("-i")]
    for option in ("-nostdin", "-progress", "-y", "-hide_banner"):
        assert option in before_input
