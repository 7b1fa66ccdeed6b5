"""A token bucket per source: a steady rate with bursts, answered with how long to wait."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field


class RateLimit(BaseModel):
    """Requests per second a source may send, and the burst it may send at once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_second: float = Field(1000.0, gt=0)
    burst: int = Field(2000, ge=1)


class TokenBucket:
    """Tokens refill at `per_second` up to `burst`; each request takes one."""

    def __init__(self, limit: RateLimit, *, now: float) -> None:
        self._rate = limit.per_second
        self._capacity = float(limit.burst)
        self._tokens = float(limit.burst)
        self._updated = now

    def take(self, *, now: float) -> float:
        """Take a token at monotonic instant `now`; return 0, or the seconds to wait for one."""
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate


def retry_after_header(wait_seconds: float) -> str:
    """Return a Retry-After value (whole seconds, at least 1) for a wait."""
    return str(max(1, math.ceil(wait_seconds)))
