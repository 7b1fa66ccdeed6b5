"""What every transport answers: sent (with Slack's ts) or failed (as the domain describes it)."""

from __future__ import annotations

from dataclasses import dataclass

from tandem_alerts.domain.delivery_policy import (
    Action,
    Decision,
    FailureKind,
    RetryPolicy,
    SlackFailure,
    SmtpFailure,
    classify_slack,
    classify_smtp,
    decide_slack,
    decide_smtp,
)


@dataclass(frozen=True)
class SendResult:
    """The outcome of one send."""

    slack_ts: str | None = None
    slack_channel: str | None = None  # where Slack posted it (a user id opens a D... DM)
    failure: SlackFailure | SmtpFailure | NotConfigured | None = None

    @property
    def ok(self) -> bool:
        """Return True when the message was accepted."""
        return self.failure is None


@dataclass(frozen=True)
class NotConfigured:
    """The delivery's transport is not configured any more (an operator change)."""

    channel: str


def transport_missing(channel: str) -> SendResult:
    """Return the failure of a delivery whose transport is gone."""
    return SendResult(failure=NotConfigured(channel))


def judge(
    failure: SlackFailure | SmtpFailure | NotConfigured,
    *,
    attempts: int,
    policy: RetryPolicy,
    age_seconds: float = 0.0,
) -> tuple[FailureKind, Decision]:
    """Classify a failed send and decide what follows the `attempts`-th attempt."""
    if isinstance(failure, SlackFailure):
        decision = decide_slack(failure, attempts=attempts, age_seconds=age_seconds, policy=policy)
        return classify_slack(failure), decision
    if isinstance(failure, SmtpFailure):
        decision = decide_smtp(failure, attempts=attempts, age_seconds=age_seconds, policy=policy)
        return classify_smtp(failure), decision
    reason = f"permanent failure: no {failure.channel} transport configured"
    return FailureKind.PERMANENT, Decision(Action.GIVE_UP_PERMANENT, reason)
