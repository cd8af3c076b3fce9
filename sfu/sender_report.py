"""Sender-report timing for forwarded streams (RFC 3550 §6.4.1).

Receivers sync audio and video by mapping each stream's RTP timestamps to the
NTP clock of its sender reports. The publisher's audio and video share one NTP
clock, so a subscriber's SR must carry the publisher's NTP time with the RTP
timestamp moved into that subscriber's outgoing timestamp space.

One `SenderReportTranslator` per source track (shared by its subscribers); the
per-subscriber part is the `StreamRewriter`'s timestamp offset.
"""

from __future__ import annotations

from sfu.rtp import RTP_TS_MASK
from sfu.sequencer import StreamRewriter

NTP_FRACTION_PER_SECOND = 1 << 32  # RFC 3550 §4: 64-bit NTP, 32-bit fraction
NTP_MASK = (1 << 64) - 1
MS_PER_SECOND = 1000


class SenderReportTranslator:
    """Holds the publisher's latest SR and derives the (ntp, rtp_ts) pair for a subscriber."""

    __slots__ = ("_arrival_ms", "_ntp", "_rtp_ts", "clock_rate")

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self._ntp: int | None = None
        self._rtp_ts = 0
        self._arrival_ms = 0

    def on_publisher_report(self, ntp: int, rtp_ts: int, now_ms: int) -> None:
        """Record the publisher's SR (64-bit NTP timestamp, RTP timestamp) and its arrival time."""
        self._ntp = ntp & NTP_MASK
        self._rtp_ts = rtp_ts & RTP_TS_MASK
        self._arrival_ms = now_ms

    def translate(self, rewriter: StreamRewriter, now_ms: int) -> tuple[int, int] | None:
        """(ntp, rtp_ts_out) for an SR sent to this subscriber at `now_ms`, or None.

        Both halves are advanced by the time since the publisher's SR arrived, so
        the pair stays a consistent (wallclock, media time) sample and the NTP
        value is close to the send time. None before the first publisher SR or
        before the rewriter has forwarded a packet of this source.
        """
        if self._ntp is None:
            return None
        elapsed_ms = now_ms - self._arrival_ms
        source_ts = (self._rtp_ts + elapsed_ms * self.clock_rate // MS_PER_SECOND) & RTP_TS_MASK
        out_ts = rewriter.translate_timestamp(source_ts)
        if out_ts is None:
            return None
        ntp = (self._ntp + elapsed_ms * NTP_FRACTION_PER_SECOND // MS_PER_SECOND) & NTP_MASK
        return ntp, out_ts

    @property
    def has_report(self) -> bool:
        return self._ntp is not None
