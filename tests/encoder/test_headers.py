"""What container headers declare, on generated headers: whole files round-trip, cut files are
refused wherever the cut falls, and no input makes the parsers fail any other way."""

import struct
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from encoder.errors import MasterError
from encoder.headers import Declared, declared_duration

RATES = st.sampled_from([8000, 22050, 44100, 48000, 88200, 96000, 192000])
OTHER_CHUNKS = st.lists(
    st.tuples(
        st.sampled_from([b"LIST", b"bext", b"JUNK", b"iXML", b"PEAK"]), st.binary(max_size=9)
    ),
    max_size=3,
)


@dataclass(frozen=True)
class Pcm:
    """A generated PCM file and where its parts lie."""

    data: bytes
    rate: int
    frames: int
    frame_bytes: int
    audio_start: int
    whole_end: int  # the end of the last byte a complete file needs (audio or a header after it)

    @property
    def seconds(self) -> float:
        return self.frames / self.rate


def _chunk(name: bytes, body: bytes, order: str) -> bytes:
    return name + struct.pack(order + "I", len(body)) + body + b"\0" * (len(body) % 2)


@st.composite
def wav_files(draw: st.DrawFn) -> Pcm:
    form = draw(st.sampled_from([b"RIFF", b"RIFX", b"RF64", b"BW64"]))
    order = ">" if form == b"RIFX" else "<"
    rate, channels = draw(RATES), draw(st.integers(1, 8))
    sample_bytes, frames = draw(st.sampled_from([1, 2, 3, 4])), draw(st.integers(1, 200))
    block = channels * sample_bytes
    audio = frames * block + draw(st.integers(0, block - 1))  # a writer may leave a partial frame
    tag = draw(st.sampled_from([1, 3, 0xFFFE]))  # PCM, float, extensible
    fmt = struct.pack(order + "HHIIHH", tag, channels, rate, rate * block, block, 8 * sample_bytes)
    head = b""
    if form in (b"RF64", b"BW64"):
        head += _chunk(b"ds64", struct.pack("<QQQI", 0, audio, frames, 0), order)
    head += _chunk(b"fmt ", fmt + b"\0" * draw(st.sampled_from([0, 2, 24])), order)
    for name, body in draw(OTHER_CHUNKS):
        head += _chunk(name, body, order)
    size_field = 0xFFFFFFFF if form in (b"RF64", b"BW64") else audio
    head += b"data" + struct.pack(order + "I", size_field)
    start = 12 + len(head)
    body = bytes(draw(st.binary(min_size=audio, max_size=audio)))
    tail = b"\0" * (audio % 2) + b"".join(_chunk(n, b, order) for n, b in draw(OTHER_CHUNKS))
    data = form + b"\xff\xff\xff\xff" + b"WAVE" + head + body + tail
    return Pcm(data, rate, frames, block, start, start + frames * block)


def _extended(rate: int) -> bytes:
    exponent = rate.bit_length() - 1
    return struct.pack(">HQ", 16383 + exponent, rate << (63 - exponent))


@st.composite
def aiff_files(draw: st.DrawFn) -> Pcm:
    compressed = draw(st.booleans())
    rate, channels = draw(RATES), draw(st.integers(1, 8))
    bits, kind = draw(
        st.sampled_from([(16, b"NONE"), (24, b"NONE"), (16, b"sowt"), (32, b"fl32"), (8, b"NONE")])
    )
    if not compressed:
        kind = b"NONE"
    frames = draw(st.integers(1, 200))
    block = channels * (bits // 8)
    comm = struct.pack(">hIh", channels, frames, bits) + _extended(rate)
    if compressed:
        comm += kind + b"\x04none"
    offset = draw(st.sampled_from([0, 4]))
    ssnd_body = struct.pack(">II", offset, 0) + b"\0" * offset + bytes(frames * block)
    before = b"".join(_chunk(n, b, ">") for n, b in draw(OTHER_CHUNKS))
    comm_chunk, ssnd = _chunk(b"COMM", comm, ">"), _chunk(b"SSND", ssnd_body, ">")
    comm_last = draw(st.booleans())  # chunks may come in any order
    chunks = before + (ssnd + comm_chunk if comm_last else comm_chunk + ssnd)
    form = b"FORM" + struct.pack(">I", 4 + len(chunks)) + (b"AIFC" if compressed else b"AIFF")
    data = form + chunks
    ssnd_at = 12 + len(before) + (0 if comm_last else len(comm_chunk))
    start = ssnd_at + 16 + offset
    whole_end = len(data) - len(comm) % 2 if comm_last else start + frames * block
    return Pcm(data, rate, frames, block, start, whole_end)


def _refused(data: bytes, container: str) -> str:
    """The one-line reason a cut file is refused, whether its header or its audio was cut."""
    try:
        declared = declared_duration(data, container)
    except MasterError as e:
        return str(e)
    assert declared is not None and declared.truncated, declared
    return declared.problem()


@given(wav_files())
def test_a_whole_wav_declares_its_length(wav: Pcm):
    declared = declared_duration(wav.data, "WAV")
    assert declared == Declared("WAV", wav.seconds, wav.seconds, 0)
    assert not declared.truncated


@given(aiff_files())
def test_a_whole_aiff_declares_its_length(aiff: Pcm):
    declared = declared_duration(aiff.data, "AIFF")
    assert declared == Declared("AIFF", aiff.seconds, aiff.seconds, 0)


@given(st.one_of(wav_files().map(lambda f: ("WAV", f)), aiff_files().map(lambda f: ("AIFF", f))))
def test_a_pcm_file_cut_at_any_byte_is_refused(case: tuple[str, Pcm]):
    container, pcm = case
    for cut in range(pcm.whole_end):  # every offset: the files are a few kB
        reason = _refused(pcm.data[:cut], container)
        assert reason.startswith("truncated: ") and reason.endswith(
            "re-export or re-copy the master"
        )
        assert "\n" not in reason
    for cut in range(pcm.whole_end, len(pcm.data) + 1):  # only what follows the audio is lost
        assert declared_duration(pcm.data[:cut], container) == declared_duration(
            pcm.data, container
        )


@given(wav_files(), st.data())
def test_a_cut_wav_says_how_much_it_holds(wav: Pcm, data: st.DataObject):
    cut = data.draw(st.integers(wav.audio_start, wav.whole_end - 1))
    declared = declared_duration(wav.data[:cut], "WAV")
    assert declared is not None
    held = (cut - wav.audio_start) // wav.frame_bytes
    assert declared.present_seconds == held / wav.rate
    assert declared.missing_bytes == wav.whole_end - cut
    assert f"declares {wav.seconds:.2f} s of audio" in declared.problem()
    if f"{held / wav.rate:.2f}" != f"{wav.seconds:.2f}":
        assert f"holds only {held / wav.rate:.2f} s" in declared.problem()
    else:  # a cut too short to show in seconds
        assert f"{wav.whole_end - cut} bytes of it are missing" in declared.problem()


def test_the_half_wav_of_the_report():
    # 8 s of 16-bit stereo at 44.1 kHz cut to 3.97 s: ffprobe called it a whole 3.97 s file.
    fmt = struct.pack("<HHIIHH", 1, 2, 44100, 44100 * 4, 4, 16)
    header = b"RIFF\0\0\0\0WAVE" + _chunk(b"fmt ", fmt, "<") + b"data"
    data = header + struct.pack("<I", 8 * 44100 * 4) + bytes(round(3.97 * 44100) * 4)
    declared = declared_duration(data, "WAV")
    assert declared is not None and declared.truncated
    assert declared.problem() == (
        "truncated: the WAV header declares 8.00 s of audio but the file holds only 3.97 s; "
        "re-export or re-copy the master"
    )


@pytest.mark.parametrize("size", [0, 0xFFFFFFFF])
def test_a_wav_written_by_a_streaming_tool_declares_nothing(size: int):
    fmt = struct.pack("<HHIIHH", 1, 2, 44100, 44100 * 4, 4, 16)
    data = b"RIFF\xff\xff\xff\xffWAVE" + _chunk(b"fmt ", fmt, "<") + b"data"
    assert declared_duration(data + struct.pack("<I", size) + bytes(4000), "WAV") is None


def test_a_header_without_its_format_or_a_foreign_form_declares_nothing():
    assert declared_duration(b"RIFF\0\0\0\0WAVEdata\x10\0\0\0" + bytes(16), "WAV") is None
    assert declared_duration(b"RIFF\0\0\0\0AVI " + bytes(64), "WAV") is None
    assert declared_duration(bytes(64), "M4A") is None
    with pytest.raises(MasterError, match="ends inside its AIFF header"):
        declared_duration(b"FORM\0\0\0\x04AIFF", "AIFF")  # no COMM, no SSND


def _id3(body: bytes) -> bytes:
    size = len(body)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x04\0\0" + syncsafe + body


@st.composite
def flac_files(draw: st.DrawFn) -> tuple[bytes, int, int, int]:
    """(file, sample rate, total samples, where STREAMINFO ends)."""
    rate, samples = draw(st.integers(1, 655350)), draw(st.integers(0, (1 << 36) - 1))
    channels, bits = draw(st.integers(1, 8)), draw(st.integers(4, 32))
    packed = rate << 44 | (channels - 1) << 41 | (bits - 1) << 36 | samples
    info = struct.pack(">HH", 4096, 4096) + bytes(6) + struct.pack(">Q", packed) + bytes(16)
    prefix = _id3(draw(st.binary(max_size=30))) if draw(st.booleans()) else b""
    head = prefix + b"fLaC" + b"\x80\0\0\x22" + info
    return head + draw(st.binary(max_size=200)), rate, samples, len(head)


@given(flac_files())
def test_flac_declares_its_streaminfo_sample_count(case: tuple[bytes, int, int, int]):
    data, rate, samples, _ = case
    expected = Declared("FLAC", samples / rate) if samples else None  # 0: unknown
    assert declared_duration(data, "FLAC") == expected


@given(flac_files(), st.data())
def test_a_flac_cut_inside_streaminfo_is_refused(case: tuple[bytes, int, int, int], data):
    file, _, _, header_end = case
    cut = data.draw(st.integers(0, header_end - 1))
    start = file.index(b"fLaC")
    if cut < start:  # inside the ID3 tag: the stream is not there at all
        return
    with pytest.raises(MasterError, match="truncated: the file ends inside its FLAC header"):
        declared_duration(file[:cut], "FLAC")


MPEG = {1: (3, 1152, 32, 17), 2: (2, 576, 17, 9), 25: (0, 576, 17, 9)}  # bits, samples, sides


@st.composite
def mp3_files(draw: st.DrawFn) -> tuple[bytes, float, int, int]:
    """(file, declared seconds, bytes the tag declares, where the tag ends)."""
    version = draw(st.sampled_from(sorted(MPEG)))
    bits, samples_per_frame, side_stereo, side_mono = MPEG[version]
    rate_index, mono = draw(st.integers(0, 2)), draw(st.booleans())
    rate = (44100, 48000, 32000)[rate_index] // {1: 1, 2: 2, 25: 4}[version]
    header = bytes(
        [0xFF, 0xE0 | bits << 3 | 1 << 1 | 1, 9 << 4 | rate_index << 2, (3 if mono else 0) << 6]
    )
    frames = draw(st.integers(1, 100000))
    audio = draw(st.binary(min_size=64, max_size=400))
    xing = draw(st.booleans())

    def first_frame(stream_bytes: int) -> bytes:
        if xing:  # after the side information; flags 3: frames and bytes follow
            side = bytes(side_mono if mono else side_stereo)
            return header + side + b"Xing" + struct.pack(">III", 3, frames, stream_bytes)
        return header + bytes(32) + b"VBRI" + struct.pack(">HHHII", 1, 0, 0, stream_bytes, frames)

    stream_bytes = len(first_frame(0)) + len(audio)  # as LAME and ffmpeg count: no ID3 tags
    stream = first_frame(stream_bytes) + audio
    prefix = _id3(draw(st.binary(max_size=30))) if draw(st.booleans()) else b""
    return (
        prefix + stream,
        frames * samples_per_frame / rate,
        stream_bytes,
        len(prefix) + len(first_frame(0)),
    )


@given(mp3_files())
def test_mp3_declares_the_frame_count_of_its_xing_or_vbri_tag(case: tuple[bytes, float, int, int]):
    data, seconds, _, _ = case
    assert declared_duration(data, "MP3") == Declared("MP3", seconds)


@given(mp3_files(), st.data())
def test_an_mp3_cut_short_of_its_declared_bytes_is_refused(case, data: st.DataObject):
    file, seconds, stream_bytes, tag_end = case
    cut = data.draw(st.integers(tag_end, stream_bytes - 1))
    declared = declared_duration(file[:cut], "MP3")
    assert declared == Declared("MP3", seconds, None, stream_bytes - cut)
    assert f"{stream_bytes - cut} bytes of it are missing" in declared.problem()


def test_an_mp3_without_a_vbr_tag_declares_nothing():
    header = bytes([0xFF, 0xFB, 0x90, 0x00])  # MPEG-1 Layer III, 128 kb/s, 44.1 kHz
    assert declared_duration(header + bytes(413), "MP3") is None
    assert declared_duration(b"\0" * 100 + header, "MP3") is None
    assert declared_duration(b"", "MP3") is None


MAGIC = st.sampled_from(
    [b"", b"RIFF\0\0\0\0WAVE", b"RF64\0\0\0\0WAVE", b"FORM\0\0\0\0AIFC", b"fLaC", b"ID3\x04\0\x10"]
)


@given(MAGIC, st.binary(max_size=300), st.sampled_from(["WAV", "AIFF", "FLAC", "MP3", "M4A"]))
def test_any_bytes_give_a_declaration_nothing_or_a_clear_error(
    magic: bytes, rest: bytes, container: str
):
    try:
        declared = declared_duration(magic + rest, container)
    except MasterError as e:
        assert str(e).startswith("truncated: the file ends inside its")
        return
    if declared is not None:
        assert declared.seconds > 0 and declared.missing_bytes >= 0
