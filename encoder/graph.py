"""The one ffmpeg command per track: decode once, feed every rung and the loudness meter.

Pure: builds the argument list with ffmpeg-python and runs nothing. Audio is mapped explicitly,
so cover art never becomes a stream of the HLS output; the cover is copied to its own file.
"""

from pathlib import Path
from typing import Any

import ffmpeg

from cadenza.layout import INIT_SEGMENT, MEDIA_PLAYLIST, SEGMENT_TEMPLATE
from encoder.ladder import Ladder, Rung
from encoder.probe import Master

# FLAC frames this short keep its segment boundaries within one AAC frame (1024 samples).
FLAC_FRAME_SAMPLES = 1024
GLOBAL_ARGS = (
    "-hide_banner",
    "-nostdin",
    "-nostats",
    "-loglevel",
    "level+info",
    "-progress",
    "pipe:1",
    "-y",
)


def cover_name(master: Master) -> str | None:
    return f"cover.{master.cover.extension}" if master.cover else None


def build_command(
    master: Master, ladder: Ladder, workdir: Path, *, measure_loudness: bool = True
) -> list[str]:
    source = ffmpeg.input(f"file:{master.path.resolve()}")
    audio = source[f"a:{master.audio_index}"]
    if master.channels == 1:
        # Dual mono at unity gain: a mono master sounds as loud as it was mixed.
        audio = audio.filter("channelmap", map="0-0|0-1", channel_layout="stereo")
    # rematrix_maxval=1 keeps a surround downmix from clipping.
    audio = audio.filter(
        "aresample", osr=ladder.sample_rate, ocl="stereo", rematrix_maxval=1.0
    ).filter("aformat", sample_rates=ladder.sample_rate, channel_layouts="stereo")
    branches = len(ladder.rungs) + (1 if measure_loudness else 0)
    split = audio.filter_multi_output("asplit", branches)
    outputs = [
        _rung_output(split.stream(i), rung, ladder, workdir / rung.name)
        for i, rung in enumerate(ladder.rungs)
    ]
    if measure_loudness:
        meter = split.stream(len(ladder.rungs)).filter("ebur128", peak="true", framelog="verbose")
        outputs.append(ffmpeg.output(meter, "-", f="null"))
    name = cover_name(master)
    if master.cover and name:
        picture = source[f"v:{master.cover.video_index}"]
        outputs.append(
            ffmpeg.output(picture, str(workdir / name), c="copy", f="image2", **{"frames:v": 1})
        )
    args: list[str] = ffmpeg.merge_outputs(*outputs).compile(cmd="ffmpeg")
    return [args[0], *GLOBAL_ARGS, *args[1:]]


def _rung_output(stream: Any, rung: Rung, ladder: Ladder, rung_dir: Path) -> Any:
    codec_args: dict[str, Any] = {"c:a": rung.encoder}
    if rung.bitrate_kbps is not None:
        codec_args["b:a"] = f"{rung.bitrate_kbps}k"
    if rung.codec == "flac":
        codec_args.update(frame_size=FLAC_FRAME_SAMPLES, strict="experimental")
    return ffmpeg.output(
        stream,
        str(rung_dir / MEDIA_PLAYLIST),
        f="hls",
        hls_time=ladder.segment_seconds,
        hls_segment_type="fmp4",
        hls_playlist_type="vod",
        hls_list_size=0,
        hls_fmp4_init_filename=INIT_SEGMENT,
        hls_segment_filename=str(rung_dir / SEGMENT_TEMPLATE),
        map_metadata=-1,
        fflags="+bitexact",
        **{"flags:a": "+bitexact"},
        **codec_args,
    )
