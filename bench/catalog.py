"""Generated masters that sound like music: chords that change, plucked envelopes, pink noise.

Used by the benchmarks, the demo and the tests, so none of them needs recordings on disk.
"""

import random
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

PROGRESSION = (0, 5, 7, 3)  # semitones above the root, one chord every two seconds
CODECS = {
    ".wav": "pcm_s16le",
    ".flac": "flac",
    ".aiff": "pcm_s16be",
    ".aif": "pcm_s16be",
    ".mp3": "libmp3lame",
    ".m4a": "aac",
}


@dataclass(frozen=True)
class MasterSpec:
    seconds: float
    seed: int = 0
    sample_rate: int = 44100
    channels: int = 2
    tags: dict[str, str] = field(default_factory=dict)
    cover: bool = False
    silent: bool = False


def _voice(seed: int, channel: int) -> str:
    rng = random.Random(seed * 10 + channel)
    root = 110 * 2 ** (rng.randrange(12) / 12)
    step = "mod(floor(t/2),4)"
    offset = "+".join(f"{semi}*eq({step},{i})" for i, semi in enumerate(PROGRESSION))
    freq = f"({root:.3f}*pow(2,({offset})/12))"
    chord = "+".join(
        f"{gain}*sin(2*PI*{freq}*{ratio}*t)"
        for gain, ratio in ((1.0, 1.0), (0.6, 1.2599), (0.45, 1.4983), (0.25, 2.0))
    )
    beat = rng.choice((0.4, 0.5, 0.6))
    level = rng.uniform(0.12, 0.3)
    return f"{level:.3f}*({chord})*(0.45+0.55*exp(-5*mod(t,{beat})))"


def write_master(path: Path, spec: MasterSpec) -> Path:
    """Render ``spec`` to ``path``; the extension picks the container and codec."""
    rate, seconds = spec.sample_rate, spec.seconds
    if spec.silent:
        inputs = ["-f", "lavfi", "-i", f"anullsrc=r={rate}:cl=stereo:d={seconds}"]
        mix = "[0:a]anull[a]"
    else:
        exprs = "|".join(_voice(spec.seed, c) for c in range(2))
        noise = f"anoisesrc=c=pink:a=0.03:r={rate}:d={seconds}:seed={spec.seed + 1}"
        # One cycle of the progression is evaluated sample by sample (slow) and then looped;
        # noise and a slow swell keep every segment different.
        cycle = 2 * len(PROGRESSION)
        inputs = [
            "-f",
            "lavfi",
            "-i",
            f"aevalsrc=exprs='{exprs}':s={rate}:d={cycle}",
            "-f",
            "lavfi",
            "-i",
            noise,
        ]
        mix = (
            f"[0:a]aloop=loop=-1:size={cycle * rate},atrim=duration={seconds}[music];"
            "[music][1:a]amix=inputs=2:normalize=0,"
            "volume='0.75+0.25*sin(2*PI*t/23)':eval=frame[a]"
        )
    maps = ["-map", "[a]"]
    if spec.cover:
        inputs += ["-f", "lavfi", "-i", "color=c=0x8040c0:s=64x64:d=1"]
        cover_index = len([a for a in inputs if a == "-i"]) - 1
        cover_codec = "png" if path.suffix == ".flac" else "mjpeg"
        maps += ["-map", f"{cover_index}:v", "-frames:v", "1", "-c:v", cover_codec]
        maps += ["-disposition:v", "attached_pic"]
    metadata = [arg for k, v in spec.tags.items() for arg in ("-metadata", f"{k}={v}")]
    codec = ["-c:a", CODECS[path.suffix.lower()], "-ac", str(spec.channels), "-ar", str(rate)]
    if path.suffix.lower() in {".mp3", ".m4a"}:
        codec += ["-b:a", "192k"]
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            *inputs,
            "-filter_complex",
            mix,
            *maps,
            *codec,
            *metadata,
            str(path),
        ],
        check=True,
    )
    return path


def write_album(
    folder: Path, tracks: int, min_seconds: float, max_seconds: float, seed: int = 1
) -> list[Path]:
    """A tagged album of ``tracks`` FLAC masters with durations spread over the given range."""
    rng = random.Random(seed)
    paths = []
    for n in range(1, tracks + 1):
        seconds = round(rng.uniform(min_seconds, max_seconds), 1)
        tags = {
            "title": f"Étude No. {n}",
            "artist": "The Cadenza Ensemble",
            "album": f"Generated Album {seed}",
            "track": f"{n}/{tracks}",
            "ISRC": f"XXC{seed % 100:02d}{26:02d}{n:05d}",
        }
        spec = MasterSpec(seconds=seconds, seed=seed * 100 + n, tags=tags, cover=n == 1)
        paths.append(write_master(folder / f"{n:02d} Étude No. {n}.flac", spec))
    return paths
