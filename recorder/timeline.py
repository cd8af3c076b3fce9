"""RTP timestamps of every source onto one recording clock, in milliseconds from its start.

A publisher's audio and video have unrelated RTP timestamp origins and rates; what ties them
together is the NTP wallclock of their sender reports (RFC 3550 §6.4.1). So:

- before a source's first SR, its frames are placed by arrival: the first frame at its arrival
  time, the next ones by RTP timestamp difference from it;
- once an SR is known, by NTP: ``pts = ntp_ms(rtp) + offset`` where the offset (one per
  publisher clock, shared by its audio and video) is chosen when it is first needed, so that
  the source that brought it does not jump. The other sources of that publisher then line up
  with it to within rounding, whatever their arrival jitter was;
- a new source (program switch, publisher back with a new SSRC) starts at its arrival time:
  the recording clock goes on with real elapsed time, never back;
- a source whose timestamps stop agreeing with arrival by seconds (a restarted stream behind
  the same source id) is re-anchored on arrival.

Output pts are strictly increasing per kind (a muxer rejects equal or decreasing times).
Pure: time is passed in, nothing is read from a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from sfu.rtp import RTP_TS_MASK, ts_diff

NTP_FRACTION_PER_SECOND = 1 << 32  # RFC 3550 §4: 64-bit NTP, 32.32 fixed point
NTP_MASK = (1 << 64) - 1
MS_PER_SECOND = 1000
# Timestamps more than this away from arrival time belong to another stream (restart,
# garbage), not to network delay or clock drift (~50 ppm, well under a second an hour).
DISCONTINUITY_MS = 3000.0
# The smallest step between two frames of one kind: muxers such as WebM count in ms.
MIN_STEP_MS = 1.0
# Sources remembered (a program switches back and forth between a few publishers).
MAX_SOURCES = 64


@dataclass(frozen=True, slots=True)
class SourceClock:
    """One RTP stream as the timeline sees it.

    ``publisher`` names the NTP clock: the same for a publisher's audio and video (their SRs
    share it), different for another publisher or a publisher that came back.
    """

    publisher: str
    kind: str  # "video" | "audio"
    clock_rate: int


class _SourceState:
    __slots__ = ("anchor_ext", "anchor_ms", "last_ext", "sr_ext", "sr_ntp_ms")

    def __init__(self) -> None:
        self.last_ext: int | None = None  # unwrapped RTP timestamp of the latest frame or SR
        self.anchor_ext = 0  # arrival anchor: this RTP timestamp was at anchor_ms
        self.anchor_ms: float | None = None
        self.sr_ext = 0  # latest SR: this RTP timestamp was at sr_ntp_ms on the NTP clock
        self.sr_ntp_ms: float | None = None

    def unwrap(self, rtp_ts: int) -> int:
        """RFC 3550 §A.1-style extension of the 32-bit timestamp (nearest to the last one)."""
        rtp_ts &= RTP_TS_MASK
        if self.last_ext is None:
            ext = rtp_ts
        else:
            ext = self.last_ext + ts_diff(rtp_ts, self.last_ext & RTP_TS_MASK)
        self.last_ext = ext
        return ext


def ntp_to_ms(ntp64: int) -> float:
    """A 64-bit NTP timestamp (RFC 3550 §4) in ms."""
    ntp64 &= NTP_MASK
    return (ntp64 >> 32) * MS_PER_SECOND + (ntp64 & 0xFFFFFFFF) * MS_PER_SECOND / (
        NTP_FRACTION_PER_SECOND
    )


class Timeline:
    """The recording's clock. One per recording, shared by its audio and video tracks."""

    __slots__ = ("_last_pts", "_offsets", "_sources", "_start_ms", "reanchored")

    def __init__(self) -> None:
        self._start_ms: int | None = None
        self._sources: dict[SourceClock, _SourceState] = {}
        self._offsets: dict[str, float] = {}  # publisher -> recording ms minus NTP ms
        self._last_pts: dict[str, float] = {}
        self.reanchored = 0

    @property
    def started(self) -> bool:
        return self._start_ms is not None

    def elapsed_ms(self, now_ms: int) -> float:
        """Recording time at ``now_ms`` by arrival (0 before the first frame)."""
        return 0.0 if self._start_ms is None else float(now_ms - self._start_ms)

    def _state(self, source: SourceClock) -> _SourceState:
        state = self._sources.get(source)
        if state is None:
            if len(self._sources) >= MAX_SOURCES:
                del self._sources[next(iter(self._sources))]
            state = self._sources[source] = _SourceState()
        return state

    def on_sender_report(self, source: SourceClock, ntp64: int, rtp_ts: int, now_ms: int) -> None:
        """The source's publisher said: RTP timestamp ``rtp_ts`` was at NTP time ``ntp64``."""
        state = self._state(source)
        if state.last_ext is None:
            ext = rtp_ts & RTP_TS_MASK
            state.last_ext = ext
        else:
            # Unwrap against the latest frame without moving it (an SR may run slightly ahead).
            ext = state.last_ext + ts_diff(rtp_ts & RTP_TS_MASK, state.last_ext & RTP_TS_MASK)
        state.sr_ext = ext
        state.sr_ntp_ms = ntp_to_ms(ntp64)

    def place(self, source: SourceClock, rtp_ts: int, now_ms: int) -> float:
        """The pts (ms on the recording clock) of the source's frame with this timestamp."""
        if self._start_ms is None:
            self._start_ms = now_ms
        arrival = float(now_ms - self._start_ms)
        state = self._state(source)
        ext = state.unwrap(rtp_ts)
        rate_ms = source.clock_rate / MS_PER_SECOND
        if state.anchor_ms is None:
            state.anchor_ext, state.anchor_ms = ext, arrival
        by_arrival = state.anchor_ms + (ext - state.anchor_ext) / rate_ms
        pts = by_arrival
        offset = self._offsets.get(source.publisher)
        if state.sr_ntp_ms is not None:
            by_ntp = state.sr_ntp_ms + (ext - state.sr_ext) / rate_ms
            if offset is None:
                offset = self._offsets[source.publisher] = by_arrival - by_ntp
            pts = by_ntp + offset
        if abs(pts - arrival) > DISCONTINUITY_MS:
            # Another stream behind the same source: start it over at its arrival, and let
            # the publisher's NTP offset be chosen again (its clock may have changed too).
            self.reanchored += 1
            state.anchor_ext, state.anchor_ms = ext, arrival
            state.sr_ntp_ms = None
            self._offsets.pop(source.publisher, None)
            pts = arrival
        last = self._last_pts.get(source.kind)
        if last is not None and pts < last + MIN_STEP_MS:
            pts = last + MIN_STEP_MS
        self._last_pts[source.kind] = pts
        return pts
