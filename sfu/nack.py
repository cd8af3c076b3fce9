"""Per-subscriber retransmission throttle for NACK handling (RFC 4585 §6.2.1).

Receivers repeat NACKs for a packet until it arrives; resending on every
repeat within one round trip only duplicates traffic on a congested link.
"""

from __future__ import annotations

NACK_MIN_INTERVAL_MS = 100  # about one RTT
NACK_TRACKED_PACKETS = 1024  # matches the packet history; older seqs are not resendable anyway
_EMPTY = -1


class NackResponder:
    """Remembers when each outgoing seq was last resent, in a fixed-size ring."""

    __slots__ = ("_mask", "_sent_ms", "_seqs", "min_interval_ms")

    def __init__(
        self, min_interval_ms: int = NACK_MIN_INTERVAL_MS, capacity: int = NACK_TRACKED_PACKETS
    ) -> None:
        if capacity <= 0 or capacity & (capacity - 1):
            raise ValueError("capacity must be a power of two")
        self.min_interval_ms = min_interval_ms
        self._mask = capacity - 1
        self._seqs = [_EMPTY] * capacity
        self._sent_ms = [0] * capacity

    def should_resend(self, out_seq: int, now_ms: int) -> bool:
        """True if `out_seq` may be retransmitted now; records the resend when True."""
        i = out_seq & self._mask
        if self._seqs[i] == out_seq and now_ms - self._sent_ms[i] < self.min_interval_ms:
            return False
        self._seqs[i] = out_seq
        self._sent_ms[i] = now_ms
        return True
