"""Pure rules of the read models: engagement scoring and the SLA state of a handoff.

Events reach the projections at least once and, across topics, in any order (an SLA event may
come before the routing decision it belongs to), so every rule here is a merge that gives the
same state whatever the order of the events it has seen.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from tandem_api_gateway.domain.metrics import SlaOutcome
from tandem_shared.events import EngagementKind, EventType, SlaEvent

# How much one engagement of each kind says about an account's interest.
ENGAGEMENT_WEIGHTS: dict[EngagementKind, float] = {
    EngagementKind.MEETING_REQUEST: 25.0,
    EngagementKind.FORM_FILL: 10.0,
    EngagementKind.EVENT_ATTENDANCE: 10.0,
    EngagementKind.CONTENT_DOWNLOAD: 8.0,
    EngagementKind.EMAIL_ENGAGEMENT: 3.0,
    EngagementKind.AD_CLICK: 2.0,
    EngagementKind.PAGE_VIEW: 1.0,
    EngagementKind.IDENTIFY: 0.0,
    EngagementKind.GROUP: 0.0,
    EngagementKind.OTHER: 1.0,
}


def engagement_weight(kind: EngagementKind) -> float:
    """Return the points one engagement of this kind adds to the account's score."""
    return ENGAGEMENT_WEIGHTS.get(kind, 1.0)


class SlaStatus(StrEnum):
    """Where a handoff's follow-up clock is; later statuses win whatever the arrival order."""

    RUNNING = "running"
    WARNING = "warning"
    BREACHED = "breached"
    ESCALATED = "escalated"
    MET = "met"


_STATUS_RANK = {status: rank for rank, status in enumerate(SlaStatus)}

SLA_EVENT_STATUS: dict[str, SlaStatus] = {
    EventType.SLA_STARTED: SlaStatus.RUNNING,
    EventType.SLA_WARNING: SlaStatus.WARNING,
    EventType.SLA_BREACHED: SlaStatus.BREACHED,
    EventType.SLA_ESCALATED: SlaStatus.ESCALATED,
    EventType.SLA_MET: SlaStatus.MET,
    EventType.SLA_ACKNOWLEDGED: SlaStatus.RUNNING,
}


@dataclass(frozen=True, slots=True)
class SlaState:
    """What the read model knows of a handoff's clock."""

    status: SlaStatus = SlaStatus.RUNNING
    outcome: SlaOutcome = SlaOutcome.RUNNING
    outcome_at: datetime | None = None
    first_touch_at: datetime | None = None
    escalation_level: int | None = None
    acknowledged_at: datetime | None = None


def apply_sla_event(state: SlaState, *, event_type: str, event: SlaEvent) -> SlaState:
    """Return the clock state after one SLA event (idempotent, order-tolerant)."""
    status = SLA_EVENT_STATUS.get(event_type)
    if status is None:
        raise ValueError(f"{event_type} is not an SLA event type")
    at = event.occurred_at
    new = replace(state, status=max(state.status, status, key=_STATUS_RANK.__getitem__))
    if event_type == EventType.SLA_ACKNOWLEDGED:
        return replace(new, acknowledged_at=_earliest(state.acknowledged_at, at))
    if event_type == EventType.SLA_ESCALATED:
        level = max(state.escalation_level or 0, event.escalation_level or 1)
        return replace(new, escalation_level=level)
    if event_type == EventType.SLA_BREACHED and state.outcome is SlaOutcome.RUNNING:
        return replace(new, outcome=SlaOutcome.BREACHED, outcome_at=at)
    if event_type == EventType.SLA_MET:
        new = replace(new, first_touch_at=_earliest(state.first_touch_at, at))
        if event.within_sla is False and state.outcome is SlaOutcome.RUNNING:
            # A touch after the deadline stops the clock but does not meet it.
            return replace(new, outcome=SlaOutcome.BREACHED, outcome_at=event.deadline)
        if state.outcome is SlaOutcome.RUNNING:
            return replace(new, outcome=SlaOutcome.MET, outcome_at=at)
    return new


def _earliest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate < current else current
