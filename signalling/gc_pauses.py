"""Keep CPython's full garbage collections short on a node that holds thousands of sockets.

A full (generation 2) collection scans every tracked object: with 2,000 socket.io connections
that is about 300 ms in which the event loop serves nothing (measured with
``tests/perf/bench_audience.py``). Objects that survived a full collection are long-lived
(connections, rooms, tracks): after each one they are moved to the permanent generation
(:func:`gc.freeze`), so the next full collection scans only what is newer. Reference counting
still frees frozen objects as usual; only *cyclic* garbage among them waits, until
:data:`THAW_INTERVAL_SECONDS` later every object is returned to the collector once.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

THAW_INTERVAL_SECONDS = 600.0
# Older generations collected more often than CPython's (700, 10, 10): with survivors frozen,
# each collection scans what a few thousand allocations left, so its pause stays short.
THRESHOLDS = (700, 4, 2)


class GcPauses:
    """Installs itself as a gc callback; :meth:`close` removes it and thaws everything."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last_thaw = clock()
        gc.freeze()  # what start-up made (modules, classes) lives as long as the process
        self._thresholds = gc.get_threshold()
        gc.set_threshold(*THRESHOLDS)
        gc.callbacks.append(self._on_collection)

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info["generation"] != 2:
            return
        now = self._clock()
        if now - self._last_thaw >= THAW_INTERVAL_SECONDS:
            self._last_thaw = now
            gc.unfreeze()  # the next full collection looks at everything once
        else:
            gc.freeze()

    def close(self) -> None:
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)
        gc.set_threshold(*self._thresholds)
        gc.unfreeze()
