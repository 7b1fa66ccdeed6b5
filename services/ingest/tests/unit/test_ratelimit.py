"""The per-source token bucket."""

from __future__ import annotations

import pytest

from tandem_ingest.domain.ratelimit import RateLimit, TokenBucket, retry_after_header


def test_a_burst_passes_then_the_next_request_waits_for_a_token() -> None:
    bucket = TokenBucket(RateLimit(per_second=2, burst=3), now=100.0)
    assert [bucket.take(now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(now=100.0) == pytest.approx(0.5)


def test_tokens_refill_at_the_rate_up_to_the_burst() -> None:
    bucket = TokenBucket(RateLimit(per_second=10, burst=2), now=0.0)
    bucket.take(now=0.0)
    bucket.take(now=0.0)
    assert bucket.take(now=0.1) == 0.0  # one token back after 100 ms
    assert bucket.take(now=0.1) > 0
    assert [bucket.take(now=60.0) for _ in range(3)][:2] == [0.0, 0.0]  # capped at the burst


def test_a_clock_going_backwards_adds_no_tokens() -> None:
    bucket = TokenBucket(RateLimit(per_second=1, burst=1), now=10.0)
    bucket.take(now=10.0)
    assert bucket.take(now=5.0) == pytest.approx(1.0)


@pytest.mark.parametrize(("wait", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (30.0, "30")])
def test_retry_after_is_whole_seconds_at_least_one(wait: float, header: str) -> None:
    assert retry_after_header(wait) == header
