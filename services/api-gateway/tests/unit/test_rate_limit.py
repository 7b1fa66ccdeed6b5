"""The per-key token bucket."""

from __future__ import annotations

from tandem_api_gateway.api.rate_limit import RateLimiter, retry_after_header


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_the_caller_waits_for_a_token() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("k") for _ in range(3)] == [None, None, None]
    wait = limiter.take("k")
    assert wait == 0.5
    clock.now = 0.5
    assert limiter.take("k") is None


def test_keys_have_separate_buckets() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, clock=FakeClock())
    assert limiter.take("a") is None
    assert limiter.take("b") is None
    assert limiter.take("a") is not None


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(2.2) == "3"
