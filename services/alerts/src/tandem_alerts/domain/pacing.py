"""Per-Slack-channel pacing: about one message a second, and a summary instead of a pile-up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True, kw_only=True)
class PacingPolicy:
    rate_per_second: float = 1.0  # Slack's documented per-channel pace
    burst: float = 3.0  # messages that may go back to back after a quiet spell
    # Longest a queued alert may wait to go out alone; a bigger backlog becomes one summary.
    max_delay: timedelta = timedelta(seconds=3)


DEFAULT_PACING_POLICY = PacingPolicy()


class QueuedAlert(BaseModel):
    """An alert waiting for its turn on a channel."""

    model_config = ConfigDict(frozen=True)

    alert_id: str
    enqueued_at: datetime


class Pace(StrEnum):
    IDLE = "idle"  # nothing queued
    SEND = "send"  # send the one alert in `alert_ids` on its own
    COALESCE = "coalesce"  # send every alert in `alert_ids` as one summary message
    WAIT = "wait"  # ask again after `wait_seconds`


class ChannelPacer(BaseModel):
    """A token bucket for one channel; immutable, JSON-serializable with model_dump."""

    model_config = ConfigDict(frozen=True)

    tokens: float = DEFAULT_PACING_POLICY.burst
    updated_at: datetime | None = None
    blocked_until: datetime | None = None  # set by a 429's Retry-After

    def refilled(self, *, now: datetime, policy: PacingPolicy) -> ChannelPacer:
        """Return the bucket with the tokens earned since it was last updated."""
        if self.updated_at is None:
            return self.model_copy(update={"tokens": policy.burst, "updated_at": now})
        elapsed = max(0.0, (now - self.updated_at).total_seconds())
        tokens = min(policy.burst, self.tokens + elapsed * policy.rate_per_second)
        return self.model_copy(update={"tokens": tokens, "updated_at": max(now, self.updated_at)})

    def throttled(self, *, now: datetime, retry_after: float) -> ChannelPacer:
        """Return the bucket emptied and blocked for the server's Retry-After."""
        until = now + timedelta(seconds=max(0.0, retry_after))
        return self.model_copy(update={"tokens": 0.0, "updated_at": now, "blocked_until": until})


@dataclass(frozen=True)
class PaceDecision:
    pace: Pace
    pacer: ChannelPacer  # the state to keep for the channel
    alert_ids: tuple[str, ...] = ()
    wait_seconds: float = 0.0


def pace_channel(
    pacer: ChannelPacer,
    queued: Sequence[QueuedAlert],
    *,
    now: datetime,
    policy: PacingPolicy = DEFAULT_PACING_POLICY,
) -> PaceDecision:
    """Decide what a channel's queue does now: send one, coalesce all, wait, or nothing."""
    if not queued:
        return PaceDecision(Pace.IDLE, pacer)
    if pacer.blocked_until is not None and now < pacer.blocked_until:
        return PaceDecision(Pace.WAIT, pacer, wait_seconds=_seconds(pacer.blocked_until - now))
    bucket = pacer.refilled(now=now, policy=policy).model_copy(update={"blocked_until": None})
    if bucket.tokens < 1.0:
        wait = (1.0 - bucket.tokens) / policy.rate_per_second
        return PaceDecision(Pace.WAIT, bucket, wait_seconds=wait)
    spent = bucket.model_copy(update={"tokens": bucket.tokens - 1.0})
    ordered = sorted(queued, key=lambda q: q.enqueued_at)
    if len(ordered) > 1 and _backlog_too_slow(ordered, bucket.tokens, now=now, policy=policy):
        return PaceDecision(Pace.COALESCE, spent, tuple(q.alert_id for q in ordered))
    return PaceDecision(Pace.SEND, spent, (ordered[0].alert_id,))


def _backlog_too_slow(
    ordered: Sequence[QueuedAlert], tokens: float, *, now: datetime, policy: PacingPolicy
) -> bool:
    """Return True when sending one by one would keep some alert waiting past max_delay."""
    # The last of n alerts leaves after the tokens in hand run out and the rest are earned.
    last_leaves_in = max(0.0, len(ordered) - tokens) / policy.rate_per_second
    oldest_waited = _seconds(now - ordered[0].enqueued_at)
    limit = policy.max_delay.total_seconds()
    return last_leaves_in > limit or oldest_waited > limit


def _seconds(delta: timedelta) -> float:
    return max(0.0, delta.total_seconds())
