"""What a delivery says: the Slack message or email for one alert, a burst or a digest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

from tandem_alerts.domain.action_links import LABELS, LinkSigner
from tandem_alerts.domain.email_render import RenderedEmail, render_alert_email
from tandem_alerts.domain.handoff_buttons import action_elements, facts_of_alert, offered
from tandem_alerts.domain.slack_blocks import SlackMessage, render_alert
from tandem_alerts.domain.slack_summary import render_summary
from tandem_shared.directory import Directory
from tandem_shared.events import AlertRequested, HandoffAction
from tandem_shared.handoff_policy import HandoffFacts


def slack_message(
    alerts: Sequence[AlertRequested],
    *,
    directory: Directory,
    on_behalf_of: str | None = None,
    recipient_id: str | None = None,
    facts: HandoffFacts | None = None,
    status: Sequence[dict[str, Any]] = (),
    states: Mapping[str, HandoffFacts] | None = None,
) -> SlackMessage:
    """Render one alert as a full message, several (a coalesced burst) as one summary.

    The recipient's message offers the actions they may take on its handoff, and only those;
    a summary offers only Acknowledge, on the handoffs they may acknowledge. `facts` (one
    handoff) or `states` (by handoff id) say where the handoffs stand, else their alerts do.
    """
    known = dict(states or {})
    if facts is not None:
        known[facts.handoff_id] = facts
    if len(alerts) != 1:
        return render_summary(
            alerts, acknowledgeable=_acknowledgeable(alerts, recipient_id, known, directory)
        )
    alert = alerts[0]
    controls: list[dict[str, Any]] = []
    if recipient_id is not None and alert.handoff_id:
        state = facts_of_alert(alert, known.get(alert.handoff_id))
        controls = action_elements(alert, recipient_id, state, directory)
    return render_alert(
        alert,
        assignee=directory.get(alert.assignee_id) if alert.assignee_id else None,
        covering_for=directory.get(on_behalf_of) if on_behalf_of else None,
        handoff_controls=controls,
        status=status,
    )


def _acknowledgeable(
    alerts: Sequence[AlertRequested],
    recipient_id: str | None,
    states: Mapping[str, HandoffFacts],
    directory: Directory,
) -> frozenset[str]:
    """Return the handoffs of a summary its recipient may acknowledge now."""
    if recipient_id is None:
        return frozenset()
    ack = (HandoffAction.ACKNOWLEDGE, None)
    return frozenset(
        alert.handoff_id
        for alert in alerts
        if alert.handoff_id
        and ack
        in offered(
            alert, recipient_id, facts_of_alert(alert, states.get(alert.handoff_id)), directory
        )
    )


def email_message(
    alert: AlertRequested,
    *,
    recipient_id: str,
    directory: Directory,
    on_behalf_of: str | None = None,
    links: LinkSigner | None = None,
    now: datetime | None = None,
) -> RenderedEmail:
    """Render one alert as an email in the recipient's time zone, with its action links."""
    action_links: list[tuple[str, str]] = []
    if links is not None and now is not None and alert.handoff_id:
        for action, to in offered(alert, recipient_id, facts_of_alert(alert), directory):
            claims = links.claims(
                handoff_id=alert.handoff_id,
                alert_id=alert.alert_id,
                person_id=recipient_id,
                action=action,
                hand_on_to=to,
                now=now,
            )
            action_links.append((LABELS[(action, to)], links.url(claims)))
    return render_alert_email(
        alert,
        recipient=directory.get(recipient_id),
        assignee=directory.get(alert.assignee_id) if alert.assignee_id else None,
        covering_for=directory.get(on_behalf_of) if on_behalf_of else None,
        action_links=action_links,
    )


def with_crm_link(alert: AlertRequested, *, base_url: str | None) -> AlertRequested:
    """Resolve a relative CRM link (a record path) against the configured CRM base URL."""
    url = alert.crm_url
    if base_url is None or url is None or url.lower().startswith(("https://", "http://")):
        return alert
    return alert.model_copy(
        update={"crm_url": urljoin(base_url.rstrip("/") + "/", url.lstrip("/"))}
    )
