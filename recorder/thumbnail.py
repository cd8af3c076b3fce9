"""A replay's thumbnail: its first video keyframe decoded (the recorder's only decode) as JPEG."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
import av.error

from recorder.storage import Storage

MAX_WIDTH = 640
THUMBNAIL = "thumbnail.jpg"
# Frames decoded at most while looking for a picture after the first keyframe packet.
_MAX_PACKETS = 8


def _even(value: float) -> int:
    # 4:2:0 chroma needs even dimensions.
    return max(2, int(value) // 2 * 2)


def jpeg_from_first_keyframe(source: Any, max_width: int = MAX_WIDTH) -> bytes | None:
    """JPEG of the first keyframe of ``source`` (a path or binary file), or None if no video."""
    with av.open(source, "r") as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        started = False
        fed = 0
        for packet in container.demux(stream):
            if packet.dts is None:
                continue
            if not started:
                if not packet.is_keyframe:
                    continue
                started = True
            frames = packet.decode()
            fed += 1
            if frames:
                return _encode_jpeg(frames[0], max_width)
            if fed >= _MAX_PACKETS:
                break
        if started:
            # A decoder with delay returns the keyframe only when flushed.
            for frame in stream.codec_context.decode(None):
                return _encode_jpeg(frame, max_width)
    return None


def _encode_jpeg(frame: av.VideoFrame, max_width: int) -> bytes:
    width = _even(min(frame.width, max_width))
    height = _even(frame.height * width / frame.width)
    # mjpeg wants full-range 4:2:0 (Pillow is not installed; PyAV's own encoder suffices).
    picture = frame.reformat(width=width, height=height, format="yuvj420p")
    encoder: Any = av.CodecContext.create("mjpeg", "w")
    encoder.width = width
    encoder.height = height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = {"qmin": "2", "qmax": "6"}
    packets = list(encoder.encode(picture)) + list(encoder.encode(None))
    return b"".join(bytes(p) for p in packets)


def write_thumbnail(
    storage: Storage, recording_id: str, source_name: str, max_width: int = MAX_WIDTH
) -> str | None:
    """Store ``thumbnail.jpg`` from ``source_name``'s first keyframe; return its name or None."""
    try:
        with storage.open_read(recording_id, source_name) as f:
            jpeg = jpeg_from_first_keyframe(f, max_width)
    except (av.error.FFmpegError, ValueError):
        return None
    if not jpeg:
        return None
    storage.write_bytes(recording_id, THUMBNAIL, jpeg)
    return THUMBNAIL
