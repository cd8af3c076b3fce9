import pytest

from sfu.codecs import (
    CodecFormat,
    H264Profile,
    h264_is_keyframe,
    h264_profile,
    is_keyframe,
    keyframe_detector,
    vp8_is_keyframe_start,
)


def vp8_frame_header(keyframe: bool, first_partition_size: int = 0x1234) -> bytes:
    """RFC 7741 §4.3 / RFC 6386 §9.1: 3-byte little-endian frame tag (+ start code if key)."""
    tag = (first_partition_size << 5) | (1 << 4) | (0 << 1) | (0 if keyframe else 1)
    header = tag.to_bytes(3, "little")
    if keyframe:
        header += b"\x9d\x01\x2a" + (640).to_bytes(2, "little") + (480).to_bytes(2, "little")
    return header


KEY = vp8_frame_header(True)
DELTA = vp8_frame_header(False)


def test_vp8_frame_header_helper_sets_inverse_key_bit() -> None:
    assert KEY[0] & 1 == 0
    assert DELTA[0] & 1 == 1


@pytest.mark.parametrize(
    ("descriptor", "expected_key"),
    [
        pytest.param(b"\x10", True, id="minimal S=1 PID=0"),
        pytest.param(b"\x30", True, id="N bit set is irrelevant"),
        pytest.param(b"\x90\x80\x2a", True, id="X, I, 7-bit picture id"),
        # Odd 7-bit picture id: read as the payload header it would look like a delta frame.
        pytest.param(b"\x90\x80\x01", True, id="X, I, 7-bit odd picture id"),
        # M=1: the second picture-id byte is odd; a parser ignoring M would read it as P=1.
        pytest.param(b"\x90\x80\x80\x01", True, id="X, I, M 15-bit picture id"),
        pytest.param(b"\x90\x80\xff\xff", True, id="X, I, M max picture id"),
        pytest.param(b"\x90\x40\x05", True, id="X, L"),
        pytest.param(b"\x90\x20\x41", True, id="X, T"),
        pytest.param(b"\x90\x10\x01", True, id="X, K"),
        pytest.param(b"\x90\x30\x41", True, id="X, T and K share one octet"),
        pytest.param(b"\x90\xf0\x81\x23\x05\x41", True, id="X, I M L T K"),
        pytest.param(b"\x90\xe0\x11\x03\x41", True, id="X, I L T"),
        pytest.param(b"\x90\x00", True, id="X with no extensions"),
    ],
)
def test_vp8_keyframe_start_descriptor_variants(descriptor: bytes, expected_key: bool) -> None:
    assert vp8_is_keyframe_start(descriptor + KEY) is expected_key
    assert vp8_is_keyframe_start(descriptor + DELTA) is False


def test_vp8_even_picture_id_before_delta_frame_is_not_key() -> None:
    # Picture id bytes are even (look like P=0); the real payload header says delta.
    assert not vp8_is_keyframe_start(b"\x90\x80\x02" + DELTA)
    assert not vp8_is_keyframe_start(b"\x90\x80\x80\x00" + DELTA)
    assert not vp8_is_keyframe_start(b"\x90\xf0\x80\x00\x00\x00" + DELTA)


@pytest.mark.parametrize(
    "descriptor",
    [
        pytest.param(b"\x00", id="S=0 continuation"),
        pytest.param(b"\x11", id="S=1 PID=1"),
        pytest.param(b"\x17", id="S=1 PID=7"),
        pytest.param(b"\x80\x80\x2a", id="X, S=0"),
        pytest.param(b"\x91\x80\x2a", id="X, PID=1"),
    ],
)
def test_vp8_not_a_frame_start(descriptor: bytes) -> None:
    assert not vp8_is_keyframe_start(descriptor + KEY)


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x10", b"\x90", b"\x90\x80", b"\x90\x80\x80\x00", b"\x90\xf0\x81\x23\x05\x41"],
)
def test_vp8_truncated_is_not_key(payload: bytes) -> None:
    assert not vp8_is_keyframe_start(payload)


# --- H.264 (RFC 6184) ---

SPS = bytes([0x67, 0x42, 0xC0, 0x1F, 0xDA, 0x01, 0x40, 0x16])
PPS = bytes([0x68, 0xCE, 0x3C, 0x80])
IDR = bytes([0x65, 0x88, 0x84, 0x00, 0x33])
NON_IDR = bytes([0x41, 0x9A, 0x02, 0x04])
SEI = bytes([0x06, 0x05, 0x65, 0x67])  # payload bytes that look like IDR/SPS headers


def stap_a(*nals: bytes) -> bytes:
    out = bytearray([0x78])  # F=0, NRI=3, type 24
    for nal in nals:
        out += len(nal).to_bytes(2, "big") + nal
    return bytes(out)


def fu_a(nal_header: int, start: bool, end: bool, data: bytes = b"\x88\x84") -> bytes:
    indicator = (nal_header & 0xE0) | 28
    header = (0x80 if start else 0) | (0x40 if end else 0) | (nal_header & 0x1F)
    return bytes([indicator, header]) + data


def test_h264_single_nal_units() -> None:
    assert h264_is_keyframe(IDR)
    assert h264_is_keyframe(SPS)
    assert not h264_is_keyframe(PPS)
    assert not h264_is_keyframe(NON_IDR)
    assert not h264_is_keyframe(SEI)
    assert not h264_is_keyframe(b"")


def test_h264_stap_a() -> None:
    assert h264_is_keyframe(stap_a(SPS, PPS))
    assert h264_is_keyframe(stap_a(PPS, IDR))
    assert h264_is_keyframe(stap_a(SEI, SPS, PPS))
    # SEI's payload contains 0x65/0x67 bytes: only NAL headers at size boundaries count.
    assert not h264_is_keyframe(stap_a(SEI, NON_IDR))
    assert not h264_is_keyframe(stap_a(PPS))


def test_h264_stap_a_truncated_or_malformed() -> None:
    assert not h264_is_keyframe(b"\x78")
    assert not h264_is_keyframe(b"\x78\x00")
    assert not h264_is_keyframe(b"\x78\x00\x04")
    assert not h264_is_keyframe(b"\x78\x00\x00\x65")  # zero-size unit


def test_h264_fu_a() -> None:
    assert h264_is_keyframe(fu_a(0x65, start=True, end=False))
    assert not h264_is_keyframe(fu_a(0x65, start=False, end=False))
    assert not h264_is_keyframe(fu_a(0x65, start=False, end=True))
    assert not h264_is_keyframe(fu_a(0x41, start=True, end=False))
    assert h264_is_keyframe(fu_a(0x67, start=True, end=True))
    assert not h264_is_keyframe(b"\x7c")
    assert fu_a(0x65, True, False)[:2] == b"\x7c\x85"


def test_is_keyframe_dispatch() -> None:
    vp8_key = b"\x10" + KEY
    assert is_keyframe("video/VP8", vp8_key)
    assert is_keyframe("VIDEO/vp8", vp8_key)
    assert not is_keyframe("video/VP8", b"\x10" + DELTA)
    assert is_keyframe("video/H264", IDR)
    assert is_keyframe("video/h264", stap_a(SPS, PPS))
    assert not is_keyframe("video/H264", vp8_key)  # 0x10 is NAL type 16
    assert not is_keyframe("audio/opus", IDR)
    assert not is_keyframe("video/VP9", vp8_key)
    assert keyframe_detector("Video/Vp8") is vp8_is_keyframe_start
    assert keyframe_detector("video/H264") is h264_is_keyframe


@pytest.mark.parametrize(("profile_level_id", "profile"), [
    ("42e01f", H264Profile.CONSTRAINED_BASELINE),  # browsers' default
    ("42c01e", H264Profile.CONSTRAINED_BASELINE),  # set0 and set1
    ("4d401f", H264Profile.MAIN),  # set1 on Main says nothing new
    ("4d801f", H264Profile.CONSTRAINED_BASELINE),  # Main that obeys Baseline
    ("42001f", H264Profile.BASELINE),
    ("58801f", H264Profile.BASELINE),  # Extended that obeys Baseline
    ("58c01f", H264Profile.CONSTRAINED_BASELINE),
    ("64001e", H264Profile.HIGH),  # x264 High 3.0
    ("640032", H264Profile.HIGH),
    ("640c1f", H264Profile.CONSTRAINED_HIGH),
    ("6E001f", None),  # High 10: browsers do not decode it
    ("f4001f", H264Profile.HIGH_444),  # High 4:4:4 Predictive
    ("7a001f", None),  # High 4:2:2
    ("58001f", None),  # Extended
    ("42e0", None),
    ("zzzzzz", None),
])
def test_h264_profile_from_profile_level_id(profile_level_id: str,
                                            profile: H264Profile | None) -> None:
    assert h264_profile(profile_level_id) is profile


def test_codec_format_tells_h264_streams_apart_by_profile_and_packetization_mode() -> None:
    high = CodecFormat.of("video/H264", {"profile-level-id": "640028",
                                         "packetization-mode": "1"})
    assert high == CodecFormat("video/H264", H264Profile.HIGH, 1)
    assert high is not None and high.profile_name == "high" and high.codec == "H264"
    # The level does not matter, nor do other parameters.
    assert high.matches("video/h264", {"profile-level-id": "64001f", "packetization-mode": 1,
                                       "level-asymmetry-allowed": "1"})
    assert not high.matches("video/H264", {"profile-level-id": "64001f"})  # mode 0
    assert not high.matches("video/H264", {"profile-level-id": "4d001f",
                                           "packetization-mode": "1"})
    # RFC 6184 §8.1: no packetization-mode means 0; no profile-level-id means 42e01f here.
    assert CodecFormat.of("video/H264", {}) == CodecFormat(
        "video/H264", H264Profile.CONSTRAINED_BASELINE, 0)
    assert CodecFormat.of("video/H264", {"packetization-mode": "2"}) is None
    assert CodecFormat.of("video/H264", {"profile-level-id": "6e001f"}) is None
    assert CodecFormat.of("video/VP8", {}) == CodecFormat("video/VP8")
    assert CodecFormat("video/VP8").profile_name == ""
    assert str(high) == "video/H264 high packetization-mode=1"


def test_a_stream_is_receivable_by_decoders_of_its_profile_and_wider_ones() -> None:
    high = CodecFormat("video/H264", H264Profile.HIGH, 1)
    # Chromium without hardware decoding lists High 4:4:4 but not High.
    assert high.receivable_as() == (high, CodecFormat("video/H264", H264Profile.HIGH_444, 1))
    single_nal = CodecFormat("video/H264", H264Profile.MAIN, 0)
    received = single_nal.receivable_as()
    assert received[0] == single_nal
    assert CodecFormat("video/H264", H264Profile.MAIN, 1) in received  # mode 1 takes mode 0
    assert CodecFormat("video/H264", H264Profile.HIGH, 0) in received
    assert CodecFormat("video/H264", H264Profile.HIGH, 1).receivable_as()[0].packetization_mode == 1
    assert all(f.packetization_mode == 1 for f in high.receivable_as())  # never 0 for mode 1
    assert CodecFormat("video/H264", H264Profile.BASELINE, 1).receivable_as() == (
        CodecFormat("video/H264", H264Profile.BASELINE, 1),)
    assert CodecFormat("video/VP8").receivable_as() == (CodecFormat("video/VP8"),)
