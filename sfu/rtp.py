"""RTP wire helpers for the forwarding path (RFC 3550, RFC 8285, RFC 4588, RFC 6464).

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
ONE_BYTE_EXTENSION_STOP_ID = 15  # RFC 8285 §4.2: parsing stops at this id
ONE_BYTE_EXTENSION_ID_SHIFT = 4  # RFC 8285 §4.2: ID in the high nibble, length - 1 in the low
ONE_BYTE_EXTENSION_LENGTH_MASK = 0x0F
TWO_BYTE_EXTENSION_PROFILE = 0x1000  # RFC 8285 §4.3: 0x100 and 4 "appbits"
TWO_BYTE_EXTENSION_PROFILE_MASK = 0xFFF0  # RFC 8285 §4.3: the appbits are not the profile
EXTENSION_PADDING_ID = 0  # RFC 8285 §4.1: a padding byte (ID 0) may sit between elements

AUDIO_LEVEL_EXTENSION_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"  # RFC 6464 §4
AUDIO_LEVEL_LENGTH = 1  # RFC 6464 §3: one byte, in both header forms
AUDIO_LEVEL_VOICE_MASK = 0x80  # RFC 6464 §3: V, the sender's voice activity flag
AUDIO_LEVEL_MASK = 0x7F  # RFC 6464 §3: the level in -dBov, 0 (loudest) to 127
AUDIO_LEVEL_SILENCE = 127  # RFC 6464 §3: 127 is digital silence (-127 dBov or quieter)

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


def extension_value_at(profile: int, block: bytes | bytearray, extension_id: int,
                       length: int) -> int:
    """Where the value of element ``extension_id`` starts in ``block``, when it is ``length``
    bytes long; -1 when it is absent, of another length, or past a malformed element.

    ``block`` is the header extension's data (RFC 3550 §5.3.1: after the profile and length
    word) in either RFC 8285 form: one-byte (§4.2) or two-byte (§4.3) elements, padding bytes
    anywhere between them. Nothing is allocated and nothing raises: an element whose length
    runs past the block (truncated) ends the search, as does ID 15 in the one-byte form.
    """
    size = len(block)
    pos = 0
    if profile == ONE_BYTE_EXTENSION_PROFILE:
        while pos < size:
            byte = block[pos]
            element_id = byte >> ONE_BYTE_EXTENSION_ID_SHIFT
            if element_id == EXTENSION_PADDING_ID:
                pos += 1
                continue
            if element_id == ONE_BYTE_EXTENSION_STOP_ID:
                return -1
            value_length = (byte & ONE_BYTE_EXTENSION_LENGTH_MASK) + 1
            pos += 1
            if pos + value_length > size:
                return -1
            if element_id == extension_id:
                return pos if value_length == length else -1
            pos += value_length
        return -1
    if profile & TWO_BYTE_EXTENSION_PROFILE_MASK == TWO_BYTE_EXTENSION_PROFILE:
        while pos < size:
            element_id = block[pos]
            if element_id == EXTENSION_PADDING_ID:
                pos += 1
                continue
            if pos + 2 > size:
                return -1
            value_length = block[pos + 1]
            pos += 2
            if pos + value_length > size:
                return -1
            if element_id == extension_id:
                return pos if value_length == length else -1
            pos += value_length
    return -1


def audio_level(profile: int, block: bytes | bytearray, extension_id: int) -> int:
    """The RFC 6464 byte (V flag and level) of an extension block, or -1 without one."""
    at = extension_value_at(profile, block, extension_id, AUDIO_LEVEL_LENGTH)
    return -1 if at < 0 else block[at]


class RtpHeaderTemplate:
    """Preassembled RTP header for one outgoing stream.

    Built once per stream; `build` copies the prefix and patches only the
    per-packet fields (marker, sequence number, timestamp, and the audio level when the
    extension block has a slot for it).
    """

    __slots__ = (
        "_audio_level_element", "_prefix", "audio_level_at", "extension_block", "header_size",
        "payload_type", "ssrc",
    )

    def __init__(self, payload_type: int, ssrc: int, extension_block: bytes = b"",
                 audio_level_id: int | None = None) -> None:
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
        # The audio level's one-byte element (RFC 6464 §3) is in the block as two padding
        # bytes (RFC 8285 §4.1): a packet without a level tells none; `build` writes the
        # element's header and value over them when there is one.
        self.audio_level_at = 0
        self._audio_level_element = 0
        if audio_level_id is not None and extension_block:
            at = extension_value_at(ONE_BYTE_EXTENSION_PROFILE, self.extension_block[4:],
                                    audio_level_id, AUDIO_LEVEL_LENGTH)
            if at < 0:
                raise ValueError("the extension block has no one-byte audio level element")
            self.audio_level_at = RTP_HEADER_SIZE + 4 + at
            self._audio_level_element = self._prefix[self.audio_level_at - 1]
            self._prefix[self.audio_level_at - 1] = self._prefix[self.audio_level_at] = 0

    def build(
        self, marker: bool, sequence_number: int, timestamp: int, payload: bytes,
        audio_level: int = -1,
    ) -> bytearray:
        """Return a new packet: header (+ extension block) + payload. ``audio_level`` is
        the RFC 6464 byte to carry (-1: none)."""
        # One allocation for the whole packet; the prefix already holds V, X, SSRC, extensions.
        packet = self._prefix + payload
        _SEQ_TS.pack_into(
            packet,
            1,
            (RTP_MARKER_MASK | self.payload_type) if marker else self.payload_type,
            sequence_number & RTP_SEQ_MASK,
            timestamp & RTP_TS_MASK,
        )
        if audio_level >= 0:
            at = self.audio_level_at
            if at:
                packet[at - 1] = self._audio_level_element
                packet[at] = audio_level
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
