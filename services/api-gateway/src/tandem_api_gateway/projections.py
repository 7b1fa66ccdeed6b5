"""Projections: every topic's events folded into the gateway's read models.

One handler runs per event inside the consumer runtime's transaction (inbox row included), so a
redelivered event is skipped; within an event, writes are lock-then-merge, so events of one
handoff or alert arriving in any order across topics give the same rows. A batch's transaction
reads each locked row once and writes the rows' changes, the timeline entries and the live-feed
messages before it commits (projection_batch).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tandem_api_gateway import (
    action_projections,
    alert_projections,
    merge_projections,
    people_projections,
)
from tandem_api_gateway.adapters import projection_store as store
from tandem_api_gateway.adapters.tables import accounts, deals, handoffs
from tandem_api_gateway.domain import timeline as tl
from tandem_api_gateway.domain.merges import MergedKind, deal_id, kind_of
from tandem_api_gateway.domain.metrics import SlaOutcome
from tandem_api_gateway.domain.read_model import (
    SlaState,
    SlaStatus,
    apply_sla_event,
    engagement_weight,
)
from tandem_shared import events as ev
from tandem_shared.consumer import UnitOfWork
from tandem_shared.directory import Directory
from tandem_shared.envelope import Envelope
from tandem_shared.events import EventType

TAL_FINALIZED = "finalized"
TAL_REMOVED = "removed"
TAL_FROM_CRM = "crm"

_Apply = Callable[[Envelope, AsyncSession], Awaitable[None]]


@dataclass
class Projector:
    """The gateway's consumer handler: routes each event type to its projection."""

    directory: Directory | None = None
    _by_type: dict[str, _Apply] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_type = self._routes()

    async def __call__(self, envelope: Envelope, uow: UnitOfWork) -> None:
        """Apply one event to the read models (unknown types are not ours to read)."""
        apply = self._by_type.get(envelope.type)
        if apply is not None:
            store.defer_writes(uow)
            await apply(envelope, uow.session)

    def _routes(self) -> dict[str, _Apply]:
        sla = {t: self.on_sla_event for t in ev.PAYLOADS if t.startswith("tandem.sla.")}
        return {
            EventType.ACCOUNT_UPSERTED: self.on_account_upserted,
            EventType.DEAL_UPSERTED: self.on_deal_upserted,
            EventType.RECORD_DELETED: self.on_record_deleted,
            EventType.RECORDS_MERGED: merge_projections.on_records_merged,
            EventType.ACTIVITY_LOGGED: self.on_activity_logged,
            EventType.ENGAGEMENT_RECORDED: self.on_engagement_recorded,
            EventType.INTENT_OBSERVED: self.on_intent_observed,
            EventType.TAL_FINALIZED: self.on_tal_finalized,
            EventType.TAL_REMOVED: self.on_tal_removed,
            EventType.ROUTING_DECIDED: self.on_routing_decided,
            EventType.ROUTING_CONFLICT: self.on_routing_note,
            EventType.HANDOFF_REASSIGN_REQUESTED: self.on_routing_note,
            EventType.ALERT_REQUESTED: alert_projections.on_alert_requested,
            EventType.ALERT_DELIVERED: alert_projections.on_alert_delivered,
            EventType.ALERT_FAILED: alert_projections.on_alert_failed,
            EventType.HANDOFF_ACKNOWLEDGED: self.on_handoff_acknowledged,
            EventType.HANDOFF_ACTION_TAKEN: action_projections.on_handoff_action,
            EventType.HANDOFF_ACTION_REFUSED: action_projections.on_handoff_action,
            EventType.HANDOFF_ACTION_REQUESTED: action_projections.on_action_requested,
            EventType.AVAILABILITY_CHANGED: people_projections.on_availability_changed,
            **sla,
        }

    def person_id(self, crm_user_id: str | None) -> str | None:
        """Return the Tandem person id of a CRM user id (the raw id when unknown)."""
        if crm_user_id is None or self.directory is None:
            return crm_user_id
        person = self.directory.by_crm_user(crm_user_id) or self.directory.get(crm_user_id)
        return person.id if person is not None else crm_user_id

    # ---- CRM --------------------------------------------------------------------------------

    async def on_account_upserted(self, envelope: Envelope, session: AsyncSession) -> None:
        """Project a CRM account change: name, tier, owners, the CRM's target-account flag."""
        event = envelope.payload(ev.AccountUpserted)
        key = event.account_key or envelope.subject
        if key is None:
            return
        row = await store.lock_account(session, key)
        values: dict[str, Any] = {
            "name": event.name,
            "tier": event.tier.value if event.tier else None,
            "ae_id": self.person_id(event.owner_id),
            "sdr_id": self.person_id(event.sdr_id),
            "marketer_id": self.person_id(event.marketer_id),
            "territory": event.territory,
            "crm_url": event.crm_url,
        }
        changes = {k: v for k, v in values.items() if v is not None}
        # The joint TAL decision outranks the CRM's own flag once there is one.
        if event.target_account is not None and row["tal_status"] in (None, TAL_FROM_CRM):
            changes.update(in_tal=event.target_account, tal_status=TAL_FROM_CRM)
        changes["updated_at"] = _latest(row["updated_at"], event.occurred_at)
        await store.update_row(session, accounts, key={"account_key": key}, values=changes)
        await merge_projections.link_crm_account(
            session, crm=event.crm, crm_id=event.crm_id, account_key=key
        )

    async def on_deal_upserted(self, envelope: Envelope, session: AsyncSession) -> None:
        """Project a deal: amount, stage, open or closed, won or lost."""
        event = envelope.payload(ev.DealUpserted)
        key = {"deal_id": deal_id(event.crm, event.crm_id)}
        at = event.occurred_at
        row = await store.lock_deal(session, key["deal_id"], at=at)
        values: dict[str, Any] = {
            "account_key": event.account_key or envelope.subject,
            "name": event.name,
            "stage": event.stage,
            "amount": event.amount,
            "currency": event.currency,
            "is_won": event.is_won,
            "owner_id": self.person_id(event.owner_id),
        }
        changes = {k: v for k, v in values.items() if v is not None}
        changes["created_at"] = min(row["created_at"], at)
        changes["updated_at"] = _latest(row["updated_at"], at)
        if event.is_closed is not None:
            changes["is_closed"] = event.is_closed
            changes["closed_at"] = (row["closed_at"] or at) if event.is_closed else None
        if row["deleted_at"] is not None and at > row["deleted_at"]:
            changes["deleted_at"] = None  # restored in the CRM after it was deleted
        await store.update_row(session, deals, key=key, values=changes)

    async def on_record_deleted(self, envelope: Envelope, session: AsyncSession) -> None:
        """Mark a deal deleted in the CRM: it leaves the pipeline and the win rate."""
        event = envelope.payload(ev.RecordDeleted)
        if kind_of(event.object_type) is not MergedKind.DEAL:
            return
        key = {"deal_id": deal_id(event.crm, event.crm_id)}
        row = await store.lock_deal(session, key["deal_id"], at=event.occurred_at)
        deleted_at = _latest(row["deleted_at"], event.occurred_at)
        await store.update_row(session, deals, key=key, values={"deleted_at": deleted_at})

    async def on_activity_logged(self, envelope: Envelope, session: AsyncSession) -> None:
        """Add sales activity to the account's timeline and last-touch time."""
        event = envelope.payload(ev.ActivityLogged)
        key = event.account_key or envelope.subject
        if key is None:
            return
        entry = tl.from_activity(event)
        if not await store.add_timeline_entry(session, account_key=key, entry=entry):
            return
        row = await store.lock_account(session, key)
        last = _latest(row["last_sales_activity_at"], event.occurred_at)
        await _update_account(session, key, row, event.occurred_at, last_sales_activity_at=last)

    # ---- engagement and intent ------------------------------------------------------------

    async def on_engagement_recorded(self, envelope: Envelope, session: AsyncSession) -> None:
        """Add a marketing engagement to the timeline and the account's engagement score."""
        event = envelope.payload(ev.EngagementRecorded)
        key = event.account_key or envelope.subject
        if key is None:
            return
        entry = tl.from_engagement(event)
        if not await store.add_timeline_entry(session, account_key=key, entry=entry):
            return  # the same engagement under another envelope id counts once
        row = await store.lock_account(session, key)
        await _update_account(
            session,
            key,
            row,
            event.occurred_at,
            engagement_score=row["engagement_score"] + engagement_weight(event.kind),
            engagement_count=row["engagement_count"] + 1,
            last_marketing_activity_at=_latest(
                row["last_marketing_activity_at"], event.occurred_at
            ),
            name=row["name"] or event.company_name,
        )

    async def on_intent_observed(self, envelope: Envelope, session: AsyncSession) -> None:
        """Keep each topic's newest intent observation on the account."""
        event = envelope.payload(ev.IntentObserved)
        entry = tl.from_intent(event, event_id=envelope.id)
        await store.queue_timeline_entry(session, account_key=event.account_key, entry=entry)
        row = await store.lock_account(session, event.account_key)
        intent = dict(row["intent"])
        seen = intent.get(event.topic)
        if seen is None or datetime.fromisoformat(seen["observed_at"]) <= event.observed_at:
            intent[event.topic] = {
                "provider": event.provider,
                "score": event.score,
                "surging": event.surging,
                "observed_at": event.observed_at.isoformat(),
            }
        await _update_account(
            session,
            event.account_key,
            row,
            event.observed_at,
            intent=intent,
            name=row["name"] or event.company_name,
        )

    # ---- TAL ---------------------------------------------------------------------------------

    async def on_tal_finalized(self, envelope: Envelope, session: AsyncSession) -> None:
        """Put the account on the TAL at its agreed tier with its owners."""
        event = envelope.payload(ev.TalFinalized)
        row = await store.lock_account(session, event.account_key)
        owners = {
            "ae_id": event.ae_id,
            "sdr_id": event.sdr_id,
            "marketer_id": event.marketer_id,
            "territory": event.territory,
            "name": event.name,
        }
        await _update_account(
            session,
            event.account_key,
            row,
            event.finalized_at,
            tier=event.tier.value,
            in_tal=True,
            tal_status=TAL_FINALIZED,
            **{k: v for k, v in owners.items() if v is not None},
        )

    async def on_tal_removed(self, envelope: Envelope, session: AsyncSession) -> None:
        """Take the account off the TAL."""
        event = envelope.payload(ev.TalRemoved)
        row = await store.lock_account(session, event.account_key)
        await _update_account(
            session, event.account_key, row, event.removed_at, in_tal=False, tal_status=TAL_REMOVED
        )

    # ---- handoffs and SLA -------------------------------------------------------------------

    async def on_routing_decided(self, envelope: Envelope, session: AsyncSession) -> None:
        """Project a handoff: who owns it, why, with marketing's context."""
        event = envelope.payload(ev.RoutingDecided)
        key = {"handoff_id": event.handoff_id}
        row = await store.lock_row(
            session, handoffs, key=key, defaults=_new_handoff(event.decided_at)
        )
        values = {
            "decision_id": event.decision_id,
            "account_key": event.account_key,
            "account_name": event.account_name,
            "tier": event.tier.value,
            "in_tal": event.in_tal,
            "signal": event.signal.value,
            "assignee_id": event.assignee_id,
            "assignee_role": event.assignee_role,
            "crm_url": event.crm_url,
            "notified_ids": list(event.notified_ids),
            "explanation": list(event.explanation),
            "context": event.context.model_dump(mode="json"),
            "decided_at": event.decided_at,
            "sort_at": event.decided_at,
        }
        # A later decision (a reassignment) replaces an earlier one, never the reverse.
        if row["decided_at"] is None or row["decided_at"] <= event.decided_at:
            await store.update_row(session, handoffs, key=key, values=values)
        # The live-feed message goes with the last write.
        notice = store.change("handoff", event.handoff_id, event.account_key)
        if event.account_key:
            entry = tl.from_routing(event)
            await store.add_to_account(session, event.account_key, entry, notify=notice)
        else:
            await store.notify_feed(session, notice)

    async def on_routing_note(self, envelope: Envelope, session: AsyncSession) -> None:
        """Put a routing conflict or a reassignment request on the account's timeline."""
        event = envelope.payload(ev.PAYLOADS[envelope.type])
        assert isinstance(event, ev.RoutingConflict | ev.HandoffReassignRequested)
        key = event.account_key or envelope.subject
        if key:
            entry = tl.from_routing_note(event, event_id=envelope.id)
            await store.add_to_account(session, key, entry)

    async def on_sla_event(self, envelope: Envelope, session: AsyncSession) -> None:
        """Move a handoff's SLA clock; the handoff row may not exist yet."""
        event = envelope.payload(ev.SlaEvent)
        key = {"handoff_id": event.handoff_id}
        row = await store.lock_row(
            session, handoffs, key=key, defaults=_new_handoff(event.started_at)
        )
        state = apply_sla_event(_sla_state(row), event_type=envelope.type, event=event)
        fallback = {
            "account_key": event.account_key,
            "tier": event.tier.value,
            "signal": event.signal.value,
            "assignee_id": event.assignee_id,
        }
        values: dict[str, Any] = {k: v for k, v in fallback.items() if row[k] is None}
        values.update(
            sla_status=state.status.value,
            sla_outcome=state.outcome.value,
            sla_started_at=event.started_at,
            sla_deadline=event.deadline,
            sla_allowed_seconds=event.allowed_seconds,
            sla_policy_version=event.policy_version,
            outcome_at=state.outcome_at,
            first_touch_at=state.first_touch_at,
            escalation_level=state.escalation_level,
            acknowledged_at=state.acknowledged_at,
        )
        await store.update_row(session, handoffs, key=key, values=values)
        kind = "breach" if envelope.type == EventType.SLA_BREACHED else "handoff"
        notice = store.change(kind, event.handoff_id, event.account_key)
        if event.account_key:
            entry = tl.from_sla(EventType(envelope.type), event, event_id=envelope.id)
            await store.queue_timeline_entry(
                session, account_key=event.account_key, entry=entry, notify=notice
            )
        else:
            await store.notify_feed(session, notice)

    async def on_handoff_acknowledged(self, envelope: Envelope, session: AsyncSession) -> None:
        """Record that the assignee acknowledged the handoff."""
        event = envelope.payload(ev.HandoffAcknowledged)
        key = {"handoff_id": event.handoff_id}
        row = await store.lock_row(
            session, handoffs, key=key, defaults=_new_handoff(event.acknowledged_at)
        )
        at = event.acknowledged_at
        first = at if row["acknowledged_at"] is None else min(row["acknowledged_at"], at)
        await store.update_row(session, handoffs, key=key, values={"acknowledged_at": first})


def _new_handoff(at: datetime) -> dict[str, Any]:
    return {
        "sort_at": at,
        "sla_status": SlaStatus.RUNNING.value,
        "sla_outcome": SlaOutcome.RUNNING.value,
    }


def _sla_state(row: dict[str, Any]) -> SlaState:
    return SlaState(
        status=SlaStatus(row["sla_status"] or SlaStatus.RUNNING),
        outcome=SlaOutcome(row["sla_outcome"] or SlaOutcome.RUNNING),
        outcome_at=row["outcome_at"],
        first_touch_at=row["first_touch_at"],
        escalation_level=row["escalation_level"],
        acknowledged_at=row["acknowledged_at"],
    )


async def _update_account(
    session: AsyncSession, key: str, row: dict[str, Any], at: datetime, **values: Any
) -> None:
    values["updated_at"] = _latest(row["updated_at"], at)
    await store.update_row(session, accounts, key={"account_key": key}, values=values)


def _latest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate > current else current
