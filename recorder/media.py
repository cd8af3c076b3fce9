"""The values the recorder passes between its stages: a track's format and one encoded frame.

Depacketizers and the timeline produce them; segment writers consume them. They carry no
aiortc or PyAV objects so that each stage is tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TrackFormat:
    """What a muxer needs to declare one stream."""

    kind: str  # "video" | "audio"
    codec: str  # "VP8" | "H264" | "opus"
    clock_rate: int  # 90000 video, 48000 opus
    channels: int = 0  # opus: 2 (RFC 7587 §7 always signals 2)
    width: int = 0  # video, from the first keyframe (VP8 frame header / H.264 SPS)
    height: int = 0
    # H.264: avcC (ISO 14496-15 AVCDecoderConfigurationRecord); opus: OpusHead
    # (RFC 7845 §5.1); VP8: b"".
    extradata: bytes = b""


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One complete frame, as a muxer writes it."""

    kind: str  # "video" | "audio"
    # VP8: the frame; H.264: 4-byte length-prefixed NAL units (AVCC, what MP4 wants);
    # opus: one Opus packet.
    data: bytes
    pts_ms: float  # presentation time in ms on the recording's clock (0 = start)
    keyframe: bool  # always True for audio
