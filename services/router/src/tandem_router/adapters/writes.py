"""An event's writes in one statement: its account, the archive, pools, handoff and decision.

Each write is a data-modifying WITH clause of one INSERT (the archive row, always written), so an
event costs one round trip however much it changed. The parts touch different tables and rows
(the account and pools are locked by this transaction), so running them together changes
nothing but the round trips. There are eight shapes, each prepared once per connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tandem_router.adapters.repository import account_row
from tandem_router.domain.model import AccountState, PoolState
from tandem_shared.db import Statement, fetch
from tandem_shared.events import RoutingDecided

_ACCOUNT = (
    "saved AS (UPDATE account_states SET state = :state, name = :name, "
    "match_domains = CAST(:match_domains AS text[]), crm_ids = CAST(:crm_ids AS text[]), "
    "updated_at = now() WHERE account_key = :account_key)"
)
_POOLS = (
    "pooled AS (UPDATE round_robin_pools AS p SET state = u.value, updated_at = now() "
    "FROM jsonb_each(:pools) AS u WHERE p.pool_id = u.key)"
)
_ROUTING = (
    "opened AS (INSERT INTO handoffs (handoff_id, account_key, assignee_id, tier, signal, "
    "status, decision_id, opened_at) VALUES (:handoff_id, :routed_key, :assignee_id, :tier, "
    ":signal, 'open', :decision_id, :decided_at) ON CONFLICT (handoff_id) DO UPDATE SET "
    "assignee_id = excluded.assignee_id, decision_id = excluded.decision_id, status = 'open', "
    "closed_at = NULL), "
    "decided AS (INSERT INTO decisions (decision_id, event_id, handoff_id, account_key, "
    "rule_set_version, assignee_id, explanation, routing, decided_at) VALUES (:decision_id, "
    ":event_id, :handoff_id, :routed_key, :rule_set_version, :assignee_id, :explanation, "
    ":routing, :decided_at) ON CONFLICT (decision_id) DO NOTHING)"
)
_ARCHIVE = (
    "INSERT INTO routed_events (event_id, event_type, account_key, payload, occurred_at) "
    "VALUES (:event_id, :event_type, :archived_key, :payload, :occurred_at) "
    "ON CONFLICT (event_id) DO NOTHING"
)
_JSON = ("state", "pools", "explanation", "routing", "payload")


@cache
def _statement(account: bool, pools: bool, routing: bool, archive: bool = True) -> Statement:
    parts = ((_ACCOUNT, account), (_POOLS, pools), (_ROUTING, routing))
    chosen = [sql for sql, wanted in parts if wanted]
    # Actions on handoffs are not archived: what-if replays routing inputs, not people's choices.
    sql = ("WITH " + ", ".join(chosen) + " " if chosen else "") + (
        _ARCHIVE if archive else "SELECT 1"
    )
    return Statement.of(sql, json=[name for name in _JSON if f":{name}" in sql])


@dataclass(frozen=True)
class EventWrites:
    """What deciding one event changed."""

    event_id: str
    event_type: str
    payload: dict[str, Any]
    occurred_at: datetime
    archived_key: str | None  # the account the input is archived under
    account: AccountState | None = None
    pools: dict[str, PoolState] | None = None  # the pools whose state changed
    routing: RoutingDecided | None = None
    archive: bool = True


async def write_event(session: AsyncSession, writes: EventWrites) -> None:
    """Save what one event changed and archive it, in one statement."""
    params: dict[str, Any] = {
        "event_id": writes.event_id,
        "event_type": writes.event_type,
        "payload": writes.payload,
        "occurred_at": writes.occurred_at,
        "archived_key": writes.archived_key,
    }
    if writes.account is not None:
        params |= account_row(writes.account)
    if writes.pools:
        params["pools"] = {name: p.model_dump(mode="json") for name, p in writes.pools.items()}
    routing = writes.routing
    if routing is not None:
        params |= {
            "handoff_id": routing.handoff_id,
            "routed_key": routing.account_key,
            "assignee_id": routing.assignee_id,
            "tier": routing.tier.value,
            "signal": routing.signal.value,
            "decision_id": routing.decision_id,
            "decided_at": routing.decided_at,
            "rule_set_version": routing.rule_set_version,
            "explanation": routing.explanation,
            "routing": routing.model_dump(mode="json"),
        }
    statement = _statement(
        writes.account is not None, bool(writes.pools), routing is not None, writes.archive
    )
    await fetch(session, statement, params)
