"""Segment writer: frames from PyAV's real encoders in, segments read back and decoded by PyAV.

The media helpers here are imported by test_recorder_replay.py too.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import pytest
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame

from recorder.media import EncodedFrame, TrackFormat
from recorder.segments import (
    MANIFEST,
    SegmentPolicy,
    SegmentWriter,
    opus_packet_duration_ms,
    read_manifest,
)
from recorder.storage import LocalStorage, PendingFile, StorageError

Feed = list[tuple[TrackFormat, EncodedFrame]]
FPS = 30


def _picture(i: int, width: int, height: int) -> VideoFrame:
    # A moving gradient: real motion for the encoder, no numpy needed.
    frame = VideoFrame(width, height, "yuv420p")
    for index, plane in enumerate(frame.planes):
        row = bytes(((x + i * 4) * (index + 1)) % 256 for x in range(plane.line_size))
        plane.update(row * (plane.buffer_size // plane.line_size))
    return frame


def _annexb_nals(data: bytes) -> list[bytes]:
    starts = [m.end() for m in re.finditer(b"\x00\x00\x01", data)]
    nals = []
    for n, start in enumerate(starts):
        end = starts[n + 1] - 3 if n + 1 < len(starts) else len(data)
        nals.append(data[start:end].rstrip(b"\x00") if n + 1 < len(starts) else data[start:end])
    return [nal for nal in nals if nal]


def avcc_record(annexb: bytes) -> bytes:
    """ISO 14496-15 avcC from Annex-B SPS/PPS (what libx264's global header holds)."""
    nals = _annexb_nals(annexb)
    sps = next(n for n in nals if n[0] & 0x1F == 7)
    pps = next(n for n in nals if n[0] & 0x1F == 8)
    return (
        bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1])
        + len(sps).to_bytes(2, "big")
        + sps
        + b"\x01"
        + len(pps).to_bytes(2, "big")
        + pps
    )


def to_avcc(annexb: bytes) -> bytes:
    return b"".join(len(n).to_bytes(4, "big") + n for n in _annexb_nals(annexb))


@cache
def encode_video(
    codec: str, frames: int, gop: int, width: int = 320, height: int = 240
) -> tuple[TrackFormat, tuple[EncodedFrame, ...]]:
    """VP8 (libvpx) or H.264 baseline (libx264) frames as the depacketizer would hand them."""
    ctx = av.CodecContext.create("libx264" if codec == "H264" else "libvpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = Fraction(1, FPS)
    ctx.framerate = Fraction(FPS)
    ctx.gop_size = gop
    if codec == "H264":
        ctx.flags |= av.codec.context.Flags.global_header
        ctx.options = {"profile": "baseline", "preset": "ultrafast", "tune": "zerolatency"}
    else:
        ctx.options = {"deadline": "realtime", "cpu-used": "8"}
        ctx.bit_rate = 300_000
    packets = []
    for i in range(frames):
        picture = _picture(i, width, height)
        picture.pts = i
        packets += ctx.encode(picture)
    packets += ctx.encode(None)
    out = []
    for p in packets:
        assert p.pts is not None
        data = to_avcc(bytes(p)) if codec == "H264" else bytes(p)
        out.append(EncodedFrame("video", data, p.pts * 1000 / FPS, p.is_keyframe))
    extradata = avcc_record(ctx.extradata or b"") if codec == "H264" else b""
    fmt = TrackFormat("video", codec, 90000, width=width, height=height, extradata=extradata)
    return fmt, tuple(out)


@cache
def encode_opus(seconds: float) -> tuple[TrackFormat, tuple[EncodedFrame, ...]]:
    """20 ms Opus packets (libopus) from 0 ms, with their OpusHead."""
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate, ctx.layout, ctx.format = 48000, "stereo", "s16"
    ctx.time_base = Fraction(1, 48000)
    ctx.bit_rate = 64_000
    packets = []
    for i in range(int(seconds * 50)):
        frame = AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(bytes((j * 7 + i * 13) % 256 for j in range(960 * 4)))
        frame.sample_rate, frame.pts, frame.time_base = 48000, i * 960, Fraction(1, 48000)
        packets += ctx.encode(frame)
    packets += ctx.encode(None)
    # The flush adds a packet of encoder delay; keep exactly the fed duration.
    packets = packets[: int(seconds * 50)]
    out = [EncodedFrame("audio", bytes(p), n * 20.0, True) for n, p in enumerate(packets)]
    fmt = TrackFormat("audio", "opus", 48000, channels=2, extradata=ctx.extradata or b"")
    return fmt, tuple(out)


def av_feed(codec: str, seconds: float, gop: int, audio: bool = True) -> Feed:
    """Video and audio interleaved by time, as the tracks deliver them."""
    vfmt, video = encode_video(codec, int(seconds * FPS), gop)
    feed: Feed = [(vfmt, f) for f in video]
    if audio:
        afmt, sound = encode_opus(seconds)
        feed += [(afmt, f) for f in sound]
    return sorted(feed, key=lambda item: item[1].pts_ms)


def decode_counts(source: str | Path) -> dict[str, int]:
    counts = {"video": 0, "audio": 0}
    with av.open(str(source), "r") as container:
        for packet in container.demux():
            counts[packet.stream.type] += len(packet.decode())
    return counts


def write_all(
    storage: LocalStorage, feed: Feed, *, has_video: bool = True, has_audio: bool = True
) -> SegmentWriter:
    writer = SegmentWriter(storage, "rec1", has_video=has_video, has_audio=has_audio)
    for fmt, frame in feed:
        writer.write(fmt, frame)
    writer.close()
    return writer


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "recordings")


@pytest.mark.parametrize(("codec", "container"), [("VP8", "webm"), ("H264", "mp4")])
def test_segments_start_on_keyframes_and_each_plays_alone(
    storage: LocalStorage, codec: str, container: str
) -> None:
    writer = write_all(storage, av_feed(codec, 10, gop=2 * FPS))
    records = read_manifest(storage, "rec1")
    assert [r.index for r in records] == [0, 1, 2]
    assert [round(r.duration_ms) for r in records] == [4000, 4000, 2000]
    assert [r.start_ms for r in records] == [0.0, 4000.0, 8000.0]
    total = {"video": 0, "audio": 0}
    for record in records:
        assert record.file == f"seg-{record.index:06d}.{container}"
        assert record.container == container and record.keyframe
        path = storage.root / "rec1" / record.file
        assert record.bytes == path.stat().st_size
        with av.open(str(path)) as c:
            first_video = next(p for p in c.demux(video=0) if p.dts is not None)
            assert first_video.is_keyframe and first_video.pts is not None
            # Timestamps stay on the recording's clock, for audio and video alike.
            assert float(first_video.pts * first_video.time_base) == pytest.approx(
                record.start_ms / 1000, abs=0.001
            )
            assert {s.type for s in c.streams} == {"video", "audio"}
        counts = decode_counts(str(path))
        for kind in total:
            total[kind] += counts[kind]
    # Every frame fed is in exactly one segment and decodes.
    assert total == {"video": 300, "audio": 500}
    assert writer.stats.frames_written == 800 and writer.stats.write_errors == 0
    if container == "mp4":
        assert b"moof" in (storage.root / "rec1" / records[0].file).read_bytes()


def test_manifest_lines_are_json_with_the_contract_fields(storage: LocalStorage) -> None:
    write_all(storage, av_feed("VP8", 5, gop=FPS))
    lines = storage.read("rec1", MANIFEST).decode().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert {"index", "start_ms", "duration_ms", "bytes", "file", "keyframe"} <= set(first)
    assert first["video"] == "VP8" and first["audio"] == "opus"


def test_no_temporaries_left_after_close(storage: LocalStorage) -> None:
    write_all(storage, av_feed("H264", 5, gop=FPS))
    assert storage.discard_temporaries("rec1") == 0
    names = [f.name for f in storage.list_files("rec1")]
    assert names == [MANIFEST, "seg-000000.mp4", "seg-000001.mp4"]


def test_keyframe_interval_that_would_overshoot_cuts_early(storage: LocalStorage) -> None:
    # Keyframes every 3.5 s: waiting for 4 s would make 7 s segments, so each cuts at 3.5 s.
    writer = write_all(storage, av_feed("VP8", 12, gop=105))
    durations = [round(r.duration_ms) for r in read_manifest(storage, "rec1")]
    assert durations[:3] == [3500, 3500, 3500]
    assert writer.stats.long_segments == 0


def test_no_keyframe_by_six_seconds_keeps_going_and_counts_it(storage: LocalStorage) -> None:
    writer = write_all(storage, av_feed("VP8", 10, gop=8 * FPS, audio=False), has_audio=False)
    records = read_manifest(storage, "rec1")
    assert [round(r.duration_ms) for r in records] == [8000, 2000]
    assert writer.stats.long_segments == 1
    with av.open(str(storage.root / "rec1" / records[0].file)) as c:
        assert [s.type for s in c.streams] == ["video"]


def test_audio_only_recording_cuts_by_time(storage: LocalStorage) -> None:
    afmt, sound = encode_opus(9)
    writer = write_all(storage, [(afmt, f) for f in sound], has_video=False)
    records = read_manifest(storage, "rec1")
    assert [round(r.duration_ms) for r in records] == [4000, 4000, 1000]
    assert all(r.container == "webm" and r.video == "" for r in records)
    assert sum(decode_counts(str(storage.root / "rec1" / r.file))["audio"] for r in records) == 450
    assert writer.stats.frames_before_keyframe == 0


def test_frames_before_the_first_keyframe_are_dropped(storage: LocalStorage) -> None:
    # Joined mid-GOP: video from 1 s has its next keyframe at 2 s.
    late = [(f, e) for f, e in av_feed("VP8", 6, gop=2 * FPS) if e.pts_ms >= 1000]
    writer = write_all(storage, late)
    records = read_manifest(storage, "rec1")
    assert records[0].start_ms == 2000.0
    assert writer.stats.frames_before_keyframe > 0
    with av.open(str(storage.root / "rec1" / records[0].file)) as c:
        assert next(p for p in c.demux(video=0) if p.dts is not None).is_keyframe


def test_bad_frames_are_counted_never_raised(storage: LocalStorage) -> None:
    vfmt, video = encode_video("VP8", 90, 30)
    afmt, _ = encode_opus(1)
    writer = SegmentWriter(storage, "rec1")
    writer.write(vfmt, video[0])
    writer.write(vfmt, EncodedFrame("video", b"", 40.0, False))  # empty
    writer.write(vfmt, EncodedFrame("audio", b"\xfc", 41.0, True))  # kind mismatch
    writer.write(TrackFormat("video", "AV1", 90000, width=2, height=2), video[1])
    writer.write(TrackFormat("video", "H264", 90000, width=320, height=240), video[1])
    writer.write(TrackFormat("audio", "pcmu", 8000), EncodedFrame("audio", b"x", 1.0, True))
    writer.write(vfmt, video[1])
    writer.write(vfmt, video[1])  # same pts again: time must go forward
    writer.write(afmt, EncodedFrame("audio", b"\xfc\xff\xfe", 20.0, True))
    writer.write(afmt, EncodedFrame("audio", b"\xfc\xff\xfe", 0.0, True))  # backwards
    assert writer.stats.frames_rejected == 7
    writer.close()
    writer.write(vfmt, video[2])  # after close
    assert writer.stats.frames_rejected == 8
    assert writer.stats.write_errors == 0


class _Full(LocalStorage):
    def free_bytes(self) -> int:
        return 0


def test_full_disk_stops_recording_without_raising(tmp_path: Path) -> None:
    storage = _Full(tmp_path)
    writer = write_all(storage, av_feed("VP8", 3, gop=FPS))
    assert writer.stats.disk_full and not writer.recording
    assert read_manifest(storage, "rec1") == []
    assert storage.discard_temporaries("rec1") == 0


class _Broken(LocalStorage):
    def open_write(self, recording_id: str, name: str) -> PendingFile:
        raise StorageError("disk gone")


def test_storage_failure_is_counted_and_the_writer_retries_on_next_keyframe(
    tmp_path: Path,
) -> None:
    writer = write_all(_Broken(tmp_path), av_feed("VP8", 5, gop=FPS))
    # One failure per keyframe at which a segment could start: 5 keyframes.
    assert writer.stats.write_errors == 5
    assert writer.stats.segments == 0


def test_a_new_writer_continues_the_index(storage: LocalStorage) -> None:
    feed = av_feed("VP8", 4, gop=2 * FPS)
    write_all(storage, feed[: len(feed) // 2])
    later = [(f, EncodedFrame(e.kind, e.data, e.pts_ms + 10_000, e.keyframe)) for f, e in feed]
    write_all(storage, later)
    assert [r.index for r in read_manifest(storage, "rec1")] == [0, 1]


def test_opus_durations_follow_the_toc_byte() -> None:
    _, sound = encode_opus(0.2)
    assert {opus_packet_duration_ms(f.data) for f in sound} == {20.0}
    assert opus_packet_duration_ms(bytes([0x00])) == 10.0  # SILK NB 10 ms, one frame
    assert opus_packet_duration_ms(bytes([0x0A])) == 40.0  # SILK 20 ms, code 2: two frames
    assert opus_packet_duration_ms(bytes([0xF9])) == 40.0  # CELT 20 ms, code 1: two frames
    assert opus_packet_duration_ms(bytes([0x1B])) == 0.0  # code 3 without its count byte
    assert opus_packet_duration_ms(bytes([0xE3, 0x03])) == 7.5  # CELT 2.5 ms, three frames
    assert opus_packet_duration_ms(bytes([0xFB, 0x3F])) == 0.0  # 63 x 20 ms: over 120 ms
    assert opus_packet_duration_ms(b"") == 0.0


def test_policy_bounds_are_the_contracts() -> None:
    policy = SegmentPolicy()
    assert (policy.min_ms, policy.target_ms, policy.max_ms) == (2000, 4000, 6000)
