"""Writes of the projections: lock-or-create a row, update it, append timeline entries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_api_gateway.adapters.tables import (
    READ_MODELS,
    accounts,
    alert_deliveries,
    crm_accounts,
    deals,
    projection_state,
    timeline,
)
from tandem_api_gateway.domain.timeline import TimelineEntry, TimelineKind
from tandem_shared.outbox import inbox

FEED_CHANNEL = "api_gateway_feed"
_RANK = {kind: rank for rank, kind in enumerate(TimelineKind)}


async def lock_row(
    session: AsyncSession,
    table: sa.Table,
    *,
    key: Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Create the row if missing (with `defaults`), then lock it and return its values."""
    await session.execute(
        insert(table).values({**(defaults or {}), **key}).on_conflict_do_nothing()
    )
    query = sa.select(table).where(*(table.c[k] == v for k, v in key.items())).with_for_update()
    return dict((await session.execute(query)).mappings().one())


async def update_row(
    session: AsyncSession, table: sa.Table, *, key: Mapping[str, Any], values: Mapping[str, Any]
) -> None:
    """Set `values` on the row identified by `key`."""
    if values:
        await session.execute(
            sa.update(table).where(*(table.c[k] == v for k, v in key.items())).values(**values)
        )


async def add_timeline_entry(
    session: AsyncSession, *, account_key: str, entry: TimelineEntry
) -> bool:
    """Add an entry to an account's timeline; False when it was already there."""
    result = await session.execute(
        insert(timeline)
        .values(
            kind=entry.kind.value,
            entry_id=entry.entry_id,
            account_key=account_key,
            at=entry.at,
            rank=_RANK[entry.kind],
            title=entry.title,
            actor_id=entry.actor_id,
            data=dict(entry.data),
        )
        .on_conflict_do_nothing()
        .returning(timeline.c.entry_id)
    )
    return result.first() is not None


async def settle_account_merges(session: AsyncSession, *, crm: str, crm_ids: list[str]) -> None:
    """Mark each merged-away account whose winner is now known, among merges of `crm_ids`."""
    loser = crm_accounts.alias("loser")
    winner = crm_accounts.alias("winner")
    await session.execute(
        sa.update(accounts)
        .where(
            accounts.c.account_key == loser.c.account_key,
            winner.c.crm == loser.c.crm,
            winner.c.crm_id == loser.c.merged_into,
            winner.c.account_key != loser.c.account_key,  # two records of one account: no merge
            loser.c.crm == crm,
            sa.or_(loser.c.crm_id.in_(crm_ids), winner.c.crm_id.in_(crm_ids)),
        )
        .values(merged_into=winner.c.account_key)
    )


async def record_delivery(session: AsyncSession, values: Mapping[str, Any]) -> None:
    """Upsert one (alert, recipient, channel) delivery; a delivery beats a failure."""
    stmt = insert(alert_deliveries).values(**values)
    existing = alert_deliveries.c
    newer = sa.or_(stmt.excluded.status == "delivered", stmt.excluded.at >= existing.at)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["alert_id", "recipient_id", "channel"],
            set_={c: stmt.excluded[c] for c in values if c not in ("alert_id", "recipient_id")},
            where=sa.and_(newer, existing.status != "delivered"),
        )
    )


async def lock_account(session: AsyncSession, account_key: str) -> dict[str, Any]:
    """Create the account's row if missing, then lock it and return its values."""
    return await lock_row(session, accounts, key={"account_key": account_key})


async def add_to_account(session: AsyncSession, account_key: str, entry: TimelineEntry) -> None:
    """Create the account's row if missing (locked), then add the entry to its timeline."""
    await lock_account(session, account_key)
    await add_timeline_entry(session, account_key=account_key, entry=entry)


async def lock_deal(session: AsyncSession, deal_id: str, *, at: datetime) -> dict[str, Any]:
    """Create the deal's row if missing (first seen `at`), then lock it and return its values."""
    return await lock_row(
        session, deals, key={"deal_id": deal_id}, defaults={"created_at": at, "updated_at": at}
    )


async def notify_change(
    session: AsyncSession, kind: str, object_id: str, account_key: str | None
) -> None:
    """Queue the live-feed message that an object (of an account, if known) changed."""
    await notify_feed(session, {"kind": kind, "id": object_id, "account_key": account_key})


async def notify_feed(session: AsyncSession, message: Mapping[str, Any]) -> None:
    """Queue a live-feed message; PostgreSQL delivers it to every replica only on commit."""
    payload = json.dumps(message, separators=(",", ":"), default=str)
    await session.execute(sa.select(sa.func.pg_notify(FEED_CHANNEL, payload)))


async def truncate_read_models(session: AsyncSession) -> None:
    """Empty every read model and the inbox, so the topics can be consumed again."""
    names = ", ".join(t.name for t in (*READ_MODELS, inbox))
    await session.execute(sa.text(f"TRUNCATE {names}"))


async def projection_group(session: AsyncSession, *, default: str) -> str:
    """Return the consumer group the projections read with."""
    query = sa.select(projection_state.c.group_id).where(projection_state.c.name == "projections")
    return (await session.execute(query)).scalar_one_or_none() or default


async def set_projection_group(session: AsyncSession, group: str) -> None:
    """Switch the projections to another consumer group."""
    stmt = insert(projection_state).values(name="projections", group_id=group)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=["name"], set_={"group_id": group})
    )
