"""One recorded track: packets from the SFU in, timed frames out to a sink.

A :class:`RecordedTrack` is a :class:`sfu.forwarding.PacketObserver`: the forwarding path calls
it for every packet of the track it records, so it does no I/O, no logging, and never raises
into the forwarding path (errors, its own or the sink's, are counted). The sink receives
``(TrackFormat, EncodedFrame)`` and is expected to hand them off quickly (to a queue a writer
thread drains).
"""

from __future__ import annotations

from collections.abc import Callable

from recorder.depacketize import (
    DEFAULT_REORDER_DEPTH,
    DepacketizedFrame,
    FrameAssembler,
    assembler_for,
)
from recorder.media import EncodedFrame, TrackFormat
from recorder.timeline import SourceClock, Timeline

FrameSink = Callable[[TrackFormat, EncodedFrame], None]


class RecordedTrack:
    """Depacketizes and times one track of a recording.

    ``source_id`` names the publisher's clock (the same for its audio and video track, new
    when the program switches to another publisher or the publisher comes back), see
    :class:`recorder.timeline.SourceClock`.
    """

    __slots__ = (
        "_assembler",
        "_sink",
        "_source",
        "_timeline",
        "errors",
        "frames",
        "packets",
        "sink_errors",
    )

    def __init__(
        self,
        codec: str,
        timeline: Timeline,
        sink: FrameSink,
        source_id: str = "",
        *,
        reorder_depth: int = DEFAULT_REORDER_DEPTH,
    ) -> None:
        self._assembler: FrameAssembler = assembler_for(codec, reorder_depth)
        fmt = self._assembler.format
        clock_rate = fmt.clock_rate if fmt is not None else 90000  # RFC 7741/6184: 90 kHz
        self._source = SourceClock(source_id, self._assembler.kind, clock_rate)
        self._timeline = timeline
        self._sink = sink
        self.packets = 0
        self.frames = 0
        self.errors = 0
        self.sink_errors = 0

    @property
    def kind(self) -> str:
        return self._assembler.kind

    @property
    def source_id(self) -> str:
        return self._source.publisher

    @property
    def needs_keyframe(self) -> bool:
        """True until the first keyframe and after a loss dropped a frame: send a PLI."""
        return self._assembler.needs_keyframe

    @property
    def dropped_frames(self) -> int:
        return self._assembler.dropped_frames

    @property
    def lost_packets(self) -> int:
        return self._assembler.lost_packets

    @property
    def format(self) -> TrackFormat | None:
        return self._assembler.format

    def on_packet(
        self, sequence_number: int, timestamp: int, marker: bool, payload: bytes,
        keyframe: bool, now_ms: int,
    ) -> None:
        """PacketObserver: one packet of the recorded track (``keyframe`` is the SFU's hint,
        unused: the depacketizer decides from the whole frame)."""
        self.packets += 1
        try:
            frames = self._assembler.push(sequence_number, timestamp, marker, payload)
            if frames:
                self._emit(frames, now_ms)
        except Exception:  # never break forwarding; the count is the signal
            self.errors += 1

    def on_sender_report(self, ntp: int, rtp_ts: int, now_ms: int) -> None:
        """The publisher's SR for this track (64-bit NTP, RTP timestamp)."""
        try:
            self._timeline.on_sender_report(self._source, ntp, rtp_ts, now_ms)
        except Exception:
            self.errors += 1

    def switch_source(self, source_id: str) -> None:
        """Packets now come from another publisher (program switch) or a restarted one."""
        self._assembler.reset()
        self._source = SourceClock(source_id, self._source.kind, self._source.clock_rate)

    def _emit(self, frames: list[DepacketizedFrame], now_ms: int) -> None:
        fmt = self._assembler.format
        if fmt is None:
            return
        kind = self._source.kind
        for frame in frames:
            pts = self._timeline.place(self._source, frame.timestamp, now_ms)
            self.frames += 1
            try:
                self._sink(fmt, EncodedFrame(kind, frame.data, pts, frame.keyframe))
            except Exception:
                self.sink_errors += 1
