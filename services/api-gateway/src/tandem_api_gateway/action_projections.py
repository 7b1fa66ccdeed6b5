"""Projections of actions on handoffs: where the handoff stands, who did what and when, and each
action by id (asked, then taken or refused) for `GET /v1/handoffs/{id}/actions/{action_id}`."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tandem_api_gateway.adapters import projection_store as store
from tandem_api_gateway.adapters.tables import handoffs
from tandem_api_gateway.domain.timeline import TimelineEntry, TimelineKind
from tandem_shared.db import Statement, fetch
from tandem_shared.envelope import Envelope
from tandem_shared.events import HandoffAction, HandoffActionOutcome, HandoffActionRequested

_STATUS = {HandoffAction.ACKNOWLEDGE: "acknowledged", HandoffAction.ACCEPT: "accepted"}


def action_status(outcome: HandoffActionOutcome) -> str:
    """Return where a handoff stands after a taken action."""
    if outcome.decision_id is None and outcome.action in _STATUS:
        return _STATUS[outcome.action]
    if outcome.action is HandoffAction.ACCEPT:
        return "accepted"  # a cover who accepted took it over
    return "assigned" if outcome.assignee_id else "unassigned"


def action_entry(outcome: HandoffActionOutcome, *, event_id: str) -> TimelineEntry:
    """Return the timeline entry of an action, taken or refused."""
    verb = outcome.action.value.replace("_", " ")
    if outcome.taken:
        title = f"{outcome.actor_id} {verb} via {outcome.via}: {outcome.message}"
    else:
        title = f"Refused: {outcome.actor_id} tried to {verb} via {outcome.via}: {outcome.message}"
    data: dict[str, Any] = {
        "handoff_id": outcome.handoff_id,
        "action": outcome.action.value,
        "taken": outcome.taken,
        "code": outcome.code,
        "via": outcome.via,
        "assignee_id": outcome.assignee_id,
    }
    if outcome.reason is not None:
        data["reason"] = outcome.reason.value
    if outcome.note:
        data["note"] = outcome.note
    return TimelineEntry(
        at=outcome.occurred_at,
        kind=TimelineKind.ROUTING,
        entry_id=event_id,
        title=title,
        actor_id=outcome.actor_id,
        data=data,
    )


async def on_handoff_action(envelope: Envelope, session: AsyncSession) -> None:
    """Record a taken action on the handoff row; every answer goes on the account's timeline."""
    outcome = envelope.payload(HandoffActionOutcome)
    await _record_outcome(session, outcome)
    key = {"handoff_id": outcome.handoff_id}
    at = outcome.occurred_at
    notice = store.change("handoff", outcome.handoff_id, outcome.account_key)
    if outcome.taken:
        row = await store.lock_row(
            session,
            handoffs,
            key=key,
            defaults={"sort_at": at, "sla_status": "running", "sla_outcome": "running"},
        )
        # Actions of one handoff are decided in order by the router; keep the latest.
        if row["last_action_at"] is None or row["last_action_at"] <= at:
            values = {
                "action_status": action_status(outcome),
                "last_action": outcome.action.value,
                "last_action_by": outcome.actor_id,
                "last_action_via": outcome.via,
                "last_action_at": at,
            }
            await store.update_row(session, handoffs, key=key, values=values)
    if outcome.account_key:
        entry = action_entry(outcome, event_id=envelope.id)
        await store.add_to_account(session, outcome.account_key, entry, notify=notice)
    else:
        await store.notify_feed(session, notice)


async def on_action_requested(envelope: Envelope, session: AsyncSession) -> None:
    """Record an action asked for; its answer, arriving first or later, is kept."""
    request = envelope.payload(HandoffActionRequested)
    values = {
        "handoff_id": request.handoff_id,
        "account_key": envelope.subject,
        "action": request.action.value,
        "actor_id": request.actor_id,
        "via": request.via,
        "hand_on_to": request.hand_on_to.value if request.hand_on_to else None,
        "target_id": request.target_id,
        "reason": request.reason.value if request.reason else None,
        "note": request.note,
        "requested_at": request.requested_at,
    }
    # What only the request says (an answer arrived first keeps its status and account).
    asked = tuple(k for k in values if k != "account_key")
    row = {"action_id": request.action_id, "status": "requested", **values}
    await fetch(session, _upsert(tuple(row), asked), row)


async def _record_outcome(session: AsyncSession, outcome: HandoffActionOutcome) -> None:
    values = {
        "status": "taken" if outcome.taken else "refused",
        "code": outcome.code,
        "message": outcome.message,
        "assignee_id": outcome.assignee_id,
        "decided_at": outcome.occurred_at,
    }
    row = {
        "action_id": outcome.action_id,
        "handoff_id": outcome.handoff_id,
        "account_key": outcome.account_key,
        "action": outcome.action.value,
        "actor_id": outcome.actor_id,
        "via": outcome.via,
        "reason": outcome.reason.value if outcome.reason else None,
        "note": outcome.note,
        **values,
    }
    # The router answers each action once; a repeat of the answer changes nothing.
    await fetch(session, _upsert(tuple(row), tuple(values)), row)


@cache
def _upsert(columns: tuple[str, ...], updated: tuple[str, ...]) -> Statement:
    """Insert an action's row, or set `updated` on the one there."""
    return Statement.of(
        f"INSERT INTO handoff_action_requests ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + c for c in columns)}) ON CONFLICT (action_id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in updated)
    )
