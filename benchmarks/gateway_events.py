"""The gateway's share of `benchmarks.handlers`: every kind of event it projects.

Blocks of 20 events are about one handoff and its account, in the order a day of it could bring.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.handler_events import (
    ASSIGNEES,
    TIERS,
    alert,
    at,
    directory,
    domain,
    name,
    next_numbers,
    routing,
    wrap,
)
from tandem_shared.consumer import Handler
from tandem_shared.envelope import Envelope
from tandem_shared.events import (
    AccountUpserted,
    ActivityKind,
    ActivityLogged,
    AlertDelivered,
    AlertFailed,
    CrmSystem,
    DealUpserted,
    DeliveryChannel,
    EngagementKind,
    EngagementRecorded,
    EventType,
    HandoffAcknowledged,
    HandoffReassignRequested,
    IntentObserved,
    RecordDeleted,
    RecordsMerged,
    RoutingConflict,
    Signal,
    SlaEvent,
    TalFinalized,
)


async def gateway_setup(engine: AsyncEngine) -> Handler:
    from tandem_api_gateway.projections import Projector

    return Projector(directory=directory())


def _sla(k: int, handoff: int) -> SlaEvent:
    return SlaEvent(
        handoff_id=f"handoff-{handoff}",
        account_key=domain(handoff),
        assignee_id=ASSIGNEES[handoff % len(ASSIGNEES)],
        tier=TIERS[handoff % 3],
        signal=Signal.MEETING_REQUEST,
        started_at=at(handoff),
        deadline=at(handoff + 900),
        allowed_seconds=900,
        policy_version="bench",
        met_by_activity_id=f"act-{k}",
        within_sla=True,
        occurred_at=at(k),
    )


def gateway_event(k: int) -> Envelope:
    slot, handoff = k % 20, k - k % 20  # each block of 20 events is about one handoff
    key = domain(handoff)
    crm = CrmSystem.HUBSPOT
    payload: Any
    match slot:
        case 0:
            payload = AccountUpserted(
                crm=crm, crm_id=f"co-{handoff}", account_key=key, name=name(handoff),
                tier=TIERS[k % 3], target_account=True, owner_id="hs-owner-101",
                territory="na-east", occurred_at=at(k),
            )  # fmt: skip
            return wrap(payload, EventType.ACCOUNT_UPSERTED, k, key)
        case 1 | 2:
            payload = DealUpserted(
                crm=crm, crm_id=f"deal-{handoff}-{slot}", account_key=key, name="Expansion",
                stage="qualified", amount=10_000.0 + k, currency="USD", is_closed=slot == 2,
                is_won=slot == 2, owner_id="hs-owner-101", occurred_at=at(k),
            )  # fmt: skip
            return wrap(payload, EventType.DEAL_UPSERTED, k, key)
        case 3:
            payload = ActivityLogged(
                crm=crm, activity_id=f"act-{k}", kind=ActivityKind.EMAIL, account_key=key,
                actor_id="hs-owner-101", subject="Intro", occurred_at=at(k),
            )  # fmt: skip
            return wrap(payload, EventType.ACTIVITY_LOGGED, k, key)
        case 4 | 5:
            payload = EngagementRecorded(
                engagement_id=f"eng-{k}", source="segment", kind=EngagementKind.PAGE_VIEW,
                account_key=key, contact_email=f"reader{k}@{key}", occurred_at=at(k),
            )  # fmt: skip
            return wrap(payload, EventType.ENGAGEMENT_RECORDED, k, key)
        case 6:
            payload = IntentObserved(
                provider="bombora", account_key=key, topic=f"topic-{k % 7}", score=75.0,
                surging=True, observed_at=at(k),
            )  # fmt: skip
            return wrap(payload, EventType.INTENT_OBSERVED, k, key)
        case 7:
            payload = TalFinalized(
                account_key=key, name=name(handoff), tier=TIERS[handoff % 3], ae_id="ava.ae",
                sdr_id="dan.sdr", territory="na-east", finalized_at=at(k),
            )  # fmt: skip
            return wrap(payload, EventType.TAL_FINALIZED, k, key)
        case 8:
            return wrap(routing(handoff), EventType.ROUTING_DECIDED, k, key)
        case 9:
            payload = RoutingConflict(
                account_key=key, candidates={"tal": "ava.ae", "crm": "ben.ae"},
                reason="the TAL and the CRM disagree", rule_set_version="bench",
                occurred_at=at(k),
            )  # fmt: skip
            return wrap(payload, EventType.ROUTING_CONFLICT, k, key)
        case 10:
            payload = HandoffReassignRequested(
                handoff_id=f"handoff-{handoff}", account_key=key, previous_assignee_id="ava.ae",
                reason="on leave", requested_at=at(k),
            )  # fmt: skip
            return wrap(payload, EventType.HANDOFF_REASSIGN_REQUESTED, k, key)
        case 11:
            return wrap(alert(handoff), EventType.ALERT_REQUESTED, k, key)
        case 12:
            payload = AlertDelivered(
                alert_id=f"alert-{handoff}", recipient_id="ava.ae", channel=DeliveryChannel.SLACK,
                destination="U0AVA0001", attempts=1, delivered_at=at(k),
            )  # fmt: skip
            return wrap(payload, EventType.ALERT_DELIVERED, k, key)
        case 13:
            payload = AlertFailed(
                alert_id=f"alert-{handoff}", recipient_id="mia.marketing",
                channel=DeliveryChannel.EMAIL, destination="mia@tandem.example", attempts=3,
                error="550 mailbox full", permanent=True, failed_at=at(k),
            )  # fmt: skip
            return wrap(payload, EventType.ALERT_FAILED, k, key)
        case 14 | 15 | 16:
            kind = (EventType.SLA_STARTED, EventType.SLA_WARNING, EventType.SLA_MET)[slot - 14]
            return wrap(_sla(k, handoff), kind, k, key)
        case 17:
            payload = HandoffAcknowledged(
                handoff_id=f"handoff-{handoff}", person_id="ava.ae", via="api",
                acknowledged_at=at(k),
            )  # fmt: skip
            return wrap(payload, EventType.HANDOFF_ACKNOWLEDGED, k, key)
        case 18:
            payload = RecordsMerged(
                crm=crm, object_type="company", winner_id=f"co-{handoff}",
                merged_ids=[f"co-{handoff}-dup"], account_key=key, occurred_at=at(k),
            )  # fmt: skip
            return wrap(payload, EventType.RECORDS_MERGED, k, key)
        case _:
            payload = RecordDeleted(
                crm=crm, object_type="deal", crm_id=f"deal-{handoff}-1", account_key=key,
                occurred_at=at(k),
            )  # fmt: skip
            return wrap(payload, EventType.RECORD_DELETED, k, key)


def gateway_events(n: int) -> list[Envelope]:
    return [gateway_event(k) for k in next_numbers(n)]
