"""Request and response models of the REST API.

Requests reject unknown fields. Responses are built by the `to_*` functions, which take the
caller's principal so a rep never receives other people's ids (see domain/authz.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import URL

from tandem_api_gateway.domain.authz import Principal, Role, Side, visible_person_ids
from tandem_api_gateway.domain.tal_workflow import TalAction, TalEntry, TalStatus
from tandem_shared.events import Signal, Tier

T = TypeVar("T")
# PostgreSQL text cannot hold NUL: refuse it at the edge (422) instead of failing in SQL.
NO_NUL = r"^[^\x00]*$"
Text = Field(min_length=1, max_length=2000, pattern=NO_NUL)
PersonId = Field(default=None, min_length=1, max_length=200, pattern=NO_NUL)


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PageOut(Response, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at end")
    next: str | None = Field(
        default=None,
        description="The next page: this request's path and filters with its cursor; null at end",
    )


def page_out(items: list[T], next_cursor: str | None, *, url: URL) -> PageOut[T]:
    """Return a page of items with its cursor and the link to the page after it."""
    following = None
    if next_cursor is not None:
        query = url.include_query_params(cursor=next_cursor).query
        following = f"{url.path}?{query}"
    return PageOut(items=items, next_cursor=next_cursor, next=following)


class ErrorOut(Response):
    error: str = Field(description="The error class, e.g. not_found, invalid_transition")
    detail: str


# ---- accounts ----------------------------------------------------------------------------------


class IntentOut(Response):
    topic: str
    provider: str
    score: float | None
    surging: bool
    observed_at: datetime


class AccountOut(Response):
    account_key: str
    name: str | None
    tier: Tier | None
    in_tal: bool
    tal_status: str | None
    ae_id: str | None
    sdr_id: str | None
    marketer_id: str | None
    territory: str | None
    engagement_score: float
    engagement_count: int
    intent: list[IntentOut]
    last_sales_activity_at: datetime | None
    last_marketing_activity_at: datetime | None
    open_handoffs: int = Field(description="Handoffs of the account whose SLA clock still runs")
    tal_workflow_status: TalStatus | None = Field(
        description="Where the joint TAL decision stands; null when never proposed"
    )
    crm_url: str | None = Field(
        default=None, description="The account's record page in the CRM (the latest one seen)"
    )
    merged_into: str | None = Field(
        default=None,
        description=(
            "The surviving account's key once the CRM merged this one away: its activity and "
            "deals count there, and lists and metrics show only the survivor"
        ),
    )


class TimelineEntryOut(Response):
    at: datetime
    kind: str
    entry_id: str
    title: str
    actor_id: str | None
    data: dict[str, Any]


def to_account(row: dict[str, Any]) -> AccountOut:
    """Return the API view of an account row."""
    intent = [IntentOut(topic=topic, **seen) for topic, seen in sorted(row["intent"].items())]
    fields = {k: row[k] for k in AccountOut.model_fields if k in row and k != "intent"}
    return AccountOut(**fields, intent=intent)


# ---- handoffs ----------------------------------------------------------------------------------


class SlaOut(Response):
    status: str | None
    outcome: str | None
    started_at: datetime | None
    deadline: datetime | None
    allowed_seconds: int | None
    seconds_remaining: float | None = Field(
        description="Until the deadline while the clock runs (negative: overdue); null otherwise"
    )
    first_touch_at: datetime | None
    time_to_first_touch_seconds: float | None
    outcome_at: datetime | None
    escalation_level: int | None
    acknowledged_at: datetime | None


class ActionOut(Response):
    """Where the handoff stands after people acted on it, and the latest action taken."""

    status: str
    last_action: str | None
    by: str | None
    via: str | None
    at: datetime | None


class HandoffOut(Response):
    handoff_id: str
    account_key: str | None
    account_name: str | None
    tier: Tier | None
    in_tal: bool | None
    signal: Signal | None
    assignee_id: str | None
    assignee_role: str | None
    crm_url: str | None = Field(
        default=None, description="The CRM record the handoff is about: the lead, else the account"
    )
    notified_ids: list[str]
    explanation: list[str]
    context: dict[str, Any]
    decided_at: datetime | None
    sla: SlaOut
    action: ActionOut | None = None


def to_handoff(row: dict[str, Any], *, principal: Principal, now: datetime) -> HandoffOut:
    """Return the API view of a handoff row for this caller."""
    deadline = row["sla_deadline"]
    running = row["sla_outcome"] in (None, "running")
    remaining = (deadline - now).total_seconds() if deadline and running else None
    start = row["decided_at"] or row["sla_started_at"]
    touch = row["first_touch_at"]
    sla = SlaOut(
        status=row["sla_status"],
        outcome=row["sla_outcome"],
        started_at=row["sla_started_at"],
        deadline=deadline,
        allowed_seconds=row["sla_allowed_seconds"],
        seconds_remaining=remaining,
        first_touch_at=touch,
        time_to_first_touch_seconds=(touch - start).total_seconds() if touch and start else None,
        outcome_at=row["outcome_at"],
        escalation_level=row["escalation_level"],
        acknowledged_at=row["acknowledged_at"],
    )
    fields = {k: row[k] for k in HandoffOut.model_fields if k in row}
    fields["notified_ids"] = visible_person_ids(principal, row["notified_ids"])
    action = None
    if row.get("action_status"):
        action = ActionOut(
            status=row["action_status"],
            last_action=row["last_action"],
            by=row["last_action_by"],
            via=row["last_action_via"],
            at=row["last_action_at"],
        )
    return HandoffOut(**fields, sla=sla, action=action)


# ---- alerts ------------------------------------------------------------------------------------


class DeliveryOut(Response):
    recipient_id: str
    channel: str
    status: Literal["delivered", "failed"]
    destination: str | None
    attempts: int
    error: str | None
    at: datetime


class AlertOut(Response):
    alert_id: str
    kind: str | None
    urgency: str | None
    title: str | None
    summary: str | None
    account_key: str | None
    account_name: str | None
    handoff_id: str | None
    tier: Tier | None
    signal: Signal | None
    crm_url: str | None = Field(default=None, description="The record the alert's button opens")
    recipient_ids: list[str]
    requested_at: datetime | None
    deliveries: list[DeliveryOut]


def to_alert(
    row: dict[str, Any], deliveries: list[dict[str, Any]], *, principal: Principal
) -> AlertOut:
    """Return the API view of an alert and its deliveries for this caller."""
    visible = set(visible_person_ids(principal, row["recipient_ids"]))
    shown = [
        DeliveryOut(**{k: d[k] for k in DeliveryOut.model_fields})
        for d in deliveries
        if principal.is_leader or d["recipient_id"] in visible
    ]
    fields = {k: row[k] for k in AlertOut.model_fields if k in row}
    fields["recipient_ids"] = [r for r in row["recipient_ids"] if r in visible]
    return AlertOut(**fields, deliveries=shown)


# ---- TAL workflow ------------------------------------------------------------------------------


class IntentIn(Request):
    provider: str = Field(min_length=1, max_length=100, pattern=NO_NUL)
    topic: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    score: float | None = Field(default=None, ge=0, le=100)
    surging: bool = False


class ProposalIn(Request):
    account_key: str = Field(min_length=3, max_length=253, examples=["acme.com"], pattern=NO_NUL)
    suggested_tier: Tier
    reason: str = Text
    name: str | None = Field(default=None, max_length=300, pattern=NO_NUL)
    fit_score: float | None = Field(default=None, ge=0, le=100)
    intent: list[IntentIn] = Field(default_factory=list, max_length=50)
    marketer_id: str | None = PersonId
    territory: str | None = Field(default=None, max_length=100, pattern=NO_NUL)


class ValidationIn(Request):
    decision: Literal["accept", "reject", "change_tier"]
    reason: str = Text
    tier: Tier | None = Field(default=None, description="Required for change_tier")
    ae_id: str | None = PersonId
    sdr_id: str | None = PersonId


class ApprovalIn(Request):
    side: Side
    reason: str = Field(default="", max_length=2000, pattern=NO_NUL)


class RemovalIn(Request):
    reason: str = Text


class DecisionOut(Response):
    actor_id: str
    role: Role
    action: TalAction
    at: datetime
    reason: str
    side: Side | None
    tier: Tier | None


class ApprovalOut(Response):
    side: Side
    person_id: str


class TalEntryOut(Response):
    account_key: str
    status: TalStatus
    tier: Tier
    suggested_tier: Tier
    proposal_reason: str
    name: str | None
    fit_score: float | None
    intent: list[IntentIn]
    ae_id: str | None
    sdr_id: str | None
    marketer_id: str | None
    territory: str | None
    approvals: list[ApprovalOut]
    history: list[DecisionOut]


def to_tal_entry(entry: TalEntry) -> TalEntryOut:
    """Return the API view of a TAL entry (every role may read the whole workflow)."""
    return TalEntryOut(
        account_key=entry.account_key,
        status=entry.status,
        tier=entry.tier,
        suggested_tier=entry.suggested_tier,
        proposal_reason=entry.proposal_reason,
        name=entry.name,
        fit_score=entry.fit_score,
        intent=[IntentIn(**i.model_dump()) for i in entry.intent],
        ae_id=entry.ae_id,
        sdr_id=entry.sdr_id,
        marketer_id=entry.marketer_id,
        territory=entry.territory,
        approvals=[ApprovalOut(side=s, person_id=p) for s, p in entry.approvals],
        history=[
            DecisionOut(
                actor_id=d.actor_id,
                role=d.role,
                action=d.action,
                at=d.at,
                reason=d.reason,
                side=d.side,
                tier=d.tier,
            )
            for d in entry.history
        ],
    )


class MeOut(Response):
    person_id: str
    role: Role
