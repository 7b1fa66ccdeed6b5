"""What every transport answers: sent (with Slack's ts) or failed (as the domain describes it)."""

from __future__ import annotations

from dataclasses import dataclass

from tandem_alerts.domain.delivery_policy import SlackFailure, SmtpFailure


@dataclass(frozen=True)
class SendResult:
    """The outcome of one send."""

    slack_ts: str | None = None
    failure: SlackFailure | SmtpFailure | None = None

    @property
    def ok(self) -> bool:
        """Return True when the message was accepted."""
        return self.failure is None
