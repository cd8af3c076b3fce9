"""Segments: a recording as a series of small playable files, each begun on a video keyframe.

VP8 + Opus (and audio-only) segments are WebM, H.264 + Opus segments fragmented MP4 (CMAF), all
written by PyAV remux only. A segment is muxed into a temporary file and committed (fsync +
rename) when it is complete, then a line describing it is appended to ``manifest.jsonl``; a
``kill -9`` therefore loses at most the segment in progress. Timestamps in every segment are on
the recording's clock (ms), so finalisation concatenates segments without rebasing.

The writer is synchronous (the wiring calls it from a worker thread) and :meth:`write` never
raises: a frame it cannot use is counted in :class:`WriterStats`.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
from av.container import OutputContainer
from av.stream import Stream

from recorder.media import EncodedFrame, TrackFormat
from recorder.storage import PendingFile, Storage

MANIFEST = "manifest.jsonl"
VIDEO_CODECS = {"VP8": "libvpx", "H264": "libx264"}
# The encoder name only selects a codec id for the stream; it is never opened (remux only).
AUDIO_CODECS = {"opus": "libopus"}
# Segment metadata says which muxer wrote a file, so a reader needs nothing else.
CONTAINERS = {"webm": "webm", "mp4": "mp4"}
# CMAF (ISO 23000-19): a fragment per keyframe, the moov written first and empty, fragment
# offsets relative to their moof, so each fragment stands alone and a cut file stays readable.
# delay_moov: with the moov written before the first packet FFmpeg shifts every track to start
# at 0 on its own (measured: a segment at 4 s read back at 0 s, audio and video each rebased);
# delayed to the first fragment, the moov keeps the recording clock and the A/V offset.
CMAF_MOVFLAGS = "frag_keyframe+empty_moov+delay_moov+default_base_moof"
# RFC 6716 §3.1: frame sizes in 48 kHz samples selected by the TOC byte's config (bits 7..3).
_OPUS_SILK_SAMPLES = (480, 960, 1920, 2880)
_OPUS_HYBRID_SAMPLES = (480, 960)
_OPUS_CELT_SAMPLES = (120, 240, 480, 960)
_OPUS_CLOCK = 48000
# Without a better figure the last video frame of a recording lasts one 30 fps frame.
_DEFAULT_VIDEO_FRAME_MS = 1000 / 30
# At most this much media is held before the first segment opens while a declared kind
# (audio or video) has not shown its format yet.
_PREROLL_MS = 1000.0
_PREROLL_FRAMES = 400


def opus_packet_duration_ms(packet: bytes) -> float:
    """Duration of one Opus packet from its TOC byte (RFC 6716 §3.1, §3.2.5); 0 if malformed."""
    if not packet:
        return 0.0
    toc = packet[0]
    config = toc >> 3
    if config < 12:
        per_frame = _OPUS_SILK_SAMPLES[config & 3]
    elif config < 16:
        per_frame = _OPUS_HYBRID_SAMPLES[config & 1]
    else:
        per_frame = _OPUS_CELT_SAMPLES[config & 3]
    code = toc & 3
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        # §3.2.5: code 3 carries the frame count in the low 6 bits of the second byte.
        if len(packet) < 2:
            return 0.0
        frames = packet[1] & 0x3F
    samples = per_frame * frames
    # §3.2.5: a packet never holds more than 120 ms of audio.
    if samples == 0 or samples > 5760:
        return 0.0
    return samples * 1000 / _OPUS_CLOCK


@dataclass(frozen=True, slots=True)
class SegmentPolicy:
    """When to cut. Keyframe intervals outside the window stretch segments (noted in stats)."""

    min_ms: float = 2000.0
    target_ms: float = 4000.0
    max_ms: float = 6000.0
    # Below this many free bytes no new segment starts: recording stops, the live goes on.
    min_free_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    """One line of ``manifest.jsonl``: a finished, committed segment."""

    index: int
    start_ms: float
    duration_ms: float
    bytes: int
    file: str
    keyframe: bool
    container: str
    video: str = ""  # codec, "" when the segment has no video
    audio: str = ""

    def to_json(self) -> str:
        return json.dumps(
            {
                "index": self.index,
                "start_ms": round(self.start_ms, 3),
                "duration_ms": round(self.duration_ms, 3),
                "bytes": self.bytes,
                "file": self.file,
                "keyframe": self.keyframe,
                "container": self.container,
                "video": self.video,
                "audio": self.audio,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, line: str) -> SegmentRecord:
        raw = json.loads(line)
        if not isinstance(raw, dict):
            raise ValueError("manifest line is not an object")
        container = str(raw["container"])
        if container not in CONTAINERS:
            raise ValueError(f"unknown container {container!r}")
        return cls(
            index=int(raw["index"]),
            start_ms=float(raw["start_ms"]),
            duration_ms=float(raw["duration_ms"]),
            bytes=int(raw["bytes"]),
            file=str(raw["file"]),
            keyframe=bool(raw["keyframe"]),
            container=container,
            video=str(raw.get("video", "")),
            audio=str(raw.get("audio", "")),
        )


def read_manifest(storage: Storage, recording_id: str) -> list[SegmentRecord]:
    """The finished segments in order; a torn or foreign line (crash mid-append) is skipped."""
    if not storage.exists(recording_id, MANIFEST):
        return []
    records: dict[int, SegmentRecord] = {}
    text = storage.read(recording_id, MANIFEST).decode("utf-8", errors="replace")
    for line in text.splitlines():
        try:
            record = SegmentRecord.from_json(line)
        except (ValueError, KeyError, TypeError):
            continue
        if storage.exists(recording_id, record.file):
            records[record.index] = record
    return [records[i] for i in sorted(records)]


@dataclass(slots=True)
class WriterStats:
    """Counters the wiring exports to /metrics; mutable, owned by one writer."""

    frames_written: int = 0
    frames_rejected: int = 0  # malformed, unknown kind/codec, or time going backwards
    frames_before_keyframe: int = 0  # dropped while waiting for the first (or next) keyframe
    write_errors: int = 0
    segments: int = 0
    bytes: int = 0
    # Segments that ran past max_ms because the publisher sent no keyframe in time.
    long_segments: int = 0
    disk_full: bool = False


def container_for(video: TrackFormat | None) -> str:
    """The segment container: MP4 for H.264 (VP8 cannot go in MP4), WebM otherwise."""
    return "mp4" if video is not None and video.codec == "H264" else "webm"


@dataclass(slots=True)
class _Open:
    """The segment being muxed."""

    index: int
    name: str
    container: str
    pending: PendingFile
    output: OutputContainer
    streams: dict[str, Stream]
    formats: dict[str, TrackFormat]
    start_ms: float
    keyframe: bool
    end_ms: dict[str, float] = field(default_factory=dict)


def _add_stream(output: OutputContainer, fmt: TrackFormat) -> Stream:
    name = VIDEO_CODECS[fmt.codec] if fmt.kind == "video" else AUDIO_CODECS[fmt.codec]
    stream = output.add_stream(name)
    ctx: Any = stream.codec_context
    if fmt.kind == "video":
        ctx.width = fmt.width
        ctx.height = fmt.height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = Fraction(1, fmt.clock_rate)
        stream.time_base = Fraction(1, fmt.clock_rate)
    else:
        ctx.sample_rate = fmt.clock_rate
        ctx.layout = "stereo" if fmt.channels != 1 else "mono"
        ctx.time_base = Fraction(1, fmt.clock_rate)
        stream.time_base = Fraction(1, fmt.clock_rate)
    if fmt.extradata:
        ctx.extradata = fmt.extradata
    return stream


def open_remux_output(path: str, container: str, options: dict[str, str]) -> OutputContainer:
    return av.open(path, "w", format=CONTAINERS[container], options=options)


def template_streams(output: OutputContainer, formats: list[TrackFormat]) -> dict[str, Stream]:
    # add_stream() would open an encoder at the first mux, and libx264/libopus would replace
    # the publisher's SPS/PPS and OpusHead with their own; a stream made from a template is
    # marked initialised and only copies its parameters into the file (remux only).
    scratch = av.open(io.BytesIO(), "w", format=output.format.name)
    try:
        out: dict[str, Stream] = {}
        for fmt in formats:
            template = _add_stream(scratch, fmt)
            stream = output.add_stream_from_template(template)
            ctx: Any = stream.codec_context
            if fmt.kind == "video":
                ctx.width = fmt.width
                ctx.height = fmt.height
            else:
                ctx.sample_rate = fmt.clock_rate
                ctx.layout = "stereo" if fmt.channels != 1 else "mono"
            if fmt.extradata:
                ctx.extradata = fmt.extradata
            stream.time_base = Fraction(1, fmt.clock_rate)
            out[fmt.kind] = stream
        return out
    finally:
        scratch.close()


def remux_packet(stream: Stream, clock_rate: int, frame: EncodedFrame,
                 duration_ms: float) -> av.Packet[Stream]:
    """``frame`` as a packet of ``stream``, timed on the recording's clock (ms -> the track's
    clock rate); no B-frames, so dts is pts."""
    packet = av.Packet(frame.data)
    packet.stream = stream
    packet.time_base = Fraction(1, clock_rate)
    packet.pts = packet.dts = round(frame.pts_ms * clock_rate / 1000)
    packet.duration = max(1, round(duration_ms * clock_rate / 1000))
    packet.is_keyframe = frame.keyframe
    return packet


class SegmentWriter:
    """Writes one recording's segments and manifest. Not thread-safe: one caller at a time."""

    def __init__(
        self,
        storage: Storage,
        recording_id: str,
        *,
        has_video: bool = True,
        has_audio: bool = True,
        policy: SegmentPolicy | None = None,
    ) -> None:
        if not (has_video or has_audio):
            raise ValueError("a recording needs a video or an audio track")
        self.storage = storage
        self.recording_id = recording_id
        self.has_video = has_video
        self.has_audio = has_audio
        self.policy = policy or SegmentPolicy()
        self.stats = WriterStats()
        self.records: list[SegmentRecord] = []
        self._formats: dict[str, TrackFormat] = {}
        self._open: _Open | None = None
        self._next_index = len(read_manifest(storage, recording_id))
        self._last_pts: dict[str, float] = {}
        # The last video frame is held until the next one gives its duration.
        self._held_video: EncodedFrame | None = None
        self._video_frame_ms = _DEFAULT_VIDEO_FRAME_MS
        self._last_keyframe_ms: float | None = None
        self._keyframe_interval_ms: float | None = None
        self._preroll: list[tuple[TrackFormat, EncodedFrame]] = []
        self._waiting_keyframe = has_video
        self._format_changed = False
        self._closed = False

    # -- public -------------------------------------------------------------------------

    def write(self, fmt: TrackFormat, frame: EncodedFrame) -> None:
        """Add one frame; never raises (bad frames and write failures are counted)."""
        try:
            self._write(fmt, frame)
        except Exception:
            # A muxer or disk failure costs the segment in progress, never the caller.
            self.stats.write_errors += 1
            self._abort_open()
            self._waiting_keyframe = self.has_video

    def close(self) -> list[SegmentRecord]:
        """Finish the segment in progress; return every segment this writer committed."""
        if self._closed:
            return self.records
        self._closed = True
        try:
            if self._preroll:
                self._start_from_preroll(force=True)
            if self._held_video is not None and self._open is not None:
                held, self._held_video = self._held_video, None
                self._mux(held, self._video_frame_ms)
            self._finish_open()
        except Exception:
            self.stats.write_errors += 1
            self._abort_open()
        return self.records

    @property
    def recording(self) -> bool:
        """False once the disk filled up: the wiring raises an alert and stops feeding."""
        return not self.stats.disk_full and not self._closed

    # -- internals ----------------------------------------------------------------------

    def _valid(self, fmt: TrackFormat, frame: EncodedFrame) -> bool:
        if self._closed or self.stats.disk_full:
            return False
        if frame.kind != fmt.kind or not frame.data:
            return False
        if fmt.kind == "video":
            if not self.has_video or fmt.codec not in VIDEO_CODECS:
                return False
            if fmt.width <= 0 or fmt.height <= 0 or fmt.clock_rate <= 0:
                return False
            # MP4 cannot hold H.264 without its avcC (notes/recording.md).
            if fmt.codec == "H264" and not fmt.extradata:
                return False
            video_container = container_for(fmt)
            if self._open is not None and video_container != container_for(
                self._formats.get("video")
            ):
                # A codec switch needs a new container: cut on this keyframe.
                self._format_changed = True
        elif fmt.kind == "audio":
            if not self.has_audio or fmt.codec not in AUDIO_CODECS or fmt.clock_rate <= 0:
                return False
        else:
            return False
        last = self._last_pts.get(fmt.kind)
        return last is None or frame.pts_ms > last

    def _write(self, fmt: TrackFormat, frame: EncodedFrame) -> None:
        if not self._valid(fmt, frame):
            self.stats.frames_rejected += 1
            return
        if fmt.kind == "video" and self._formats.get("video") not in (None, fmt):
            self._format_changed = True
        if fmt.kind == "audio" and self._formats.get("audio") not in (None, fmt):
            self._format_changed = True

        if self._waiting_keyframe:
            if fmt.kind != "video" or not frame.keyframe:
                self.stats.frames_before_keyframe += 1
                return
            self._waiting_keyframe = False
            self._format_changed = False
            self._formats["video"] = fmt
            if self._open is None:
                self._preroll = []
        self._last_pts[fmt.kind] = frame.pts_ms

        if self._open is None:
            if fmt.kind not in self._formats:
                self._formats[fmt.kind] = fmt
            self._preroll.append((fmt, frame))
            self._start_from_preroll(force=False)
            return
        self._route(fmt, frame)

    def _start_from_preroll(self, *, force: bool) -> None:
        """Open the first segment once every declared kind has a format (or pre-roll is full)."""
        kinds = [k for k, on in (("video", self.has_video), ("audio", self.has_audio)) if on]
        span = self._preroll[-1][1].pts_ms - self._preroll[0][1].pts_ms
        if not force and any(k not in self._formats for k in kinds):
            if span < _PREROLL_MS and len(self._preroll) < _PREROLL_FRAMES:
                return
        frames, self._preroll = self._preroll, []
        if not frames:
            return
        self._open_segment(frames[0][1].pts_ms, keyframe=frames[0][1].keyframe)
        for fmt, frame in frames:
            self._route(fmt, frame)

    def _should_cut(self, frame: EncodedFrame) -> bool:
        assert self._open is not None
        elapsed = frame.pts_ms - self._open.start_ms
        if self._format_changed:
            return True
        if elapsed >= self.policy.target_ms:
            return True
        # Cut early rather than late: if the publisher's keyframe interval would take the
        # segment past max_ms at the next keyframe, this one is the better cut.
        interval = self._keyframe_interval_ms
        return (
            elapsed >= self.policy.min_ms
            and interval is not None
            and elapsed + interval > self.policy.max_ms
        )

    def _route(self, fmt: TrackFormat, frame: EncodedFrame) -> None:
        if fmt.kind == "video":
            held = self._held_video
            if held is not None:
                self._video_frame_ms = frame.pts_ms - held.pts_ms
            if frame.keyframe:
                if self._last_keyframe_ms is not None:
                    self._keyframe_interval_ms = frame.pts_ms - self._last_keyframe_ms
                self._last_keyframe_ms = frame.pts_ms
            cut = frame.keyframe and self._open is not None and self._should_cut(frame)
            if held is not None:
                self._held_video = None
                self._mux(held, frame.pts_ms - held.pts_ms)
            if cut:
                self._finish_open()
                self._formats["video"] = fmt
                self._format_changed = False
                self._open_segment(frame.pts_ms, keyframe=True)
            elif self._open is None:
                return
            self._held_video = frame
            return
        if fmt.kind not in self._formats:
            # A kind that starts late joins at the next segment.
            self._formats[fmt.kind] = fmt
        if self._open is None:
            return
        if not self.has_video and frame.pts_ms - self._open.start_ms >= self.policy.target_ms:
            self._finish_open()
            self._formats["audio"] = fmt
            self._open_segment(frame.pts_ms, keyframe=True)
        if fmt.kind not in self._open.streams:
            self.stats.frames_before_keyframe += 1
            return
        duration = opus_packet_duration_ms(frame.data) or 20.0
        self._mux(frame, duration)

    def _open_segment(self, start_ms: float, *, keyframe: bool) -> None:
        if self.storage.free_bytes() < self.policy.min_free_bytes:
            self.stats.disk_full = True
            self._held_video = None
            return
        video = self._formats.get("video") if self.has_video else None
        container = container_for(video)
        index = self._next_index
        self._next_index += 1
        name = f"seg-{index:06d}.{container}"
        pending = self.storage.open_write(self.recording_id, name)
        # A segment is committed only once closed, so WebM can carry cues and a duration.
        options = {"movflags": CMAF_MOVFLAGS} if container == "mp4" else {}
        output = open_remux_output(str(pending.path), container, options)
        try:
            formats = [f for f in (video, self._formats.get("audio")) if f is not None]
            if not self.has_audio:
                formats = [f for f in formats if f.kind == "video"]
            streams = template_streams(output, formats)
        except Exception:
            output.close()
            pending.abort()
            raise
        self._open = _Open(
            index=index,
            name=name,
            container=container,
            pending=pending,
            output=output,
            streams=streams,
            formats={f.kind: f for f in formats},
            start_ms=start_ms,
            keyframe=keyframe,
        )

    def _mux(self, frame: EncodedFrame, duration_ms: float) -> None:
        seg = self._open
        if seg is None:
            return
        stream = seg.streams.get(frame.kind)
        if stream is None:
            return
        seg.output.mux(remux_packet(stream, seg.formats[frame.kind].clock_rate, frame,
                                    duration_ms))
        seg.end_ms[frame.kind] = max(seg.end_ms.get(frame.kind, 0.0), frame.pts_ms + duration_ms)
        self.stats.frames_written += 1

    def _finish_open(self) -> None:
        seg, self._open = self._open, None
        if seg is None:
            return
        try:
            seg.output.close()
        except Exception:
            seg.pending.abort()
            raise
        if not seg.end_ms:
            seg.pending.abort()
            return
        size = seg.pending.commit()
        duration = max(seg.end_ms.values()) - seg.start_ms
        if self.has_video and duration > self.policy.max_ms:
            self.stats.long_segments += 1
        record = SegmentRecord(
            index=seg.index,
            start_ms=seg.start_ms,
            duration_ms=duration,
            bytes=size,
            file=seg.name,
            keyframe=seg.keyframe,
            container=seg.container,
            video=seg.formats["video"].codec if "video" in seg.formats else "",
            audio=seg.formats["audio"].codec if "audio" in seg.formats else "",
        )
        self.storage.append_line(self.recording_id, MANIFEST, record.to_json())
        self.records.append(record)
        self.stats.segments += 1
        self.stats.bytes += size

    def _abort_open(self) -> None:
        seg, self._open = self._open, None
        self._held_video = None
        if seg is None:
            return
        try:
            seg.output.close()
        except Exception:
            pass
        seg.pending.abort()
