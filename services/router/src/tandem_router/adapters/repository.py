"""Every query of the router: account states, round-robin pools, handoffs, decisions, archive."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_router.adapters.tables import (
    account_states,
    decisions,
    handoffs,
    round_robin_pools,
    routed_events,
)
from tandem_router.domain.matching import AccountRef, Clues
from tandem_router.domain.model import AccountState, PoolState, RoundRobinState
from tandem_shared.events import RoutingDecided


def _account_row(state: AccountState) -> dict[str, Any]:
    return {
        "account_key": state.account_key,
        "state": state.model_dump(mode="json"),
        "name": state.name,
        "match_domains": sorted({*state.alias_domains, *state.subsidiary_domains}),
        "crm_ids": sorted(state.crm_ids.values()),
    }


async def seed_accounts(session: AsyncSession, states: Iterable[AccountState]) -> int:
    """Insert the accounts the router does not know yet; return how many were new."""
    rows = [_account_row(s) for s in states]
    if not rows:
        return 0
    result = await session.execute(
        insert(account_states)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["account_key"])
        .returning(account_states.c.account_key)
    )
    return len(result.all())


async def candidate_refs(session: AsyncSession, clues: Clues) -> list[AccountRef]:
    """Return the accounts an event's domains or CRM account id could belong to."""
    conditions: list[sa.ColumnElement[bool]] = []
    if clues.domains:
        domains = list(clues.domains)
        conditions += [
            account_states.c.account_key.in_(domains),
            account_states.c.match_domains.overlap(domains),
        ]
    if clues.crm_account_id:
        conditions.append(account_states.c.crm_ids.contains([clues.crm_account_id]))
    if not conditions:
        return []
    rows = await session.execute(sa.select(account_states.c.state).where(sa.or_(*conditions)))
    return [AccountRef.of(AccountState.model_validate(state)) for state in rows.scalars()]


async def named_refs(session: AsyncSession) -> list[AccountRef]:
    """Return every account with a name (for fuzzy company-name matching)."""
    rows = await session.execute(
        sa.select(account_states.c.account_key, account_states.c.name).where(
            account_states.c.name.is_not(None)
        )
    )
    return [AccountRef(account_key=key, name=name) for key, name in rows]


async def lock_account(session: AsyncSession, account_key: str) -> AccountState:
    """Return an account's state locked for this transaction (created empty when new)."""
    # Creating the row first gives even a brand-new account a row to lock, so two replicas
    # seeing the first events of one account serialize instead of both inserting.
    await session.execute(
        insert(account_states)
        .values(_account_row(AccountState(account_key=account_key)))
        .on_conflict_do_nothing(index_elements=["account_key"])
    )
    state = await session.scalar(
        sa.select(account_states.c.state)
        .where(account_states.c.account_key == account_key)
        .with_for_update()
    )
    return AccountState.model_validate(state)


async def save_account(session: AsyncSession, state: AccountState) -> None:
    """Write an account's state (its row is locked by lock_account)."""
    row = _account_row(state)
    await session.execute(
        sa.update(account_states)
        .where(account_states.c.account_key == row.pop("account_key"))
        .values(**row, updated_at=sa.func.now())
    )


async def lock_round_robin(session: AsyncSession, pools: Sequence[str]) -> RoundRobinState:
    """Return the pools' state, locked: the one lock every assignment of a rep holds.

    Holding every pool row (in pool-id order, so two transactions cannot deadlock) while open
    handoffs are counted and a rep is chosen serializes assignments across router replicas: no
    rep is counted below capacity by two of them at once.
    """
    names = sorted(set(pools))
    await session.execute(
        insert(round_robin_pools)
        .values([{"pool_id": name, "state": PoolState().model_dump(mode="json")} for name in names])
        .on_conflict_do_nothing(index_elements=["pool_id"])
    )
    rows = await session.execute(
        sa.select(round_robin_pools.c.pool_id, round_robin_pools.c.state)
        .where(round_robin_pools.c.pool_id.in_(names))
        .order_by(round_robin_pools.c.pool_id)
        .with_for_update()
    )
    return RoundRobinState(pools={name: PoolState.model_validate(state) for name, state in rows})


async def save_round_robin(
    session: AsyncSession, *, before: RoundRobinState, after: RoundRobinState
) -> None:
    """Write the pools whose state changed (their rows are locked by lock_round_robin)."""
    for name, pool in after.pools.items():
        if before.pools.get(name) != pool:
            await session.execute(
                sa.update(round_robin_pools)
                .where(round_robin_pools.c.pool_id == name)
                .values(state=pool.model_dump(mode="json"), updated_at=sa.func.now())
            )


async def load_round_robin(session: AsyncSession) -> RoundRobinState:
    """Return every pool's state, unlocked (for reports)."""
    rows = await session.execute(sa.select(round_robin_pools.c.pool_id, round_robin_pools.c.state))
    return RoundRobinState(pools={name: PoolState.model_validate(state) for name, state in rows})


async def open_handoff_counts(session: AsyncSession) -> dict[str, int]:
    """Return how many open handoffs each rep holds."""
    rows = await session.execute(
        sa.select(handoffs.c.assignee_id, sa.func.count())
        .where(handoffs.c.status == "open")
        .group_by(handoffs.c.assignee_id)
    )
    return {assignee: int(count) for assignee, count in rows}


async def open_handoff(session: AsyncSession, routing: RoutingDecided) -> None:
    """Record a handoff as open with its (new) assignee; a reassignment replaces the assignee."""
    values = {
        "handoff_id": routing.handoff_id,
        "account_key": routing.account_key,
        "assignee_id": routing.assignee_id,
        "tier": routing.tier.value,
        "signal": routing.signal.value,
        "status": "open",
        "decision_id": routing.decision_id,
        "opened_at": routing.decided_at,
    }
    statement = insert(handoffs).values(values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["handoff_id"],
            set_={
                "assignee_id": statement.excluded.assignee_id,
                "decision_id": statement.excluded.decision_id,
                "status": "open",
                "closed_at": None,
            },
        )
    )


async def close_handoff(session: AsyncSession, *, handoff_id: str, at: datetime) -> bool:
    """Mark a handoff closed; False when it was unknown or already closed."""
    result = await session.execute(
        sa.update(handoffs)
        .where(handoffs.c.handoff_id == handoff_id, handoffs.c.status == "open")
        .values(status="closed", closed_at=at)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def record_decision(session: AsyncSession, *, event_id: str, routing: RoutingDecided) -> None:
    """Keep a routing decision and its explanation trail for operators."""
    await session.execute(
        insert(decisions)
        .values(
            decision_id=routing.decision_id,
            event_id=event_id,
            handoff_id=routing.handoff_id,
            account_key=routing.account_key,
            rule_set_version=routing.rule_set_version,
            assignee_id=routing.assignee_id,
            explanation=routing.explanation,
            routing=routing.model_dump(mode="json"),
            decided_at=routing.decided_at,
        )
        .on_conflict_do_nothing(index_elements=["decision_id"])
    )


async def get_decision(session: AsyncSession, decision_id: str) -> dict[str, Any] | None:
    """Return a recorded decision with its trail, or None."""
    row = await session.execute(sa.select(decisions).where(decisions.c.decision_id == decision_id))
    found = row.mappings().first()
    return dict(found) if found is not None else None


@dataclass(frozen=True)
class StoredAccount:
    state: AccountState
    updated_at: datetime


async def get_account(session: AsyncSession, account_key: str) -> StoredAccount | None:
    """Return an account's state and when it last changed, or None."""
    row = await session.execute(
        sa.select(account_states.c.state, account_states.c.updated_at).where(
            account_states.c.account_key == account_key
        )
    )
    found = row.first()
    if found is None:
        return None
    return StoredAccount(AccountState.model_validate(found.state), found.updated_at)


@dataclass(frozen=True)
class ArchivedEvent:
    event_id: str
    event_type: str
    payload: dict[str, Any]
    occurred_at: datetime


async def archive_event(
    session: AsyncSession,
    *,
    event_id: str,
    event_type: str,
    account_key: str | None,
    payload: dict[str, Any],
    occurred_at: datetime,
) -> None:
    """Keep a routed input so what-if can replay it."""
    await session.execute(
        insert(routed_events)
        .values(
            event_id=event_id,
            event_type=event_type,
            account_key=account_key,
            payload=payload,
            occurred_at=occurred_at,
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
    )


async def archived_events(session: AsyncSession) -> list[ArchivedEvent]:
    """Return every archived input in the order the router processed them."""
    rows = await session.execute(
        sa.select(
            routed_events.c.event_id,
            routed_events.c.event_type,
            routed_events.c.payload,
            routed_events.c.occurred_at,
        ).order_by(routed_events.c.seq)
    )
    return [ArchivedEvent(*row) for row in rows]
