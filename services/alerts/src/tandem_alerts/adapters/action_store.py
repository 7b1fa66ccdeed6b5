"""Queries of handoff actions in Slack: handoff states, clicks in flight, Slack calls to make."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_alerts.adapters.action_tables import (
    email_action_links,
    handoff_states,
    slack_actions,
    slack_calls,
)
from tandem_alerts.adapters.tables import alerts
from tandem_shared.events import AlertKind, AlertRequested, HandoffAction, HandoffActionOutcome
from tandem_shared.handoff_policy import HandoffFacts


@dataclass(frozen=True)
class ClickRow:
    action_id: str
    handoff_id: str
    alert_id: str | None
    person_id: str
    slack_user_id: str
    channel_id: str | None
    message_ts: str | None


@dataclass(frozen=True)
class SlackCall:
    id: int
    method: str
    arguments: dict[str, Any]
    attempts: int


async def handoff_facts(session: AsyncSession, handoff_id: str) -> HandoffFacts | None:
    """Return where the handoff stands after the outcomes seen, or None before any."""
    return (await handoff_states_of(session, {handoff_id})).get(handoff_id)


async def handoff_states_of(
    session: AsyncSession, handoff_ids: Collection[str]
) -> dict[str, HandoffFacts]:
    """Return where each handoff stands after the outcomes seen (none yet: not in the dict)."""
    if not handoff_ids:
        return {}
    rows = await session.execute(
        sa.select(handoff_states).where(handoff_states.c.handoff_id.in_(list(handoff_ids)))
    )
    return {
        row.handoff_id: HandoffFacts(
            handoff_id=row.handoff_id,
            assignee_id=row.assignee_id,
            acknowledged_by=row.acknowledged_by,
            accepted_by=row.accepted_by,
        )
        for row in rows
    }


async def alert_for(
    session: AsyncSession, handoff_id: str, alert_id: str | None
) -> AlertRequested | None:
    """Return the alert a message rendered (by id), else the handoff's latest handoff alert."""
    query = sa.select(alerts.c.payload).where(alerts.c.handoff_id == handoff_id)
    if alert_id is not None:
        query = query.where(alerts.c.alert_id == alert_id)
    else:
        query = query.where(alerts.c.payload["kind"].astext == AlertKind.HANDOFF.value)
    payload = (await session.execute(query.order_by(alerts.c.received_at.desc()).limit(1))).scalar()
    return AlertRequested.model_validate(payload) if payload is not None else None


async def record_click(session: AsyncSession, click: ClickRow, *, at: datetime) -> bool:
    """Record a click sent to the router; False when the same click was recorded already."""
    statement = (
        insert(slack_actions)
        .values(**click.__dict__, requested_at=at)
        .on_conflict_do_nothing(index_elements=["action_id"])
        .returning(slack_actions.c.action_id)
    )
    return (await session.execute(statement)).first() is not None


async def click_of(session: AsyncSession, action_id: str) -> ClickRow | None:
    """Return the Slack click an outcome answers, or None (the action came from elsewhere)."""
    row = (
        await session.execute(
            sa.select(slack_actions).where(slack_actions.c.action_id == action_id)
        )
    ).one_or_none()
    if row is None:
        return None
    return ClickRow(**{k: getattr(row, k) for k in ClickRow.__dataclass_fields__})


async def apply_outcome(session: AsyncSession, outcome: HandoffActionOutcome) -> None:
    """Move the handoff's state by a taken action (a new owner starts afresh)."""
    values: dict[str, Any] = {"assignee_id": outcome.assignee_id, "updated_at": outcome.occurred_at}
    if outcome.decision_id is not None or outcome.assignee_id != outcome.previous_assignee_id:
        values |= {"acknowledged_by": None, "accepted_by": None}
    if outcome.action is HandoffAction.ACKNOWLEDGE:
        values["acknowledged_by"] = outcome.actor_id
    if outcome.action is HandoffAction.ACCEPT:
        values["accepted_by"] = outcome.actor_id
    statement = insert(handoff_states).values(handoff_id=outcome.handoff_id, **values)
    statement = statement.on_conflict_do_update(
        index_elements=["handoff_id"],
        set_=values,
        where=handoff_states.c.updated_at <= outcome.occurred_at,
    )
    await session.execute(statement)


async def queue_call(
    session: AsyncSession, *, key: str, method: str, arguments: dict[str, Any]
) -> None:
    """Queue one Slack call, made once after the transaction commits."""
    statement = insert(slack_calls).values(idempotency_key=key, method=method, arguments=arguments)
    await session.execute(statement.on_conflict_do_nothing(index_elements=["idempotency_key"]))


async def claim_calls(session: AsyncSession, *, limit: int) -> list[SlackCall]:
    """Lock pending calls for this transaction (replicas skip each other's)."""
    rows = await session.execute(
        sa.select(
            slack_calls.c.id, slack_calls.c.method, slack_calls.c.arguments, slack_calls.c.attempts
        )
        .where(slack_calls.c.status == "pending")
        .order_by(slack_calls.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [SlackCall(r.id, r.method, r.arguments, r.attempts) for r in rows]


async def finish_call(
    session: AsyncSession, call: SlackCall, *, status: str, error: str | None
) -> None:
    """Record how a call went: sent, failed for good, or pending again (a retry)."""
    await session.execute(
        sa.update(slack_calls)
        .where(slack_calls.c.id == call.id)
        .values(status=status, attempts=call.attempts + 1, last_error=error)
    )


async def link_used(session: AsyncSession, link_id: str) -> bool:
    """Return True when an email action link was used already."""
    query = sa.select(email_action_links.c.link_id).where(email_action_links.c.link_id == link_id)
    return (await session.execute(query)).first() is not None


async def use_link(
    session: AsyncSession,
    *,
    link_id: str,
    action_id: str,
    person_id: str,
    handoff_id: str,
    at: datetime,
) -> bool:
    """Record an email link's use; False when it was used before (it acts once)."""
    statement = (
        insert(email_action_links)
        .values(
            link_id=link_id,
            action_id=action_id,
            person_id=person_id,
            handoff_id=handoff_id,
            used_at=at,
        )
        .on_conflict_do_nothing(index_elements=["link_id"])
        .returning(email_action_links.c.link_id)
    )
    return (await session.execute(statement)).first() is not None
