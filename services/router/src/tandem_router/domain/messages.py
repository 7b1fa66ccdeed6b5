"""The alert requests a routing decision asks for (handoff, FYIs, marketing, conflicts)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tandem_shared.directory import Directory, Person
from tandem_shared.events import (
    AlertKind,
    AlertRequested,
    HandoffContext,
    RoutingConflict,
    Signal,
    Tier,
    Urgency,
)

# Fixed namespace: ids derived from an event id are the same on every replica and every replay.
NAMESPACE = uuid.UUID("6f1c2a0e-5d1b-4f5e-9a53-7a1f0c1e2b3d")


def stable_id(event_id: str, *parts: str) -> str:
    """Return a deterministic id for something derived from the event with this id."""
    return str(uuid.uuid5(NAMESPACE, "/".join((event_id, *parts))))


SIGNAL_LABELS = {
    Signal.MEETING_REQUEST: "Meeting request",
    Signal.ENGAGEMENT_SPIKE: "Engagement spike",
    Signal.MULTIPLE_CONTACTS: "Several contacts engaged",
    Signal.INTENT_SURGE: "Intent surge",
    Signal.INBOUND_LEAD: "Inbound lead",
}


@dataclass(frozen=True)
class AlertBasics:
    """What every alert of one decision shares."""

    event_id: str
    account_key: str | None
    account_name: str | None
    tier: Tier
    signal: Signal | None  # None for conflicts raised outside a handoff
    handoff_id: str | None
    summary: str
    context: HandoffContext
    now: datetime
    crm_url: str | None = None  # the record the alerts link to ("Open in CRM")

    @property
    def account_label(self) -> str:
        return self.account_name or self.account_key or "an unmatched lead"

    @property
    def signal_label(self) -> str:
        return SIGNAL_LABELS[self.signal] if self.signal else "Account change"

    def alert(
        self,
        kind: AlertKind,
        *,
        recipients: list[str],
        title: str,
        urgency: Urgency,
        channels: list[str] | None = None,
        assignee_id: str | None = None,
        reason: str | None = None,
        suffix: str = "",
    ) -> AlertRequested:
        """Return one alert request of this decision."""
        return AlertRequested(
            alert_id=stable_id(self.event_id, "alert", kind.value, suffix),
            kind=kind,
            urgency=urgency,
            recipient_ids=recipients,
            channel_ids=channels or [],
            title=title,
            summary=self.summary,
            account_key=self.account_key,
            account_name=self.account_name,
            tier=self.tier,
            signal=self.signal,
            handoff_id=self.handoff_id,
            assignee_id=assignee_id,
            reason=reason,
            crm_url=self.crm_url,
            context=self.context,
            requested_at=self.now,
        )


def handoff_alert(
    basics: AlertBasics, assignee: Person, *, urgency: Urgency, reason: str
) -> AlertRequested:
    """Tell the assignee they own the handoff now."""
    title = f"{basics.signal_label}: {basics.account_label} (tier {basics.tier.value})"
    return basics.alert(
        AlertKind.HANDOFF,
        recipients=[assignee.id],
        title=title,
        urgency=urgency,
        assignee_id=assignee.id,
        reason=reason,
    )


def fyi_alert(basics: AlertBasics, assignee: Person, fyi: list[Person]) -> AlertRequested:
    """Tell the account's AE that someone else took a handoff at their account."""
    label = basics.signal_label.lower()
    return basics.alert(
        AlertKind.HANDOFF_FYI,
        recipients=[p.id for p in fyi],
        title=f"FYI: {assignee.name} took a {label} at {basics.account_label}",
        urgency=Urgency.LOW,
        assignee_id=assignee.id,
    )


def marketing_alert(
    basics: AlertBasics, *, marketer: Person | None, channel: str, assignee: Person | None
) -> AlertRequested:
    """Tell marketing (the account's marketer, else the marketing channel) what happened."""
    label = basics.signal_label
    outcome = f"handed to {assignee.name}" if assignee else "escalated, not yet assigned"
    return basics.alert(
        AlertKind.MARKETING_FYI,
        recipients=[marketer.id] if marketer else [],
        channels=[] if marketer else [channel],
        title=f"{label} at {basics.account_label}: {outcome}",
        urgency=Urgency.LOW,
        assignee_id=assignee.id if assignee else None,
    )


def conflict_alert(
    basics: AlertBasics, conflict: RoutingConflict, *, managers: list[str], suffix: str
) -> AlertRequested:
    """Ask a manager to settle a routing conflict."""
    return basics.alert(
        AlertKind.ROUTING_CONFLICT,
        recipients=managers,
        title=f"Routing needs a decision: {basics.account_label}",
        urgency=Urgency.URGENT if basics.signal == Signal.MEETING_REQUEST else Urgency.NORMAL,
        reason=conflict.reason,
        suffix=suffix,
    )


def managers_of(candidates: list[str], directory: Directory, fallback: str) -> list[str]:
    """Return the managers of the people in a conflict, else the escalation manager."""
    managers: list[str] = []
    for person_id in candidates:
        person = directory.get(person_id)
        if person is not None and person.manager_id and person.manager_id not in managers:
            managers.append(person.manager_id)
    return managers or [fallback]
