"""Codec facts the SFU needs without decoding: keyframes and H.264 profiles.

Keyframe detection (VP8: RFC 7741, H.264: RFC 6184) reads only the payload descriptor / NAL
headers; truncated or malformed payloads are reported as "not a keyframe". H.264 streams are
told apart by profile and packetization mode (RFC 6184 §8.1), which is what decides whether a
receiver can take a stream forwarded untouched; the level only bounds its size and rate.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# RFC 7741 §4.2: VP8 payload descriptor, first octet |X|R|N|S|R| PID |
VP8_X_BIT = 0x80
VP8_S_BIT = 0x10
VP8_PID_MASK = 0x07
# RFC 7741 §4.2: extension octet |I|L|T|K| RSV |
VP8_I_BIT = 0x80
VP8_L_BIT = 0x40
VP8_T_BIT = 0x20
VP8_K_BIT = 0x10
VP8_M_BIT = 0x80  # RFC 7741 §4.2: picture id is 15 bits when set
# RFC 7741 §4.3: payload header, P (inverse key frame flag) is bit 0 of the first octet
VP8_INVERSE_KEYFRAME_BIT = 0x01

H264_NAL_TYPE_MASK = 0x1F  # RFC 6184 §5.3: F|NRI|Type
H264_NAL_IDR = 5  # H.264 Table 7-1: coded slice of an IDR picture
H264_NAL_SPS = 7  # H.264 Table 7-1: sequence parameter set
H264_NAL_STAP_A = 24  # RFC 6184 §5.7.1
H264_NAL_FU_A = 28  # RFC 6184 §5.8
H264_FU_START_BIT = 0x80  # RFC 6184 §5.8: FU header |S|E|R|Type|
H264_STAP_SIZE_LEN = 2  # RFC 6184 §5.7.1: 16-bit NALU size


def vp8_descriptor_size(payload: bytes) -> int:
    """Length of the RFC 7741 §4.2 payload descriptor, or 0 if the packet is malformed (or
    holds nothing after it)."""
    n = len(payload)
    if n == 0:
        return 0
    i = 1
    if payload[0] & VP8_X_BIT:
        if n < 2:
            return 0
        ext = payload[1]
        i = 2
        if ext & VP8_I_BIT:
            if i >= n:
                return 0
            i += 2 if payload[i] & VP8_M_BIT else 1
        if ext & VP8_L_BIT:
            i += 1
        if ext & (VP8_T_BIT | VP8_K_BIT):  # T and K share one octet
            i += 1
    return i if i < n else 0


def vp8_is_keyframe_start(payload: bytes) -> bool:
    """True if the packet is the first packet of a VP8 key frame."""
    # Must start partition 0 of a frame: S=1 and PID=0.
    if not payload or payload[0] & (VP8_S_BIT | VP8_PID_MASK) != VP8_S_BIT:
        return False
    start = vp8_descriptor_size(payload)
    return start > 0 and not payload[start] & VP8_INVERSE_KEYFRAME_BIT


def _h264_is_key_nal(nal_type: int) -> bool:
    # SPS counts: browsers send SPS/PPS right before the IDR, so it marks the keyframe start.
    return nal_type == H264_NAL_IDR or nal_type == H264_NAL_SPS


def h264_is_keyframe(payload: bytes) -> bool:
    """True if the packet carries (the start of) an IDR picture or an SPS."""
    n = len(payload)
    if n == 0:
        return False
    nal_type = payload[0] & H264_NAL_TYPE_MASK
    if nal_type == H264_NAL_STAP_A:
        i = 1
        while i + H264_STAP_SIZE_LEN < n:
            size = (payload[i] << 8) | payload[i + 1]
            if size == 0:
                return False
            if _h264_is_key_nal(payload[i + H264_STAP_SIZE_LEN] & H264_NAL_TYPE_MASK):
                return True
            i += H264_STAP_SIZE_LEN + size
        return False
    if nal_type == H264_NAL_FU_A:
        if n < 2:
            return False
        fu_header = payload[1]
        return bool(fu_header & H264_FU_START_BIT) and _h264_is_key_nal(
            fu_header & H264_NAL_TYPE_MASK
        )
    return _h264_is_key_nal(nal_type)


def _never_keyframe(payload: bytes) -> bool:
    return False


def keyframe_detector(codec_mime: str) -> Callable[[bytes], bool]:
    """Resolve the detector once per track, so the per-packet path skips the string compare."""
    mime = codec_mime.casefold()
    if mime == "video/vp8":
        return vp8_is_keyframe_start
    if mime == "video/h264":
        return h264_is_keyframe
    return _never_keyframe


def is_keyframe(codec_mime: str, payload: bytes) -> bool:
    """Dispatch on the codec MIME type ("video/VP8", "video/H264", case-insensitive)."""
    return keyframe_detector(codec_mime)(payload)


# -- H.264 profiles (RFC 6184 §8.1, H.264 Annex A) ----------------------------------------------

H264_PROFILE_BASELINE_IDC = 0x42  # profile_idc 66
H264_PROFILE_MAIN_IDC = 0x4D  # 77
H264_PROFILE_EXTENDED_IDC = 0x58  # 88
H264_PROFILE_HIGH_IDC = 0x64  # 100
H264_PROFILE_HIGH_444_IDC = 0xF4  # 244: High 4:4:4 Predictive
# profile-iop: constraint_set0_flag .. constraint_set5_flag, then two reserved bits.
H264_CONSTRAINT_SET0 = 0x80  # the stream obeys the Baseline profile's constraints
H264_CONSTRAINT_SET1 = 0x40  # ... the Main profile's
H264_CONSTRAINT_SET4 = 0x08  # with set5 on a High stream: no B slices (Constrained High)
H264_CONSTRAINT_SET5 = 0x04
# RFC 6184 §8.1: without profile-level-id, Baseline level 1.0 is meant ("42000a"); WebRTC
# stacks agree to read it as Constrained Baseline 3.1, as browsers send.
H264_DEFAULT_PROFILE_LEVEL_ID = "42e01f"


class H264Profile(enum.StrEnum):
    """The profiles browsers decode, named as operators read them."""

    CONSTRAINED_BASELINE = "constrained-baseline"
    BASELINE = "baseline"
    MAIN = "main"
    HIGH = "high"
    CONSTRAINED_HIGH = "constrained-high"
    HIGH_444 = "high-444"  # High 4:4:4 Predictive


# H.264 Annex A: which decoders decode a stream of each profile, the profile's own first.
# Browsers list the profiles their decoder takes and refuse an m-section with none of them;
# Chromium without hardware decoding lists Constrained Baseline, Baseline, Main and High 4:4:4
# but not High, though its decoder (FFmpeg's) decodes High: a High 4:4:4 decoder does.
# Baseline streams may use FMO, ASO and redundant slices, which only Baseline decoders take.
H264_DECODED_BY: dict[H264Profile, tuple[H264Profile, ...]] = {
    H264Profile.CONSTRAINED_BASELINE: (
        H264Profile.CONSTRAINED_BASELINE, H264Profile.BASELINE, H264Profile.MAIN,
        H264Profile.CONSTRAINED_HIGH, H264Profile.HIGH, H264Profile.HIGH_444),
    H264Profile.BASELINE: (H264Profile.BASELINE,),
    H264Profile.MAIN: (H264Profile.MAIN, H264Profile.HIGH, H264Profile.HIGH_444),
    H264Profile.CONSTRAINED_HIGH: (
        H264Profile.CONSTRAINED_HIGH, H264Profile.HIGH, H264Profile.HIGH_444),
    H264Profile.HIGH: (H264Profile.HIGH, H264Profile.HIGH_444),
    H264Profile.HIGH_444: (H264Profile.HIGH_444,),
}


def h264_profile(profile_level_id: str) -> H264Profile | None:
    """The profile a ``profile-level-id`` names; None for ones browsers cannot decode
    (Extended, High 10, High 4:2:2) or for a value that is not six hex digits."""
    if len(profile_level_id) != 6:
        return None
    try:
        idc = int(profile_level_id[0:2], 16)
        iop = int(profile_level_id[2:4], 16)
        int(profile_level_id[4:6], 16)
    except ValueError:
        return None
    if idc == H264_PROFILE_BASELINE_IDC:
        # Baseline that also obeys Main's constraints has no FMO/ASO/redundant slices.
        return (H264Profile.CONSTRAINED_BASELINE if iop & H264_CONSTRAINT_SET1
                else H264Profile.BASELINE)
    if idc == H264_PROFILE_MAIN_IDC:
        # Main that also obeys Baseline's constraints is exactly Constrained Baseline.
        return (H264Profile.CONSTRAINED_BASELINE if iop & H264_CONSTRAINT_SET0
                else H264Profile.MAIN)
    if idc == H264_PROFILE_EXTENDED_IDC and iop & H264_CONSTRAINT_SET0:
        return (H264Profile.CONSTRAINED_BASELINE if iop & H264_CONSTRAINT_SET1
                else H264Profile.BASELINE)
    if idc == H264_PROFILE_HIGH_IDC:
        both = H264_CONSTRAINT_SET4 | H264_CONSTRAINT_SET5
        return (H264Profile.CONSTRAINED_HIGH if iop & both == both else H264Profile.HIGH)
    if idc == H264_PROFILE_HIGH_444_IDC:
        return H264Profile.HIGH_444
    return None


@dataclass(frozen=True, slots=True)
class CodecFormat:
    """What a receiver must support to take a stream untouched: codec and, for H.264, the
    profile and packetization mode. Streams of one format are interchangeable to a decoder."""

    mime_type: str  # as negotiated, e.g. "video/H264"
    profile: H264Profile | None = None
    packetization_mode: int = 0

    @classmethod
    def of(cls, mime_type: str, parameters: Mapping[str, Any]) -> CodecFormat | None:
        """The format of an SDP codec (rtpmap + fmtp); None for an H.264 profile we refuse."""
        if mime_type.casefold() != "video/h264":
            return cls(mime_type)
        profile = h264_profile(str(parameters.get("profile-level-id",
                                                   H264_DEFAULT_PROFILE_LEVEL_ID)))
        if profile is None:
            return None
        # RFC 6184 §8.1: packetization-mode absent means 0 (single NAL unit mode).
        mode = str(parameters.get("packetization-mode", "0"))
        if mode not in ("0", "1"):
            return None  # interleaved mode (2) is for non-real-time streaming, not WebRTC
        return cls(mime_type, profile, int(mode))

    def matches(self, mime_type: str, parameters: Mapping[str, Any]) -> bool:
        other = CodecFormat.of(mime_type, parameters)
        return other is not None and (
            other.mime_type.casefold() == self.mime_type.casefold()
            and other.profile == self.profile
            and other.packetization_mode == self.packetization_mode
        )

    def receivable_as(self) -> tuple[CodecFormat, ...]:
        """The formats whose receivers take this stream untouched, this one first.

        A receiver of packetization mode 1 also takes mode 0's single NAL unit packets
        (RFC 6184 §6.3), not the other way round; profiles follow :data:`H264_DECODED_BY`.
        """
        if self.profile is None:
            return (self,)
        modes = (0, 1) if self.packetization_mode == 0 else (1,)
        return tuple(CodecFormat(self.mime_type, profile, mode)
                     for mode in modes for profile in H264_DECODED_BY[self.profile])

    def __str__(self) -> str:
        if self.profile is None:
            return self.mime_type
        return f"{self.mime_type} {self.profile.value} packetization-mode={self.packetization_mode}"

    @property
    def codec(self) -> str:
        """The codec's name as a participant's track shows it: "VP8", "H264", "opus"."""
        return self.mime_type.split("/", 1)[-1]

    @property
    def profile_name(self) -> str:
        """"high", "constrained-baseline" ... for H.264; "" for codecs without profiles."""
        return "" if self.profile is None else self.profile.value
