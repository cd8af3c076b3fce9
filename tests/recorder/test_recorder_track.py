"""RecordedTrack as the SFU's packet observer: real RTP in, timed decodable frames out."""

from __future__ import annotations

import fractions
import random
from collections.abc import Iterator

import av
import pytest
from aiortc.codecs import CODECS, get_encoder

from recorder.media import EncodedFrame, TrackFormat
from recorder.timeline import NTP_FRACTION_PER_SECOND, Timeline
from recorder.track import RecordedTrack
from sfu.forwarding import PacketObserver, SourceStream

WIDTH, HEIGHT = 320, 240
NTP_BASE_S = 3_976_300_800
Packet = tuple[int, int, bool, bytes]


def video_frames(count: int, seed: int = 1) -> Iterator[av.VideoFrame]:
    rng = random.Random(seed)
    bases = [rng.randbytes(p.buffer_size) for p in av.VideoFrame(WIDTH, HEIGHT, "yuv420p").planes]
    for i in range(count):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        for plane, base in zip(frame.planes, bases, strict=True):
            plane.update(base[i * 2 :] + base[: i * 2])
        frame.pts = i * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        yield frame


def video_rtp(mime: str, count: int, rtp_origin: int, seq: int = 1, seed: int = 1,
              keyframes: frozenset[int] = frozenset()) -> list[list[Packet]]:
    encoder = get_encoder(next(c for c in CODECS["video"] if c.mimeType == mime))
    out = []
    for i, frame in enumerate(video_frames(count, seed)):
        payloads, ts = encoder.encode(frame, force_keyframe=i in keyframes)
        packets = []
        for j, payload in enumerate(payloads):
            packets.append((seq & 0xFFFF, (rtp_origin + ts) & 0xFFFFFFFF, j == len(payloads) - 1,
                            payload))
            seq += 1
        out.append(packets)
    return out


def opus_rtp(count: int, rtp_origin: int) -> list[Packet]:
    encoder = get_encoder(next(c for c in CODECS["audio"] if c.mimeType == "audio/opus"))
    packets: list[Packet] = []
    for i in range(count):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(bytes((j * 7 + i) & 0xFF for j in range(960 * 4)))
        frame.sample_rate = 48000
        frame.pts = i * 960
        frame.time_base = fractions.Fraction(1, 48000)
        payloads, ts = encoder.encode(frame)
        for payload in payloads:
            packets.append((len(packets) + 7, (rtp_origin + ts) & 0xFFFFFFFF, False, payload))
    return packets


class Sink:
    def __init__(self) -> None:
        self.items: list[tuple[TrackFormat, EncodedFrame]] = []

    def __call__(self, fmt: TrackFormat, frame: EncodedFrame) -> None:
        self.items.append((fmt, frame))

    def decode(self, codec: str) -> list[av.VideoFrame]:
        """Decode in order, starting a decoder whenever the format changes."""
        decoded: list[av.VideoFrame] = []
        context, current = None, None
        for fmt, frame in self.items:
            if fmt is not current:
                if context is not None:
                    decoded += context.decode(None)
                context = av.CodecContext.create(codec, "r")
                if fmt.extradata:
                    context.extradata = fmt.extradata
                current = fmt
            assert context is not None
            decoded += context.decode(av.Packet(frame.data))
        if context is not None:
            decoded += context.decode(None)
        return decoded


def test_a_recorded_track_is_a_packet_observer_of_a_source_stream() -> None:
    stream = SourceStream(kind="video", mime_type="video/VP8", clock_rate=90000)
    sink = Sink()
    track = RecordedTrack("VP8", Timeline(), sink, "alice")
    observer: PacketObserver = track
    stream.add_observer(observer)
    assert track.needs_keyframe and track.kind == "video"
    for i, frame in enumerate(video_rtp("video/VP8", 30, rtp_origin=0xFFFF0000)):  # ts wraps
        for seq, ts, marker, payload in frame:
            stream.on_packet(0x1234, seq, ts, marker, payload, 10_000 + i * 33)
    assert not track.needs_keyframe
    assert len(sink.items) == 30 and track.frames == 30 and track.errors == 0
    fmt = sink.items[0][0]
    assert (fmt.kind, fmt.codec, fmt.width, fmt.height) == ("video", "VP8", WIDTH, HEIGHT)
    pts = [f.pts_ms for _, f in sink.items]
    # aiortc rounds its 90 kHz timestamps (2999 or 3000 a frame): pts follow them exactly.
    assert pts == pytest.approx([i * 1000 / 30 for i in range(30)], abs=0.02)
    assert [f.keyframe for _, f in sink.items] == [True] + [False] * 29
    decoded = sink.decode("vp8")
    assert len(decoded) == 30 and decoded[0].width == WIDTH


def test_loss_asks_for_a_keyframe_until_one_comes() -> None:
    sink = Sink()
    track = RecordedTrack("video/H264", Timeline(), sink, "alice")
    frames = video_rtp("video/H264", 30, rtp_origin=5, keyframes=frozenset({15}))
    needs = []
    for i, frame in enumerate(frames):
        for k, (seq, ts, marker, payload) in enumerate(frame):
            if i == 8 and k == 0:
                continue  # lost
            track.on_packet(seq, ts, marker, payload, False, 1000 + i * 33)
        needs.append(track.needs_keyframe)
    # The loss is known once the reorder buffer stops waiting for it, a few packets later.
    assert needs[:8] == [False] * 8 and all(needs[9:15]) and not any(needs[15:])
    assert len(sink.items) == 8 + 15 and track.dropped_frames == 7 and track.lost_packets == 1
    assert sink.items[8][1].keyframe
    assert len(sink.decode("h264")) == 23
    # The gap is visible in the timing: 15 frames' worth after frame 7.
    assert sink.items[8][1].pts_ms - sink.items[7][1].pts_ms == pytest.approx(8 * 1000 / 30)


def test_program_switch_waits_for_the_new_keyframe_and_keeps_time_going() -> None:
    sink = Sink()
    timeline = Timeline()
    track = RecordedTrack("H264", timeline, sink, "alice")
    for i, frame in enumerate(video_rtp("video/H264", 20, rtp_origin=77, seq=100)):
        for seq, ts, marker, payload in frame:
            track.on_packet(seq, ts, marker, payload, False, 1000 + i * 33)
    last_alice = sink.items[-1][1].pts_ms
    track.switch_source("bob")
    assert track.needs_keyframe and track.source_id == "bob"
    # Bob's stream: other numbering, and his first packets (mid-GOP) are useless.
    bob = video_rtp("video/H264", 25, rtp_origin=3_000_000_000, seq=50_000, seed=2,
                    keyframes=frozenset({10}))
    for i, frame in enumerate(bob[5:], start=5):
        for seq, ts, marker, payload in frame:
            track.on_packet(seq, ts, marker, payload, False, 3000 + i * 33)
    assert not track.needs_keyframe
    bob_items = sink.items[20:]
    assert len(bob_items) == 15 and bob_items[0][1].keyframe
    assert bob_items[0][1].pts_ms == pytest.approx(3000 + 10 * 33 - 1000)  # arrival on our clock
    assert bob_items[0][1].pts_ms > last_alice
    assert len(sink.decode("h264")) == 35


def test_audio_and_video_tracks_align_through_sender_reports() -> None:
    timeline = Timeline()
    video_sink, audio_sink = Sink(), Sink()
    video = RecordedTrack("VP8", timeline, video_sink, "alice")
    audio = RecordedTrack("opus", timeline, audio_sink, "alice")
    video_origin, audio_origin = 1_234_567_890, 4_000_000_000  # random, unrelated
    # Capture time 0 is 10 000 on our clock; video arrives 15 ms after capture, audio 48.
    video_sr = (NTP_BASE_S + 0.5) * NTP_FRACTION_PER_SECOND, video_origin + 45000
    audio_sr = (NTP_BASE_S + 0.5) * NTP_FRACTION_PER_SECOND, (audio_origin + 24000) & 0xFFFFFFFF
    video.on_sender_report(int(video_sr[0]), video_sr[1], 10_510)
    audio.on_sender_report(int(audio_sr[0]), audio_sr[1], 10_510)
    events = []
    for i, frame in enumerate(video_rtp("video/VP8", 60, video_origin)):
        events += [(10_015 + i * 1000 // 30, video, p) for p in frame]
    for i, packet in enumerate(opus_rtp(100, audio_origin)):
        events.append((10_048 + i * 20, audio, packet))
    events.sort(key=lambda e: e[0])
    for now, track, (seq, ts, marker, payload) in events:
        track.on_packet(seq, ts, marker, payload, False, now)
    # Media captured at the same moment (video frame 30 and audio frame 50: 1 s) line up.
    v = {round(f.pts_ms - video_sink.items[0][1].pts_ms): f.pts_ms for _, f in video_sink.items}
    a = audio_sink.items
    assert len(video_sink.items) == 60 and len(a) >= 95
    audio_by_capture = {
        round((ts - audio_origin) % (1 << 32) / 48): f.pts_ms
        for (_, f), (_, ts, _, _) in zip(a, opus_rtp(100, audio_origin), strict=False)
    }
    assert abs(v[1000] - audio_by_capture[1000]) < 5
    fmt = a[0][0]
    assert (fmt.kind, fmt.codec, fmt.channels) == ("audio", "opus", 2)
    assert all(f.keyframe for _, f in a)


def test_sink_errors_and_garbage_never_reach_the_forwarding_path() -> None:
    def broken(fmt: TrackFormat, frame: EncodedFrame) -> None:
        raise OSError("disk full")

    track = RecordedTrack("VP8", Timeline(), broken, "alice")
    for i, frame in enumerate(video_rtp("video/VP8", 10, rtp_origin=0)):
        for seq, ts, marker, payload in frame:
            track.on_packet(seq, ts, marker, payload, False, i * 33)
    assert track.sink_errors == 10 and track.frames == 10
    rng = random.Random(3)
    for i in range(3000):
        track.on_packet(rng.randrange(65536), rng.randrange(1 << 32), rng.random() < 0.5,
                        rng.randbytes(rng.randrange(64)), False, 1000 + i)
        if i % 500 == 0:
            track.on_sender_report(rng.randrange(1 << 64), rng.randrange(1 << 32), 1000 + i)
    assert track.errors == 0  # nothing raised inside either


def test_unknown_codec_is_refused_at_construction() -> None:
    with pytest.raises(ValueError):
        RecordedTrack("video/AV1", Timeline(), Sink(), "alice")
