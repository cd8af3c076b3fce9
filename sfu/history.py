"""Recent packets of one source stream, for answering NACKs (RFC 4585 §6.2.1).

Kept per *source* (publisher) stream and shared by all subscribers: a NACK's
outgoing seq is mapped back with `StreamRewriter.source_sequence` first.
"""

from __future__ import annotations

from typing import NamedTuple

from sfu.rtp import RTP_SEQ_HALF

DEFAULT_HISTORY_CAPACITY = 1024  # ~4 s of 2 Mbit/s video (~220 packets/s)
_EMPTY = -1  # no RTP seq is negative


class StoredPacket(NamedTuple):
    sequence_number: int
    timestamp: int
    marker: bool
    payload: bytes
    arrival_ms: int


class PacketHistory:
    """Ring of the last `capacity` packets, indexed by `seq & (capacity - 1)`.

    Parallel lists: `put` runs per packet and only stores references; the record
    is built in `get`, which runs per NACK. Payloads are kept by reference, so
    pass immutable bytes.
    """

    __slots__ = (
        "_arrivals",
        "_markers",
        "_mask",
        "_payloads",
        "_seqs",
        "_timestamps",
        "capacity",
        "max_age_ms",
    )

    def __init__(
        self, capacity: int = DEFAULT_HISTORY_CAPACITY, max_age_ms: int | None = None
    ) -> None:
        # Power of two so the index is a mask; at most 2^15 so seq comparisons stay unambiguous.
        if capacity <= 0 or capacity & (capacity - 1) or capacity > RTP_SEQ_HALF:
            raise ValueError("capacity must be a power of two no larger than 32768")
        self.capacity = capacity
        self.max_age_ms = max_age_ms
        self._mask = capacity - 1
        self._seqs = [_EMPTY] * capacity
        self._timestamps = [0] * capacity
        self._markers = [False] * capacity
        self._payloads = [b""] * capacity
        self._arrivals = [0] * capacity

    def put(self, seq: int, ts: int, marker: bool, payload: bytes, now_ms: int = 0) -> None:
        """Store a source packet, replacing whatever shared its slot.

        No ordering check: a packet late by a whole ring (seconds) is rare, and a
        check would refuse a restarted stream whose new seqs look "older".
        """
        i = seq & self._mask
        self._seqs[i] = seq
        self._timestamps[i] = ts
        self._markers[i] = marker
        self._payloads[i] = payload
        self._arrivals[i] = now_ms

    def get(self, seq: int, now_ms: int | None = None) -> StoredPacket | None:
        """The stored packet, or None if never seen, overwritten, or older than `max_age_ms`.

        Pass `now_ms` to apply the age limit: a retransmission that arrives after the
        receiver's playout deadline is useless bandwidth.
        """
        i = seq & self._mask
        if self._seqs[i] != seq:
            return None
        arrival = self._arrivals[i]
        max_age = self.max_age_ms
        if max_age is not None and now_ms is not None and now_ms - arrival > max_age:
            return None
        return StoredPacket(seq, self._timestamps[i], self._markers[i], self._payloads[i], arrival)

    def clear(self) -> None:
        """Forget everything (e.g. the publisher restarted with a new SSRC)."""
        for i in range(self.capacity):
            self._seqs[i] = _EMPTY
            self._payloads[i] = b""
