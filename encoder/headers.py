"""What a master's container header declares: how long the audio is, and whether the file is
long enough to hold it.

ffprobe trims a WAV's duration to the bytes present, so a master cut short by a failed copy
looks like a shorter, intact one. Reading the declaration here catches it before encoding (PCM,
and MP3 whose tag counts its bytes: the size tells) or after decoding (the decoded length is
compared with the declared one). Pure: the file is a ``Bytes`` view (``bytes`` in tests,
positioned reads in the shell); a parser reads a few small ranges, and every walk over chunks or
tags is bounded.
"""

import struct
from dataclasses import dataclass
from typing import Protocol

from encoder.errors import MasterError

WHAT_TO_DO = "re-export or re-copy the master"
MAX_CHUNKS = 256  # chunks walked before the audio; real masters have a handful
MAX_ID3_TAGS = 4
MP3_SYNC_WINDOW = 4096  # bytes searched for the first frame after the ID3 tags
MAX_COMM = 22 + 256  # AIFF-C's COMM: 18 bytes, a compression type and a name of <= 255 bytes
UNKNOWN_SIZES = {0, 0xFFFFFFFF}  # what tools that stream a WAV write, unable to seek back


class Bytes(Protocol):
    """A file's content, sliced as needed (``bytes``, or reads on demand)."""

    def __len__(self) -> int: ...
    def __getitem__(self, key: slice, /) -> bytes: ...


@dataclass(frozen=True)
class Declared:
    container: str
    seconds: float  # the audio's length as the header declares it
    present_seconds: float | None = None  # what the bytes present hold, when size alone tells
    missing_bytes: int = 0  # declared audio bytes that lie beyond the end of the file

    @property
    def truncated(self) -> bool:
        return self.missing_bytes > 0

    def problem(self) -> str:
        """The one-line reason a truncated master is refused."""
        present = self.present_seconds
        if present is not None and f"{present:.2f}" != f"{self.seconds:.2f}":
            held = f"the file holds only {present:.2f} s"
        else:
            held = f"{self.missing_bytes} bytes of it are missing from the file"
        return (
            f"truncated: the {self.container} header declares {self.seconds:.2f} s of audio "
            f"but {held}; {WHAT_TO_DO}"
        )


def declared_duration(data: Bytes, container: str) -> Declared | None:
    """What the header of ``data`` declares, or None when it declares no length.

    ``container`` is what ffprobe recognised ("WAV", "AIFF", "FLAC", "MP3"; others are None).
    Raises MasterError when the file ends inside its header.
    """
    parser = {"WAV": _wav, "AIFF": _aiff, "FLAC": _flac, "MP3": _mp3}.get(container)
    return parser(data) if parser is not None else None


def _read(data: Bytes, start: int, length: int, container: str) -> bytes:
    chunk = data[start : start + length]
    if len(chunk) < length:
        raise MasterError(f"truncated: the file ends inside its {container} header; {WHAT_TO_DO}")
    return chunk


def _pcm(
    container: str, rate: int, frames: int, frame_bytes: int, present_bytes: int
) -> Declared | None:
    if rate <= 0 or frame_bytes <= 0 or frames <= 0:
        return None
    present = min(frames, max(0, present_bytes) // frame_bytes)
    return Declared(
        container,
        frames / rate,
        present / rate,
        max(0, frames * frame_bytes - max(0, present_bytes)),
    )


def _wav(data: Bytes) -> Declared | None:
    """RIFF (and big-endian RIFX) WAVE, RF64 and BW64: the data chunk's size over the frame size."""
    head = _read(data, 0, 12, "WAV")
    if head[:4] not in (b"RIFF", b"RIFX", b"RF64", b"BW64") or head[8:] != b"WAVE":
        return None
    order = ">" if head[:4] == b"RIFX" else "<"
    rate = frame_bytes = 0
    large_size: int | None = None
    position = 12
    for _ in range(MAX_CHUNKS):
        name, size = struct.unpack(order + "4sI", _read(data, position, 8, "WAV"))
        body = position + 8
        if name == b"ds64":  # RF64/BW64: 64-bit sizes; the data chunk's comes second
            (large_size,) = struct.unpack("<Q", _read(data, body + 8, 8, "WAV"))
        elif name == b"fmt " and size >= 14:
            fmt = _read(data, body, 14, "WAV")
            _, _, rate, _, frame_bytes = struct.unpack(order + "HHIIH", fmt)
        elif name == b"data":
            if size == 0xFFFFFFFF and large_size is not None:
                size = large_size
            elif size in UNKNOWN_SIZES:
                return None
            if frame_bytes <= 0:
                return None
            return _pcm("WAV", rate, size // frame_bytes, frame_bytes, len(data) - body)
        position = body + size + (size & 1)  # chunks are padded to an even size
    return None


def _aiff(data: Bytes) -> Declared | None:
    """AIFF and AIFF-C: COMM's frame count; the sound data starts inside SSND."""
    head = _read(data, 0, 12, "AIFF")
    if head[:4] != b"FORM" or head[8:] not in (b"AIFF", b"AIFC"):
        return None
    comm: tuple[int, int, int] | None = None  # rate, frames, bytes per frame (0: compressed)
    sound_start: int | None = None
    position = 12
    for _ in range(MAX_CHUNKS):
        name, size = struct.unpack(">4sI", _read(data, position, 8, "AIFF"))
        body = position + 8
        if name == b"COMM":
            comm = _aiff_comm(_read(data, body, min(size, MAX_COMM), "AIFF"), head[8:] == b"AIFC")
        elif name == b"SSND":
            (offset,) = struct.unpack(">I", _read(data, body, 4, "AIFF"))
            sound_start = body + 8 + offset
        if comm is not None and sound_start is not None:
            rate, frames, frame_bytes = comm
            if frame_bytes == 0:
                return Declared("AIFF", frames / rate) if rate > 0 and frames > 0 else None
            return _pcm("AIFF", rate, frames, frame_bytes, len(data) - sound_start)
        position = body + size + (size & 1)
    return None


# AIFF-C compression types whose samples are stored whole, and their bytes per sample
# (0: as many as the sample size needs).
AIFC_PCM = {
    b"NONE": 0,
    b"twos": 0,
    b"sowt": 0,
    b"raw ": 0,
    b"in24": 3,
    b"in32": 4,
    b"fl32": 4,
    b"FL32": 4,
    b"fl64": 8,
    b"FL64": 8,
    b"ulaw": 1,
    b"ULAW": 1,
    b"alaw": 1,
    b"ALAW": 1,
}


def _aiff_comm(comm: bytes, compressed_form: bool) -> tuple[int, int, int]:
    if len(comm) < 18:
        return 0, 0, 0
    channels, frames, bits = struct.unpack(">hIh", comm[:8])
    rate = round(_extended(comm[8:18]))
    sample_bytes = (bits + 7) // 8
    if compressed_form:
        kind = AIFC_PCM.get(comm[18:22]) if len(comm) >= 22 else None
        if kind is None:
            return rate, frames, 0
        sample_bytes = kind or sample_bytes
    return rate, frames, max(0, channels) * sample_bytes


def _extended(raw: bytes) -> float:
    """An IEEE 754 80-bit extended float (AIFF's sample rate); 0 for nonsense."""
    exponent = ((raw[0] & 0x7F) << 8) | raw[1]
    mantissa = int.from_bytes(raw[2:10], "big")
    if raw[0] & 0x80 or exponent in (0, 0x7FFF) or exponent - 16383 > 32:
        return 0.0
    return float(mantissa * 2.0 ** (exponent - 16383 - 63))


def _skip_id3(data: Bytes) -> int:
    """Where the stream starts after any ID3v2 tags (FLAC and MP3 files may begin with some)."""
    position = 0
    for _ in range(MAX_ID3_TAGS):
        head = data[position : position + 10]
        if len(head) < 10 or head[:3] != b"ID3":
            break
        size = (
            (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | head[9] & 0x7F
        )
        position += 10 + size + (10 if head[5] & 0x10 else 0)  # the footer flag adds 10 bytes
    return position


def _flac(data: Bytes) -> Declared | None:
    """FLAC: STREAMINFO (always the first metadata block) holds the total sample count."""
    start = _skip_id3(data)
    head = _read(data, start, 8 + 34, "FLAC")  # the whole STREAMINFO block
    if head[:4] != b"fLaC" or head[4] & 0x7F != 0:
        return None
    # Bits 80..143 of STREAMINFO: sample rate (20), channels - 1 (3), bits - 1 (5), samples (36).
    (packed,) = struct.unpack(">Q", head[8 + 10 : 8 + 18])
    rate = packed >> 44
    samples = packed & ((1 << 36) - 1)
    if rate == 0 or samples == 0:  # 0 samples: "unknown", as a streaming encoder writes
        return None
    return Declared("FLAC", samples / rate)


MPEG_RATES = (44100, 48000, 32000)
MPEG_VERSIONS = {3: 1, 2: 2, 0: 4}  # version bits -> divisor of the MPEG-1 sample rates


def _mp3(data: Bytes) -> Declared | None:
    """MP3: the frame count in the first frame's Xing/Info (LAME, ffmpeg) or VBRI tag.

    A constant-bitrate file without such a tag declares nothing. The tag's byte count is
    compared with the whole file (some encoders count the ID3 tags in it, some do not), so a
    cut shorter than the tags is left to the decoded-length check.
    """
    start = _skip_id3(data)
    window = data[start : start + MP3_SYNC_WINDOW + 4]
    for i in range(max(0, len(window) - 3)):
        frame = _mp3_frame(window[i : i + 4])
        if frame is None:
            continue
        rate, samples_per_frame, side_info = frame
        at = start + i
        found = _xing(data[at + 4 + side_info : at + 4 + side_info + 16])
        found = found or _vbri(data[at + 36 : at + 36 + 18])
        if found is None:
            return None
        frames, stream_bytes = found
        if frames == 0:
            return None
        missing = max(0, stream_bytes - len(data))
        return Declared("MP3", frames * samples_per_frame / rate, None, missing)
    return None


def _mp3_frame(header: bytes) -> tuple[int, int, int] | None:
    """(sample rate, samples per frame, side-information bytes) of a Layer III frame header."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    divisor = MPEG_VERSIONS.get((header[1] >> 3) & 3)
    layer = (header[1] >> 1) & 3
    bitrate, rate_index = header[2] >> 4, (header[2] >> 2) & 3
    if divisor is None or layer != 1 or bitrate in (0, 15) or rate_index == 3:
        return None
    mono = header[3] >> 6 == 3
    if divisor == 1:
        return MPEG_RATES[rate_index], 1152, 17 if mono else 32
    return MPEG_RATES[rate_index] // divisor, 576, 9 if mono else 17


def _xing(tag: bytes) -> tuple[int, int] | None:
    if len(tag) < 8 or tag[:4] not in (b"Xing", b"Info"):
        return None
    (flags,) = struct.unpack(">I", tag[4:8])
    fields = [struct.unpack(">I", tag[i : i + 4])[0] for i in range(8, len(tag) - 3, 4)]
    frames = fields.pop(0) if flags & 1 and fields else 0
    stream_bytes = fields.pop(0) if flags & 2 and fields else 0
    return frames, stream_bytes


def _vbri(tag: bytes) -> tuple[int, int] | None:
    if len(tag) < 18 or tag[:4] != b"VBRI":
        return None
    stream_bytes, frames = struct.unpack(">II", tag[10:18])
    return frames, stream_bytes
