import struct
from typing import Any

import pytest

from sfu.rtp import (
    AUDIO_LEVEL_SILENCE,
    ONE_BYTE_EXTENSION_PROFILE,
    RTP_HEADER_SIZE,
    TWO_BYTE_EXTENSION_PROFILE,
    RtpHeaderTemplate,
    audio_level,
    extension_value_at,
    one_byte_extensions,
    rtx_payload,
    seq_add,
    seq_diff,
    seq_newer,
    ts_add,
    ts_diff,
    ts_newer,
)


def parse_rtp(data: bytes) -> dict[str, Any]:
    """Independent RFC 3550 §5.1 / RFC 8285 §4.2 parser, written from the RFC layout."""
    b0, b1, seq, ts, ssrc = struct.unpack_from("!BBHII", data, 0)
    out: dict[str, Any] = {
        "version": b0 >> 6,
        "padding": (b0 >> 5) & 1,
        "extension": (b0 >> 4) & 1,
        "cc": b0 & 0x0F,
        "marker": b1 >> 7,
        "pt": b1 & 0x7F,
        "seq": seq,
        "ts": ts,
        "ssrc": ssrc,
        "ext": {},
    }
    pos = 12 + 4 * out["cc"]
    if out["extension"]:
        profile, words = struct.unpack_from("!HH", data, pos)
        assert profile == 0xBEDE
        pos += 4
        end = pos + 4 * words
        while pos < end:
            byte = data[pos]
            if byte == 0:  # padding
                pos += 1
                continue
            ext_id, length = byte >> 4, (byte & 0x0F) + 1
            out["ext"][ext_id] = bytes(data[pos + 1 : pos + 1 + length])
            pos += 1 + length
        pos = end
    out["payload"] = bytes(data[pos:])
    return out


# --- one-byte header extensions (RFC 8285 §4.2) ---


def test_one_byte_extensions_empty() -> None:
    assert one_byte_extensions([]) == b""


def test_one_byte_extensions_exact_word_no_padding() -> None:
    block = one_byte_extensions([(1, b"\x01\x02\x03")])
    assert block == bytes([0xBE, 0xDE, 0x00, 0x01, 0x12, 0x01, 0x02, 0x03])


def test_one_byte_extensions_padded_to_word() -> None:
    block = one_byte_extensions([(3, b"\xaa"), (5, b"\x01\x02")])
    # 0x30 = id 3, len 1; 0x51 = id 5, len 2; 5 bytes of elements + 3 zero bytes of padding.
    assert block == bytes([0xBE, 0xDE, 0x00, 0x02, 0x30, 0xAA, 0x51, 0x01, 0x02, 0, 0, 0])
    assert len(block) % 4 == 0


@pytest.mark.parametrize(
    "ext", [(0, b"x"), (15, b"x"), (1, b""), (1, bytes(17))], ids=["id0", "id15", "len0", "len17"]
)
def test_one_byte_extensions_rejects_invalid(ext: tuple[int, bytes]) -> None:
    with pytest.raises(ValueError):
        one_byte_extensions([ext])


def test_one_byte_extensions_max_length_value() -> None:
    block = one_byte_extensions([(14, bytes(range(16)))])
    assert block[4] == 0xEF
    assert block[5:21] == bytes(range(16))
    assert len(block) == 4 + 20  # 17 bytes of element padded to 20


# --- header template (RFC 3550 §5.1) ---


def test_template_without_extension_byte_by_byte() -> None:
    tpl = RtpHeaderTemplate(payload_type=96, ssrc=0x11223344)
    pkt = tpl.build(True, 0xABCD, 0x01020304, b"xyz")
    assert isinstance(pkt, bytearray)
    assert bytes(pkt) == bytes(
        [0x80, 0xE0, 0xAB, 0xCD, 0x01, 0x02, 0x03, 0x04, 0x11, 0x22, 0x33, 0x44]
    ) + b"xyz"
    assert tpl.header_size == RTP_HEADER_SIZE


def test_template_marker_clear_and_high_payload_type() -> None:
    tpl = RtpHeaderTemplate(payload_type=127, ssrc=1)
    pkt = tpl.build(False, 1, 2, b"")
    assert pkt[0] == 0x80
    assert pkt[1] == 0x7F
    assert len(pkt) == 12


def test_template_with_extension_byte_by_byte() -> None:
    ext = one_byte_extensions([(1, b"0")])
    tpl = RtpHeaderTemplate(payload_type=111, ssrc=0xDEADBEEF, extension_block=ext)
    pkt = tpl.build(False, 7, 0xFFFFFFFF, b"\x01\x02")
    assert pkt[0] == 0x90  # V=2, P=0, X=1, CC=0
    assert pkt[1] == 111
    assert pkt[2:4] == b"\x00\x07"
    assert pkt[4:8] == b"\xff\xff\xff\xff"
    assert pkt[8:12] == b"\xde\xad\xbe\xef"
    assert pkt[12:16] == b"\xbe\xde\x00\x01"
    assert pkt[16:20] == bytes([0x10, ord("0"), 0, 0])
    assert pkt[20:] == b"\x01\x02"
    assert tpl.header_size == 20


def test_template_parsed_by_independent_parser() -> None:
    ext = one_byte_extensions([(2, b"\x12\x34\x56"), (4, b"video")])
    tpl = RtpHeaderTemplate(payload_type=100, ssrc=42, extension_block=ext)
    payload = bytes(range(256)) * 4
    parsed = parse_rtp(bytes(tpl.build(True, 65535, 4_000_000_000, payload)))
    assert parsed == {
        "version": 2,
        "padding": 0,
        "extension": 1,
        "cc": 0,
        "marker": 1,
        "pt": 100,
        "seq": 65535,
        "ts": 4_000_000_000,
        "ssrc": 42,
        "ext": {2: b"\x12\x34\x56", 4: b"video"},
        "payload": payload,
    }


def test_template_builds_are_independent() -> None:
    tpl = RtpHeaderTemplate(payload_type=96, ssrc=5)
    first = tpl.build(True, 1, 100, b"aa")
    second = tpl.build(False, 2, 200, b"bbb")
    assert parse_rtp(bytes(first))["marker"] == 1
    assert parse_rtp(bytes(first))["seq"] == 1
    assert parse_rtp(bytes(first))["payload"] == b"aa"
    assert parse_rtp(bytes(second))["marker"] == 0
    assert parse_rtp(bytes(second))["ts"] == 200
    first[20:] = b""  # mutating one packet must not touch the template
    assert tpl.build(False, 3, 300, b"c")[12:] == b"c"


def test_template_masks_seq_and_ts() -> None:
    tpl = RtpHeaderTemplate(payload_type=96, ssrc=5)
    parsed = parse_rtp(bytes(tpl.build(False, 65536 + 5, (1 << 32) + 9, b"")))
    assert parsed["seq"] == 5
    assert parsed["ts"] == 9


def test_template_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        RtpHeaderTemplate(payload_type=128, ssrc=1)
    with pytest.raises(ValueError):
        RtpHeaderTemplate(payload_type=96, ssrc=1 << 32)
    with pytest.raises(ValueError):
        RtpHeaderTemplate(payload_type=96, ssrc=1, extension_block=b"\xbe\xde\x00")


def test_template_round_trip_through_aiortc() -> None:
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
    from aiortc.rtp import HeaderExtensionsMap, RtpPacket

    ext_map = HeaderExtensionsMap()
    ext_map.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=3, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
                RTCRtpHeaderExtensionParameters(
                    id=9, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
                ),
            ]
        )
    )
    ext = one_byte_extensions([(3, b"1"), (9, b"\x01\x02\x03")])
    tpl = RtpHeaderTemplate(payload_type=96, ssrc=0xCAFEBABE, extension_block=ext)
    payload = b"\x10\x00\x9d\x01\x2a" + bytes(1195)
    packet = RtpPacket.parse(bytes(tpl.build(True, 54321, 0x89ABCDEF, payload)), ext_map)
    assert packet.version == 2
    assert packet.marker == 1
    assert packet.payload_type == 96
    assert packet.sequence_number == 54321
    assert packet.timestamp == 0x89ABCDEF
    assert packet.ssrc == 0xCAFEBABE
    assert packet.csrc == []
    assert packet.padding_size == 0
    assert packet.extensions.mid == "1"
    assert packet.extensions.abs_send_time == 0x010203
    assert packet.payload == payload

    # And the other way: aiortc's serializer, with no extensions, gives the same bytes.
    plain = RtpHeaderTemplate(payload_type=111, ssrc=77)
    ours = bytes(plain.build(False, 9, 960, b"opus"))
    theirs = RtpPacket(
        payload_type=111, marker=0, sequence_number=9, timestamp=960, ssrc=77, payload=b"opus"
    ).serialize()
    assert ours == theirs


# --- reading one element of an extension block (RFC 8285), the audio level (RFC 6464) ---

# What Chromium sends on audio: audio level (id 1), abs-send-time (2), transport-cc (3), mid (4).
CHROMIUM_AUDIO_BLOCK = bytes([0x10, 0x85, 0x22, 0x01, 0x02, 0x03, 0x31, 0x00, 0x10, 0x40,
                              ord("0"), 0x00])


def test_an_element_is_found_among_others_in_the_one_byte_form() -> None:
    block = CHROMIUM_AUDIO_BLOCK
    assert extension_value_at(ONE_BYTE_EXTENSION_PROFILE, block, 1, 1) == 1
    assert extension_value_at(ONE_BYTE_EXTENSION_PROFILE, block, 2, 3) == 3
    assert extension_value_at(ONE_BYTE_EXTENSION_PROFILE, block, 4, 1) == 10
    assert audio_level(ONE_BYTE_EXTENSION_PROFILE, block, 1) == 0x85  # V=1, -5 dBov
    assert audio_level(ONE_BYTE_EXTENSION_PROFILE, bytearray(block), 1) == 0x85


def test_an_absent_element_or_one_of_another_length_is_minus_one() -> None:
    block = CHROMIUM_AUDIO_BLOCK
    assert extension_value_at(ONE_BYTE_EXTENSION_PROFILE, block, 5, 1) == -1  # absent
    assert extension_value_at(ONE_BYTE_EXTENSION_PROFILE, block, 2, 1) == -1  # 3 bytes long
    assert audio_level(ONE_BYTE_EXTENSION_PROFILE, block, 3) == -1  # transport-cc: 2 bytes
    assert audio_level(ONE_BYTE_EXTENSION_PROFILE, b"", 1) == -1
    # A profile that is neither RFC 8285 form (RFC 3550 §5.3.1 leaves it to the profile).
    assert audio_level(0xABCD, block, 1) == -1


def test_padding_bytes_before_between_and_after_elements_are_skipped() -> None:
    # RFC 8285 §4.1: padding (0) may sit before, between and after elements.
    block = bytes([0x00, 0x00, 0x22, 9, 9, 9, 0x00, 0x10, 0x7F, 0x00, 0x00, 0x00])
    assert audio_level(ONE_BYTE_EXTENSION_PROFILE, block, 1) == AUDIO_LEVEL_SILENCE
    assert extension_value_at(ONE_BYTE_EXTENSION_PROFILE, block, 2, 3) == 3
    assert audio_level(ONE_BYTE_EXTENSION_PROFILE, bytes(8), 1) == -1  # all padding


def test_id_15_ends_the_one_byte_block() -> None:
    # RFC 8285 §4.2: at ID 15 processing stops; only elements before it count.
    assert audio_level(ONE_BYTE_EXTENSION_PROFILE, bytes([0xF0, 0x10, 0x30, 0]), 1) == -1
    assert audio_level(ONE_BYTE_EXTENSION_PROFILE, bytes([0x10, 0x30, 0xF0, 0]), 1) == 0x30


@pytest.mark.parametrize("block", [
    bytes([0x22, 1, 2]),  # abs-send-time cut short, the level would follow
    bytes([0x10]),  # the level's header without its byte
    bytes([0x2F, 1, 2, 3]),  # a 16-byte element in a 4-byte block
    bytes([0x1F]),
])
def test_a_truncated_one_byte_block_yields_nothing_and_never_raises(block: bytes) -> None:
    assert audio_level(ONE_BYTE_EXTENSION_PROFILE, block, 1) == -1


def test_an_element_after_a_truncated_one_is_not_invented() -> None:
    # The mid claims 4 bytes where 2 are left: what follows cannot be trusted.
    assert audio_level(ONE_BYTE_EXTENSION_PROFILE, bytes([0x43, 0x61, 0x10, 0x22]), 1) == -1


def test_the_two_byte_form_with_padding_and_an_empty_element() -> None:
    # RFC 8285 §4.3: ID byte, length byte (0 allowed), padding 0 between elements; the low
    # four bits of the profile ("appbits") are the application's.
    block = bytes([0x00, 0x05, 0x00, 0x01, 0x01, 0x83, 0x00, 0x0F, 0x02, 0xAB, 0xCD, 0x00])
    for profile in (TWO_BYTE_EXTENSION_PROFILE, TWO_BYTE_EXTENSION_PROFILE | 0x7):
        assert audio_level(profile, block, 1) == 0x83
        assert extension_value_at(profile, block, 15, 2) == 9  # ids past 14 are fine here
        assert extension_value_at(profile, block, 5, 0) == 3
    # A one-byte block read as two-byte (and back) finds nothing it should not.
    assert audio_level(TWO_BYTE_EXTENSION_PROFILE, bytes([0x10, 0x85, 0, 0]), 0x10) == -1


@pytest.mark.parametrize("block", [
    bytes([0x01]),  # ID without its length byte
    bytes([0x02, 0x05, 1, 2]),  # length past the end, the level would follow
    bytes([0x01, 0x02, 0x83]),  # the level claims two bytes and has one
])
def test_a_truncated_two_byte_block_yields_nothing_and_never_raises(block: bytes) -> None:
    assert audio_level(TWO_BYTE_EXTENSION_PROFILE, block, 1) == -1


def test_an_audio_level_of_another_length_is_no_level() -> None:
    # RFC 6464 §3: the level is one byte; anything else is not read as one.
    assert audio_level(ONE_BYTE_EXTENSION_PROFILE, bytes([0x11, 0x85, 0x00, 0]), 1) == -1
    assert audio_level(TWO_BYTE_EXTENSION_PROFILE, bytes([0x01, 0x00, 0, 0]), 1) == -1


# --- the audio level in outgoing packets ---


def test_a_template_with_an_audio_level_slot_carries_each_packets_level() -> None:
    block = one_byte_extensions([(2, bytes([AUDIO_LEVEL_SILENCE])), (4, b"0")])
    tpl = RtpHeaderTemplate(payload_type=111, ssrc=7, extension_block=block, audio_level_id=2)
    assert tpl.audio_level_at == RTP_HEADER_SIZE + 4 + 1
    loud = parse_rtp(bytes(tpl.build(False, 1, 960, b"opus", 0x85)))
    assert loud["ext"] == {2: b"\x85", 4: b"0"} and loud["payload"] == b"opus"
    quiet = parse_rtp(bytes(tpl.build(False, 2, 1920, b"opus", 0x7F)))
    assert quiet["ext"] == {2: b"\x7f", 4: b"0"}
    # Without a level (the publisher sent none, a retransmission) the element is padding
    # (RFC 8285 §4.1): the packet tells no level rather than a made-up one.
    unknown = tpl.build(False, 3, 2880, b"opus")
    assert parse_rtp(bytes(unknown))["ext"] == {4: b"0"}
    assert unknown[16:18] == b"\x00\x00"
    assert audio_level(ONE_BYTE_EXTENSION_PROFILE, unknown[16:20], 2) == -1


def test_an_audio_level_slot_needs_its_element_in_the_block() -> None:
    with pytest.raises(ValueError):
        RtpHeaderTemplate(111, 7, one_byte_extensions([(4, b"0")]), audio_level_id=2)
    plain = RtpHeaderTemplate(111, 7, one_byte_extensions([(4, b"0")]))
    assert plain.build(False, 1, 1, b"x", 0x85) == plain.build(False, 1, 1, b"x")


def test_aiortc_reads_the_level_we_write() -> None:
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
    from aiortc.rtp import HeaderExtensionsMap, RtpPacket

    ext_map = HeaderExtensionsMap()
    ext_map.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=2, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
        RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
    ]))
    block = one_byte_extensions([(2, bytes([AUDIO_LEVEL_SILENCE])), (1, b"audio")])
    tpl = RtpHeaderTemplate(111, 7, block, audio_level_id=2)
    packet = RtpPacket.parse(bytes(tpl.build(True, 5, 960, b"opus", 0x80 | 30)), ext_map)
    assert packet.extensions.audio_level == (True, 30)
    assert packet.extensions.mid == "audio"


# --- RTX (RFC 4588 §4) ---


def test_rtx_payload_prefixes_osn() -> None:
    assert rtx_payload(0x1234, b"abc") == b"\x12\x34abc"
    assert rtx_payload(65535, b"") == b"\xff\xff"
    assert rtx_payload(0x10001, b"z") == b"\x00\x01z"


# --- serial number arithmetic ---


def test_seq_arithmetic_wraps() -> None:
    assert seq_add(65535, 1) == 0
    assert seq_add(65535, 2) == 1
    assert seq_add(0, -1) == 65535
    assert seq_diff(0, 65535) == 1
    assert seq_diff(65535, 0) == -1
    assert seq_diff(5, 65530) == 11
    assert seq_diff(100, 100) == 0
    assert seq_diff(32767, 0) == 32767
    assert seq_diff(32768, 0) == -32768
    assert seq_newer(0, 65535)
    assert seq_newer(3, 65000)
    assert not seq_newer(65535, 0)
    assert not seq_newer(7, 7)


def test_ts_arithmetic_wraps() -> None:
    top = (1 << 32) - 1
    assert ts_add(top, 1) == 0
    assert ts_add(top, 3000) == 2999
    assert ts_diff(0, top) == 1
    assert ts_diff(top, 0) == -1
    assert ts_diff(1500, top - 1499) == 3000
    assert ts_diff(1 << 31, 0) == -(1 << 31)
    assert ts_newer(10, top - 10)
    assert not ts_newer(top - 10, 10)
    assert not ts_newer(5, 5)
