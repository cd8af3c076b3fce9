"""Per-subscriber sequence number / timestamp rewriting (RFC 3550 §5.1, §8.2 spirit).

A subscriber sees one continuous RTP stream per track even when the source
behind it changes (another publisher, or a publisher that restarted with a new
SSRC, sequence and timestamp). Each source maps through constant offsets fixed
by its first forwarded packet.
"""

from __future__ import annotations

from sfu.rtp import RTP_SEQ_HALF, RTP_SEQ_MASK, RTP_TS_HALF, RTP_TS_MASK

MS_PER_SECOND = 1000


class StreamRewriter:
    """Maps source (seq, ts) to the outgoing sequence/timestamp space of one subscriber.

    Call `rewrite` only for packets that are actually forwarded (after keyframe
    gating): the first one after construction or `switch_source` fixes the offsets.
    """

    __slots__ = (
        "_fresh",
        "_high_seq",
        "_high_ts",
        "_high_ts_ms",
        "_seq_offset",
        "_span",
        "_started",
        "_ts_offset",
        "clock_rate",
    )

    def __init__(
        self, clock_rate: int, initial_sequence_number: int, initial_timestamp: int
    ) -> None:
        if clock_rate <= 0:
            raise ValueError("clock_rate must be positive")
        self.clock_rate = clock_rate
        self._seq_offset = 0
        self._ts_offset = 0
        self._fresh = True  # next packet starts a source and fixes the offsets
        self._started = False  # nothing sent yet: the first packet uses the initial values
        # Highest outgoing seq/ts sent so far (modular) and the wall time of that ts.
        self._high_seq = initial_sequence_number & RTP_SEQ_MASK
        self._high_ts = initial_timestamp & RTP_TS_MASK
        self._high_ts_ms = 0
        # Unwrapped distance from the current source's first outgoing seq to the highest one:
        # a packet whose distance would be negative predates the source and must not be sent.
        self._span = 0

    def switch_source(self) -> None:
        """The next packet passed to `rewrite` comes from a new source."""
        self._fresh = True

    def _start_source(self, seq: int, ts: int, now_ms: int) -> None:
        if self._started:
            first_seq = (self._high_seq + 1) & RTP_SEQ_MASK
            # Advance by the wall time since the last sent timestamp so playout timing holds;
            # at least one tick so timestamps keep increasing.
            ticks = max(1, (now_ms - self._high_ts_ms) * self.clock_rate // MS_PER_SECOND)
            first_ts = (self._high_ts + ticks) & RTP_TS_MASK
        else:
            first_seq = self._high_seq
            first_ts = self._high_ts
            self._started = True
        self._seq_offset = (first_seq - seq) & RTP_SEQ_MASK
        self._ts_offset = (first_ts - ts) & RTP_TS_MASK
        self._high_seq = first_seq
        self._high_ts = first_ts
        self._high_ts_ms = now_ms
        self._span = 0
        self._fresh = False

    def rewrite(self, seq: int, ts: int, now_ms: int) -> tuple[int, int] | None:
        """Outgoing (seq, ts) for a forwarded source packet, or None to drop it.

        None means the packet is older than the first forwarded packet of the
        current source (a late packet of a frame that was never forwarded):
        sending it would reuse an outgoing seq of the previous source.
        """
        if self._fresh:
            self._start_source(seq, ts, now_ms)
        out_seq = (seq + self._seq_offset) & RTP_SEQ_MASK
        d = ((out_seq - self._high_seq + RTP_SEQ_HALF) & RTP_SEQ_MASK) - RTP_SEQ_HALF
        if d > 0:
            self._high_seq = out_seq
            self._span += d
        elif self._span + d < 0:
            return None
        out_ts = (ts + self._ts_offset) & RTP_TS_MASK
        if ((out_ts - self._high_ts + RTP_TS_HALF) & RTP_TS_MASK) - RTP_TS_HALF > 0:
            self._high_ts = out_ts
            self._high_ts_ms = now_ms
        return out_seq, out_ts

    def source_sequence(self, out_seq: int) -> int:
        """Source seq for an outgoing seq (for NACK → history lookup), or -1.

        -1 when the outgoing seq belongs to an earlier source, was never sent
        (newer than the highest), or no packet of the current source was sent.
        """
        if self._fresh:
            return -1
        d = ((out_seq - self._high_seq + RTP_SEQ_HALF) & RTP_SEQ_MASK) - RTP_SEQ_HALF
        if d > 0 or self._span + d < 0:
            return -1
        return (out_seq - self._seq_offset) & RTP_SEQ_MASK

    def translate_timestamp(self, source_ts: int) -> int | None:
        """Outgoing timestamp for a source timestamp (e.g. a sender report's), or None.

        None until the current source's offsets are fixed by its first packet.
        """
        if self._fresh:
            return None
        return (source_ts + self._ts_offset) & RTP_TS_MASK

    @property
    def last_sequence_number(self) -> int | None:
        """Highest outgoing seq sent, or None before the first packet."""
        return self._high_seq if self._started else None

    @property
    def last_timestamp(self) -> int | None:
        """Highest outgoing timestamp sent, or None before the first packet."""
        return self._high_ts if self._started else None
