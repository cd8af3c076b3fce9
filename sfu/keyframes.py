"""Keyframe gating for new video subscribers and PLI throttling towards publishers.

RFC 4585 §6.3.1 (PLI). Time is passed in as integer milliseconds.
"""

from __future__ import annotations

PLI_MIN_INTERVAL_MS = 500  # at most two PLIs a second per publisher track, however many ask


class KeyframeGate:
    """Drops video until the first packet that starts a keyframe.

    A decoder cannot start mid-GOP; forwarding delta frames first only produces
    errors and more PLIs. Audio is never gated (callers do not use this for it).
    """

    __slots__ = ("_open",)

    def __init__(self) -> None:
        self._open = False

    def accept(self, is_keyframe_start: bool) -> bool:
        """True if the packet may be forwarded: from the first keyframe start on."""
        if self._open:
            return True
        if is_keyframe_start:
            self._open = True
            return True
        return False

    def reset(self) -> None:
        """Wait for a keyframe again (after a source switch)."""
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open


class PliThrottle:
    """At most one PLI per `min_interval_ms` for one publisher video track.

    A request inside the quiet window is remembered and becomes due when the
    window ends (`due` / `next_due_ms`), unless a keyframe arrives first.
    """

    __slots__ = ("_last_keyframe_ms", "_last_sent_ms", "_pending", "min_interval_ms")

    def __init__(self, min_interval_ms: int = PLI_MIN_INTERVAL_MS) -> None:
        if min_interval_ms < 0:
            raise ValueError("min_interval_ms must not be negative")
        self.min_interval_ms = min_interval_ms
        self._last_sent_ms: int | None = None
        self._pending = False
        self._last_keyframe_ms: int | None = None

    def _window_over(self, now_ms: int) -> bool:
        last = self._last_sent_ms
        return last is None or now_ms - last >= self.min_interval_ms

    def request(self, now_ms: int) -> bool:
        """A subscriber needs a keyframe. True: send a PLI now; False: deferred or merged."""
        if self._window_over(now_ms):
            self._last_sent_ms = now_ms
            self._pending = False
            return True
        self._pending = True
        return False

    def due(self, now_ms: int) -> bool:
        """True once when a deferred request may be sent now (the caller then sends the PLI)."""
        if self._pending and self._window_over(now_ms):
            self._last_sent_ms = now_ms
            self._pending = False
            return True
        return False

    def next_due_ms(self) -> int | None:
        """When the deferred request becomes due, or None if nothing is pending."""
        if not self._pending or self._last_sent_ms is None:
            return None
        return self._last_sent_ms + self.min_interval_ms

    def keyframe_received(self, now_ms: int) -> None:
        """The publisher sent a keyframe: it satisfies every pending request."""
        self._pending = False
        self._last_keyframe_ms = now_ms

    @property
    def pending(self) -> bool:
        return self._pending

    @property
    def last_keyframe_ms(self) -> int | None:
        """Arrival time of the last keyframe seen (for metrics), or None."""
        return self._last_keyframe_ms
