"""RembThrottle: the publisher hears the estimate often enough, never once per packet."""

from sfu.remb import REMB_MIN_INTERVAL_MS, RembThrottle


def test_the_first_estimate_goes_out_then_at_most_one_per_interval() -> None:
    throttle = RembThrottle()
    assert throttle.should_send(1_000_000, 0)
    # A node that sees overuse offers an estimate on every packet: those are held back.
    sent = [now for now in range(1, 1000) if throttle.should_send(1_000_000, now)]
    assert sent == [REMB_MIN_INTERVAL_MS * k for k in range(1, 5)]


def test_a_drop_of_more_than_three_percent_goes_out_at_once() -> None:
    throttle = RembThrottle()
    assert throttle.should_send(1_000_000, 0)
    assert not throttle.should_send(980_000, 10)  # 2 % less: waits for the interval
    assert throttle.should_send(960_000, 20)  # 4 % less: the publisher must slow down now
    assert not throttle.should_send(990_000, 30)  # a rise waits
    assert throttle.should_send(990_000, 20 + REMB_MIN_INTERVAL_MS)
