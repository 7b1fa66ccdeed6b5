"""Writes of the projections: lock-or-create a row, update it, append timeline entries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_api_gateway.adapters.projection_batch import (
    FlushStatements,
    batch_of,
    defer_until_commit,
    json_columns,
    row_id,
    update_params,
    update_statement,
)
from tandem_api_gateway.adapters.tables import (
    METRIC_DAYS,
    READ_MODELS,
    ROLL_UPS,
    accounts,
    deals,
    projection_state,
)
from tandem_api_gateway.domain.timeline import TimelineEntry, TimelineKind
from tandem_shared.db import Statement, fetch
from tandem_shared.outbox import inbox
from tandem_shared.uow import UnitOfWork

FEED_CHANNEL = "api_gateway_feed"
_RANK = {kind: rank for rank, kind in enumerate(TimelineKind)}


# Statements are built once per shape (table, columns) and run on the transaction's asyncpg
# connection, which prepares each once. Within a batch (projection_batch), a locked row is read
# once and its changes, the timeline entries and the live-feed messages are written at the end.


@cache
def _lock_statement(table: sa.Table, key: tuple[str, ...], columns: tuple[str, ...]) -> Statement:
    where = " AND ".join(f"{k} = :{k}" for k in key)
    return Statement.of(
        f"WITH created AS (INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + c for c in columns)}) ON CONFLICT DO NOTHING RETURNING *), "
        f"locked AS (SELECT * FROM {table.name} WHERE {where} FOR UPDATE) "
        "SELECT * FROM created UNION ALL SELECT * FROM locked",
        json=json_columns(table, columns),
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
    batch = batch_of(session)
    ident = row_id(table, key)
    known = batch.rows.get(ident)
    if known is not None:
        return dict(known)  # locked by this transaction, which alone changed it since
    values = {**(defaults or {}), **key}
    statement = _lock_statement(table, tuple(key), tuple(values))
    # One round trip: the row we created, or the existing one locked.
    found = await fetch(session, statement, values)
    if not found:
        # Another transaction created it after this statement's snapshot: lock it now.
        found = await fetch(session, _relock_statement(table, tuple(key)), key)
    row = dict(found[0].items())
    batch.remember(ident, row)
    return row


async def update_row(
    session: AsyncSession, table: sa.Table, *, key: Mapping[str, Any], values: Mapping[str, Any]
) -> None:
    """Set `values` on the row identified by `key` (at the batch's end when deferring)."""
    if not values:
        return
    batch = batch_of(session)
    batch.change(table, key, values)
    if not batch.deferring:
        statement = update_statement(table, tuple(key), tuple(values))
        await fetch(session, statement, update_params(key, values))


_TIMELINE_COLUMNS = ("kind", "entry_id", "account_key", "at", "rank", "title", "actor_id", "data")
_INSERT_TIMELINE = (
    f"INSERT INTO timeline ({', '.join(_TIMELINE_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _TIMELINE_COLUMNS)}) ON CONFLICT DO NOTHING"
)
_ADD_TIMELINE = f"{_INSERT_TIMELINE} RETURNING entry_id"
_ADD = Statement.of(_ADD_TIMELINE, json=("data",))
_ADD_QUEUED = Statement.of(_INSERT_TIMELINE, json=("data",))
# The live-feed message goes with the entry: one round trip for both.
_ADD_AND_NOTIFY = Statement.of(
    f"WITH added AS ({_ADD_TIMELINE}) "
    "SELECT (SELECT count(*) FROM added), pg_notify(:feed_channel, :feed_message)",
    json=("data",),
)
_NOTIFY = Statement.of("SELECT pg_notify(:feed_channel, :feed_message)")
_FLUSH = FlushStatements(
    add_entry=_ADD_QUEUED,
    notify=_NOTIFY,
    create_accounts=Statement.of(
        "INSERT INTO accounts (account_key) SELECT unnest(CAST(:keys AS text[])) "
        "ON CONFLICT DO NOTHING"
    ),
)


def defer_writes(uow: UnitOfWork) -> None:
    """Write this unit of work's projected rows, timeline entries, deliveries and live-feed
    messages when it flushes (once per batch), not event by event."""
    defer_until_commit(uow, _FLUSH)


def _entry_params(account_key: str, entry: TimelineEntry) -> dict[str, Any]:
    return {
        "kind": entry.kind.value,
        "entry_id": entry.entry_id,
        "account_key": account_key,
        "at": entry.at,
        "rank": _RANK[entry.kind],
        "title": entry.title,
        "actor_id": entry.actor_id,
        "data": dict(entry.data),
    }


async def add_timeline_entry(
    session: AsyncSession,
    *,
    account_key: str,
    entry: TimelineEntry,
    notify: Mapping[str, Any] | None = None,
) -> bool:
    """Add an entry to an account's timeline now; False when it was already there.

    `notify`: a live-feed message to queue with it (see notify_feed), whether it was new or not.
    """
    params = _entry_params(account_key, entry)
    batch = batch_of(session)
    if batch.deferring:
        if notify is not None:
            batch.notices.append(_notice(notify))
        if (entry.kind.value, entry.entry_id) in batch.timeline:
            return False  # queued earlier in the batch: that one is kept
        return bool(await fetch(session, _ADD, params))
    if notify is None:
        return bool(await fetch(session, _ADD, params))
    params |= _notice(notify)
    [(added, _)] = await fetch(session, _ADD_AND_NOTIFY, params)
    return bool(added)


async def queue_timeline_entry(
    session: AsyncSession,
    *,
    account_key: str,
    entry: TimelineEntry,
    notify: Mapping[str, Any] | None = None,
) -> None:
    """Add an entry to an account's timeline (at the batch's end when deferring); an entry
    already there is kept. `notify`: as for add_timeline_entry."""
    batch = batch_of(session)
    if not batch.deferring:
        await add_timeline_entry(session, account_key=account_key, entry=entry, notify=notify)
        return
    batch.timeline.setdefault((entry.kind.value, entry.entry_id), _entry_params(account_key, entry))
    if notify is not None:
        batch.notices.append(_notice(notify))


# What is known of CRM account records, whichever of their upsert and merge came first.
_LINK_CRM_ACCOUNT = Statement.of(
    "INSERT INTO crm_accounts (crm, crm_id, account_key) VALUES (:crm, :crm_id, :account_key) "
    "ON CONFLICT (crm, crm_id) DO UPDATE SET account_key = excluded.account_key"
)
_MERGE_CRM_ACCOUNTS = Statement.of(
    "INSERT INTO crm_accounts (crm, crm_id, merged_into) "
    "SELECT :crm, crm_id, :merged_into FROM unnest(CAST(:crm_ids AS text[])) AS crm_id "
    "ON CONFLICT (crm, crm_id) DO UPDATE SET merged_into = excluded.merged_into"
)
# The merges that records `crm_ids` take part in, as loser or as winner (winner.crm_id is
# loser.merged_into), through the primary key and crm_accounts_merged_into.
_SETTLE = Statement.of(
    "UPDATE accounts AS a SET merged_into = winner.account_key "
    "FROM crm_accounts AS loser JOIN crm_accounts AS winner "
    "ON winner.crm = loser.crm AND winner.crm_id = loser.merged_into "
    "WHERE a.account_key = loser.account_key "
    "AND winner.account_key != loser.account_key "  # two records of one account: no merge
    "AND loser.crm = :crm "
    "AND (loser.crm_id = ANY(:crm_ids) OR loser.merged_into = ANY(:crm_ids)) "
    "AND a.merged_into IS DISTINCT FROM winner.account_key "
    "RETURNING a.account_key, a.merged_into"
)


async def link_crm_account(
    session: AsyncSession, *, crm: str, crm_id: str, account_key: str
) -> None:
    """Remember which account a CRM record is."""
    params = {"crm": crm, "crm_id": crm_id, "account_key": account_key}
    await fetch(session, _LINK_CRM_ACCOUNT, params)


async def merge_crm_accounts(
    session: AsyncSession, *, crm: str, crm_ids: list[str], merged_into: str
) -> None:
    """Remember that CRM records were merged into the record `merged_into`."""
    params = {"crm": crm, "crm_ids": list(dict.fromkeys(crm_ids)), "merged_into": merged_into}
    await fetch(session, _MERGE_CRM_ACCOUNTS, params)


async def settle_account_merges(session: AsyncSession, *, crm: str, crm_ids: list[str]) -> None:
    """Mark each merged-away account whose winner is now known, among merges of `crm_ids`."""
    settled = await fetch(session, _SETTLE, {"crm": crm, "crm_ids": crm_ids})
    batch = batch_of(session)
    for account_key, merged_into in settled:
        known = batch.rows.get(row_id(accounts, {"account_key": account_key}))
        if known is not None:
            known["merged_into"] = merged_into  # written here, not by the batch's flush


@cache
def _delivery_statement(columns: tuple[str, ...], *, notify: bool) -> Statement:
    updated = [c for c in columns if c not in ("alert_id", "recipient_id")]
    upsert = (
        f"INSERT INTO alert_deliveries AS d ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + c for c in columns)}) "
        "ON CONFLICT (alert_id, recipient_id, channel) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in updated)
        # A delivery beats a failure; otherwise the newer outcome wins.
        + " WHERE (excluded.status = 'delivered' OR excluded.at >= d.at) "
        "AND d.status != 'delivered'"
    )
    if not notify:
        return Statement.of(upsert)
    return Statement.of(
        f"WITH upserted AS ({upsert} RETURNING 1) SELECT pg_notify(:feed_channel, :feed_message)"
    )


async def record_delivery(
    session: AsyncSession, values: Mapping[str, Any], *, notify: Mapping[str, Any]
) -> None:
    """Upsert one (alert, recipient, channel) delivery and queue the live-feed message `notify`
    (at the batch's end when deferring).

    A delivery beats a failure.
    """
    batch = batch_of(session)
    if batch.deferring:
        batch.deliveries.append((_delivery_statement(tuple(values), notify=False), dict(values)))
        batch.notices.append(_notice(notify))
        return
    params = {**values, **_notice(notify)}
    await fetch(session, _delivery_statement(tuple(values), notify=True), params)


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
    """Create the account's row if missing, then add the entry to its timeline."""
    batch = batch_of(session)
    if batch.deferring:
        if row_id(accounts, {"account_key": account_key}) not in batch.rows:
            batch.accounts.add(account_key)
    else:
        await lock_account(session, account_key)
    await queue_timeline_entry(session, account_key=account_key, entry=entry, notify=notify)


async def lock_deal(session: AsyncSession, deal_id: str, *, at: datetime) -> dict[str, Any]:
    """Create the deal's row if missing (first seen `at`), then lock it and return its values."""
    return await lock_row(
        session, deals, key={"deal_id": deal_id}, defaults={"created_at": at, "updated_at": at}
    )


def change(kind: str, object_id: str, account_key: str | None) -> dict[str, Any]:
    """Return the live-feed message that an object (of an account, if known) changed."""
    return {"kind": kind, "id": object_id, "account_key": account_key}


async def notify_feed(session: AsyncSession, message: Mapping[str, Any]) -> None:
    """Queue a live-feed message; PostgreSQL delivers it to every replica only on commit."""
    batch = batch_of(session)
    if batch.deferring:
        batch.notices.append(_notice(message))
    else:
        await fetch(session, _NOTIFY, _notice(message))


def _notice(message: Mapping[str, Any]) -> dict[str, Any]:
    return {"feed_channel": FEED_CHANNEL, "feed_message": _feed_message(message)}


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
