"""The events a clock emits, with ids derived from the clock so a refire repeats them exactly."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from tandem_shared.events import (
    AlertKind,
    AlertRequested,
    EventType,
    HandoffReassignRequested,
    SlaEvent,
    Tier,
    Urgency,
)
from tandem_sla_monitor.domain.business_time import business_seconds_between

if TYPE_CHECKING:
    from tandem_sla_monitor.domain.clock import SlaClock

# Fixed forever: changing it would change every derived id and defeat deduplication.
ID_NAMESPACE = uuid.UUID("6f1c8a52-3d5e-5b7a-9c21-7e4d2b8f0a13")

Payload = SlaEvent | AlertRequested | HandoffReassignRequested


@dataclass(frozen=True, slots=True)
class Emission:
    """One outgoing event: its envelope id and type, its payload and its Kafka key."""

    event_id: str
    event_type: EventType
    payload: Payload
    subject: str | None


def derived_id(handoff_id: str, *parts: object) -> str:
    """Return a stable id for one thing that happened to one handoff."""
    return str(uuid.uuid5(ID_NAMESPACE, ":".join([handoff_id, *map(str, parts)])))


def sla_event(
    clock: SlaClock,
    event_type: EventType,
    *,
    at: datetime,
    id_parts: tuple[object, ...],
    escalated_to: list[str] | None = None,
    met_by_activity_id: str | None = None,
    within_sla: bool | None = None,
) -> Emission:
    """Return an SlaEvent emission describing the clock at `at`."""
    payload = SlaEvent(
        handoff_id=clock.handoff_id,
        account_key=clock.account_key,
        assignee_id=clock.assignee_id,
        tier=clock.tier,
        signal=clock.signal,
        started_at=clock.started_at,
        deadline=clock.deadline,
        allowed_seconds=clock.terms.allowed_seconds,
        policy_version=clock.terms.policy_version,
        elapsed_business_seconds=business_seconds_between(clock.started_at, at, clock.calendar),
        escalation_level=clock.escalation_level or None,
        escalated_to=escalated_to or [],
        met_by_activity_id=met_by_activity_id,
        within_sla=within_sla,
        occurred_at=at,
    )
    return Emission(
        event_id=derived_id(clock.handoff_id, clock.decision_id, *id_parts),
        event_type=event_type,
        payload=payload,
        subject=clock.account_key,
    )


def alert(
    clock: SlaClock,
    kind: AlertKind,
    *,
    recipients: list[str],
    title: str,
    summary: str,
    now: datetime,
    id_parts: tuple[object, ...],
    channel_ids: tuple[str, ...] = (),
    urgency: Urgency = Urgency.URGENT,
) -> Emission:
    """Return an AlertRequested emission about the clock."""
    alert_id = derived_id(clock.handoff_id, clock.decision_id, *id_parts, "alert")
    payload = AlertRequested(
        alert_id=alert_id,
        kind=kind,
        urgency=urgency,
        recipient_ids=list(dict.fromkeys(recipients)),
        channel_ids=list(channel_ids),
        title=title,
        summary=summary,
        account_key=clock.account_key,
        account_name=clock.account_name,
        tier=clock.tier,
        signal=clock.signal,
        handoff_id=clock.handoff_id,
        assignee_id=clock.assignee_id,
        reason=f"SLA policy {clock.terms.policy_version}",
        sla_deadline=clock.deadline,
        crm_url=clock.crm_url,
        requested_at=now,
    )
    return Emission(
        event_id=alert_id,
        event_type=EventType.ALERT_REQUESTED,
        payload=payload,
        subject=clock.account_key,
    )


def reassign_request(clock: SlaClock, *, now: datetime) -> Emission:
    """Return a request to reassign the handoff after a breach."""
    payload = HandoffReassignRequested(
        handoff_id=clock.handoff_id,
        account_key=clock.account_key,
        previous_assignee_id=clock.assignee_id,
        reason=f"SLA breached: no follow-up by {clock.deadline.isoformat()}",
        requested_at=now,
    )
    return Emission(
        event_id=derived_id(clock.handoff_id, clock.decision_id, "reassign"),
        event_type=EventType.HANDOFF_REASSIGN_REQUESTED,
        payload=payload,
        subject=clock.account_key,
    )


def describe(clock: SlaClock) -> str:
    """Return a short description of the handoff for alert text."""
    account = clock.account_name or clock.account_key or clock.contact_email or clock.handoff_id
    signal = clock.signal.value.replace("_", " ")
    minutes = clock.terms.allowed_seconds // 60
    return f"Tier {clock.tier.value} {signal} at {account} ({minutes} business minutes to touch)"


def warning_urgency(tier: Tier) -> Urgency:
    """Return how urgent a warning is: tier 1 handoffs cannot wait for a digest."""
    return Urgency.URGENT if tier is Tier.T1 else Urgency.NORMAL
