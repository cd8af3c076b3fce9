"""Live HLS writer: real H.264 (libx264) and Opus frames in, the playlist read back by PyAV."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import av
from test_recorder_segments import FPS, av_feed, encode_opus, encode_video

from recorder.hls import PLAYLIST, LiveHlsWriter, format_program_date
from recorder.media import EncodedFrame, TrackFormat

START = 1_764_600_000.0  # 2025-12-01T14:40:00Z


def _in_band(fmt: TrackFormat, frame: EncodedFrame, shift_ms: float = 0.0) -> EncodedFrame:
    """The frame as an RTP publisher sends it: SPS and PPS ahead of each IDR (RFC 6184 §8.4)."""
    data = frame.data
    if frame.keyframe:
        avcc = fmt.extradata
        sps_len = int.from_bytes(avcc[6:8], "big")
        sps = avcc[8:8 + sps_len]
        pps = avcc[11 + sps_len:]
        data = b"".join(len(n).to_bytes(4, "big") + n for n in (sps, pps)) + data
    return EncodedFrame("video", data, frame.pts_ms + shift_ms, frame.keyframe)


def _decode(playlist: Path) -> tuple[dict[str, int], set[tuple[int, int]]]:
    counts = {"video": 0, "audio": 0}
    sizes = set()
    with av.open(str(playlist)) as container:
        for packet in container.demux():
            for frame in packet.decode():
                counts[packet.stream.type] += 1
                if isinstance(frame, av.VideoFrame):
                    sizes.add((frame.width, frame.height))
    return counts, sizes


def _tags(text: str, tag: str) -> list[str]:
    return [line[len(tag) + 1:] for line in text.splitlines() if line.startswith(tag + ":")]


def _digests(directory: Path, names: list[str]) -> dict[str, str]:
    return {n: hashlib.sha256((directory / n).read_bytes()).hexdigest() for n in names}


def test_a_live_becomes_two_second_segments_with_program_dates(tmp_path: Path) -> None:
    writer = LiveHlsWriter(tmp_path, clock=lambda: START)
    for fmt, frame in av_feed("H264", 10, gop=2 * FPS):
        writer.write(fmt, frame)
    live = (tmp_path / PLAYLIST).read_text()
    assert "#EXT-X-ENDLIST" not in live  # still on air
    listed = [line for line in live.splitlines() if line.endswith(".m4s")]
    assert len(listed) == 4  # the fifth is in progress
    before = _digests(tmp_path, listed)

    writer.close()
    text = (tmp_path / PLAYLIST).read_text()
    assert text.startswith("#EXTM3U\n") and text.rstrip().endswith("#EXT-X-ENDLIST")
    assert _tags(text, "#EXT-X-TARGETDURATION") == ["2"]
    assert _tags(text, "#EXT-X-MAP") == ['URI="p0-init.mp4"']
    assert [float(d.rstrip(",")) for d in _tags(text, "#EXTINF")] == [2.0] * 5
    assert _tags(text, "#EXT-X-PROGRAM-DATE-TIME") == [
        f"2025-12-01T14:40:0{s}.000Z" for s in (0, 2, 4, 6, 8)]
    # Listed segments are immutable: the bytes a cache kept are the bytes still served.
    assert _digests(tmp_path, listed) == before
    assert not list(tmp_path.glob("*.tmp"))
    counts, sizes = _decode(tmp_path / PLAYLIST)
    assert counts == {"video": 10 * FPS, "audio": 500}
    assert sizes == {(320, 240)}
    assert writer.stats.segments == 5 and writer.stats.write_errors == 0


def test_another_publisher_on_air_begins_a_period_after_a_discontinuity(tmp_path: Path) -> None:
    writer = LiveHlsWriter(tmp_path, clock=lambda: START)
    small_fmt, small = encode_video("H264", 4 * FPS, 2 * FPS)
    large_fmt, large = encode_video("H264", 4 * FPS, 2 * FPS, 640, 360)
    audio_fmt, audio = encode_opus(8)
    feed: list[tuple[TrackFormat, EncodedFrame]] = [
        (small_fmt, _in_band(small_fmt, f)) for f in small]
    feed += [(large_fmt, _in_band(large_fmt, f, 4000)) for f in large]
    feed += [(audio_fmt, f) for f in audio]
    for fmt, frame in sorted(feed, key=lambda item: item[1].pts_ms):
        writer.write(fmt, frame)
    writer.close()
    text = (tmp_path / PLAYLIST).read_text()
    assert _tags(text, "#EXT-X-MAP") == ['URI="p0-init.mp4"', 'URI="p1-init.mp4"']
    assert text.count("#EXT-X-DISCONTINUITY\n") == 1
    assert writer.stats.periods == 2
    # As a player does with EXT-X-MAP: each segment read after its period's init section.
    frames, sizes = 0, set()
    for segment in (line for line in text.splitlines() if line.endswith(".m4s")):
        init = segment.split("-")[0] + "-init.mp4"
        joined = tmp_path / "joined.mp4"
        joined.write_bytes((tmp_path / init).read_bytes() + (tmp_path / segment).read_bytes())
        counts, seen = _decode(joined)
        frames += counts["video"]
        sizes |= seen
    assert frames == 8 * FPS
    assert sizes == {(320, 240), (640, 360)}


def test_the_window_slides_and_old_segments_leave_the_disk(tmp_path: Path) -> None:
    writer = LiveHlsWriter(tmp_path, clock=lambda: START, window=3, keep=4)
    for fmt, frame in av_feed("H264", 14, gop=2 * FPS):
        writer.write(fmt, frame)
    writer.close()
    text = (tmp_path / PLAYLIST).read_text()
    listed = [line for line in text.splitlines() if line.endswith(".m4s")]
    assert listed == ["p0-00004.m4s", "p0-00005.m4s", "p0-00006.m4s"]
    assert _tags(text, "#EXT-X-MEDIA-SEQUENCE") == ["4"]
    assert _tags(text, "#EXT-X-PROGRAM-DATE-TIME")[0] == "2025-12-01T14:40:08.000Z"
    on_disk = sorted(p.name for p in tmp_path.glob("*.m4s"))
    assert on_disk == ["p0-00003.m4s", *listed]  # one more for players that are behind
    counts, _ = _decode(tmp_path / PLAYLIST)
    assert counts["video"] == 6 * FPS


def test_frames_it_cannot_serve_are_counted_never_raised(tmp_path: Path) -> None:
    writer = LiveHlsWriter(tmp_path, clock=lambda: START)
    vp8_fmt, vp8 = encode_video("VP8", 10, 5)
    for frame in vp8:
        writer.write(vp8_fmt, frame)
    h264_fmt, h264 = encode_video("H264", 10, 5)
    writer.write(TrackFormat("video", "H264", 90000, width=320, height=240), h264[0])  # no avcC
    writer.write(h264_fmt, EncodedFrame("video", b"", 0.0, True))
    writer.write(h264_fmt, h264[1])  # not a keyframe: nothing to start on
    assert writer.stats.frames_rejected == len(vp8) + 2
    assert writer.stats.frames_before_keyframe == 1
    assert not (tmp_path / PLAYLIST).exists()  # nothing to list yet
    writer.close()
    assert "#EXT-X-ENDLIST" in (tmp_path / PLAYLIST).read_text()


def test_program_dates_are_rfc_3339_with_milliseconds() -> None:
    assert format_program_date(START + 0.25) == "2025-12-01T14:40:00.250Z"
    assert format_program_date(START + 59.9996) == "2025-12-01T14:40:59.999Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", format_program_date(0.0))
