"""Writes of the projections: lock-or-create a row, update it, append timeline entries."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_api_gateway.adapters.tables import (
    METRIC_DAYS,
    READ_MODELS,
    ROLL_UPS,
    accounts,
    crm_accounts,
    deals,
    projection_state,
)
from tandem_api_gateway.domain.timeline import TimelineEntry, TimelineKind
from tandem_shared.db import Statement, fetch
from tandem_shared.outbox import inbox

FEED_CHANNEL = "api_gateway_feed"
_RANK = {kind: rank for rank, kind in enumerate(TimelineKind)}


# Statements are built once per shape (table, columns) and run on the transaction's asyncpg
# connection, which prepares each once.


def _json(table: sa.Table, names: Iterable[str], prefix: str = "") -> list[str]:
    # JSONB columns' values are sent as JSON; PostgreSQL infers every other type.
    return [prefix + name for name in names if isinstance(table.c[name].type, JSONB)]


@cache
def _lock_statement(table: sa.Table, key: tuple[str, ...], columns: tuple[str, ...]) -> Statement:
    where = " AND ".join(f"{k} = :{k}" for k in key)
    return Statement.of(
        f"WITH created AS (INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + c for c in columns)}) ON CONFLICT DO NOTHING RETURNING *), "
        f"locked AS (SELECT * FROM {table.name} WHERE {where} FOR UPDATE) "
        "SELECT * FROM created UNION ALL SELECT * FROM locked",
        json=_json(table, columns),
    )


@cache
def _relock_statement(table: sa.Table, key: tuple[str, ...]) -> Statement:
    where = " AND ".join(f"{k} = :{k}" for k in key)
    return Statement.of(f"SELECT * FROM {table.name} WHERE {where} FOR UPDATE")


async def lock_row(
    session: AsyncSession,
    table: sa.Table,
    *,
    key: Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Create the row if missing (with `defaults`), then lock it and return its values."""
    values = {**(defaults or {}), **key}
    statement = _lock_statement(table, tuple(key), tuple(values))
    # One round trip: the row we created, or the existing one locked.
    found = await fetch(session, statement, values)
    if not found:
        # Another transaction created it after this statement's snapshot: lock it now.
        found = await fetch(session, _relock_statement(table, tuple(key)), key)
    return dict(found[0].items())


@cache
def _update_statement(table: sa.Table, key: tuple[str, ...], columns: tuple[str, ...]) -> Statement:
    assignments = ", ".join(f"{c} = :v_{c}" for c in columns)
    where = " AND ".join(f"{k} = :k_{k}" for k in key)
    return Statement.of(
        f"UPDATE {table.name} SET {assignments} WHERE {where}", json=_json(table, columns, "v_")
    )


async def update_row(
    session: AsyncSession, table: sa.Table, *, key: Mapping[str, Any], values: Mapping[str, Any]
) -> None:
    """Set `values` on the row identified by `key`."""
    if values:
        statement = _update_statement(table, tuple(key), tuple(values))
        params = {f"k_{k}": v for k, v in key.items()} | {f"v_{c}": v for c, v in values.items()}
        await fetch(session, statement, params)


_TIMELINE_COLUMNS = ("kind", "entry_id", "account_key", "at", "rank", "title", "actor_id", "data")
_ADD_TIMELINE = (
    f"INSERT INTO timeline ({', '.join(_TIMELINE_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _TIMELINE_COLUMNS)}) "
    "ON CONFLICT DO NOTHING RETURNING entry_id"
)
_ADD = Statement.of(_ADD_TIMELINE, json=("data",))
# The live-feed message goes with the entry: one round trip for both.
_ADD_AND_NOTIFY = Statement.of(
    f"WITH added AS ({_ADD_TIMELINE}) "
    "SELECT (SELECT count(*) FROM added), pg_notify(:feed_channel, :feed_message)",
    json=("data",),
)


async def add_timeline_entry(
    session: AsyncSession,
    *,
    account_key: str,
    entry: TimelineEntry,
    notify: Mapping[str, Any] | None = None,
) -> bool:
    """Add an entry to an account's timeline; False when it was already there.

    `notify`: a live-feed message to queue with it (see notify_feed), whether it was new or not.
    """
    params: dict[str, Any] = {
        "kind": entry.kind.value,
        "entry_id": entry.entry_id,
        "account_key": account_key,
        "at": entry.at,
        "rank": _RANK[entry.kind],
        "title": entry.title,
        "actor_id": entry.actor_id,
        "data": dict(entry.data),
    }
    if notify is None:
        return bool(await fetch(session, _ADD, params))
    params |= {"feed_channel": FEED_CHANNEL, "feed_message": _feed_message(notify)}
    [(added, _)] = await fetch(session, _ADD_AND_NOTIFY, params)
    return bool(added)


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


@cache
def _delivery_statement(columns: tuple[str, ...]) -> Statement:
    updated = [c for c in columns if c not in ("alert_id", "recipient_id")]
    return Statement.of(
        f"WITH upserted AS (INSERT INTO alert_deliveries AS d ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + c for c in columns)}) "
        "ON CONFLICT (alert_id, recipient_id, channel) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in updated)
        # A delivery beats a failure; otherwise the newer outcome wins.
        + " WHERE (excluded.status = 'delivered' OR excluded.at >= d.at) "
        "AND d.status != 'delivered' RETURNING 1) "
        "SELECT pg_notify(:feed_channel, :feed_message)"
    )


async def record_delivery(
    session: AsyncSession, values: Mapping[str, Any], *, notify: Mapping[str, Any]
) -> None:
    """Upsert one (alert, recipient, channel) delivery and queue the live-feed message `notify`.

    A delivery beats a failure.
    """
    params = {**values, "feed_channel": FEED_CHANNEL, "feed_message": _feed_message(notify)}
    await fetch(session, _delivery_statement(tuple(values)), params)


async def lock_account(session: AsyncSession, account_key: str) -> dict[str, Any]:
    """Create the account's row if missing, then lock it and return its values."""
    return await lock_row(session, accounts, key={"account_key": account_key})


async def add_to_account(
    session: AsyncSession,
    account_key: str,
    entry: TimelineEntry,
    *,
    notify: Mapping[str, Any] | None = None,
) -> None:
    """Create the account's row if missing (locked), then add the entry to its timeline."""
    await lock_account(session, account_key)
    await add_timeline_entry(session, account_key=account_key, entry=entry, notify=notify)


async def lock_deal(session: AsyncSession, deal_id: str, *, at: datetime) -> dict[str, Any]:
    """Create the deal's row if missing (first seen `at`), then lock it and return its values."""
    return await lock_row(
        session, deals, key={"deal_id": deal_id}, defaults={"created_at": at, "updated_at": at}
    )


def change(kind: str, object_id: str, account_key: str | None) -> dict[str, Any]:
    """Return the live-feed message that an object (of an account, if known) changed."""
    return {"kind": kind, "id": object_id, "account_key": account_key}


_NOTIFY = Statement.of("SELECT pg_notify(:feed_channel, :feed_message)")


async def notify_feed(session: AsyncSession, message: Mapping[str, Any]) -> None:
    """Queue a live-feed message; PostgreSQL delivers it to every replica only on commit."""
    params = {"feed_channel": FEED_CHANNEL, "feed_message": _feed_message(message)}
    await fetch(session, _NOTIFY, params)


def _feed_message(message: Mapping[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), default=str)


async def truncate_read_models(session: AsyncSession) -> None:
    """Empty every read model, its roll-ups and the inbox, so the topics can be consumed again."""
    names = ", ".join(t.name for t in (*READ_MODELS, *ROLL_UPS, *METRIC_DAYS, inbox))
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
