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
    round_robin_pools,
    routed_events,
)
from tandem_router.domain.matching import Clues
from tandem_router.domain.model import AccountState, PoolState, RoundRobinState
from tandem_shared.db import Statement, fetch


def account_row(state: AccountState) -> dict[str, Any]:
    """Return the account_states row of a state (its denormalized columns included)."""
    return {
        "account_key": state.account_key,
        "state": state.model_dump(mode="json"),
        "name": state.name,
        "match_domains": sorted({*state.alias_domains, *state.subsidiary_domains}),
        "crm_ids": sorted(state.crm_ids.values()),
    }


async def seed_accounts(session: AsyncSession, states: Iterable[AccountState]) -> int:
    """Insert the accounts the router does not know yet; return how many were new."""
    rows = [account_row(s) for s in states]
    if not rows:
        return 0
    result = await session.execute(
        insert(account_states)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["account_key"])
        .returning(account_states.c.account_key)
    )
    return len(result.all())


# The per-event statements have a fixed shape and run on the transaction's asyncpg connection,
# which prepares each once.
_CANDIDATES = (
    "SELECT account_key, state FROM account_states "
    "WHERE account_key = ANY(CAST(:domains AS text[])) "
    "OR match_domains && CAST(:domains AS text[]) "
)
_LOCK_CANDIDATES = Statement.of(_CANDIDATES + "ORDER BY account_key FOR UPDATE")
# Only with a CRM id: a search of crm_ids for none still reads its whole index.
_LOCK_CANDIDATES_BY_CRM_ID = Statement.of(
    _CANDIDATES + "OR crm_ids @> ARRAY[CAST(:crm_id AS text)] ORDER BY account_key FOR UPDATE"
)
_ACCOUNT_NAMES = Statement.of(
    "SELECT array_agg(account_key), array_agg(name) FROM account_states WHERE name IS NOT NULL"
)
_LOCK_ACCOUNT = Statement.of("SELECT state FROM account_states WHERE account_key = :key FOR UPDATE")
_CREATE_ACCOUNT = Statement.of(
    "INSERT INTO account_states (account_key, state, name, match_domains, crm_ids) "
    "VALUES (:account_key, :state, :name, CAST(:match_domains AS text[]), "
    "CAST(:crm_ids AS text[])) "
    "ON CONFLICT (account_key) DO NOTHING RETURNING state",
    json=("state",),
)


async def lock_candidates(
    session: AsyncSession, clues: Clues, *, held: dict[str, AccountState]
) -> dict[str, AccountState]:
    """Lock and return the accounts an event's domains or CRM account id could belong to.

    Locked in key order. Accounts this transaction already holds come from `held` (they cannot
    have changed); the others are added to it.
    """
    if not clues.domains and not clues.crm_account_id:
        return {}
    params = {"domains": list(clues.domains), "crm_id": clues.crm_account_id}
    found: dict[str, AccountState] = {}
    statement = _LOCK_CANDIDATES_BY_CRM_ID if clues.crm_account_id else _LOCK_CANDIDATES
    for key, state in await fetch(session, statement, params):
        known = held.get(key)
        found[key] = known if known is not None else AccountState.model_validate(state)
    held.update(found)
    return found


async def account_names(session: AsyncSession) -> dict[str, str]:
    """Return every account's name, by key (for fuzzy company-name matching)."""
    [(keys, names)] = await fetch(session, _ACCOUNT_NAMES, {})
    return dict(zip(keys or (), names or (), strict=True))


async def lock_account(
    session: AsyncSession, account_key: str, *, new: bool = False
) -> AccountState:
    """Return an account's state locked for this transaction (created empty when new).

    `new` says the account is probably unknown: creating it first saves a round trip then.
    """
    if not new:
        state = await _first(session, _LOCK_ACCOUNT, {"key": account_key})
        if state is not None:
            return AccountState.model_validate(state)
    # Creating the row gives even a brand-new account a row to lock (our uncommitted insert
    # makes a second replica's insert of the same key wait), so the two serialize.
    empty = account_row(AccountState(account_key=account_key))
    created = await _first(session, _CREATE_ACCOUNT, empty)
    if created is None:
        created = await _first(session, _LOCK_ACCOUNT, {"key": account_key})
    return AccountState.model_validate(created)


async def _first(session: AsyncSession, statement: Statement, params: dict[str, Any]) -> Any:
    """Return the first column of the first row, or None without rows."""
    rows = await fetch(session, statement, params)
    return rows[0][0] if rows else None


# Pools a rule names get a row on first use; then every pool row is locked in pool-id order.
_CREATE_POOLS = Statement.of(
    "INSERT INTO round_robin_pools (pool_id, state) "
    "SELECT pool_id, CAST(:state AS jsonb) FROM unnest(CAST(:pools AS text[])) AS pool_id "
    "ON CONFLICT (pool_id) DO NOTHING",
    json=("state",),
)
_LOCK_POOLS = Statement.of(
    "SELECT pool_id, state FROM round_robin_pools WHERE pool_id = ANY(CAST(:pools AS text[])) "
    "ORDER BY pool_id FOR UPDATE"
)
_EMPTY_POOL = PoolState().model_dump(mode="json")


async def lock_round_robin(session: AsyncSession, pools: Sequence[str]) -> RoundRobinState:
    """Return the pools' state, locked: the one lock every assignment of a rep holds.

    Holding every pool row (in pool-id order, so two transactions cannot deadlock) while open
    handoffs are counted and a rep is chosen serializes assignments across router replicas: no
    rep is counted below capacity by two of them at once.
    """
    names = sorted(set(pools))
    await fetch(session, _CREATE_POOLS, {"pools": names, "state": _EMPTY_POOL})
    rows = await fetch(session, _LOCK_POOLS, {"pools": names})
    return RoundRobinState(pools={name: PoolState.model_validate(state) for name, state in rows})


async def load_round_robin(session: AsyncSession) -> RoundRobinState:
    """Return every pool's state, unlocked (for reports)."""
    rows = await session.execute(sa.select(round_robin_pools.c.pool_id, round_robin_pools.c.state))
    return RoundRobinState(pools={name: PoolState.model_validate(state) for name, state in rows})


_OPEN_HANDOFF_COUNTS = Statement.of(
    "SELECT assignee_id, count(*) FROM handoffs WHERE status = 'open' GROUP BY assignee_id"
)


async def open_handoff_counts(session: AsyncSession) -> dict[str, int]:
    """Return how many open handoffs each rep holds."""
    rows = await fetch(session, _OPEN_HANDOFF_COUNTS, {})
    return {assignee: int(count) for assignee, count in rows}


_CLOSE_HANDOFF = Statement.of(
    "UPDATE handoffs SET status = 'closed', closed_at = :at "
    "WHERE handoff_id = :handoff_id AND status = 'open' RETURNING assignee_id"
)


async def close_handoff(session: AsyncSession, *, handoff_id: str, at: datetime) -> str | None:
    """Mark a handoff closed; return its assignee, or None when unknown or already closed."""
    assignee: str | None = await _first(
        session, _CLOSE_HANDOFF, {"handoff_id": handoff_id, "at": at}
    )
    return assignee


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
