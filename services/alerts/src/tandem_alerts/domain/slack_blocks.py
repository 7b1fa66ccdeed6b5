"""Block Kit rendering of one alert: what happened, who owns it, why, and what to do next."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tandem_alerts.domain.handoff_buttons import block_id as handoff_block_id
from tandem_alerts.domain.labels import (
    account_label,
    covering_label,
    kind_label,
    signal_label,
    tier_label,
)
from tandem_alerts.domain.slack_text import (
    MAX_ACTION_ELEMENTS,
    MAX_BLOCKS,
    MAX_BUTTON_TEXT,
    MAX_BUTTON_VALUE,
    MAX_FALLBACK_TEXT,
    MAX_FIELD_TEXT,
    MAX_FIELDS,
    MAX_SECTION_TEXT,
    MAX_URL,
    context,
    escape_mrkdwn,
    fit_total_text,
    header,
    mrkdwn,
    plain,
    section,
    slack_date,
    truncate,
)
from tandem_shared.directory import Person
from tandem_shared.events import AlertRequested, EngagementItem, IntentItem

ACK_ACTION_ID = "ack_handoff"
OPEN_CRM_ACTION_ID = "open_crm"

# How many items of each list a message shows before pointing at the CRM for the rest.
MAX_ENGAGEMENT_ITEMS = 15
MAX_CONTENT_ITEMS = 10
MAX_INTENT_ITEMS = 10
MAX_LINE = 300


@dataclass(frozen=True)
class SlackMessage:
    """A chat.postMessage body: the notification fallback `text` and the Block Kit blocks."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        """Return the keyword arguments for chat.postMessage (without the channel)."""
        return {"text": self.text, "blocks": self.blocks}


def render_alert(
    alert: AlertRequested,
    *,
    assignee: Person | None = None,
    covering_for: Person | None = None,
    handoff_controls: Sequence[dict[str, Any]] = (),
    status: Sequence[dict[str, Any]] = (),
) -> SlackMessage:
    """Render an alert as a Block Kit message that always fits Slack's limits.

    `handoff_controls` are the actions its recipient may take (domain/handoff_buttons.py);
    `status` says what was done already (after a click, the message is updated in place).
    """
    body: list[dict[str, Any]] = [header(alert.title)]
    if covering_for is not None:
        name = escape_mrkdwn(covering_for.name)
        body.append(context(f":rotating_light: You are {covering_label(name)}."))
    if alert.summary:
        body.append(section(escape_mrkdwn(alert.summary)))
    body.append(_facts(alert, assignee))
    if alert.reason:
        body.append(section(f"*Why*\n{escape_mrkdwn(alert.reason)}"))
    body.extend(_handoff_context(alert))
    tail = [*status]
    tail += [b for b in (_actions(alert, handoff_controls), _footer(alert)) if b is not None]
    blocks = cap_blocks(body, tail)
    fit_total_text(blocks)
    return SlackMessage(text=fallback_text(alert, assignee=assignee), blocks=blocks)


def fallback_text(alert: AlertRequested, *, assignee: Person | None = None) -> str:
    """Return the plain notification text shown where blocks are not (push, screen readers)."""
    parts = [alert.title]
    if alert.account_name or alert.account_key:
        tier = f" ({tier_label(alert.tier)})" if alert.tier else ""
        parts.append(f"{account_label(alert)}{tier}")
    if alert.signal:
        parts.append(signal_label(alert.signal))
    owner = _assignee_name(alert, assignee)
    if owner:
        parts.append(f"assigned to {owner}")
    text = " — ".join(parts)
    if alert.summary:
        text = f"{text}\n{alert.summary}"
    return truncate(escape_mrkdwn(text), MAX_FALLBACK_TEXT)


def cap_blocks(body: list[dict[str, Any]], tail: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Join body and tail within the 50-block limit, keeping the tail and noting what was cut."""
    room = MAX_BLOCKS - len(tail)
    if len(body) <= room:
        return body + tail
    kept = body[: room - 1]
    omitted = len(body) - len(kept)
    return [
        *kept,
        context(f"_{omitted} more sections omitted; open the CRM for everything._"),
        *tail,
    ]


def bullet_sections(title: str, lines: Sequence[str], *, total: int) -> list[dict[str, Any]]:
    """Return sections listing `lines` under a bold title, split to respect the 3000 limit."""
    if not lines:
        return []
    more = total - len(lines)
    items = [f"• {truncate(line, MAX_LINE)}" for line in lines]
    if more > 0:
        items.append(f"_…and {more} more in the CRM_")
    blocks: list[dict[str, Any]] = []
    current = f"*{title}*"
    for item in items:
        if len(current) + 1 + len(item) > MAX_SECTION_TEXT:
            blocks.append(section(current))
            current = item
        else:
            current = f"{current}\n{item}"
    blocks.append(section(current))
    return blocks


def _facts(alert: AlertRequested, assignee: Person | None) -> dict[str, Any]:
    facts: list[tuple[str, str]] = []
    if alert.account_name or alert.account_key:
        facts.append(("Account", escape_mrkdwn(account_label(alert))))
    if alert.tier:
        facts.append(("Tier", tier_label(alert.tier)))
    if alert.signal:
        facts.append(("Signal", signal_label(alert.signal)))
    facts.append(("Alert", kind_label(alert.kind)))
    owner = _assignee_mention(alert, assignee)
    if owner:
        facts.append(("Assigned to", owner))
    if alert.sla_deadline:
        facts.append(("Follow up by", slack_date(alert.sla_deadline)))
    facts.append(("Urgency", alert.urgency.value.capitalize()))
    fields = [mrkdwn(f"*{name}*\n{value}", MAX_FIELD_TEXT) for name, value in facts[:MAX_FIELDS]]
    return {"type": "section", "fields": fields}


def _handoff_context(alert: AlertRequested) -> list[dict[str, Any]]:
    ctx = alert.context
    blocks: list[dict[str, Any]] = []
    if ctx.research_summary:
        blocks.append(section(f"*Research summary*\n{escape_mrkdwn(ctx.research_summary)}"))
    engagements = sorted(ctx.engagement_history, key=lambda e: e.occurred_at, reverse=True)
    blocks += bullet_sections(
        "Engagement history",
        [_engagement_line(e) for e in engagements[:MAX_ENGAGEMENT_ITEMS]],
        total=len(engagements),
    )
    blocks += bullet_sections(
        "Content consumed",
        [escape_mrkdwn(c) for c in ctx.content_consumed[:MAX_CONTENT_ITEMS]],
        total=len(ctx.content_consumed),
    )
    blocks += bullet_sections(
        "Intent signals",
        [_intent_line(i) for i in ctx.intent_signals[:MAX_INTENT_ITEMS]],
        total=len(ctx.intent_signals),
    )
    if ctx.suggested_approach:
        blocks.append(section(f"*Suggested approach*\n{escape_mrkdwn(ctx.suggested_approach)}"))
    if blocks:
        blocks.insert(0, {"type": "divider"})
    return blocks


def _engagement_line(item: EngagementItem) -> str:
    what = escape_mrkdwn(item.name or item.kind.replace("_", " "))
    who = f" by {escape_mrkdwn(item.contact)}" if item.contact else ""
    return f"{slack_date(item.occurred_at, tokens='{date_short}')}: {what}{who}"


def _intent_line(item: IntentItem) -> str:
    parts = [f"*{escape_mrkdwn(item.topic)}* ({escape_mrkdwn(item.provider)})"]
    if item.score is not None:
        parts.append(f"score {item.score:g}")
    if item.surging:
        parts.append("surging")
    return ", ".join(parts)


def _actions(
    alert: AlertRequested, handoff_controls: Sequence[dict[str, Any]]
) -> dict[str, Any] | None:
    elements: list[dict[str, Any]] = []
    if alert.handoff_id and len(alert.handoff_id) <= MAX_BUTTON_VALUE:
        elements.extend(handoff_controls)
    if alert.crm_url and len(alert.crm_url) <= MAX_URL:
        elements.append(
            {
                "type": "button",
                "action_id": OPEN_CRM_ACTION_ID,
                "text": plain("Open in CRM", MAX_BUTTON_TEXT),
                "url": alert.crm_url,
            }
        )
    if not elements:
        return None
    block = {"type": "actions", "elements": elements[:MAX_ACTION_ELEMENTS]}
    if handoff_controls and alert.handoff_id:
        block["block_id"] = handoff_block_id(alert.handoff_id, alert.alert_id)
    return block


def ack_button(handoff_id: str) -> dict[str, Any]:
    """Return the Acknowledge button whose click comes back as an ack_handoff action."""
    return {
        "type": "button",
        "action_id": ACK_ACTION_ID,
        "text": plain("Acknowledge", MAX_BUTTON_TEXT),
        "style": "primary",
        "value": handoff_id,
    }


def _footer(alert: AlertRequested) -> dict[str, Any]:
    parts: Iterable[str] = (
        f"Tandem · {kind_label(alert.kind)}",
        f"alert {escape_mrkdwn(alert.alert_id)}",
        f"requested {slack_date(alert.requested_at)}",
    )
    return context(" · ".join(parts))


def _assignee_name(alert: AlertRequested, assignee: Person | None) -> str | None:
    if assignee is not None:
        return assignee.name
    return alert.assignee_id


def _assignee_mention(alert: AlertRequested, assignee: Person | None) -> str | None:
    if assignee is not None and assignee.slack_user_id:
        return f"<@{assignee.slack_user_id}>"
    name = _assignee_name(alert, assignee)
    return escape_mrkdwn(name) if name else None
