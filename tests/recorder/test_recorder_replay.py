"""Finalisation, HLS VOD, crash recovery and the thumbnail, read back with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from test_recorder_segments import FPS, av_feed, decode_counts, encode_video, write_all

from recorder.media import EncodedFrame
from recorder.replay import FINAL, ReplayInfo, finalise, load_replay, recover
from recorder.segments import MANIFEST, SegmentWriter, read_manifest
from recorder.storage import LocalStorage
from recorder.thumbnail import jpeg_from_first_keyframe


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "recordings")


def _seek_and_decode(path: Path, seconds: float) -> float:
    """Seek to ``seconds`` and return the time of the first video frame decoded there."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        assert stream.time_base is not None
        c.seek(int(seconds / stream.time_base), stream=stream)
        for packet in c.demux(stream):
            for frame in packet.decode():
                assert frame.time is not None
                return frame.time
    raise AssertionError("nothing decoded after the seek")


@pytest.mark.parametrize(("codec", "name"), [("VP8", "replay.webm"), ("H264", "replay.mp4")])
def test_replay_is_one_seekable_file_with_both_streams(
    storage: LocalStorage, codec: str, name: str
) -> None:
    write_all(storage, av_feed(codec, 10, gop=2 * FPS))
    info = finalise(storage, "rec1")
    assert info.playback == name and info.segments == 3 and info.segments_skipped == 0
    assert abs(info.duration_s - 10.0) <= 0.2
    path = storage.root / "rec1" / name
    assert info.size == path.stat().st_size
    with av.open(str(path)) as c:
        assert c.duration is not None and abs(c.duration / 1e6 - 10.0) <= 0.2
        assert {s.type for s in c.streams} == {"video", "audio"}
    assert {(t.kind, t.codec) for t in info.tracks} == {("video", codec.lower()), ("audio", "opus")}
    assert decode_counts(str(path)) == {"video": 300, "audio": 500}
    # Keyframes every 2 s: a seek to 5 s lands on the 4 s keyframe and decodes from there.
    assert _seek_and_decode(path, 5.0) == pytest.approx(4.0, abs=0.05)
    assert _seek_and_decode(path, 8.5) == pytest.approx(8.0, abs=0.05)
    assert load_replay(storage, "rec1") == info


def test_mp4_replay_has_its_index_first(storage: LocalStorage) -> None:
    write_all(storage, av_feed("H264", 4, gop=2 * FPS))
    finalise(storage, "rec1", hls=False, thumbnail=False)
    data = (storage.root / "rec1" / "replay.mp4").read_bytes()
    # +faststart: a player reads the moov before any media data.
    assert data.index(b"moov") < data.index(b"mdat")
    assert b"moof" not in data


def test_webm_replay_has_cues_and_a_duration(storage: LocalStorage) -> None:
    write_all(storage, av_feed("VP8", 6, gop=2 * FPS))
    finalise(storage, "rec1", thumbnail=False)
    data = (storage.root / "rec1" / "replay.webm").read_bytes()
    assert b"\x1c\x53\xbb\x6b" in data  # Matroska Cues element ID
    assert b"\x44\x89" in data[:4096]  # Segment Info Duration element ID


def test_hls_vod_opens_and_plays_every_frame(storage: LocalStorage) -> None:
    write_all(storage, av_feed("H264", 10, gop=2 * FPS))
    info = finalise(storage, "rec1")
    assert info.hls == "hls/index.m3u8"
    playlist = (storage.root / "rec1" / info.hls).read_text()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in playlist and "#EXT-X-ENDLIST" in playlist
    assert '#EXT-X-MAP:URI="init.mp4"' in playlist
    assert str(storage.root) not in playlist  # relative names only
    durations = [float(line[8:].rstrip(",")) for line in playlist.splitlines() if "EXTINF" in line]
    assert abs(sum(durations) - 10.0) <= 0.2 and max(durations) <= 6.0
    for name in [line for line in playlist.splitlines() if line.endswith(".m4s")]:
        assert f"hls/{name}" in info.files
    counts = decode_counts(storage.root / "rec1" / info.hls)
    assert counts["video"] == 300 and counts["audio"] >= 495


def test_thumbnail_is_a_jpeg_of_the_first_keyframe(storage: LocalStorage) -> None:
    write_all(storage, av_feed("VP8", 3, gop=2 * FPS))
    info = finalise(storage, "rec1")
    assert info.thumbnail == "thumbnail.jpg"
    jpeg = storage.read("rec1", "thumbnail.jpg")
    assert jpeg[:2] == b"\xff\xd8"
    with av.open(str(storage.root / "rec1" / "thumbnail.jpg")) as c:
        picture = next(c.decode(video=0))
        assert (picture.width, picture.height) == (320, 240)
    # Wider than the limit: scaled down, aspect kept, even dimensions.
    small = jpeg_from_first_keyframe(str(storage.root / "rec1" / "replay.webm"), max_width=100)
    assert small is not None
    tmp = storage.root / "small.jpg"
    tmp.write_bytes(small)
    with av.open(str(tmp)) as c:
        picture = next(c.decode(video=0))
        assert (picture.width, picture.height) == (100, 74)


def test_audio_only_replay_has_no_thumbnail(storage: LocalStorage) -> None:
    feed = [(f, e) for f, e in av_feed("VP8", 5, gop=FPS) if e.kind == "audio"]
    write_all(storage, feed, has_video=False)
    info = finalise(storage, "rec1")
    assert info.playback == "replay.webm" and info.thumbnail is None and info.hls is None
    assert [t.kind for t in info.tracks] == ["audio"]
    assert abs(info.duration_s - 5.0) <= 0.2


def test_recover_after_kill_keeps_the_finished_segments(storage: LocalStorage) -> None:
    # kill -9 at 9 s: two segments committed, the third still a temporary, a torn manifest line.
    writer = SegmentWriter(storage, "rec1")
    for fmt, frame in av_feed("H264", 9, gop=2 * FPS):
        writer.write(fmt, frame)
    assert len(read_manifest(storage, "rec1")) == 2
    in_progress = [p for p in (storage.root / "rec1").iterdir() if ".tmp-" in p.name]
    assert len(in_progress) == 1
    with open(storage.root / "rec1" / MANIFEST, "ab") as f:
        f.write(b'{"index": 2, "start_ms": 80')
    storage.write_bytes("done", FINAL, b"{}")  # already finalised: left alone

    recovered = recover(storage)
    assert [i.id for i in recovered] == ["rec1"]
    info = recovered[0]
    assert abs(info.duration_s - 8.0) <= 0.2 and info.segments == 2
    assert not in_progress[0].exists()
    assert decode_counts(storage.root / "rec1" / "replay.mp4") == {"video": 240, "audio": 400}
    assert storage.exists("rec1", FINAL)
    assert recover(storage) == []  # idempotent: nothing left to do


def test_recover_relists_a_segment_committed_just_before_the_kill(storage: LocalStorage) -> None:
    write_all(storage, av_feed("VP8", 8, gop=2 * FPS))
    lines = storage.read("rec1", MANIFEST).decode().splitlines()
    # Killed between the rename of segment 1 and the append of its manifest line.
    storage.write_bytes("rec1", MANIFEST, (lines[0] + "\n").encode())
    [info] = recover(storage)
    assert info.segments == 2 and abs(info.duration_s - 8.0) <= 0.2


def test_recover_skips_active_recordings(storage: LocalStorage) -> None:
    write_all(storage, av_feed("VP8", 5, gop=FPS))
    assert recover(storage, active={"rec1"}) == []
    assert not storage.exists("rec1", FINAL)


def test_empty_recording_finalises_to_an_empty_replay(storage: LocalStorage) -> None:
    storage.write_bytes("rec1", "note.txt", b"x")
    [info] = recover(storage)
    assert info.playback is None and info.duration_s == 0 and info.files == ()
    assert ReplayInfo.from_json(info.to_json()) == info


def test_h264_parameter_change_mid_recording_still_decodes(storage: LocalStorage) -> None:
    # A program switch to a publisher with another resolution (another SPS): new segment,
    # replay keeps one stream and carries the new SPS/PPS in-band.
    small_fmt, small = encode_video("H264", 120, 2 * FPS)
    big_fmt, big = encode_video("H264", 120, 2 * FPS, width=480, height=272)
    writer = SegmentWriter(storage, "rec1", has_audio=False)
    for frame in small:
        writer.write(small_fmt, frame)
    for frame in big:
        writer.write(
            big_fmt, EncodedFrame("video", frame.data, frame.pts_ms + 4000, frame.keyframe)
        )
    writer.close()
    assert len(read_manifest(storage, "rec1")) == 2
    info = finalise(storage, "rec1", hls=False)
    sizes = []
    with av.open(str(storage.root / "rec1" / "replay.mp4")) as c:
        for picture in c.decode(video=0):
            sizes.append((picture.width, picture.height))
    assert sizes.count((320, 240)) == 120 and sizes.count((480, 272)) == 120
    assert abs(info.duration_s - 8.0) <= 0.2
