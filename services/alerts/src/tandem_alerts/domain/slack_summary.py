"""Block Kit messages that carry several alerts: a coalesced burst and a digest."""

from __future__ import annotations

from collections.abc import Sequence, Set
from typing import Any

from tandem_alerts.domain.digest import Digest
from tandem_alerts.domain.labels import account_label, kind_label, tier_label
from tandem_alerts.domain.slack_blocks import SlackMessage, ack_button, bullet_sections, cap_blocks
from tandem_alerts.domain.slack_text import (
    MAX_FALLBACK_TEXT,
    context,
    escape_mrkdwn,
    fit_total_text,
    header,
    section,
    slack_date,
    truncate,
)
from tandem_shared.events import AlertRequested

MAX_DIGEST_LINES_PER_ACCOUNT = 10


def render_summary(
    alerts: Sequence[AlertRequested], *, acknowledgeable: Set[str] = frozenset()
) -> SlackMessage:
    """Coalesce a burst of alerts for one channel into a single message, one section each.

    A section has an Acknowledge button only when its handoff is in `acknowledgeable` (the
    recipient may acknowledge it now): the summary's one control, filtered by the policy.
    """
    if not alerts:
        raise ValueError("a summary needs at least one alert")
    count = len(alerts)
    body: list[dict[str, Any]] = [header(f"{count} Tandem alerts")]
    body.extend(_summary_section(alert, acknowledgeable) for alert in alerts)
    footer = context("_Several alerts arrived at once, so they are combined into one message._")
    blocks = cap_blocks(body, [footer])
    fit_total_text(blocks)
    titles = "\n".join(f"• {a.title}" for a in alerts)
    text = truncate(escape_mrkdwn(f"{count} Tandem alerts\n{titles}"), MAX_FALLBACK_TEXT)
    return SlackMessage(text=text, blocks=blocks)


def render_digest(digest: Digest) -> SlackMessage:
    """Render a person's digest: one titled list per account, most recent account first."""
    count = digest.alert_count
    body: list[dict[str, Any]] = [header(f"Your Tandem digest: {count} alerts")]
    for group in digest.groups:
        lines = [_digest_line(a) for a in group.alerts[:MAX_DIGEST_LINES_PER_ACCOUNT]]
        body.extend(bullet_sections(escape_mrkdwn(group.label), lines, total=len(group.alerts)))
    footer = context(f"_Digest of {slack_date(digest.generated_at)}_")
    blocks = cap_blocks(body, [footer])
    fit_total_text(blocks)
    accounts = ", ".join(g.label for g in digest.groups)
    text = truncate(escape_mrkdwn(f"Tandem digest: {count} alerts ({accounts})"), MAX_FALLBACK_TEXT)
    return SlackMessage(text=text, blocks=blocks)


def _summary_section(alert: AlertRequested, acknowledgeable: Set[str]) -> dict[str, Any]:
    facts = [kind_label(alert.kind)]
    if alert.account_name or alert.account_key:
        facts.append(escape_mrkdwn(account_label(alert)))
    if alert.tier:
        facts.append(tier_label(alert.tier))
    if alert.sla_deadline:
        facts.append(f"follow up by {slack_date(alert.sla_deadline)}")
    text = f"*{escape_mrkdwn(alert.title)}*\n{' · '.join(facts)}"
    if alert.summary:
        text = f"{text}\n{escape_mrkdwn(alert.summary)}"
    block = section(text)
    if alert.handoff_id and alert.handoff_id in acknowledgeable:
        # action_id only has to be unique within its block, so every section may carry one.
        block["accessory"] = ack_button(alert.handoff_id)
    return block


def _digest_line(alert: AlertRequested) -> str:
    title = escape_mrkdwn(alert.title)
    url = alert.crm_url
    safe = url is not None and not any(c in url for c in "<>| ")
    link = f" <{escape_mrkdwn(url)}|open>" if url and safe else ""
    return f"{slack_date(alert.requested_at, tokens='{date_short} {time}')} {title}{link}"
