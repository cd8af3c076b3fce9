"""Depacketizers against real RTP: aiortc's own VP8/H.264/Opus encoders and packetizers in,
PyAV decoders on what comes out."""

from __future__ import annotations

import fractions
import random
from collections.abc import Iterator

import av
import pytest
from aiortc.codecs import CODECS, get_encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import vp8_depayload

from recorder.depacketize import (
    DEFAULT_REORDER_DEPTH,
    BitstreamError,
    DepacketizedFrame,
    FrameAssembler,
    H264Assembler,
    OpusAssembler,
    Vp8Assembler,
    assembler_for,
    build_avcc,
    parse_sps,
    unescape_rbsp,
)

Packet = tuple[int, int, bool, bytes]  # sequence number, timestamp, marker, payload
VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
WIDTH, HEIGHT = 320, 180  # 180 is not a multiple of 16: the H.264 SPS must crop


def video_frames(count: int, width: int = WIDTH, height: int = HEIGHT) -> Iterator[av.VideoFrame]:
    """A noisy picture sliding sideways: keyframes span several packets, inter frames are
    not empty."""
    rng = random.Random(width * height)
    frame = av.VideoFrame(width, height, "yuv420p")
    bases = [rng.randbytes(plane.buffer_size) for plane in frame.planes]
    for i in range(count):
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane, base in zip(frame.planes, bases, strict=True):
            shift = (i * 2) % len(base)
            plane.update(base[shift:] + base[:shift])
        frame.pts = i * 3000
        frame.time_base = VIDEO_TIME_BASE
        yield frame


def encoder_for(mime: str) -> object:
    kind = mime.split("/")[0]
    return get_encoder(next(c for c in CODECS[kind] if c.mimeType == mime))


def rtp_video(
    mime: str, count: int, first_seq: int = 65500, keyframes: frozenset[int] = frozenset()
) -> tuple[list[list[Packet]], list[list[bytes]]]:
    """Per frame: its RTP packets (marker on the last) and the payloads aiortc made."""
    encoder = encoder_for(mime)
    seq = first_seq
    frames: list[list[Packet]] = []
    payload_lists: list[list[bytes]] = []
    for i, frame in enumerate(video_frames(count)):
        payloads, ts = encoder.encode(frame, force_keyframe=i in keyframes)  # type: ignore[attr-defined]
        packets = []
        for j, payload in enumerate(payloads):
            packets.append((seq & 0xFFFF, (ts + 123456789) & 0xFFFFFFFF,
                            j == len(payloads) - 1, payload))
            seq += 1
        frames.append(packets)
        payload_lists.append(payloads)
    return frames, payload_lists


def feed(assembler: FrameAssembler, packets: list[Packet]) -> list[DepacketizedFrame]:
    out: list[DepacketizedFrame] = []
    for seq, ts, marker, payload in packets:
        out += assembler.push(seq, ts, marker, payload)
    return out + assembler.flush()


def decode(
    codec: str, frames: list[DepacketizedFrame], extradata: bytes = b""
) -> list[av.VideoFrame]:
    context = av.CodecContext.create(codec, "r")
    if extradata:
        context.extradata = extradata
    decoded: list[av.VideoFrame] = []
    for frame in frames:
        decoded += context.decode(av.Packet(frame.data))
    decoded += context.decode(None)
    return decoded


def flat(frames: list[list[Packet]]) -> list[Packet]:
    return [p for f in frames for p in f]


# -- VP8 ---------------------------------------------------------------------------------------


def test_vp8_frames_are_byte_identical_and_decode() -> None:
    frames, payloads = rtp_video("video/VP8", 30)
    assert any(len(f) > 1 for f in frames), "the keyframe spans several packets"
    assembler = Vp8Assembler()
    assert assembler.needs_keyframe
    out = feed(assembler, flat(frames))  # sequence numbers wrap at 65536 on the way
    assert len(out) == 30
    assert [f.keyframe for f in out] == [True] + [False] * 29
    assert not assembler.needs_keyframe
    # aiortc's own depayloader is the oracle for the bytes.
    assert [f.data for f in out] == [b"".join(vp8_depayload(p) for p in ps) for ps in payloads]
    assert len({f.timestamp for f in out}) == 30
    assert assembler.format is not None
    assert (assembler.format.codec, assembler.format.width, assembler.format.height) == (
        "VP8", WIDTH, HEIGHT)
    decoded = decode("vp8", out)
    assert len(decoded) == 30
    assert {(d.width, d.height) for d in decoded} == {(WIDTH, HEIGHT)}


def test_vp8_reordering_within_the_buffer_changes_nothing() -> None:
    frames, _ = rtp_video("video/VP8", 20)
    packets = flat(frames)
    in_order = feed(Vp8Assembler(), packets)
    rng = random.Random(7)
    # The first packet sets the expected sequence number: reordering starts after it.
    shuffled: list[Packet] = packets[:1]
    for i in range(1, len(packets), 4):  # displacement at most 3 packets
        window = packets[i : i + 4]
        rng.shuffle(window)
        shuffled += window
    assert shuffled != packets
    assembler = Vp8Assembler()
    assert feed(assembler, shuffled) == in_order
    assert assembler.lost_packets == 0 and assembler.dropped_frames == 0


def test_vp8_loss_drops_the_frame_and_waits_for_the_next_keyframe() -> None:
    frames, _ = rtp_video("video/VP8", 30, keyframes=frozenset({20}))
    assert len(frames[0]) > 1 and len(frames[20]) > 1
    packets = flat(frames[:10]) + frames[10][1:] + flat(frames[11:])  # frame 10 loses its start
    assembler = Vp8Assembler()
    out: list[DepacketizedFrame] = []
    needs: list[bool] = []
    for seq, ts, marker, payload in packets:
        out += assembler.push(seq, ts, marker, payload)
        needs.append(assembler.needs_keyframe)
    out += assembler.flush()
    emitted = {f.timestamp for f in out}
    expected = {frames[i][0][1] for i in [*range(10), *range(20, 30)]}
    assert emitted == expected
    assert out[10].keyframe
    assert assembler.lost_packets == 1
    assert assembler.dropped_frames >= 10  # frame 10 (broken) and 11..19 (no reference)
    assert True in needs[len(flat(frames[:10])):] and not needs[-1]
    decoded = decode("vp8", out)
    assert len(decoded) == 20


def test_vp8_lost_middle_packet_of_a_keyframe_is_never_emitted() -> None:
    frames, _ = rtp_video("video/VP8", 5)
    assert len(frames[0]) >= 3
    packets = [frames[0][0], *frames[0][2:], *flat(frames[1:])]
    assembler = Vp8Assembler()
    assert feed(assembler, packets) == []
    assert assembler.needs_keyframe


# -- H.264 -------------------------------------------------------------------------------------


def avcc_nal_units(data: bytes) -> list[bytes]:
    units, i = [], 0
    while i < len(data):
        size = int.from_bytes(data[i : i + 4], "big")
        units.append(data[i + 4 : i + 4 + size])
        i += 4 + size
    assert i == len(data)
    return units


def test_h264_stap_a_and_fu_a_from_aiortc_decode_with_the_built_avcc() -> None:
    frames, _ = rtp_video("video/H264", 30)
    types = {p[3][0] & 0x1F for p in flat(frames)}
    assert {24, 28} <= types, "aiortc sends SPS/PPS in STAP-A and the IDR in FU-A"
    assembler = H264Assembler()
    out = feed(assembler, flat(frames))
    assert len(out) == 30
    assert out[0].keyframe
    fmt = assembler.format
    assert fmt is not None
    assert (fmt.codec, fmt.width, fmt.height, fmt.clock_rate) == ("H264", WIDTH, HEIGHT, 90000)
    assert fmt.extradata[0] == 1 and fmt.extradata[4] & 0x03 == 3  # 4-byte NAL lengths
    nal_types = [n[0] & 0x1F for n in avcc_nal_units(out[0].data)]
    assert 5 in nal_types and 7 in nal_types and 8 in nal_types
    # The avcC alone must be enough: strip in-band SPS/PPS and decode.
    stripped = [
        DepacketizedFrame(f.timestamp, b"".join(
            len(n).to_bytes(4, "big") + n for n in avcc_nal_units(f.data)
            if n[0] & 0x1F not in (7, 8)), f.keyframe)
        for f in out
    ]
    decoded = decode("h264", stripped, fmt.extradata)
    assert len(decoded) == 30
    # x264 may add IDRs of its own (scene cuts): the decoder says which frames were key.
    assert [f.keyframe for f in out] == [d.key_frame for d in decoded]
    assert {(d.width, d.height) for d in decoded} == {(WIDTH, HEIGHT)}


def x264_packets(pix_fmt: str, width: int, height: int, count: int) -> list[av.Packet]:
    context = av.CodecContext.create("libx264", "w")
    context.width, context.height, context.pix_fmt = width, height, pix_fmt
    context.time_base = fractions.Fraction(1, 30)
    context.options = {"tune": "zerolatency", "preset": "veryfast"}
    packets: list[av.Packet] = []
    for i, frame in enumerate(video_frames(count, width, height)):
        frame = frame.reformat(format=pix_fmt)
        frame.pts = i
        packets += context.encode(frame)
    packets += context.encode(None)
    for packet in packets:
        packet.time_base = fractions.Fraction(1, 30)
    return packets


@pytest.mark.parametrize(("pix_fmt", "profile_idc", "chroma"), [
    ("yuv420p", 100, 1),  # High
    ("yuv444p", 244, 3),  # High 4:4:4 Predictive: other crop units, avcC extension
])
def test_h264_high_profiles_odd_size_byte_identical(
    pix_fmt: str, profile_idc: int, chroma: int
) -> None:
    width, height = 318, 174  # cropped on both axes
    packets = x264_packets(pix_fmt, width, height, 12)
    encoder = H264Encoder()
    assembler = H264Assembler()
    out: list[DepacketizedFrame] = []
    seq = 0
    expected: list[list[bytes]] = []
    for packet in packets:
        expected.append(list(H264Encoder._split_bitstream(bytes(packet))))
        payloads, ts = encoder.pack(packet)
        for j, payload in enumerate(payloads):
            out += assembler.push(seq, ts, j == len(payloads) - 1, payload)
            seq += 1
    out += assembler.flush()
    assert [avcc_nal_units(f.data) for f in out] == expected
    fmt = assembler.format
    assert fmt is not None and (fmt.width, fmt.height) == (width, height)
    sps = next(n for n in expected[0] if n[0] & 0x1F == 7)
    info = parse_sps(sps)
    assert (info.profile_idc, info.chroma_format_idc) == (profile_idc, chroma)
    assert fmt.extradata[-4:-1] == bytes([0xFC | chroma, 0xF8, 0xF8])
    decoded = decode("h264", out, fmt.extradata)
    assert len(decoded) == 12 and (decoded[0].width, decoded[0].height) == (width, height)


class BitWriter:
    """Enough of an H.264 bit writer to build an SPS the encoders here never produce."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, count: int, value: int) -> None:
        self.bits += [(value >> (count - 1 - i)) & 1 for i in range(count)]

    def ue(self, value: int) -> None:
        code = value + 1
        self.u(code.bit_length() * 2 - 1, code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def rbsp(self) -> bytes:
        bits = [*self.bits, 1]  # rbsp_stop_one_bit
        bits += [0] * (-len(bits) % 8)
        return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))


def escape(rbsp: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def test_h264_sps_with_scaling_lists_fields_and_poc_type_1() -> None:
    w = BitWriter()
    w.u(8, 100)  # profile_idc High
    w.u(8, 0)
    w.u(8, 40)  # level 4.0
    w.ue(0)  # sps id
    w.ue(1)  # chroma_format_idc 4:2:0
    w.ue(2)  # bit_depth_luma_minus8: 10 bit
    w.ue(2)
    w.u(1, 0)
    w.u(1, 1)  # seq_scaling_matrix_present_flag
    for i in range(8):
        w.u(1, 1)
        for j in range(16 if i < 6 else 64):
            w.se(3 if j % 3 else -5)
    w.ue(0)  # log2_max_frame_num_minus4
    w.ue(1)  # pic_order_cnt_type 1
    w.u(1, 0)
    w.se(-2)
    w.se(1)
    w.ue(3)
    for value in (1, -1, 7):
        w.se(value)
    w.ue(4)  # max_num_ref_frames
    w.u(1, 0)
    w.ue(119)  # 1920 wide
    w.ue(33)  # 34 map units, interlaced: 34 * 2 * 16 = 1088
    w.u(1, 0)  # frame_mbs_only_flag = 0 (field coding)
    w.u(1, 0)
    w.u(1, 1)
    w.u(1, 1)  # frame_cropping_flag
    for value in (0, 0, 0, 2):  # bottom 2 * (2 * 2) = 8 lines
        w.ue(value)
    w.u(1, 0)  # vui_parameters_present_flag
    sps = bytes([0x67]) + escape(w.rbsp())
    info = parse_sps(sps)
    assert (info.width, info.height) == (1920, 1080)
    assert info.scaling_matrix and (info.bit_depth_luma, info.bit_depth_chroma) == (10, 10)
    avcc = build_avcc(sps, b"\x68\xce\x3c\x80", info)
    assert avcc[1:4] == sps[1:4] and avcc[-4:] == bytes([0xFD, 0xFA, 0xFA, 0])
    with pytest.raises(BitstreamError):
        parse_sps(sps[:12])


def test_unescape_removes_emulation_prevention_bytes() -> None:
    assert unescape_rbsp(b"\x00\x00\x03\x01\x00\x00\x03\x00\x03") == b"\x00\x00\x01\x00\x00\x00\x03"


def test_h264_loss_in_an_idr_fragment_waits_for_the_next_idr() -> None:
    frames, _ = rtp_video("video/H264", 20, keyframes=frozenset({12}))
    fu = [i for i, p in enumerate(frames[12]) if p[3][0] & 0x1F == 28]
    assert len(fu) >= 3
    broken = frames[12][: fu[1]] + frames[12][fu[1] + 1 :]  # a middle FU-A fragment of the IDR
    packets = flat(frames[:5]) + flat(frames[6:12]) + broken + flat(frames[13:])
    assembler = H264Assembler()
    out = feed(assembler, packets)
    # Frame 5 was lost entirely: 6..19 have no reference and 12, the next IDR, is broken.
    assert [f.timestamp for f in out] == [frames[i][0][1] for i in range(5)]
    assert assembler.needs_keyframe and assembler.lost_packets == len(frames[5]) + 1
    assert len(decode("h264", out, assembler.format.extradata if assembler.format else b"")) == 5


def test_h264_without_parameter_sets_never_starts() -> None:
    frames, _ = rtp_video("video/H264", 6)
    # Drop the STAP-A carrying SPS/PPS: an IDR alone cannot be described in an avcC.
    packets = [p for p in flat(frames) if p[3][0] & 0x1F != 24]
    assembler = H264Assembler()
    out = feed(assembler, packets)
    assert out == [] and assembler.format is None and assembler.needs_keyframe


def test_seq_restart_is_a_loss_then_a_new_stream() -> None:
    first, _ = rtp_video("video/VP8", 5, first_seq=100)
    second, _ = rtp_video("video/VP8", 5, first_seq=40000)
    assembler = Vp8Assembler()
    out = feed(assembler, flat(first) + flat(second))
    assert len(out) == 10 and out[5].keyframe


# -- Opus --------------------------------------------------------------------------------------


def opus_rtp(count: int, first_seq: int = 65530) -> list[Packet]:
    encoder = encoder_for("audio/opus")
    packets: list[Packet] = []
    seq = first_seq
    for i in range(count):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(bytes((j * (i + 1)) & 0xFF for j in range(960 * 4)))
        frame.sample_rate = 48000
        frame.pts = i * 960
        frame.time_base = fractions.Fraction(1, 48000)
        payloads, ts = encoder.encode(frame)  # type: ignore[attr-defined]
        for payload in payloads:
            packets.append((seq & 0xFFFF, (ts + 5000) & 0xFFFFFFFF, False, payload))
            seq += 1
    return packets


def test_opus_packets_are_frames_reordered_and_decodable() -> None:
    packets = opus_rtp(50)
    assert len(packets) >= 48
    swapped = list(packets)
    swapped[3], swapped[5] = swapped[5], swapped[3]
    assembler = OpusAssembler()
    out = feed(assembler, swapped)
    assert [f.data for f in out] == [p[3] for p in packets]
    assert all(f.keyframe for f in out) and not assembler.needs_keyframe
    fmt = assembler.format
    assert fmt is not None and (fmt.codec, fmt.clock_rate, fmt.channels) == ("opus", 48000, 2)
    assert fmt.extradata[:8] == b"OpusHead" and len(fmt.extradata) == 19
    context = av.CodecContext.create("opus", "r")
    context.extradata = fmt.extradata
    samples = 0
    for frame in out:
        for decoded in context.decode(av.Packet(frame.data)):
            samples += decoded.samples
    assert samples == 960 * len(out)


def test_opus_loss_skips_only_the_lost_packet() -> None:
    packets = opus_rtp(20)
    assembler = OpusAssembler()
    out = feed(assembler, packets[:7] + packets[8:])
    assert len(out) == len(packets) - 1 and assembler.lost_packets == 1


def test_late_and_duplicate_packets_are_dropped() -> None:
    packets = opus_rtp(30)
    assembler = OpusAssembler(reorder_depth=2)
    late = packets[5]
    out = feed(assembler, packets[:5] + packets[6:12] + [late, packets[8]] + packets[12:])
    assert late[3] not in [f.data for f in out]
    assert assembler.late_packets == 2 and len(out) == len(packets) - 1


# -- Garbage -----------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["VP8", "H264", "opus"])
def test_random_bytes_never_raise_and_memory_stays_bounded(codec: str) -> None:
    rng = random.Random(codec)
    assembler = assembler_for(codec)
    seq = rng.randrange(65536)
    ts = rng.randrange(1 << 32)
    for i in range(20000):
        if rng.random() < 0.1:
            seq = rng.randrange(65536)
        if rng.random() < 0.3:
            ts = rng.randrange(1 << 32)
        payload = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        if i % 500 == 0:
            payload = bytes(rng.randrange(256) for _ in range(1500)) * 50
        for frame in assembler.push(seq, ts, rng.random() < 0.3, payload):
            assert isinstance(frame.data, bytes)
        seq = (seq + rng.choice((1, 1, 1, 2, -1))) & 0xFFFF
        assert len(assembler._pending) <= DEFAULT_REORDER_DEPTH + 1


@pytest.mark.parametrize("mime", ["video/VP8", "video/H264"])
def test_bit_flipped_real_packets_never_raise(mime: str) -> None:
    frames, _ = rtp_video(mime, 10)
    rng = random.Random(mime)
    assembler = assembler_for(mime)
    for _ in range(5):
        for seq, ts, marker, payload in flat(frames):
            data = bytearray(payload)
            for _ in range(3):
                data[rng.randrange(min(len(data), 8))] ^= 1 << rng.randrange(8)
            assembler.push(seq, ts, marker, bytes(data))
    assembler.flush()


def test_unknown_codec_is_refused() -> None:
    with pytest.raises(ValueError, match="no depacketizer"):
        assembler_for("video/AV1")
    assert isinstance(assembler_for("video/vp8"), Vp8Assembler)
