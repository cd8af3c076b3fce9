"""Full collections freeze their survivors, and everything is thawed once in a while."""

import gc

from signalling import gc_pauses
from signalling.gc_pauses import GcPauses


def test_survivors_of_a_full_collection_are_frozen_then_thawed_on_schedule() -> None:
    clock = [0.0]
    before = gc.get_threshold()
    pauses = GcPauses(clock=lambda: clock[0])
    try:
        assert gc.get_threshold() == gc_pauses.THRESHOLDS
        assert gc.get_freeze_count() > 0  # start-up's objects
        kept = [[] for _ in range(1000)]
        gc.collect()
        assert gc.get_freeze_count() >= 1000  # they survived a full collection: no longer scanned
        clock[0] += gc_pauses.THAW_INTERVAL_SECONDS + 1  # ten minutes later
        gc.collect()
        assert gc.get_freeze_count() == 0  # the collector sees everything again, once
        gc.collect()
        assert gc.get_freeze_count() >= 1000  # and frozen again after that collection
        del kept
    finally:
        pauses.close()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
    assert pauses._on_collection not in gc.callbacks
