"""Delivery outcome classification and retry decisions."""

from __future__ import annotations

import pytest

from tandem_alerts.domain.delivery_policy import (
    Action,
    FailureKind,
    RetryPolicy,
    SlackFailure,
    SmtpFailure,
    backoff,
    classify_slack,
    classify_smtp,
    decide,
    decide_slack,
    decide_smtp,
)


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (SlackFailure(error="ratelimited", status=429, retry_after=30), FailureKind.RATE_LIMITED),
        (SlackFailure(error="rate_limited", status=200), FailureKind.RATE_LIMITED),
        (SlackFailure(status=429), FailureKind.RATE_LIMITED),
        (SlackFailure(status=500), FailureKind.TRANSIENT),
        (SlackFailure(status=503), FailureKind.TRANSIENT),
        (SlackFailure(timeout=True), FailureKind.TRANSIENT),
        (SlackFailure(error="internal_error"), FailureKind.TRANSIENT),
        (SlackFailure(error="fatal_error"), FailureKind.TRANSIENT),
        (SlackFailure(error="service_unavailable"), FailureKind.TRANSIENT),
        (SlackFailure(error="request_timeout"), FailureKind.TRANSIENT),
        (SlackFailure(error="channel_not_found", status=200), FailureKind.PERMANENT),
        (SlackFailure(error="not_in_channel"), FailureKind.PERMANENT),
        (SlackFailure(error="is_archived"), FailureKind.PERMANENT),
        (SlackFailure(error="invalid_auth"), FailureKind.PERMANENT),
        (SlackFailure(error="account_inactive"), FailureKind.PERMANENT),
        (SlackFailure(error="user_not_found"), FailureKind.PERMANENT),
        (SlackFailure(error="invalid_blocks"), FailureKind.PERMANENT),
        (SlackFailure(error="msg_too_long"), FailureKind.PERMANENT),
        (SlackFailure(error="msg_blocks_too_long"), FailureKind.PERMANENT),
        (SlackFailure(error="some_future_error", status=200), FailureKind.PERMANENT),
    ],
)
def test_slack_classification(failure, kind):
    assert classify_slack(failure) is kind


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (SmtpFailure(code=421), FailureKind.TRANSIENT),
        (SmtpFailure(code=451), FailureKind.TRANSIENT),
        (SmtpFailure(code=450, recipients_refused=True), FailureKind.TRANSIENT),  # greylisting
        (SmtpFailure(code=550, recipients_refused=True), FailureKind.PERMANENT),
        (SmtpFailure(recipients_refused=True), FailureKind.PERMANENT),
        (SmtpFailure(code=535), FailureKind.PERMANENT),
        (SmtpFailure(code=554), FailureKind.PERMANENT),
        (SmtpFailure(timeout=True), FailureKind.TRANSIENT),
        (SmtpFailure(connection_failed=True), FailureKind.TRANSIENT),
    ],
)
def test_smtp_classification(failure, kind):
    assert classify_smtp(failure) is kind


def test_rate_limit_waits_what_the_server_asked():
    decision = decide_slack(
        SlackFailure(error="ratelimited", status=429, retry_after=30), attempts=1
    )
    assert (decision.action, decision.delay_seconds) == (Action.RETRY, 30)
    assert "ratelimited" in decision.reason


def test_rate_limit_without_retry_after_uses_the_default_wait():
    policy = RetryPolicy(default_rate_limit_wait=12)
    decision = decide(FailureKind.RATE_LIMITED, attempts=1, policy=policy)
    assert decision.delay_seconds == 12


def test_permanent_failures_fail_fast():
    decision = decide_slack(SlackFailure(error="channel_not_found"), attempts=1)
    assert decision.action is Action.GIVE_UP_PERMANENT
    assert decision.permanent
    assert decision.reason == "permanent failure: channel_not_found"


def test_transient_failures_retry_by_age_however_many_attempts():
    policy = RetryPolicy(give_up_after=3600)
    for attempts in (5, 50, 5000):
        decision = decide_smtp(
            SmtpFailure(code=421), attempts=attempts, age_seconds=3599, policy=policy
        )
        assert decision.action is Action.RETRY
        assert 0 < decision.delay_seconds <= policy.max_delay


def test_transient_failures_give_up_once_the_delivery_is_too_old():
    policy = RetryPolicy(give_up_after=3600)
    final = decide_smtp(
        SmtpFailure(code=421, message="busy"), attempts=3, age_seconds=5400, policy=policy
    )
    assert final.action is Action.GIVE_UP_EXHAUSTED
    assert not final.permanent
    assert final.reason == "gave up after 1.5 h of failures (3 attempts): smtp 421 busy"


def test_a_first_transient_failure_is_retried_even_with_no_patience_left():
    decision = decide(FailureKind.TRANSIENT, attempts=1, policy=RetryPolicy(give_up_after=1))
    assert decision.action is Action.RETRY


@pytest.mark.parametrize("attempts", [1, 5, 6, 100, 10_000])
def test_a_429_never_counts_towards_giving_up(attempts):
    policy = RetryPolicy(give_up_after=60)
    failure = SlackFailure(error="ratelimited", status=429, retry_after=7)
    decision = decide_slack(failure, attempts=attempts, age_seconds=10 * 86400, policy=policy)
    assert (decision.action, decision.delay_seconds) == (Action.RETRY, 7)


def test_permanent_failures_fail_fast_whatever_the_age():
    decision = decide_slack(SlackFailure(error="invalid_auth"), attempts=1, age_seconds=0)
    assert decision.action is Action.GIVE_UP_PERMANENT


def test_backoff_stays_capped_after_very_many_attempts():
    policy = RetryPolicy(base_delay=2, max_delay=300)
    assert backoff(100_000, policy=policy, rand=lambda: 0.999999) <= 300
    assert backoff(100_000, policy=policy, rand=lambda: 0.0) == 150


def test_backoff_grows_exponentially_with_bounded_jitter():
    policy = RetryPolicy(base_delay=2, max_delay=60)
    lows = [backoff(n, policy=policy, rand=lambda: 0.0) for n in range(1, 9)]
    highs = [backoff(n, policy=policy, rand=lambda: 0.999999) for n in range(1, 9)]
    assert lows[:5] == [1, 2, 4, 8, 16]
    assert all(high <= 60 for high in highs)
    assert lows[-1] == 30  # capped: half of max_delay is the fixed part
    assert all(low < high for low, high in zip(lows, highs, strict=True))


def test_transient_retry_uses_the_backoff():
    decision = decide_slack(SlackFailure(status=502), attempts=2, rand=lambda: 0.5)
    assert decision.action is Action.RETRY
    assert decision.delay_seconds == 3.0  # ceiling 4 s: 2 fixed + 0.5 * 2 random
    assert decision.reason == "transient failure: http 502"
