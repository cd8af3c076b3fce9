"""Keyframe detection on RTP payloads (VP8: RFC 7741, H.264: RFC 6184).

Only the payload descriptor / NAL headers are read; nothing is decoded.
Truncated or malformed payloads are reported as "not a keyframe".
"""

from __future__ import annotations

from collections.abc import Callable

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


def vp8_is_keyframe_start(payload: bytes) -> bool:
    """True if the packet is the first packet of a VP8 key frame."""
    n = len(payload)
    if n == 0:
        return False
    b0 = payload[0]
    # Must start partition 0 of a frame: S=1 and PID=0.
    if b0 & (VP8_S_BIT | VP8_PID_MASK) != VP8_S_BIT:
        return False
    i = 1
    if b0 & VP8_X_BIT:
        if n < 2:
            return False
        ext = payload[1]
        i = 2
        if ext & VP8_I_BIT:
            if i >= n:
                return False
            i += 2 if payload[i] & VP8_M_BIT else 1
        if ext & VP8_L_BIT:
            i += 1
        if ext & (VP8_T_BIT | VP8_K_BIT):  # T and K share one octet
            i += 1
    if i >= n:
        return False
    return not payload[i] & VP8_INVERSE_KEYFRAME_BIT


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
