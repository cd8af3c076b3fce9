from signalling.ratelimit import RateLimiter


def test_bursts_then_refills_at_the_rate() -> None:
    limiter = RateLimiter(rate_per_minute=60, burst=3)
    assert [limiter.allow("a", now=0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.retry_after("a") == 1.0
    assert limiter.allow("b", now=0.0)  # keys are independent
    assert not limiter.allow("a", now=0.5)
    assert limiter.allow("a", now=1.6)
    limiter.forget("a")
    assert [limiter.allow("a", now=1.6) for _ in range(3)] == [True, True, True]


def test_memory_stays_bounded() -> None:
    limiter = RateLimiter(rate_per_minute=60, burst=1, max_keys=100)
    for i in range(1000):
        limiter.allow(f"k{i}", now=float(i))
    assert len(limiter._buckets) <= 100
