"""An account's timeline: entries of every kind merged into one stable order.

Order is by time; for equal times, cause before effect (intent, engagement, routing decision,
SLA event, alert, sales activity), then by entry id, so a page boundary never moves between
requests. The same (kind, id) seen twice, as at-least-once delivery allows, is shown once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from tandem_shared.events import (
    ActivityLogged,
    AlertRequested,
    EngagementRecorded,
    EventType,
    HandoffReassignRequested,
    IntentObserved,
    RoutingConflict,
    RoutingDecided,
    SlaEvent,
)


class TimelineKind(StrEnum):
    INTENT = "intent"
    ENGAGEMENT = "engagement"
    ROUTING = "routing"
    SLA = "sla"
    ALERT = "alert"
    SALES_ACTIVITY = "sales_activity"


# Declaration order above is the tie-break: cause before effect.
_RANK = {kind: rank for rank, kind in enumerate(TimelineKind)}


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    kind: TimelineKind
    entry_id: str
    title: str
    actor_id: str | None = None  # the rep or contact behind it, when known
    data: Mapping[str, Any] = field(default_factory=dict)


def sort_key(entry: TimelineEntry) -> tuple[datetime, int, str]:
    """Return the entry's position in chronological order (also its keyset cursor)."""
    return (entry.at, _RANK[entry.kind], entry.entry_id)


def merge_timeline(
    *sources: Iterable[TimelineEntry], newest_first: bool = True
) -> list[TimelineEntry]:
    """Merge entries of any kinds into one ordered list without duplicates."""
    unique: dict[tuple[TimelineKind, str], TimelineEntry] = {}
    for source in sources:
        for entry in source:
            if entry.at.tzinfo is None:
                raise ValueError(f"timeline entry {entry.entry_id} has a naive timestamp")
            unique.setdefault((entry.kind, entry.entry_id), entry)
    return sorted(unique.values(), key=sort_key, reverse=newest_first)


def from_engagement(event: EngagementRecorded) -> TimelineEntry:
    """Return the timeline entry of a marketing engagement."""
    what = event.name or event.content_title or event.kind.value.replace("_", " ")
    who = event.contact_name or event.contact_email
    return TimelineEntry(
        at=event.occurred_at,
        kind=TimelineKind.ENGAGEMENT,
        entry_id=event.engagement_id,
        title=f"{what} by {who}" if who else what,
        actor_id=event.contact_email,
        data={"source": event.source, "kind": event.kind.value, "url": event.url},
    )


def from_intent(event: IntentObserved, *, event_id: str) -> TimelineEntry:
    """Return the timeline entry of an intent observation (keyed by its envelope id)."""
    surge = " (surging)" if event.surging else ""
    return TimelineEntry(
        at=event.observed_at,
        kind=TimelineKind.INTENT,
        entry_id=event_id,
        title=f"Researching {event.topic} on {event.provider}{surge}",
        data={"provider": event.provider, "topic": event.topic, "score": event.score},
    )


def from_routing(event: RoutingDecided) -> TimelineEntry:
    """Return the timeline entry of a routing decision (a handoff)."""
    return TimelineEntry(
        at=event.decided_at,
        kind=TimelineKind.ROUTING,
        entry_id=event.decision_id,
        title=f"Handed off to {event.assignee_id} ({event.signal.value}, tier {event.tier.value})",
        actor_id=event.assignee_id,
        data={"handoff_id": event.handoff_id, "explanation": list(event.explanation)},
    )


def from_routing_note(
    event: RoutingConflict | HandoffReassignRequested, *, event_id: str
) -> TimelineEntry:
    """Return the entry of a routing conflict or a reassignment request (by envelope id)."""
    if isinstance(event, RoutingConflict):
        return TimelineEntry(
            at=event.occurred_at,
            kind=TimelineKind.ROUTING,
            entry_id=event_id,
            title=f"Routing conflict: {event.reason}",
            data={"handoff_id": event.handoff_id, "candidates": dict(event.candidates)},
        )
    return TimelineEntry(
        at=event.requested_at,
        kind=TimelineKind.ROUTING,
        entry_id=event_id,
        title=f"Reassignment requested by {event.previous_assignee_id}: {event.reason}",
        actor_id=event.previous_assignee_id,
        data={"handoff_id": event.handoff_id},
    )


def from_sla(event_type: EventType, event: SlaEvent, *, event_id: str) -> TimelineEntry:
    """Return the timeline entry of an SLA clock event (keyed by its envelope id)."""
    what = event_type.value.rsplit(".", 1)[-1]
    return TimelineEntry(
        at=event.occurred_at,
        kind=TimelineKind.SLA,
        entry_id=event_id,
        title=f"SLA {what} for {event.assignee_id}",
        actor_id=event.assignee_id,
        data={"handoff_id": event.handoff_id, "deadline": event.deadline.isoformat()},
    )


def from_alert(event: AlertRequested) -> TimelineEntry:
    """Return the timeline entry of an alert sent about the account."""
    return TimelineEntry(
        at=event.requested_at,
        kind=TimelineKind.ALERT,
        entry_id=event.alert_id,
        title=event.title,
        # Recipients stay out: the account timeline is readable by reps (see authz).
        data={"kind": event.kind.value, "urgency": event.urgency.value},
    )


def from_activity(event: ActivityLogged) -> TimelineEntry:
    """Return the timeline entry of a sales activity logged in the CRM."""
    return TimelineEntry(
        at=event.occurred_at,
        kind=TimelineKind.SALES_ACTIVITY,
        entry_id=event.activity_id,
        title=event.subject or event.kind.value.capitalize(),
        actor_id=event.actor_id,
        data={"crm": event.crm.value, "kind": event.kind.value},
    )
