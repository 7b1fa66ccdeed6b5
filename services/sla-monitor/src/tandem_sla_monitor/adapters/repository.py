"""Every query of the SLA monitor: clocks, superseded clocks and early activities."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_shared.db import Statement, fetch, transaction_memory
from tandem_shared.events import ActivityLogged
from tandem_sla_monitor.adapters.tables import clocks, early_activities
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


# The consumer's statements have a fixed shape and run on the transaction's asyncpg connection,
# which prepares each once.
_LOCK_KEYS = Statement.of(
    "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(CAST(:keys AS text[])) AS k"
)


async def lock_match_keys(session: AsyncSession, keys: Iterable[str]) -> None:
    """Serialize, until commit, the transactions that start clocks or log touches on `keys`.

    Without it a decision and its answering activity handled at the same moment (two
    replicas, two partitions) would each miss the other's uncommitted row.
    """
    # Held until commit, so a key this transaction locked before needs no second round trip.
    held = transaction_memory(session, "tandem_sla_monitor.locked_keys", set[str])
    wanted = sorted(set(keys) - held)  # one global order: no deadlock between these locks
    if wanted:
        # One statement takes them in the array's order.
        await fetch(session, _LOCK_KEYS, {"keys": wanted})
        held.update(wanted)


_GET_CLOCK = Statement.of("SELECT clock, team_ids FROM clocks WHERE handoff_id = :handoff_id")
_LOCK_CLOCK = Statement.of(
    "SELECT clock, team_ids FROM clocks WHERE handoff_id = :handoff_id FOR UPDATE"
)


async def get_clock(
    session: AsyncSession, handoff_id: str, *, for_update: bool = False
) -> StoredClock | None:
    """Return a handoff's current clock (locked until commit when `for_update`)."""
    query = _LOCK_CLOCK if for_update else _GET_CLOCK
    rows = await fetch(session, query, {"handoff_id": handoff_id})
    return _stored(rows[0]["clock"], rows[0]["team_ids"]) if rows else None


# A decision's clock (locked) and the stored touches of its account or contact since it started.
_CLOCK_AND_EARLY = Statement.of(
    "SELECT c.clock, c.team_ids, ("
    "SELECT coalesce(jsonb_agg(e.activity ORDER BY e.occurred_at, e.activity_id), '[]') "
    "FROM early_activities AS e "
    "WHERE (e.account_key = :account_key OR e.contact_email = :contact_email) "
    "AND e.occurred_at >= :since) AS early "
    "FROM (VALUES (1)) AS one LEFT JOIN LATERAL ("
    "SELECT clock, team_ids FROM clocks WHERE handoff_id = :handoff_id FOR UPDATE"
    ") AS c ON true"
)


async def lock_clock_with_early_activities(
    session: AsyncSession,
    handoff_id: str,
    *,
    account_key: str | None,
    contact_email: str | None,
    since: datetime,
) -> tuple[StoredClock | None, list[ActivityLogged]]:
    """Lock a handoff's clock, and return it with the touches stored since `since`."""
    params = {
        "handoff_id": handoff_id,
        "account_key": account_key,
        "contact_email": contact_email.casefold() if contact_email else None,
        "since": since,
    }
    [row] = await fetch(session, _CLOCK_AND_EARLY, params)
    stored = None if row["clock"] is None else _stored(row["clock"], row["team_ids"])
    return stored, [ActivityLogged.model_validate(a) for a in row["early"]]


_CLOCK_COLUMNS = (
    "handoff_id", "decision_id", "assignee_id", "account_key", "contact_email", "tier", "signal",
    "status", "started_at", "deadline", "met_at", "next_due_at", "clock",
)  # fmt: skip
_SAVE_CLOCK = (
    f"INSERT INTO clocks ({', '.join(_CLOCK_COLUMNS)}, team_ids, trace_context) "
    f"VALUES ({', '.join(':' + c for c in _CLOCK_COLUMNS)}, CAST(:team_ids AS text[]), "
    ":trace_context) ON CONFLICT (handoff_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*_CLOCK_COLUMNS[1:], "team_ids", "trace_context"))
    + ", updated_at = now()"
)
_SUPERSEDE = (
    "superseded AS (INSERT INTO superseded_clocks (decision_id, handoff_id, superseded_by, clock) "
    "VALUES (:old_decision_id, :handoff_id, :decision_id, :old_clock) "
    "ON CONFLICT (decision_id) DO NOTHING)"
)
_SAVE = Statement.of(_SAVE_CLOCK, json=("clock", "trace_context"))
_SUPERSEDE_AND_SAVE = Statement.of(
    f"WITH {_SUPERSEDE} {_SAVE_CLOCK}", json=("clock", "trace_context", "old_clock")
)


async def save_clock(
    session: AsyncSession,
    clock: SlaClock,
    *,
    team_ids: Iterable[str],
    trace_context: TraceContext | None = None,
    superseding: SlaClock | None = None,
) -> None:
    """Insert or replace a handoff's current clock, with the trace its later firings continue.

    `superseding`: the clock it replaces, kept for audit in the same statement.
    """
    params = _clock_values(clock) | {
        "team_ids": sorted(set(team_ids)),
        "trace_context": trace_context or None,
    }
    if superseding is None:
        await fetch(session, _SAVE, params)
        return
    params |= {
        "old_decision_id": superseding.decision_id,
        "old_clock": superseding.model_dump(mode="json"),
    }
    await fetch(session, _SUPERSEDE_AND_SAVE, params)


_UPDATE_CLOCK = Statement.of(
    "UPDATE clocks SET "
    + ", ".join(f"{c} = :{c}" for c in _CLOCK_COLUMNS[1:])
    + ", updated_at = now() WHERE handoff_id = :handoff_id",
    json=("clock",),
)


async def update_clock(session: AsyncSession, clock: SlaClock) -> None:
    """Save a new state of a stored clock, keeping its account team."""
    await fetch(session, _UPDATE_CLOCK, _clock_values(clock))


async def postpone_clock(session: AsyncSession, handoff_id: str, *, to: datetime) -> None:
    """Move a clock's due time without changing its state (after a failure to fire it)."""
    await session.execute(
        sa.update(clocks).where(clocks.c.handoff_id == handoff_id).values(next_due_at=to)
    )


# Keeps the touch for decisions still on their way, and locks the clocks it could stop.
_STORE_AND_LOCK_TOUCHABLE = Statement.of(
    "WITH stored AS (INSERT INTO early_activities (activity_id, account_key, contact_email, "
    "occurred_at, activity, stored_at) VALUES (:activity_id, :account_key, :contact_email, "
    ":occurred_at, :activity, :stored_at) ON CONFLICT (activity_id) DO NOTHING) "
    "SELECT clock, team_ids FROM clocks "
    "WHERE (account_key = :account_key OR contact_email = :contact_email) "
    "AND started_at <= :occurred_at AND (met_at IS NULL OR met_at > :occurred_at) "
    "ORDER BY handoff_id FOR UPDATE",
    json=("activity",),
)


async def store_activity_and_lock_touchable(
    session: AsyncSession, activity: ActivityLogged, *, stored_at: datetime
) -> list[StoredClock]:
    """Keep a touch (once per activity id); lock and return the clocks it could stop.

    The clocks come in handoff order, those started by then and not met before it.
    """
    if not activity.account_key and not activity.contact_email:
        return []
    params = {
        "activity_id": activity.activity_id,
        "account_key": activity.account_key,
        "contact_email": activity.contact_email.casefold() if activity.contact_email else None,
        "occurred_at": activity.occurred_at,
        "activity": activity.model_dump(mode="json"),
        "stored_at": stored_at,
    }
    rows = await fetch(session, _STORE_AND_LOCK_TOUCHABLE, params)
    return [_stored(row["clock"], row["team_ids"]) for row in rows]


# The timer runs it twice a second, due clocks or not: on the asyncpg connection.
_CLAIM_DUE_CLOCKS = Statement.of(
    "SELECT clock, trace_context FROM clocks WHERE next_due_at <= :now "
    "ORDER BY next_due_at LIMIT :limit FOR UPDATE SKIP LOCKED"
)


async def claim_due_clocks(session: AsyncSession, *, now: datetime, limit: int) -> list[DueClock]:
    """Lock and return clocks due at `now`; clocks another replica holds are skipped."""
    rows = await fetch(session, _CLAIM_DUE_CLOCKS, {"now": now, "limit": limit})
    return [DueClock(SlaClock.model_validate(row["clock"]), row["trace_context"]) for row in rows]


async def clocks_started_between(
    session: AsyncSession, *, since: datetime, until: datetime
) -> list[SlaClock]:
    """Return the current clocks started in [since, until)."""
    query = sa.select(clocks.c.clock).where(
        clocks.c.started_at >= since, clocks.c.started_at < until
    )
    return [SlaClock.model_validate(row.clock) for row in await session.execute(query)]


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
