import itertools

from sfu.keyframes import KeyframeGate, PliThrottle


def test_gate_waits_for_keyframe_start_then_stays_open() -> None:
    gate = KeyframeGate()
    assert not gate.is_open
    assert [gate.accept(k) for k in (False, False, True, False, False, True, False)] == [
        False,
        False,
        True,
        True,
        True,
        True,
        True,
    ]
    assert gate.is_open


def test_gate_reset_waits_again() -> None:
    gate = KeyframeGate()
    assert gate.accept(True)
    gate.reset()
    assert not gate.accept(False)
    assert not gate.accept(False)
    assert gate.accept(True)
    assert gate.accept(False)


def test_pli_first_request_goes_out_immediately() -> None:
    pli = PliThrottle()
    assert pli.request(1_000)
    assert not pli.pending
    assert pli.next_due_ms() is None
    assert not pli.due(10_000)


def test_pli_many_requests_one_now_one_later() -> None:
    pli = PliThrottle(min_interval_ms=500)
    sent_now = [pli.request(t) for t in range(10_000, 10_500, 10)]  # 50 subscribers ask
    assert sent_now.count(True) == 1
    assert sent_now[0]
    assert pli.pending
    assert pli.next_due_ms() == 10_500
    assert not pli.due(10_499)
    assert pli.due(10_500)
    assert not pli.due(10_500)  # only once
    assert not pli.due(20_000)
    assert not pli.pending
    assert pli.next_due_ms() is None


def test_pli_rate_never_exceeds_two_per_second() -> None:
    pli = PliThrottle()
    sent: list[int] = []
    for now in range(0, 10_000):  # a request every millisecond for 10 s
        if pli.request(now) or pli.due(now):
            sent.append(now)
    assert len(sent) == 20
    assert all(b - a >= 500 for a, b in itertools.pairwise(sent))


def test_pli_deferred_request_restarts_window() -> None:
    pli = PliThrottle(min_interval_ms=500)
    assert pli.request(0)
    assert not pli.request(100)
    assert pli.due(600)  # sent late, at 600
    assert not pli.request(900)  # within 500 ms of the deferred PLI
    assert pli.next_due_ms() == 1_100
    assert pli.request(1_100) is True  # a fresh request at the window edge goes out directly
    assert not pli.pending


def test_pli_keyframe_clears_pending() -> None:
    pli = PliThrottle(min_interval_ms=500)
    assert pli.request(0)
    assert not pli.request(200)
    assert pli.pending
    pli.keyframe_received(300)
    assert not pli.pending
    assert pli.next_due_ms() is None
    assert not pli.due(1_000)
    assert pli.last_keyframe_ms == 300
    # A request after the keyframe is a new need: still throttled against the last PLI.
    assert pli.request(1_000)


def test_pli_request_after_keyframe_within_window_stays_pending() -> None:
    pli = PliThrottle(min_interval_ms=500)
    assert pli.request(0)
    pli.keyframe_received(100)
    assert not pli.request(150)
    assert pli.pending
    assert pli.due(500)
