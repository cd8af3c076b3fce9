"""RTP payloads back into whole frames: VP8 (RFC 7741), H.264 (RFC 6184), Opus (RFC 7587).

Packets are pushed in arrival order; a small reorder buffer keyed by sequence number (with
wrap, RFC 3550 §A.1) puts them back in order. Video frames are only emitted whole: a packet
lost inside or between frames breaks the reference chain, so the frame in progress is dropped
and nothing is emitted until the next keyframe. Every parse checks its bounds, so any payload
(garbage included) is dropped rather than raising, and memory stays bounded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from recorder.media import TrackFormat
from sfu.codecs import (
    H264_FU_START_BIT,
    H264_NAL_FU_A,
    H264_NAL_IDR,
    H264_NAL_SPS,
    H264_NAL_STAP_A,
    H264_NAL_TYPE_MASK,
    H264_STAP_SIZE_LEN,
    VP8_INVERSE_KEYFRAME_BIT,
    VP8_PID_MASK,
    VP8_S_BIT,
    vp8_descriptor_size,
)
from sfu.rtp import RTP_SEQ_MASK, seq_diff

# Packets held waiting for a missing one before it is declared lost: a few packets of
# reordering are common on the Internet; more than that is loss (or a NACK we do not wait for).
DEFAULT_REORDER_DEPTH = 8
# RFC 3550 §A.1 (MAX_DROPOUT / MAX_MISORDER idea): a sequence jump this large either way is a
# restarted stream (new SSRC behind the same observer), not reordering.
SEQ_RESTART_DISTANCE = 3000
# A frame larger than this is garbage, not video (a 4K VP8/H.264 keyframe is ~1-2 MB).
MAX_FRAME_BYTES = 8 << 20

VIDEO_CLOCK_RATE = 90000  # RFC 7741 §6.1, RFC 6184 §8.2.1
OPUS_CLOCK_RATE = 48000  # RFC 7587 §4.1: always 48 kHz
OPUS_CHANNELS = 2  # RFC 7587 §7: the SDP always says 2; mono packets decode as stereo

# -- VP8, RFC 7741 (descriptor bits in sfu.codecs) ------------------------------------------
# RFC 6386 §9.1: a key frame's 3-byte frame tag, start code, then 14-bit width and height
# (little endian, top two bits are the scale).
VP8_FRAME_TAG_SIZE = 3
VP8_START_CODE = b"\x9d\x01\x2a"
VP8_KEYFRAME_HEADER_SIZE = 10
VP8_DIMENSION_MASK = 0x3FFF

# -- H.264, RFC 6184 (NAL types and FU bits shared with sfu.codecs) --------------------------
H264_NAL_FNRI_MASK = 0xE0  # §5.3: the F and NRI bits an FU-A carries over
H264_NAL_SLICE = 1  # H.264 Table 7-1: coded slice of a non-IDR picture
H264_NAL_PPS = 8  # Table 7-1: picture parameter set
H264_NAL_SINGLE_MAX = 23  # §5.2: 1-23 are single NAL unit packets
H264_FU_END_BIT = 0x40  # §5.8: FU header E bit
AVCC_LENGTH_SIZE = 4  # ISO 14496-15 §5.3.3: lengthSizeMinusOne = 3
# H.264 §7.3.2.1.1: profiles whose SPS carries chroma_format_idc, bit depths, scaling lists.
H264_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
EXP_GOLOMB_MAX_ZEROS = 31  # a 32-bit ue(v) at most; more is corrupt
H264_MAX_POC_CYCLE = 255  # §7.4.2.1.1: num_ref_frames_in_pic_order_cnt_cycle range

_LENGTH = struct.Struct("!I")
_U16 = struct.Struct("!H")


@dataclass(frozen=True, slots=True)
class DepacketizedFrame:
    """One whole frame in its RTP timestamp, before it is placed on the recording's clock."""

    timestamp: int
    data: bytes
    keyframe: bool


class FrameAssembler:
    """Reorders packets, reports loss, and leaves the codec's framing to subclasses."""

    __slots__ = ("_depth", "_format", "_next", "_pending", "dropped_frames", "late_packets",
                 "lost_packets")

    kind = "video"

    def __init__(self, reorder_depth: int = DEFAULT_REORDER_DEPTH) -> None:
        self._format: TrackFormat | None = None
        self._depth = max(0, reorder_depth)
        self._next: int | None = None
        self._pending: dict[int, tuple[int, bool, bytes]] = {}
        self.dropped_frames = 0
        self.late_packets = 0
        self.lost_packets = 0

    @property
    def format(self) -> TrackFormat | None:
        """The track's format as far as known (video: from the last keyframe)."""
        return self._format

    @property
    def needs_keyframe(self) -> bool:
        return False

    def reset(self) -> None:
        """A new source feeds this assembler: forget order and any frame in progress."""
        self._next = None
        self._pending.clear()
        self._lost()

    def push(
        self, sequence_number: int, timestamp: int, marker: bool, payload: bytes
    ) -> list[DepacketizedFrame]:
        """Take one packet; return the frames it completes (usually none or one)."""
        out: list[DepacketizedFrame] = []
        seq = sequence_number & RTP_SEQ_MASK
        if self._next is None:
            self._next = seq
        distance = seq_diff(seq, self._next)
        if abs(distance) >= SEQ_RESTART_DISTANCE:
            self._pending.clear()
            self._lost()
            self._next = seq
        elif distance < 0 or seq in self._pending:
            # Behind what was already released (or a duplicate): too late to use.
            self.late_packets += 1
            return out
        self._pending[seq] = (timestamp, marker, payload)
        self._release(out)
        return out

    def flush(self) -> list[DepacketizedFrame]:
        """Release what the reorder buffer holds (end of stream), declaring gaps lost."""
        out: list[DepacketizedFrame] = []
        saved, self._depth = self._depth, 0
        while self._pending:
            self._release(out)
        self._depth = saved
        return out

    def _release(self, out: list[DepacketizedFrame]) -> None:
        pending = self._pending
        nxt = self._next
        assert nxt is not None
        while pending:
            item = pending.pop(nxt, None)
            if item is None:
                if len(pending) <= self._depth:
                    break
                # Waited long enough: skip to the oldest packet held.
                base = nxt
                oldest = min(pending, key=lambda s: seq_diff(s, base))
                self.lost_packets += seq_diff(oldest, nxt)
                nxt = oldest
                self._lost()
                continue
            self._packet(item[0], item[1], item[2], out)
            nxt = (nxt + 1) & RTP_SEQ_MASK
        self._next = nxt

    def _packet(
        self, timestamp: int, marker: bool, payload: bytes, out: list[DepacketizedFrame]
    ) -> None:
        raise NotImplementedError

    def _lost(self) -> None:
        """One or more packets will never come."""


class _VideoAssembler(FrameAssembler):
    """Common state of the video assemblers: the frame in progress and the keyframe wait."""

    __slots__ = ("_discarded_ts", "_frame_ts", "_parts", "_size", "_waiting")

    def __init__(self, reorder_depth: int = DEFAULT_REORDER_DEPTH) -> None:
        super().__init__(reorder_depth)
        self._discarded_ts: int | None = None  # the last frame counted as dropped
        self._frame_ts: int | None = None  # None: no frame in progress
        self._parts: list[bytes] = []
        self._size = 0
        self._waiting = True

    @property
    def needs_keyframe(self) -> bool:
        return self._waiting

    def _lost(self) -> None:
        if self._frame_ts is not None:
            self._discard(self._frame_ts)
        self._drop()
        self._waiting = True

    def _discard(self, timestamp: int) -> None:
        """Count a frame that will not be emitted, once however many packets it had."""
        if timestamp != self._discarded_ts:
            self._discarded_ts = timestamp
            self.dropped_frames += 1

    def _drop(self) -> None:
        self._frame_ts = None
        self._parts = []
        self._size = 0

    def _append(self, part: bytes) -> bool:
        self._size += len(part)
        if self._size > MAX_FRAME_BYTES:
            self._lost()
            return False
        self._parts.append(part)
        return True


def vp8_keyframe_size(frame: bytes) -> tuple[int, int] | None:
    """(width, height) of a VP8 key frame (RFC 6386 §9.1), or None if it is not one."""
    if len(frame) < VP8_KEYFRAME_HEADER_SIZE or frame[0] & VP8_INVERSE_KEYFRAME_BIT:
        return None
    if frame[VP8_FRAME_TAG_SIZE : VP8_FRAME_TAG_SIZE + 3] != VP8_START_CODE:
        return None
    width = int.from_bytes(frame[6:8], "little") & VP8_DIMENSION_MASK
    height = int.from_bytes(frame[8:10], "little") & VP8_DIMENSION_MASK
    if width == 0 or height == 0:
        return None
    return width, height


class Vp8Assembler(_VideoAssembler):
    """RFC 7741: a frame is the packets of one timestamp from S=1,PID=0 to the marker."""

    __slots__ = ()

    def _packet(
        self, timestamp: int, marker: bool, payload: bytes, out: list[DepacketizedFrame]
    ) -> None:
        start = vp8_descriptor_size(payload)
        if start == 0:
            if payload:  # empty payloads are padding; anything else unparsable breaks the frame
                self._lost()
            return
        first = payload[0] & (VP8_S_BIT | VP8_PID_MASK) == VP8_S_BIT
        if first:
            if self._frame_ts is not None:
                if self._frame_ts == timestamp:
                    self._lost()  # a second start in one frame: corrupt
                    return
                # No packet was lost and a new frame starts: the one before was whole, its
                # marker just never set.
                self._finish(out)
            self._frame_ts = timestamp
        elif self._frame_ts is None or self._frame_ts != timestamp:
            self._lost()  # a continuation without its start
            self._discard(timestamp)
            return
        if not self._append(payload[start:]):
            return
        if marker:
            self._finish(out)

    def _finish(self, out: list[DepacketizedFrame]) -> None:
        ts = self._frame_ts
        data = b"".join(self._parts)
        self._drop()
        if ts is None:
            return
        size = vp8_keyframe_size(data)
        if size is not None:
            self._waiting = False
            if self._format is None or (self._format.width, self._format.height) != size:
                self._format = TrackFormat(
                    kind="video", codec="VP8", clock_rate=VIDEO_CLOCK_RATE,
                    width=size[0], height=size[1],
                )
        elif self._waiting:
            self._discard(ts)
            return
        out.append(DepacketizedFrame(ts, data, size is not None))


# -- H.264 SPS (H.264 §7.3.2.1.1) ---------------------------------------------------------------


class BitstreamError(ValueError):
    """An RBSP ended early or held an out-of-range value."""


def unescape_rbsp(nal: bytes) -> bytes:
    """Remove emulation prevention bytes (H.264 §7.4.1: 0x000003 -> 0x0000)."""
    if b"\x00\x00\x03" not in nal:
        return nal
    out = bytearray()
    zeros = 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class _BitReader:
    __slots__ = ("_bits", "_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self._bits = len(data) * 8

    def u(self, count: int) -> int:
        if self._pos + count > self._bits:
            raise BitstreamError("read past the end")
        value = 0
        for _ in range(count):
            byte = self._data[self._pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self._pos & 7))) & 1)
            self._pos += 1
        return value

    def ue(self) -> int:
        """Exp-Golomb unsigned (H.264 §9.1)."""
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > EXP_GOLOMB_MAX_ZEROS:
                raise BitstreamError("exp-Golomb code too long")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        """Exp-Golomb signed (H.264 §9.1.1)."""
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


@dataclass(frozen=True, slots=True)
class SpsInfo:
    profile_idc: int
    constraint_flags: int
    level_idc: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    width: int
    height: int
    scaling_matrix: bool  # seq_scaling_matrix_present_flag


def _skip_scaling_list(reader: _BitReader, size: int) -> None:
    # H.264 §7.3.2.1.1.1
    last = nxt = 8
    for _ in range(size):
        if nxt != 0:
            nxt = (last + reader.se() + 256) % 256
        last = nxt if nxt != 0 else last


def parse_sps(nal: bytes) -> SpsInfo:
    """Profile, level, chroma format and the cropped picture size of an SPS NAL unit.

    Raises :class:`BitstreamError` if the SPS is truncated or out of range.
    """
    if len(nal) < 4 or nal[0] & H264_NAL_TYPE_MASK != H264_NAL_SPS:
        raise BitstreamError("not an SPS")
    reader = _BitReader(unescape_rbsp(nal[1:]))
    profile_idc = reader.u(8)
    constraint_flags = reader.u(8)
    level_idc = reader.u(8)
    reader.ue()  # seq_parameter_set_id
    chroma_format_idc = 1  # §7.4.2.1.1: inferred 4:2:0 when absent
    separate_colour_plane = 0
    bit_depth_luma = bit_depth_chroma = 8
    scaling_matrix = False
    if profile_idc in H264_HIGH_PROFILES:
        chroma_format_idc = reader.ue()
        if chroma_format_idc > 3:
            raise BitstreamError("chroma_format_idc out of range")
        if chroma_format_idc == 3:
            separate_colour_plane = reader.u(1)
        bit_depth_luma = 8 + reader.ue()
        bit_depth_chroma = 8 + reader.ue()
        reader.u(1)  # qpprime_y_zero_transform_bypass_flag
        scaling_matrix = bool(reader.u(1))
        if scaling_matrix:
            for i in range(8 if chroma_format_idc != 3 else 12):
                if reader.u(1):
                    _skip_scaling_list(reader, 16 if i < 6 else 64)
    reader.ue()  # log2_max_frame_num_minus4
    poc_type = reader.ue()
    if poc_type == 0:
        reader.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        reader.u(1)  # delta_pic_order_always_zero_flag
        reader.se()  # offset_for_non_ref_pic
        reader.se()  # offset_for_top_to_bottom_field
        cycle = reader.ue()
        if cycle > H264_MAX_POC_CYCLE:
            raise BitstreamError("num_ref_frames_in_pic_order_cnt_cycle out of range")
        for _ in range(cycle):
            reader.se()
    elif poc_type != 2:
        raise BitstreamError("pic_order_cnt_type out of range")
    reader.ue()  # max_num_ref_frames
    reader.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = reader.ue() + 1
    height_map_units = reader.ue() + 1
    frame_mbs_only = reader.u(1)
    if not frame_mbs_only:
        reader.u(1)  # mb_adaptive_frame_field_flag
    reader.u(1)  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = (2 - frame_mbs_only) * height_map_units * 16
    if reader.u(1):  # frame_cropping_flag; §7.4.2.1.1 (7-19..7-22) crop units
        left, right, top, bottom = reader.ue(), reader.ue(), reader.ue(), reader.ue()
        chroma_array_type = 0 if separate_colour_plane else chroma_format_idc
        if chroma_array_type == 0:
            crop_x, crop_y = 1, 2 - frame_mbs_only
        else:
            sub_width = 2 if chroma_format_idc in (1, 2) else 1
            sub_height = 2 if chroma_format_idc == 1 else 1
            crop_x, crop_y = sub_width, sub_height * (2 - frame_mbs_only)
        width -= crop_x * (left + right)
        height -= crop_y * (top + bottom)
    if width <= 0 or height <= 0:
        raise BitstreamError("cropped away the whole picture")
    return SpsInfo(
        profile_idc, constraint_flags, level_idc, chroma_format_idc,
        bit_depth_luma, bit_depth_chroma, width, height, scaling_matrix,
    )


def build_avcc(sps: bytes, pps: bytes, info: SpsInfo) -> bytes:
    """ISO 14496-15 §5.3.3.1 AVCDecoderConfigurationRecord for one SPS and one PPS."""
    record = bytearray(
        [1, sps[1], sps[2], sps[3], 0xFC | (AVCC_LENGTH_SIZE - 1), 0xE0 | 1]
    )
    record += _U16.pack(len(sps)) + sps
    record += bytes([1]) + _U16.pack(len(pps)) + pps
    # ISO 14496-15 §5.3.3.1.2: the chroma/bit-depth extension follows for the profiles whose
    # SPS carries those fields (the 2004 list named 100/110/122/144; 244 replaced 144).
    if info.profile_idc in H264_HIGH_PROFILES:
        record += bytes([
            0xFC | info.chroma_format_idc,
            0xF8 | ((info.bit_depth_luma - 8) & 0x07),
            0xF8 | ((info.bit_depth_chroma - 8) & 0x07),
            0,  # numOfSequenceParameterSetExt
        ])
    return bytes(record)


class H264Assembler(_VideoAssembler):
    """RFC 6184 non-interleaved mode: single NAL, STAP-A and FU-A packets into access units.

    Output is AVCC: each NAL unit prefixed with its 4-byte length. The latest SPS/PPS make
    the format's avcC and picture size; a keyframe is an access unit holding an IDR slice.
    """

    __slots__ = (
        "_fu", "_has_idr", "_has_vcl", "_pps", "_sps", "_sps_info", "_starts_at_mb0",
    )

    def __init__(self, reorder_depth: int = DEFAULT_REORDER_DEPTH) -> None:
        super().__init__(reorder_depth)
        self._fu: bytearray | None = None  # FU-A NAL unit being reassembled
        self._sps: bytes = b""
        self._pps: bytes = b""
        self._sps_info: SpsInfo | None = None
        self._has_idr = False
        self._has_vcl = False
        self._starts_at_mb0 = False

    def _drop(self) -> None:
        super()._drop()
        self._fu = None
        self._has_idr = self._has_vcl = False

    def _packet(
        self, timestamp: int, marker: bool, payload: bytes, out: list[DepacketizedFrame]
    ) -> None:
        if not payload:
            return  # padding
        if self._frame_ts is not None and self._frame_ts != timestamp:
            if self._fu is not None:
                self._lost()  # the fragmented NAL unit never ended
            else:
                self._finish(out)  # no loss, new timestamp: the last one was whole
        if self._frame_ts is None:
            self._frame_ts = timestamp
        if not self._nal_units(payload):
            self._lost()
            return
        if marker:
            if self._fu is not None:
                self._lost()
            else:
                self._finish(out)

    def _nal_units(self, payload: bytes) -> bool:
        """Add the packet's NAL units to the frame; False if the packet is malformed."""
        nal_type = payload[0] & H264_NAL_TYPE_MASK
        if nal_type == H264_NAL_FU_A:
            return self._fragment(payload)
        if self._fu is not None:
            return False  # a fragmented NAL unit was interrupted
        if 1 <= nal_type <= H264_NAL_SINGLE_MAX:
            return self._nal(payload)
        if nal_type == H264_NAL_STAP_A:
            i, n = 1, len(payload)
            if n <= i + H264_STAP_SIZE_LEN:
                return False
            while i < n:
                if i + H264_STAP_SIZE_LEN > n:
                    return False
                size = _U16.unpack_from(payload, i)[0]
                i += H264_STAP_SIZE_LEN
                if size == 0 or i + size > n or not self._nal(payload[i : i + size]):
                    return False
                i += size
            return True
        return False  # STAP-B, MTAP, FU-B (interleaved mode) or type 0/30/31

    def _fragment(self, payload: bytes) -> bool:
        if len(payload) < 3:
            return False
        header = payload[1]
        if header & H264_FU_START_BIT:
            if self._fu is not None or header & H264_FU_END_BIT:
                return False
            # §5.8: the NAL header is rebuilt from the FU indicator's F|NRI and the FU type.
            nal_header = (payload[0] & H264_NAL_FNRI_MASK) | (header & H264_NAL_TYPE_MASK)
            self._fu = bytearray([nal_header])
        elif self._fu is None:
            return False
        self._fu += payload[2:]
        if len(self._fu) > MAX_FRAME_BYTES:
            return False
        if header & H264_FU_END_BIT:
            nal = bytes(self._fu)
            self._fu = None
            return self._nal(nal)
        return True

    def _nal(self, nal: bytes) -> bool:
        nal_type = nal[0] & H264_NAL_TYPE_MASK
        if nal_type == 0 or nal_type > H264_NAL_SINGLE_MAX or nal[0] & 0x80:
            return False  # §5.3: F=1 means the sender knows the NAL unit is broken
        if nal_type == H264_NAL_SPS:
            self._sps = nal
        elif nal_type == H264_NAL_PPS:
            self._pps = nal
        elif H264_NAL_SLICE <= nal_type <= H264_NAL_IDR:
            if not self._has_vcl:
                # §7.3.3: first_mb_in_slice is the slice header's first ue(v); a leading 1 bit
                # is 0. After a loss, a frame whose first slice is not macroblock 0 lost its start.
                self._starts_at_mb0 = len(nal) > 1 and bool(nal[1] & 0x80)
            self._has_vcl = True
            self._has_idr = self._has_idr or nal_type == H264_NAL_IDR
        return self._append(_LENGTH.pack(len(nal)) + nal)

    def _finish(self, out: list[DepacketizedFrame]) -> None:
        ts = self._frame_ts
        data = b"".join(self._parts)
        has_vcl, keyframe, whole = self._has_vcl, self._has_idr, self._starts_at_mb0
        self._drop()
        if ts is None or not has_vcl:
            return  # parameter sets or SEI alone: kept (SPS/PPS) but not a frame
        if keyframe and self._waiting and not whole:
            keyframe = False
        if keyframe:
            keyframe = self._update_format()
        if not keyframe and self._waiting:
            self._discard(ts)
            return
        if keyframe:
            self._waiting = False
        out.append(DepacketizedFrame(ts, data, keyframe))

    def _update_format(self) -> bool:
        """Refresh the format from the latest SPS/PPS; False if they are missing or bad."""
        if not self._sps or not self._pps:
            return False
        try:
            info = parse_sps(self._sps)
        except BitstreamError:
            return False
        extradata = build_avcc(self._sps, self._pps, info)
        if self._format is None or self._format.extradata != extradata:
            self._format = TrackFormat(
                kind="video", codec="H264", clock_rate=VIDEO_CLOCK_RATE,
                width=info.width, height=info.height, extradata=extradata,
            )
        self._sps_info = info
        return True


def opus_head(channels: int = OPUS_CHANNELS, pre_skip: int = 0) -> bytes:
    """RFC 7845 §5.1 identification header, channel mapping family 0.

    Pre-skip is 0: the recording joins an encoder mid-stream, so there is no encoder delay
    of its own to trim.
    """
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, OPUS_CLOCK_RATE, 0, 0)


class OpusAssembler(FrameAssembler):
    """RFC 7587 §4.2: one RTP payload is one Opus packet; loss needs no keyframe."""

    __slots__ = ()

    kind = "audio"

    def __init__(self, reorder_depth: int = DEFAULT_REORDER_DEPTH) -> None:
        super().__init__(reorder_depth)
        self._format = TrackFormat(
            kind="audio", codec="opus", clock_rate=OPUS_CLOCK_RATE, channels=OPUS_CHANNELS,
            extradata=opus_head(),
        )

    def _packet(
        self, timestamp: int, marker: bool, payload: bytes, out: list[DepacketizedFrame]
    ) -> None:
        if payload:  # empty: padding or a DTX keep-alive with nothing to decode
            out.append(DepacketizedFrame(timestamp, payload, True))


def assembler_for(codec: str, reorder_depth: int = DEFAULT_REORDER_DEPTH) -> FrameAssembler:
    """The assembler for a codec name ("VP8", "H264", "opus") or MIME type ("video/VP8")."""
    name = codec.casefold().rpartition("/")[2]
    if name == "vp8":
        return Vp8Assembler(reorder_depth)
    if name == "h264":
        return H264Assembler(reorder_depth)
    if name == "opus":
        return OpusAssembler(reorder_depth)
    raise ValueError(f"no depacketizer for {codec!r}")
