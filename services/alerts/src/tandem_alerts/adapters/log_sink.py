"""The log sink: where alerts go when no Slack or SMTP is configured (read in `make up`)."""

from __future__ import annotations

import structlog

from tandem_alerts.adapters.senders import SendResult
from tandem_alerts.domain.labels import COVER_REASON, account_label, covering_label, tier_label
from tandem_shared.events import AlertRequested

log = structlog.get_logger("tandem_alerts.sink")


class LogSink:
    """Writes each alert as one readable structured log line; always succeeds."""

    def send(
        self,
        recipient: str,
        alerts: list[AlertRequested],
        *,
        digest: bool,
        covering_for: str | None = None,
    ) -> SendResult:
        """Log the alerts addressed to `recipient` (several for a coalesced burst or a digest).

        `covering_for` names the person a cover receives the alert for; the line says so, since
        the alert's own `reason` still explains why that other person was chosen.
        """
        addressee = (
            recipient if covering_for is None else f"{recipient}, {covering_label(covering_for)}"
        )
        for alert in alerts:
            log.info(
                f"ALERT for {addressee}: {alert.title}",
                recipient=recipient,
                covering_for=covering_for,
                cover_reason=COVER_REASON if covering_for is not None else None,
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
