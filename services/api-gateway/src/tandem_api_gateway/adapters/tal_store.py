"""Loading and saving TAL workflow entries with their decision history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_api_gateway.adapters.tables import tal_entries, tal_history
from tandem_api_gateway.domain.authz import Role, Side
from tandem_api_gateway.domain.tal_workflow import Decision, TalAction, TalEntry, TalStatus
from tandem_shared.events import IntentItem, Tier


async def load_entry(session: AsyncSession, account_key: str, *, lock: bool) -> TalEntry | None:
    """Return the account's TAL entry with its history (locked for update when asked)."""
    query = sa.select(tal_entries).where(tal_entries.c.account_key == account_key)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).mappings().first()
    if row is None:
        return None
    history = await _history(session, [account_key])
    return _entry(dict(row), history.get(account_key, ()))


async def list_entries(
    session: AsyncSession,
    *,
    status: str | None,
    tier: str | None,
    after: str | None,
    limit: int,
) -> list[TalEntry]:
    """Return up to limit+1 entries ordered by account key, after the cursor's key."""
    query = sa.select(tal_entries).order_by(tal_entries.c.account_key).limit(limit + 1)
    if status is not None:
        query = query.where(tal_entries.c.status == status)
    if tier is not None:
        query = query.where(tal_entries.c.tier == tier)
    if after is not None:
        query = query.where(tal_entries.c.account_key > after)
    rows = [dict(r) for r in (await session.execute(query)).mappings()]
    history = await _history(session, [r["account_key"] for r in rows])
    return [_entry(r, history.get(r["account_key"], ())) for r in rows]


async def save_entry(session: AsyncSession, entry: TalEntry, *, now: datetime) -> None:
    """Upsert the entry and append the decisions not stored yet."""
    values: dict[str, Any] = {
        "account_key": entry.account_key,
        "status": entry.status.value,
        "tier": entry.tier.value,
        "suggested_tier": entry.suggested_tier.value,
        "proposal_reason": entry.proposal_reason,
        "name": entry.name,
        "fit_score": entry.fit_score,
        "intent": [i.model_dump(mode="json") for i in entry.intent],
        "ae_id": entry.ae_id,
        "sdr_id": entry.sdr_id,
        "marketer_id": entry.marketer_id,
        "territory": entry.territory,
        "approvals": [[side.value, pid] for side, pid in entry.approvals],
        "updated_at": now,
    }
    stmt = insert(tal_entries).values(**values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["account_key"], set_={k: stmt.excluded[k] for k in values}
        )
    )
    rows = [
        {
            "account_key": entry.account_key,
            "seq": seq,
            "actor_id": d.actor_id,
            "role": d.role.value,
            "action": d.action.value,
            "at": d.at,
            "reason": d.reason,
            "side": d.side.value if d.side else None,
            "tier": d.tier.value if d.tier else None,
        }
        for seq, d in enumerate(entry.history)
    ]
    if rows:
        await session.execute(insert(tal_history).values(rows).on_conflict_do_nothing())


async def _history(
    session: AsyncSession, account_keys: list[str]
) -> dict[str, tuple[Decision, ...]]:
    if not account_keys:
        return {}
    query = (
        sa.select(tal_history)
        .where(tal_history.c.account_key.in_(account_keys))
        .order_by(tal_history.c.account_key, tal_history.c.seq)
    )
    found: dict[str, list[Decision]] = {}
    for row in (await session.execute(query)).mappings():
        found.setdefault(row["account_key"], []).append(
            Decision(
                actor_id=row["actor_id"],
                role=Role(row["role"]),
                action=TalAction(row["action"]),
                at=row["at"],
                reason=row["reason"],
                side=Side(row["side"]) if row["side"] else None,
                tier=Tier(row["tier"]) if row["tier"] else None,
            )
        )
    return {key: tuple(items) for key, items in found.items()}


def _entry(row: dict[str, Any], history: tuple[Decision, ...]) -> TalEntry:
    return TalEntry(
        account_key=row["account_key"],
        status=TalStatus(row["status"]),
        tier=Tier(row["tier"]),
        suggested_tier=Tier(row["suggested_tier"]),
        proposal_reason=row["proposal_reason"],
        name=row["name"],
        fit_score=row["fit_score"],
        intent=tuple(IntentItem.model_validate(i) for i in row["intent"]),
        ae_id=row["ae_id"],
        sdr_id=row["sdr_id"],
        marketer_id=row["marketer_id"],
        territory=row["territory"],
        approvals=tuple((Side(side), pid) for side, pid in row["approvals"]),
        history=history,
    )
