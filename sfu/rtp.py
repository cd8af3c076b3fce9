"""RTP wire helpers for the forwarding path (RFC 3550, RFC 8285, RFC 4588).

Pure functions and a per-stream header template; no I/O, no aiortc.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

RTP_VERSION = 2  # RFC 3550 §5.1
RTP_HEADER_SIZE = 12  # RFC 3550 §5.1: fixed header without CSRCs
RTP_VERSION_SHIFT = 6  # RFC 3550 §5.1: V occupies the top two bits of byte 0
RTP_PADDING_MASK = 0x20  # RFC 3550 §5.1: P bit, byte 0
RTP_EXTENSION_MASK = 0x10  # RFC 3550 §5.1: X bit, byte 0
RTP_CSRC_COUNT_MASK = 0x0F  # RFC 3550 §5.1: CC, byte 0
RTP_MARKER_MASK = 0x80  # RFC 3550 §5.1: M bit, byte 1
RTP_PAYLOAD_TYPE_MASK = 0x7F  # RFC 3550 §5.1: PT, byte 1

RTP_SEQ_MASK = 0xFFFF  # RFC 3550 §5.1: 16-bit sequence number
RTP_SEQ_HALF = 0x8000
RTP_TS_MASK = 0xFFFFFFFF  # RFC 3550 §5.1: 32-bit timestamp
RTP_TS_HALF = 0x80000000

ONE_BYTE_EXTENSION_PROFILE = 0xBEDE  # RFC 8285 §4.2
ONE_BYTE_EXTENSION_MAX_ID = 14  # RFC 8285 §4.2: 15 is reserved, 0 is padding
ONE_BYTE_EXTENSION_MAX_LENGTH = 16  # RFC 8285 §4.2: 4-bit field holds length - 1

RTX_OSN_SIZE = 2  # RFC 4588 §4: original sequence number prefix

_EXTENSION_HEADER = struct.Struct("!HH")  # RFC 3550 §5.3.1: profile, length in words
_SEQ_TS = struct.Struct("!BHI")  # byte 1 (M|PT), sequence number, timestamp
_FIXED_HEADER = struct.Struct("!BBHII")
_OSN = struct.Struct("!H")


def one_byte_extensions(extensions: Sequence[tuple[int, bytes]]) -> bytes:
    """Build an RFC 8285 one-byte header-extension block, zero-padded to 32 bits."""
    if not extensions:
        return b""
    body = bytearray()
    for ext_id, value in extensions:
        if not 1 <= ext_id <= ONE_BYTE_EXTENSION_MAX_ID:
            raise ValueError(f"one-byte extension id out of range: {ext_id}")
        if not 1 <= len(value) <= ONE_BYTE_EXTENSION_MAX_LENGTH:
            raise ValueError(f"one-byte extension value length out of range: {len(value)}")
        body.append((ext_id << 4) | (len(value) - 1))
        body += value
    body += bytes(-len(body) % 4)
    return _EXTENSION_HEADER.pack(ONE_BYTE_EXTENSION_PROFILE, len(body) // 4) + bytes(body)


class RtpHeaderTemplate:
    """Preassembled RTP header for one outgoing stream.

    Built once per stream; `build` copies the prefix and patches only the
    per-packet fields (marker, sequence number, timestamp).
    """

    __slots__ = ("_prefix", "extension_block", "header_size", "payload_type", "ssrc")

    def __init__(self, payload_type: int, ssrc: int, extension_block: bytes = b"") -> None:
        if not 0 <= payload_type <= RTP_PAYLOAD_TYPE_MASK:
            raise ValueError(f"payload type out of range: {payload_type}")
        if not 0 <= ssrc <= RTP_TS_MASK:
            raise ValueError(f"ssrc out of range: {ssrc}")
        if len(extension_block) % 4:
            raise ValueError("extension block must be a multiple of 32 bits")  # RFC 3550 §5.3.1
        self.payload_type = payload_type
        self.ssrc = ssrc
        self.extension_block = bytes(extension_block)
        byte0 = RTP_VERSION << RTP_VERSION_SHIFT
        if extension_block:
            byte0 |= RTP_EXTENSION_MASK
        self._prefix = bytearray(_FIXED_HEADER.pack(byte0, payload_type, 0, 0, ssrc))
        self._prefix += self.extension_block
        self.header_size = len(self._prefix)

    def build(
        self, marker: bool, sequence_number: int, timestamp: int, payload: bytes
    ) -> bytearray:
        """Return a new packet: header (+ extension block) + payload."""
        # One allocation for the whole packet; the prefix already holds V, X, SSRC, extensions.
        packet = self._prefix + payload
        _SEQ_TS.pack_into(
            packet,
            1,
            (RTP_MARKER_MASK | self.payload_type) if marker else self.payload_type,
            sequence_number & RTP_SEQ_MASK,
            timestamp & RTP_TS_MASK,
        )
        return packet


def rtx_payload(original_sequence_number: int, payload: bytes) -> bytes:
    """RFC 4588 §4: the RTX payload is the OSN followed by the original payload.

    The OSN is the sequence number the receiver knows, i.e. the *outgoing* one.
    """
    return _OSN.pack(original_sequence_number & RTP_SEQ_MASK) + payload


def seq_add(a: int, b: int) -> int:
    """a + b modulo 2^16."""
    return (a + b) & RTP_SEQ_MASK


def seq_diff(a: int, b: int) -> int:
    """Signed shortest distance a - b modulo 2^16, in [-32768, 32767]."""
    return ((a - b + RTP_SEQ_HALF) & RTP_SEQ_MASK) - RTP_SEQ_HALF


def seq_newer(a: int, b: int) -> bool:
    """True if a comes after b (RFC 3550 appendix A.1 style serial comparison)."""
    return seq_diff(a, b) > 0


def ts_add(a: int, b: int) -> int:
    """a + b modulo 2^32."""
    return (a + b) & RTP_TS_MASK


def ts_diff(a: int, b: int) -> int:
    """Signed shortest distance a - b modulo 2^32."""
    return ((a - b + RTP_TS_HALF) & RTP_TS_MASK) - RTP_TS_HALF


def ts_newer(a: int, b: int) -> bool:
    """True if timestamp a comes after b."""
    return ts_diff(a, b) > 0
