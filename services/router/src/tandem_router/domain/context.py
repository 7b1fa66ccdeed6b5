"""The handoff context: what marketing knows about the account, written for the rep who acts."""

from __future__ import annotations

from datetime import datetime, timedelta

from tandem_router.domain.model import AccountState, EngagementRecord, IntentRecord
from tandem_shared.events import (
    EngagementItem,
    EngagementKind,
    HandoffContext,
    IntentItem,
    Signal,
)

HISTORY_ITEMS = 15
CONTENT_ITEMS = 10
RECENT = timedelta(days=30)

_OPENERS = {
    Signal.MEETING_REQUEST: "They asked for a meeting: confirm a time within the hour",
    Signal.INTENT_SURGE: "They are researching the category now: open with a relevant insight",
    Signal.ENGAGEMENT_SPIKE: "The account is suddenly active: reach out while it is warm",
    Signal.MULTIPLE_CONTACTS: "Several people are evaluating: multi-thread across the buying group",
    Signal.INBOUND_LEAD: "A new lead came in: qualify quickly and reference what they filled in",
}
_CONTENT_KINDS = (EngagementKind.CONTENT_DOWNLOAD, EngagementKind.EVENT_ATTENDANCE)


def build_context(
    state: AccountState | None,
    *,
    signal: Signal,
    signal_explanation: str,
    now: datetime,
) -> HandoffContext:
    """Return the research summary, history, content, intent and a suggested approach."""
    if state is None:
        return HandoffContext(
            research_summary=f"Unmatched lead: {signal_explanation}.",
            suggested_approach=_OPENERS[signal] + ".",
        )
    recent = [e for e in state.engagements if e.occurred_at >= now - RECENT]
    content = content_consumed(recent)
    intents = latest_intents(state.intents)
    return HandoffContext(
        research_summary=research_summary(state, recent, intents, signal_explanation),
        engagement_history=[_item(e) for e in reversed(recent[-HISTORY_ITEMS:])],
        content_consumed=content,
        intent_signals=[
            IntentItem(provider=i.provider, topic=i.topic, score=i.score, surging=i.surging)
            for i in intents
        ],
        suggested_approach=suggested_approach(signal, content, intents),
    )


def research_summary(
    state: AccountState,
    recent: list[EngagementRecord],
    intents: list[IntentRecord],
    signal_explanation: str,
) -> str:
    """Return a few sentences on who the account is, how it engaged and why now."""
    listed = f"tier {state.tier.value} target account" if state.in_tal else "account not on the TAL"
    where = f" in {state.territory}" if state.territory else ""
    parts = [f"{state.name or state.account_key} ({state.account_key}), {listed}{where}."]
    contacts = {e.contact for e in recent if e.contact}
    if recent:
        parts.append(
            f"{len(recent)} engagements from {len(contacts)} known people in the last "
            f"{RECENT.days} days."
        )
    if intents:
        top = ", ".join(_intent_text(i) for i in intents[:3])
        parts.append(f"Researching {top}.")
    if state.last_sales_activity_at is not None:
        parts.append(f"Last sales activity {state.last_sales_activity_at:%Y-%m-%d}.")
    parts.append(f"Why now: {signal_explanation}.")
    return " ".join(parts)


def content_consumed(engagements: list[EngagementRecord]) -> list[str]:
    """Return distinct content titles, most recent first."""
    titles: list[str] = []
    for e in reversed(engagements):
        title = e.content_title or (e.name if e.kind in _CONTENT_KINDS else None)
        if title and title not in titles:
            titles.append(title)
    return titles[:CONTENT_ITEMS]


def latest_intents(intents: tuple[IntentRecord, ...]) -> list[IntentRecord]:
    """Return the latest reading per provider and topic, strongest first."""
    latest: dict[tuple[str, str], IntentRecord] = {}
    for record in sorted(intents, key=lambda i: i.observed_at):
        latest[(record.provider, record.topic)] = record
    return sorted(latest.values(), key=lambda i: (not i.surging, -(i.score or 0), i.topic))


def suggested_approach(signal: Signal, content: list[str], intents: list[IntentRecord]) -> str:
    """Return an opener chosen by the signal, anchored on what they read and research."""
    lines = [_OPENERS[signal]]
    if any("pric" in title.lower() for title in content):
        lines.append("they looked at pricing, so be ready to talk packaging and budget")
    elif content:
        lines.append(f"reference {content[0]!r}, the latest thing they read")
    if intents:
        lines.append(f"tie the conversation to {intents[0].topic}")
    return "; ".join(lines) + "."


def _item(record: EngagementRecord) -> EngagementItem:
    return EngagementItem(
        occurred_at=record.occurred_at,
        kind=record.kind.value,
        name=record.name or record.content_title,
        contact=record.contact,
    )


def _intent_text(record: IntentRecord) -> str:
    score = f" {record.score:g}" if record.score is not None else ""
    surge = ", surging" if record.surging else ""
    return f"{record.topic} ({record.provider}{score}{surge})"
