"""The event-loop lag probe: what /metrics reports as the node's stalls."""

import asyncio
import time

from signalling.loop_monitor import PROBE_INTERVAL_SECONDS, LoopMonitor


def test_the_worst_lag_is_kept_until_read_then_starts_over() -> None:
    seen: list[float] = []
    monitor = LoopMonitor(seen.append)
    for lag in (0.002, 0.040, -0.001, 0.010):
        monitor.record(lag)
    assert seen == [0.002, 0.040, 0.0, 0.010]
    assert monitor.take_worst() == 0.040
    assert monitor.take_worst() == 0.0


async def test_a_blocked_loop_shows_as_lag() -> None:
    seen: list[float] = []
    monitor = LoopMonitor(seen.append)
    task = asyncio.ensure_future(monitor.run())
    try:
        await asyncio.sleep(PROBE_INTERVAL_SECONDS * 3)
        time.sleep(0.15)  # noqa: ASYNC251 - the loop held, as by a long collection
        await asyncio.sleep(PROBE_INTERVAL_SECONDS * 3)
    finally:
        task.cancel()
    assert monitor.take_worst() >= 0.1
    assert len(seen) >= 3
