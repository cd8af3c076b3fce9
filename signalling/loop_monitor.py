"""How late the node's event loop runs: the stall every request, join and RTCP packet feels.

A timer is set every :data:`PROBE_INTERVAL_SECONDS`; how much later than asked it fires is the
loop's lag at that moment. ``/metrics`` shows the lags as a histogram and the worst one since
the previous scrape (``fairwire_event_loop_worst_lag_seconds``), which is what an operator
alerts on and what ``tests/perf/bench_audience.py`` reports as the node's loop stall.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

PROBE_INTERVAL_SECONDS = 0.02


class LoopMonitor:
    def __init__(self, observe: Callable[[float], None],
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._observe = observe
        self._clock = clock
        self._worst = 0.0

    def record(self, lag: float) -> None:
        lag = max(0.0, lag)
        self._worst = max(self._worst, lag)
        self._observe(lag)

    def take_worst(self) -> float:
        """The worst lag since the previous call (then starts over)."""
        worst, self._worst = self._worst, 0.0
        return worst

    async def run(self) -> None:
        while True:
            started = self._clock()
            await asyncio.sleep(PROBE_INTERVAL_SECONDS)
            self.record(self._clock() - started - PROBE_INTERVAL_SECONDS)
