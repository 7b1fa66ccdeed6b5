"""The log sink: where alerts go when no Slack or SMTP is configured (read in `make up`)."""

from __future__ import annotations

import structlog

from tandem_alerts.adapters.senders import SendResult
from tandem_alerts.domain.labels import account_label, tier_label
from tandem_shared.events import AlertRequested

log = structlog.get_logger("tandem_alerts.sink")


class LogSink:
    """Writes each alert as one readable structured log line; always succeeds."""

    def send(self, recipient: str, alerts: list[AlertRequested], *, digest: bool) -> SendResult:
        """Log the alerts addressed to `recipient` (several for a coalesced burst or a digest)."""
        for alert in alerts:
            log.info(
                f"ALERT for {recipient}: {alert.title}",
                recipient=recipient,
                title=alert.title,
                account=account_label(alert),
                tier=tier_label(alert.tier) if alert.tier else None,
                kind=alert.kind.value,
                urgency=alert.urgency.value,
                summary=alert.summary or None,
                reason=alert.reason,
                crm_url=alert.crm_url,
                alert_id=alert.alert_id,
                digest=digest,
            )
        return SendResult()
