"""Live HLS (RFC 8216): an H.264 + Opus program as fMP4 segments of about 2 s and a live playlist.

FFmpeg's HLS muxer (PyAV, remux only) cuts the segments: one muxer per *period*, with its own
initialisation section. A new period begins, on a keyframe, when the program's formats change
(another publisher's SPS, audio joining late): an fMP4 init section cannot change mid-stream.
This module writes the one playlist players load, ``index.m3u8``, over all periods: a sliding
window of the newest segments, ``EXT-X-DISCONTINUITY`` and a new ``EXT-X-MAP`` where a period
begins, and ``EXT-X-PROGRAM-DATE-TIME`` on every segment. Segment files are written to a
temporary name and renamed when complete, the playlist is replaced atomically, and a segment
never changes once listed (it is immutable, as caches and CDNs need). Old segments leave the
window first and the disk a while later, so a player that is behind can still fetch them.

Synchronous, one caller at a time (a program tap's thread); :meth:`LiveHlsWriter.write` never
raises: a frame it cannot use is counted in :class:`HlsStats`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
from av.container import OutputContainer
from av.stream import Stream

from recorder.media import EncodedFrame, TrackFormat
from recorder.segments import opus_packet_duration_ms, remux_packet, template_streams

PLAYLIST = "index.m3u8"
SEGMENT_S = 2
# The playlist lists this many segments (~30 s: players start three segments from the end);
# files stay on disk for as many again after they leave it.
WINDOW_SEGMENTS = 15
KEEP_SEGMENTS = 30
# RFC 8216 §4.3.1.2: EXT-X-MAP with fMP4 needs version 6; 7 is what FFmpeg writes for fMP4.
PLAYLIST_VERSION = 7
_PREROLL_MS = 1000.0
_DEFAULT_FRAME_MS = 1000 / 30


@dataclass(frozen=True, slots=True)
class LiveSegment:
    sequence: int  # EXT-X-MEDIA-SEQUENCE numbering, over all periods
    period: int
    file: str
    duration_s: float
    program_date: float  # wall-clock time (s since the epoch) of its first frame


@dataclass(slots=True)
class HlsStats:
    frames_written: int = 0
    frames_rejected: int = 0  # not H.264 / Opus, malformed, or time going backwards
    frames_before_keyframe: int = 0
    write_errors: int = 0
    segments: int = 0
    periods: int = 0


@dataclass(slots=True)
class _Period:
    number: int
    output: OutputContainer
    streams: dict[str, Stream]
    formats: dict[str, TrackFormat]
    start_ms: float
    listed_ms: float = 0.0  # duration of the segments already listed
    playlist_stamp: tuple[int, int] = (0, 0)

    @property
    def init(self) -> str:
        return f"p{self.number}-init.mp4"

    @property
    def muxer_playlist(self) -> str:
        return f"p{self.number}.m3u8"


def format_program_date(seconds: float) -> str:
    """ISO 8601 with milliseconds and a time zone, as RFC 8216 §4.3.2.6 asks."""
    whole = math.floor(seconds)
    millis = min(999, round((seconds - whole) * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def _muxer_entries(text: str) -> list[tuple[float, str]]:
    """(duration, file) of each segment in one of FFmpeg's period playlists."""
    entries = []
    duration: float | None = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXTINF:"):
            try:
                duration = float(line[len("#EXTINF:"):].split(",", 1)[0])
            except ValueError:
                duration = None
        elif line and not line.startswith("#") and duration is not None:
            entries.append((duration, line))
            duration = None
    return entries


class LiveHlsWriter:
    """Writes one live's HLS into ``directory`` (which it creates)."""

    def __init__(
        self,
        directory: Path,
        *,
        clock: Callable[[], float] = time.time,
        window: int = WINDOW_SEGMENTS,
        keep: int = KEEP_SEGMENTS,
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.stats = HlsStats()
        self.segments: list[LiveSegment] = []  # on disk, oldest first
        self.ended = False
        self._clock = clock
        self._window = window
        self._keep = max(keep, window)
        self._period: _Period | None = None
        self._next_period = 0
        self._next_sequence = 0
        self._target_s = SEGMENT_S
        self._wall_at_zero: float | None = None  # wall clock at the program clock's 0
        self._formats: dict[str, TrackFormat] = {}
        self._last_pts: dict[str, float] = {}
        self._frame_ms = _DEFAULT_FRAME_MS
        self._preroll: list[tuple[TrackFormat, EncodedFrame]] = []
        self._new_period_wanted = False

    # -- FrameWriter --------------------------------------------------------------------

    def write(self, fmt: TrackFormat, frame: EncodedFrame) -> None:
        try:
            self._write(fmt, frame)
        except Exception:
            # A muxer or disk failure ends the period; the next keyframe begins another.
            self.stats.write_errors += 1
            self._abort_period()

    def close(self) -> None:
        """The live ended: the last segment is listed and the playlist says so."""
        if self.ended:
            return
        try:
            if self._preroll:
                self._open_from_preroll()
            self._end_period()
        except Exception:
            self.stats.write_errors += 1
            self._abort_period()
        self.ended = True
        self._write_playlist()

    # -- the playlist -------------------------------------------------------------------

    def playlist(self) -> str:
        listed = self.segments[-self._window:]
        lines = [
            "#EXTM3U",
            f"#EXT-X-VERSION:{PLAYLIST_VERSION}",
            f"#EXT-X-TARGETDURATION:{self._target_s}",
            f"#EXT-X-MEDIA-SEQUENCE:{listed[0].sequence if listed else self._next_sequence}",
            # The first listed segment's period: each period after the first begins with a
            # discontinuity, and the one before the first listed segment is not shown.
            f"#EXT-X-DISCONTINUITY-SEQUENCE:{listed[0].period if listed else 0}",
            "#EXT-X-INDEPENDENT-SEGMENTS",
        ]
        period = None
        for segment in listed:
            if segment.period != period:
                if period is not None:
                    lines.append("#EXT-X-DISCONTINUITY")
                lines.append(f'#EXT-X-MAP:URI="p{segment.period}-init.mp4"')
                period = segment.period
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_program_date(segment.program_date)}")
            lines.append(f"#EXTINF:{segment.duration_s:.3f},")
            lines.append(segment.file)
        if self.ended:
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"

    def _write_playlist(self) -> None:
        path = self.directory / PLAYLIST
        temporary = path.with_suffix(".m3u8.tmp")
        temporary.write_text(self.playlist())
        os.replace(temporary, path)  # atomic: a player never reads half a playlist

    # -- frames -------------------------------------------------------------------------

    def _valid(self, fmt: TrackFormat, frame: EncodedFrame) -> bool:
        if self.ended or frame.kind != fmt.kind or not frame.data:
            return False
        if fmt.kind == "video":
            ok = fmt.codec == "H264" and bool(fmt.extradata) and fmt.width > 0 and fmt.height > 0
        else:
            ok = fmt.kind == "audio" and fmt.codec == "opus" and fmt.clock_rate > 0
        last = self._last_pts.get(fmt.kind)
        return ok and (last is None or frame.pts_ms > last)

    def _write(self, fmt: TrackFormat, frame: EncodedFrame) -> None:
        if not self._valid(fmt, frame):
            self.stats.frames_rejected += 1
            return
        if self._wall_at_zero is None:
            self._wall_at_zero = self._clock() - frame.pts_ms / 1000
        known = self._formats.get(fmt.kind)
        if (known is not None and known != fmt) or (
                known is None and self._period is not None):
            self._new_period_wanted = True  # at the next keyframe
        self._formats[fmt.kind] = fmt
        if fmt.kind == "video":
            last = self._last_pts.get("video")
            if last is not None:
                self._frame_ms = frame.pts_ms - last
        self._last_pts[fmt.kind] = frame.pts_ms

        if self._period is None:
            if not self._preroll and not (fmt.kind == "video" and frame.keyframe):
                self.stats.frames_before_keyframe += 1
                return
            self._preroll.append((fmt, frame))
            span = frame.pts_ms - self._preroll[0][1].pts_ms
            if len(self._formats) == 2 or span >= _PREROLL_MS:
                self._open_from_preroll()
            return
        if fmt.kind == "video" and frame.keyframe and self._new_period_wanted:
            self._end_period()
            self._preroll = [(fmt, frame)]
            self._open_from_preroll()
            return
        self._mux(fmt, frame)
        if fmt.kind == "video":
            # The muxer interleaves: it cuts a segment a few frames after the keyframe that
            # ends it, so look on every video frame (a stat), not only on keyframes.
            self._collect()

    def _open_from_preroll(self) -> None:
        frames, self._preroll = self._preroll, []
        if not frames:
            return
        number = self._next_period
        self._next_period += 1
        muxer_playlist = self.directory / f"p{number}.m3u8"
        output = av.open(str(muxer_playlist), "w", format="hls", options={
            "hls_time": str(SEGMENT_S),
            "hls_segment_type": "fmp4",
            "hls_fmp4_init_filename": f"p{number}-init.mp4",
            "hls_segment_filename": str(self.directory / f"p{number}-%05d.m4s"),
            # Only new entries are read from it; this module keeps the long list.
            "hls_list_size": "6",
            "hls_flags": "independent_segments+temp_file",
        })
        try:
            formats = [self._formats[k] for k in ("video", "audio") if k in self._formats]
            streams = template_streams(output, formats)
        except Exception:
            output.close()
            raise
        self._period = _Period(number, output, streams, {f.kind: f for f in formats},
                               frames[0][1].pts_ms)
        self._new_period_wanted = False
        self.stats.periods += 1
        for fmt, frame in frames:
            self._mux(fmt, frame)

    def _mux(self, fmt: TrackFormat, frame: EncodedFrame) -> None:
        period = self._period
        assert period is not None
        stream = period.streams.get(fmt.kind)
        if stream is None or period.formats.get(fmt.kind) != fmt:
            self.stats.frames_before_keyframe += 1  # waits for the next period
            return
        if fmt.kind == "video":
            duration_ms = self._frame_ms if self._frame_ms > 0 else _DEFAULT_FRAME_MS
        else:
            duration_ms = opus_packet_duration_ms(frame.data) or 20.0
        period.output.mux(remux_packet(stream, fmt.clock_rate, frame, duration_ms))
        self.stats.frames_written += 1

    # -- segments -----------------------------------------------------------------------

    def _collect(self) -> None:
        """List the segments FFmpeg finished since the last look (it rewrites its playlist
        after each), then drop what fell out of the window from the disk."""
        period = self._period
        if period is None:
            return
        path = self.directory / period.muxer_playlist
        try:
            info = path.stat()
        except FileNotFoundError:
            return
        stamp = (info.st_mtime_ns, info.st_size)
        if stamp == period.playlist_stamp:
            return
        period.playlist_stamp = stamp
        self._list_new(period, path.read_text())

    def _list_new(self, period: _Period, text: str) -> None:
        seen = {s.file for s in self.segments if s.period == period.number}
        added = False
        for duration, name in _muxer_entries(text):
            if name in seen or not (self.directory / name).exists():
                continue
            assert self._wall_at_zero is not None
            start_ms = period.start_ms + period.listed_ms
            period.listed_ms += duration * 1000
            self.segments.append(LiveSegment(self._next_sequence, period.number, name,
                                             duration, self._wall_at_zero + start_ms / 1000))
            self._next_sequence += 1
            # RFC 8216 §4.3.3.1: every EXTINF rounded is at most the target duration.
            self._target_s = max(self._target_s, round(duration))
            self.stats.segments += 1
            added = True
        if added:
            self._write_playlist()
            self._forget_old()

    def _forget_old(self) -> None:
        while len(self.segments) > self._keep:
            old = self.segments.pop(0)
            (self.directory / old.file).unlink(missing_ok=True)
            if all(s.period != old.period for s in self.segments) and (
                    self._period is None or self._period.number != old.period):
                (self.directory / f"p{old.period}-init.mp4").unlink(missing_ok=True)
                (self.directory / f"p{old.period}.m3u8").unlink(missing_ok=True)

    def _end_period(self) -> None:
        period, self._period = self._period, None
        if period is None:
            return
        period.output.close()  # writes the last segment and FFmpeg's playlist
        path = self.directory / period.muxer_playlist
        if path.exists():
            self._list_new(period, path.read_text())

    def _abort_period(self) -> None:
        period, self._period = self._period, None
        self._preroll = []
        if period is not None:
            try:
                period.output.close()
            except Exception:
                pass
