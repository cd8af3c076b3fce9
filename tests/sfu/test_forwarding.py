"""The forwarding path without a network: packets in, rewritten packets out, time passed in."""

import struct
from collections.abc import Callable

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from sfu.forwarding import FANOUT_SENDS_PER_TURN, MID_EXTENSION_URI, DownTrack, SourceStream

VP8_KEY = bytes([0x10, 0x00]) + b"key-frame-data"  # S=1, PID=0; P=0: keyframe start
VP8_DELTA = bytes([0x10, 0x01]) + b"delta"  # P=1: interframe
VP8_MIDDLE = bytes([0x00, 0x00]) + b"continuation"  # S=0


def extension_map() -> HeaderExtensionsMap:
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=4, uri=MID_EXTENSION_URI)]))
    return extensions


class Wire:
    def __init__(self) -> None:
        self.packets: list[RtpPacket] = []
        self.map = extension_map()

    def send(self, data: bytearray) -> bool:
        self.packets.append(RtpPacket.parse(bytes(data), self.map))
        return True


def video_downtrack(wire: Wire, **options: object) -> DownTrack:
    defaults: dict[str, object] = dict(
        kind="video", clock_rate=90000, payload_type=97, ssrc=0x11223344, send=wire.send,
        mid="1", mid_extension_id=4, initial_sequence_number=65534,
        initial_timestamp=0xFFFFFF00,
    )
    defaults.update(options)
    return DownTrack(**defaults)  # type: ignore[arg-type]


def video_stream() -> SourceStream:
    return SourceStream(kind="video", mime_type="video/VP8", clock_rate=90000)


def test_video_starts_on_a_keyframe_with_rewritten_header() -> None:
    wire, stream = Wire(), video_stream()
    downtrack = video_downtrack(wire)
    stream.add(downtrack)
    assert stream.needs_keyframe()
    stream.on_packet(0xAAAA, 100, 5000, True, VP8_DELTA, now_ms=0)
    stream.on_packet(0xAAAA, 101, 8000, False, VP8_KEY, now_ms=33)
    stream.on_packet(0xAAAA, 102, 8000, False, VP8_MIDDLE, now_ms=33)
    stream.on_packet(0xAAAA, 103, 8000, True, VP8_MIDDLE, now_ms=34)
    stream.on_packet(0xAAAA, 104, 11000, True, VP8_DELTA, now_ms=66)
    assert not stream.needs_keyframe()
    sent = wire.packets
    assert [p.sequence_number for p in sent] == [65534, 65535, 0, 1]  # wraps at 2^16
    assert [p.timestamp for p in sent] == [0xFFFFFF00, 0xFFFFFF00, 0xFFFFFF00,
                                           (0xFFFFFF00 + 3000) & 0xFFFFFFFF]  # wraps at 2^32
    assert {p.ssrc for p in sent} == {0x11223344}
    assert {p.payload_type for p in sent} == {97}
    assert [p.marker for p in sent] == [0, 0, 1, 1]
    assert all(p.extensions.mid == "1" for p in sent)
    assert sent[0].payload == VP8_KEY
    assert downtrack.outbound is not None and downtrack.outbound.packets == 4


def test_audio_is_never_gated() -> None:
    wire = Wire()
    stream = SourceStream(kind="audio", mime_type="audio/opus", clock_rate=48000)
    stream.add(DownTrack(kind="audio", clock_rate=48000, payload_type=111, ssrc=7,
                         send=wire.send))
    stream.on_packet(1, 10, 960, True, b"opus", now_ms=0)
    assert [p.payload for p in wire.packets] == [b"opus"]


def test_a_new_source_continues_the_subscribers_numbering() -> None:
    wire, stream = Wire(), video_stream()
    stream.add(video_downtrack(wire, initial_sequence_number=1000, initial_timestamp=50_000))
    stream.on_packet(0xAAAA, 7000, 900_000, True, VP8_KEY, now_ms=1000)
    stream.on_packet(0xAAAA, 7001, 903_000, True, VP8_DELTA, now_ms=1033)
    # The publisher restarts (new SSRC, new random seq/ts); its first packet is a delta
    # frame, which must be held back until a keyframe.
    stream.on_packet(0xBBBB, 30, 12, True, VP8_DELTA, now_ms=1500)
    stream.on_packet(0xBBBB, 31, 3012, True, VP8_KEY, now_ms=2033)
    stream.on_packet(0xBBBB, 32, 6012, True, VP8_DELTA, now_ms=2066)
    seqs = [p.sequence_number for p in wire.packets]
    stamps = [p.timestamp for p in wire.packets]
    assert seqs == [1000, 1001, 1002, 1003]
    assert stamps[1] == 53_000
    # One second of wall time passed between the last old and first new packet: 90000 ticks.
    assert stamps[2] == 53_000 + 90_000
    assert stamps[3] == stamps[2] + 3000
    assert stream.history.get(7000) is None  # history starts over with the new source


def test_nack_is_answered_from_history_as_rtx() -> None:
    wire, stream = Wire(), video_stream()
    downtrack = video_downtrack(wire, initial_sequence_number=500, rtx_payload_type=98,
                                rtx_ssrc=0x55, initial_rtx_sequence_number=9)
    stream.add(downtrack)
    for i in range(5):
        stream.on_packet(1, 100 + i, 3000 * i, True, VP8_KEY if i == 0 else VP8_DELTA,
                         now_ms=i * 33)
    wire.packets.clear()
    assert downtrack.resend([502, 503, 900], stream.history, now_ms=200) == 2
    rtx = wire.packets
    assert [p.ssrc for p in rtx] == [0x55, 0x55]
    assert [p.payload_type for p in rtx] == [98, 98]
    assert [p.sequence_number for p in rtx] == [9, 10]
    # RFC 4588 §4: the original (outgoing) sequence number, then the original payload.
    assert [struct.unpack("!H", p.payload[:2])[0] for p in rtx] == [502, 503]
    assert rtx[0].payload[2:] == VP8_DELTA
    assert rtx[0].timestamp == downtrack.rewriter.translate_timestamp(6000)
    # The same loss reported again within the throttle window is not resent twice.
    assert downtrack.resend([502], stream.history, now_ms=210) == 0
    assert downtrack.resend([502], stream.history, now_ms=400) == 1


def test_nack_without_rtx_resends_the_packet_itself() -> None:
    wire, stream = Wire(), video_stream()
    downtrack = video_downtrack(wire, initial_sequence_number=10)
    stream.add(downtrack)
    stream.on_packet(1, 40, 0, True, VP8_KEY, now_ms=0)
    stream.on_packet(1, 41, 3000, True, VP8_DELTA, now_ms=33)
    wire.packets.clear()
    assert downtrack.resend([11], stream.history, now_ms=50) == 1
    assert wire.packets[0].sequence_number == 11
    assert wire.packets[0].payload == VP8_DELTA
    # Stale history is useless to the receiver: refuse it.
    assert downtrack.resend([10], stream.history, now_ms=10_000) == 0


def test_keyframe_requests_are_throttled_per_publisher() -> None:
    stream = video_stream()
    assert stream.request_keyframe(now_ms=0) is True
    assert [stream.request_keyframe(now_ms=t) for t in range(10, 400, 10)] == [False] * 39
    assert stream.pli.next_due_ms() == 500
    assert stream.pli.due(500) is True
    stream.on_packet(1, 1, 0, True, VP8_KEY, now_ms=600)
    assert stream.request_keyframe(now_ms=1000) is True
    audio = SourceStream(kind="audio", mime_type="audio/opus", clock_rate=48000)
    assert audio.request_keyframe(now_ms=0) is False


def test_removed_downtrack_gets_nothing_and_observers_see_every_packet() -> None:
    wire, stream = Wire(), video_stream()
    downtrack = video_downtrack(wire)
    seen: list[tuple[int, bool]] = []
    reports: list[tuple[int, int]] = []

    class Recorder:
        def on_packet(self, sequence_number: int, timestamp: int, marker: bool,
                      payload: bytes, keyframe: bool, now_ms: int) -> None:
            seen.append((sequence_number, keyframe))

        def on_sender_report(self, ntp: int, rtp_ts: int, now_ms: int) -> None:
            reports.append((ntp, rtp_ts))

    stream.add(downtrack)
    stream.add_observer(Recorder())
    stream.on_packet(1, 1, 0, True, VP8_KEY, now_ms=0)
    stream.on_sender_report(5 << 32, 1500, now_ms=10)
    stream.remove(downtrack)
    stream.on_packet(1, 2, 3000, True, VP8_DELTA, now_ms=33)
    assert len(wire.packets) == 1
    assert seen == [(1, True), (2, False)]
    assert reports == [(5 << 32, 1500)] and stream.sender_reports.has_report


def test_fanout_asks_for_an_event_loop_turn_after_enough_work() -> None:
    stream = video_stream()
    for i in range(100):
        stream.add(video_downtrack(Wire(), ssrc=i + 1))
    turns = 0
    for seq in range(100):
        stream.on_packet(1, seq, 0, seq == 99, VP8_KEY if seq == 0 else VP8_MIDDLE, now_ms=0)
        turns += stream.take_yield_turn()
    assert turns == 100 * 100 // FANOUT_SENDS_PER_TURN


def test_subscribers_of_one_stream_share_one_packet_and_join_on_keyframes() -> None:
    stream = video_stream()
    sent: dict[str, list[bytearray]] = {"a": [], "b": [], "c": []}

    def sender(name: str) -> Callable[[bytearray], bool]:
        def send(packet: bytearray) -> bool:
            sent[name].append(packet)
            return True
        return send

    first = video_downtrack(Wire(), send=sender("a"))
    stream.add(first)
    stream.on_packet(1, 10, 0, True, VP8_KEY, now_ms=0)
    stream.on_packet(1, 11, 3000, True, VP8_DELTA, now_ms=33)
    late = video_downtrack(Wire(), send=sender("b"))  # same SSRC, payload type, mid
    stream.add(late)
    other = video_downtrack(Wire(), send=sender("c"), mid="7")  # another m-line: own stream
    stream.add(other)
    assert len(stream.outbound_streams) == 2
    stream.on_packet(1, 12, 6000, True, VP8_DELTA, now_ms=66)
    assert (len(sent["a"]), len(sent["b"]), len(sent["c"])) == (3, 0, 0)  # b, c wait
    stream.on_packet(1, 13, 9000, True, VP8_KEY, now_ms=99)
    assert sent["a"][-1] is sent["b"][-1]  # built once, sent to both
    assert sent["c"][-1] is not sent["a"][-1]
    assert late.rewriter is first.rewriter
    stream.remove(first)
    stream.remove(late)
    assert len(stream.outbound_streams) == 1


def test_packets_of_every_size_up_to_the_mtu_reach_every_subscriber_intact() -> None:
    stream = video_stream()
    wires = [Wire(), Wire()]
    for index, wire in enumerate(wires):
        stream.add(video_downtrack(wire, mid=str(index)))
    header = 12 + 8  # fixed header + the mid extension block
    sizes = [200, 1200, 1400, 1500]
    for seq, size in enumerate(sizes):
        body = bytes([seq]) * (size - header - len(VP8_KEY))
        stream.on_packet(1, seq, 0, False, VP8_KEY + body, now_ms=seq)
    for wire in wires:
        assert [len(p.serialize(wire.map)) for p in wire.packets] == sizes
        assert [p.payload[len(VP8_KEY):] for p in wire.packets] == [
            bytes([seq]) * (size - header - len(VP8_KEY)) for seq, size in enumerate(sizes)]


def test_a_failing_subscriber_leaves_the_others_and_the_ingress_running() -> None:
    stream = video_stream()
    before, after = Wire(), Wire()
    calls = {"raising": 0, "refusing": 0}

    def raising(packet: bytearray) -> bool:
        calls["raising"] += 1
        raise OSError("transport closed")

    def refusing(packet: bytearray) -> bool:  # e.g. a packet too long for this transport
        calls["refusing"] += 1
        return False

    stream.add(video_downtrack(before))
    stream.add(video_downtrack(Wire(), send=raising))
    stream.add(video_downtrack(Wire(), send=refusing))
    stream.add(video_downtrack(after))
    stream.on_packet(1, 1, 0, True, VP8_KEY, now_ms=0)
    stream.on_packet(1, 2, 3000, True, VP8_DELTA, now_ms=33)
    assert len(before.packets) == len(after.packets) == 2
    assert calls == {"raising": 2, "refusing": 2}
    assert stream.send_failures == 4
    assert stream.received == 2


def test_a_held_track_forwards_nothing_and_resumes_on_a_keyframe_without_a_gap() -> None:
    wire, stream = Wire(), video_stream()
    stream.add(video_downtrack(wire, initial_sequence_number=500))
    seen: list[int] = []

    class Recorder:
        def on_packet(self, sequence_number: int, timestamp: int, marker: bool,
                      payload: bytes, keyframe: bool, now_ms: int) -> None:
            seen.append(sequence_number)

        def on_sender_report(self, ntp: int, rtp_ts: int, now_ms: int) -> None:
            pass

    stream.add_observer(Recorder())
    stream.on_packet(0xAAAA, 10, 0, True, VP8_KEY, now_ms=0)
    stream.on_packet(0xAAAA, 11, 3000, True, VP8_DELTA, now_ms=33)
    stream.hold()  # a moderator muted the camera
    assert stream.held
    late = video_downtrack(Wire())
    stream.add(late)  # a subscriber who comes while it is held gets nothing either
    for seq in range(12, 20):
        stream.on_packet(0xAAAA, seq, seq * 3000, True, VP8_KEY if seq == 15 else VP8_DELTA,
                         now_ms=seq * 33)
    assert len(wire.packets) == 2 and seen == [10, 11]  # neither viewers nor the recorder
    assert not stream.needs_keyframe()  # nobody is owed a keyframe while it is held
    assert stream.history.get(15) is not None
    stream.release()
    assert stream.needs_keyframe()
    stream.on_packet(0xAAAA, 20, 60_000, True, VP8_DELTA, now_ms=660)  # not a keyframe yet
    stream.on_packet(0xAAAA, 21, 63_000, True, VP8_KEY, now_ms=693)
    stream.on_packet(0xAAAA, 22, 66_000, True, VP8_DELTA, now_ms=726)
    # The numbering runs on over the held packets: no subscriber asks for them.
    assert [p.sequence_number for p in wire.packets] == [500, 501, 502, 503]
    assert wire.packets[2].payload == VP8_KEY
    assert seen == [10, 11, 20, 21, 22]
    stream.release()  # releasing twice changes nothing
    assert [p.sequence_number for p in wire.packets][-1] == 503


# -- the audio level (RFC 6464) ------------------------------------------------------------

AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


class AudioWire(Wire):
    """A subscriber that negotiated the audio level as id ``level_id`` and the mid as 4."""

    def __init__(self, level_id: int) -> None:
        super().__init__()
        self.map.configure(RTCRtpParameters(headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=4, uri=MID_EXTENSION_URI),
            RTCRtpHeaderExtensionParameters(id=level_id, uri=AUDIO_LEVEL_URI)]))


def audio_downtrack(wire: Wire, level_id: int | None, ssrc: int = 7) -> DownTrack:
    return DownTrack(kind="audio", clock_rate=48000, payload_type=111, ssrc=ssrc,
                     send=wire.send, mid="0", mid_extension_id=4,
                     audio_level_extension_id=level_id)


def test_forwarded_audio_carries_the_publishers_level_in_each_subscribers_id() -> None:
    stream = SourceStream(kind="audio", mime_type="audio/opus", clock_rate=48000)
    one, other, neither = AudioWire(1), AudioWire(9), Wire()
    stream.add(audio_downtrack(one, 1))
    stream.add(audio_downtrack(other, 9))
    stream.add(audio_downtrack(neither, None))  # did not negotiate it
    assert len(stream.outbound_streams) == 3  # different bytes on the wire: one packet each
    for seq, level in enumerate((0x80 | 12, 40, 127, -1)):
        stream.on_packet(1, seq, seq * 960, False, b"opus", now_ms=seq * 20, audio_level=level)
    for wire in (one, other):
        assert [p.extensions.audio_level for p in wire.packets] == [
            (True, 12), (False, 40), (False, 127), None]  # none when the publisher sent none
        assert {p.extensions.mid for p in wire.packets} == {"0"}
    assert [p.extensions.audio_level for p in neither.packets] == [None] * 4
    assert [p.payload for p in neither.packets] == [b"opus"] * 4


def test_video_never_gets_an_audio_level_slot() -> None:
    wire = Wire()
    downtrack = video_downtrack(wire, audio_level_extension_id=2)
    assert downtrack.audio_level_id is None
    assert downtrack.new_outbound().template.audio_level_at == 0


def test_the_loudest_level_since_the_last_look_is_kept_for_speaker_detection() -> None:
    stream = SourceStream(kind="audio", mime_type="audio/opus", clock_rate=48000)
    assert stream.take_audio_level() == -1  # nothing received
    for seq, level in enumerate((60, 0x80 | 25, 127, -1, 50)):
        stream.on_packet(1, seq, seq * 960, False, b"opus", now_ms=seq * 20, audio_level=level)
    assert stream.take_audio_level() == 25  # the V flag is not part of the level
    assert stream.take_audio_level() == -1  # taken: nothing new since
    stream.on_packet(1, 9, 9 * 960, False, b"opus", now_ms=180)  # no level
    assert stream.take_audio_level() == -1
    stream.on_packet(1, 10, 10 * 960, False, b"opus", now_ms=200, audio_level=127)
    assert stream.take_audio_level() == 127
