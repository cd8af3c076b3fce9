"""How often the bandwidth estimate goes back to a publisher (REMB, draft-alvestrand-rmcat-remb).

aiortc's receive-side estimator offers a new estimate every feedback interval, and on every
packet while it sees the path overused: on a busy node (where queueing delay looks like
overuse) that was one REMB per packet received, a storm of RTCP that loaded the node further.
libwebrtc's REMB throttle is the model: an estimate goes out at most every 200 ms, and at once
when it fell below 97 % of the last one sent (a drop the publisher must act on). Time is
passed in as integer milliseconds.
"""

from __future__ import annotations

REMB_MIN_INTERVAL_MS = 200
# An estimate this far below the last one sent goes out without waiting (per mille).
REMB_DROP_PER_MILLE = 970


class RembThrottle:
    """Decides which of the estimator's bitrates are sent to the publisher."""

    __slots__ = ("_last_bitrate", "_last_sent_ms", "min_interval_ms")

    def __init__(self, min_interval_ms: int = REMB_MIN_INTERVAL_MS) -> None:
        self.min_interval_ms = min_interval_ms
        self._last_sent_ms: int | None = None
        self._last_bitrate = 0

    def should_send(self, bitrate: int, now_ms: int) -> bool:
        """True when ``bitrate`` (bit/s), estimated at ``now_ms``, is to be sent now."""
        last = self._last_sent_ms
        if (last is None or now_ms - last >= self.min_interval_ms
                or bitrate * 1000 < self._last_bitrate * REMB_DROP_PER_MILLE):
            self._last_sent_ms = now_ms
            self._last_bitrate = bitrate
            return True
        return False
