"""Every query of the SLA monitor: clocks, superseded clocks and early activities."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_shared.events import ActivityLogged
from tandem_sla_monitor.adapters.tables import clocks, early_activities, superseded_clocks
from tandem_sla_monitor.domain.clock import SlaClock

TraceContext = dict[str, str]


@dataclass(frozen=True, slots=True)
class StoredClock:
    """A clock as stored, with the account team whose touches also stop it."""

    clock: SlaClock
    team_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class DueClock:
    """A clock the timer claimed, with the trace context of the decision that started it."""

    clock: SlaClock
    trace_context: TraceContext | None


def match_keys(*, account_key: str | None, contact_email: str | None) -> list[str]:
    """Return the lock keys of what a clock and an activity can meet on."""
    keys = [f"account:{account_key}"] if account_key else []
    if contact_email:
        keys.append(f"contact:{contact_email.casefold()}")
    return sorted(keys)


async def lock_match_keys(session: AsyncSession, keys: Iterable[str]) -> None:
    """Serialize, until commit, the transactions that start clocks or log touches on `keys`.

    Without it a decision and its answering activity handled at the same moment (two
    replicas, two partitions) would each miss the other's uncommitted row.
    """
    for key in sorted(set(keys)):  # one global order: no deadlock between these locks
        await session.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(key, 0)))
        )


async def get_clock(
    session: AsyncSession, handoff_id: str, *, for_update: bool = False
) -> StoredClock | None:
    """Return a handoff's current clock (locked until commit when `for_update`)."""
    query = sa.select(clocks.c.clock, clocks.c.team_ids).where(clocks.c.handoff_id == handoff_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return None if row is None else _stored(row.clock, row.team_ids)


async def save_clock(
    session: AsyncSession,
    clock: SlaClock,
    *,
    team_ids: Iterable[str],
    trace_context: TraceContext | None = None,
) -> None:
    """Insert or replace a handoff's current clock, with the trace its later firings continue."""
    values = _clock_values(clock) | {
        "team_ids": sorted(set(team_ids)),
        "trace_context": trace_context or None,
    }
    statement = insert(clocks).values(values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[clocks.c.handoff_id],
            set_={**{k: statement.excluded[k] for k in values}, "updated_at": sa.func.now()},
        )
    )


async def update_clock(session: AsyncSession, clock: SlaClock) -> None:
    """Save a new state of a stored clock, keeping its account team."""
    await session.execute(
        sa.update(clocks)
        .where(clocks.c.handoff_id == clock.handoff_id)
        .values(**_clock_values(clock), updated_at=sa.func.now())
    )


async def postpone_clock(session: AsyncSession, handoff_id: str, *, to: datetime) -> None:
    """Move a clock's due time without changing its state (after a failure to fire it)."""
    await session.execute(
        sa.update(clocks).where(clocks.c.handoff_id == handoff_id).values(next_due_at=to)
    )


async def supersede_clock(session: AsyncSession, old: SlaClock, *, by_decision_id: str) -> None:
    """Keep a clock a newer decision replaces, for audit."""
    await session.execute(
        insert(superseded_clocks)
        .values(
            decision_id=old.decision_id,
            handoff_id=old.handoff_id,
            superseded_by=by_decision_id,
            clock=old.model_dump(mode="json"),
        )
        .on_conflict_do_nothing(index_elements=[superseded_clocks.c.decision_id])
    )


async def clocks_touchable_by(session: AsyncSession, activity: ActivityLogged) -> list[StoredClock]:
    """Lock and return the clocks an activity could stop (or stop earlier), in handoff order."""
    keys = []
    if activity.account_key:
        keys.append(clocks.c.account_key == activity.account_key)
    if activity.contact_email:
        keys.append(clocks.c.contact_email == activity.contact_email.casefold())
    if not keys:
        return []
    query = (
        sa.select(clocks.c.clock, clocks.c.team_ids)
        .where(
            sa.or_(*keys),
            clocks.c.started_at <= activity.occurred_at,
            sa.or_(clocks.c.met_at.is_(None), clocks.c.met_at > activity.occurred_at),
        )
        .order_by(clocks.c.handoff_id)
        .with_for_update()
    )
    return [_stored(row.clock, row.team_ids) for row in await session.execute(query)]


async def claim_due_clocks(session: AsyncSession, *, now: datetime, limit: int) -> list[DueClock]:
    """Lock and return clocks due at `now`; clocks another replica holds are skipped."""
    query = (
        sa.select(clocks.c.clock, clocks.c.trace_context)
        .where(clocks.c.next_due_at <= now)
        .order_by(clocks.c.next_due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [
        DueClock(SlaClock.model_validate(row.clock), row.trace_context)
        for row in await session.execute(query)
    ]


async def clocks_started_between(
    session: AsyncSession, *, since: datetime, until: datetime
) -> list[SlaClock]:
    """Return the current clocks started in [since, until)."""
    query = sa.select(clocks.c.clock).where(
        clocks.c.started_at >= since, clocks.c.started_at < until
    )
    return [SlaClock.model_validate(row.clock) for row in await session.execute(query)]


async def store_early_activity(
    session: AsyncSession, activity: ActivityLogged, *, stored_at: datetime
) -> None:
    """Keep a touch for decisions that may still arrive (once per activity id)."""
    await session.execute(
        insert(early_activities)
        .values(
            activity_id=activity.activity_id,
            account_key=activity.account_key,
            contact_email=activity.contact_email.casefold() if activity.contact_email else None,
            occurred_at=activity.occurred_at,
            activity=activity.model_dump(mode="json"),
            stored_at=stored_at,
        )
        .on_conflict_do_nothing(index_elements=[early_activities.c.activity_id])
    )


async def early_activities_for(
    session: AsyncSession, *, account_key: str | None, contact_email: str | None, since: datetime
) -> list[ActivityLogged]:
    """Return stored touches on an account or contact that occurred at or after `since`."""
    keys = []
    if account_key:
        keys.append(early_activities.c.account_key == account_key)
    if contact_email:
        keys.append(early_activities.c.contact_email == contact_email.casefold())
    if not keys:
        return []
    query = sa.select(early_activities.c.activity).where(
        sa.or_(*keys), early_activities.c.occurred_at >= since
    )
    return [ActivityLogged.model_validate(row.activity) for row in await session.execute(query)]


async def purge_early_activities(session: AsyncSession, *, stored_before: datetime) -> int:
    """Delete touches kept since before `stored_before`; return how many."""
    result = await session.execute(
        sa.delete(early_activities).where(early_activities.c.stored_at < stored_before)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _clock_values(clock: SlaClock) -> dict[str, Any]:
    return {
        "handoff_id": clock.handoff_id,
        "decision_id": clock.decision_id,
        "assignee_id": clock.assignee_id,
        "account_key": clock.account_key,
        "contact_email": clock.contact_email.casefold() if clock.contact_email else None,
        "tier": clock.tier.value,
        "signal": clock.signal.value,
        "status": clock.status.value,
        "started_at": clock.started_at,
        "deadline": clock.deadline,
        "met_at": clock.touched_at,
        "next_due_at": clock.next_due_at,
        "clock": clock.model_dump(mode="json"),
    }


def _stored(document: dict[str, Any], team_ids: list[str]) -> StoredClock:
    return StoredClock(clock=SlaClock.model_validate(document), team_ids=frozenset(team_ids))
