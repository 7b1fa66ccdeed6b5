"""A transaction's projected rows: each row read once and written once per batch.

The consumer runtime runs a partition's batch of events in one transaction. A row the
projections lock stays locked until that transaction ends, so the values this transaction last
gave it are the row's: later events of the batch read it from here instead of the database.
Once the projector defers (`defer_until_commit`), the rows' changes, the timeline entries, the
deliveries and the live-feed messages wait for the unit of work to flush, and go in a few
pipelined statements before the commit. The metric-day triggers then see each row change once,
from its value before the batch to its value after it, which adds up to the same aggregates as
the changes one by one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from itertools import groupby
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_shared.db import Statement, execute_many, fetch, transaction_memory
from tandem_shared.uow import UnitOfWork

RowId = tuple[str, tuple[tuple[str, Any], ...]]


def row_id(table: sa.Table, key: Mapping[str, Any]) -> RowId:
    """Identify a row of `table` by its key's columns and values."""
    return table.name, tuple(key.items())


def json_columns(table: sa.Table, names: Iterable[str], prefix: str = "") -> list[str]:
    """The parameters among `names` whose columns are JSONB (sent as JSON)."""
    return [prefix + name for name in names if isinstance(table.c[name].type, JSONB)]


@cache
def update_statement(table: sa.Table, key: tuple[str, ...], columns: tuple[str, ...]) -> Statement:
    """UPDATE of `columns` of the row of `table` identified by `key` (parameters v_*, k_*)."""
    assignments = ", ".join(f"{c} = :v_{c}" for c in columns)
    where = " AND ".join(f"{k} = :k_{k}" for k in key)
    return Statement.of(
        f"UPDATE {table.name} SET {assignments} WHERE {where}",
        json=json_columns(table, columns, "v_"),
    )


def update_params(key: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of `update_statement` for one row."""
    return {f"k_{k}": v for k, v in key.items()} | {f"v_{c}": v for c, v in values.items()}


@dataclass
class _Change:
    table: sa.Table
    key: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Batch:
    """What one transaction's projections read and have yet to write."""

    rows: dict[RowId, dict[str, Any]] = field(default_factory=dict)  # locked, as last written
    deferring: bool = False
    changes: dict[RowId, _Change] = field(default_factory=dict)
    # Timeline entries by (kind, entry id): the first one queued wins, as ON CONFLICT keeps it.
    timeline: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # Deliveries and live-feed messages in the order the events gave them.
    deliveries: list[tuple[Statement, dict[str, Any]]] = field(default_factory=list)
    notices: list[dict[str, Any]] = field(default_factory=list)
    # Accounts that only need to exist (a timeline entry's), created if missing at the flush.
    accounts: set[str] = field(default_factory=set)

    def remember(self, row: RowId, values: Mapping[str, Any]) -> None:
        """Keep a row this transaction locked, with its values."""
        self.rows[row] = dict(values)

    def change(self, table: sa.Table, key: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        """Note new values of a row: in memory now, queued for the flush when deferring."""
        ident = row_id(table, key)
        known = self.rows.get(ident)
        if known is not None:
            known.update(values)
        if self.deferring:
            self.changes.setdefault(ident, _Change(table, dict(key))).values.update(values)

    async def flush(self, session: AsyncSession, statements: FlushStatements) -> None:
        """Write what was deferred: one pipelined statement per shape of write."""
        accounts, self.accounts = self.accounts, set()
        changes, self.changes = self.changes, {}
        timeline, self.timeline = self.timeline, {}
        deliveries, self.deliveries = self.deliveries, []
        notices, self.notices = self.notices, []
        self.deferring = False
        if accounts:  # in key order, as concurrent batches then lock them
            await fetch(session, statements.create_accounts, {"keys": sorted(accounts)})
        updates: dict[Statement, list[dict[str, Any]]] = {}
        for change in changes.values():
            shape = update_statement(change.table, tuple(change.key), tuple(sorted(change.values)))
            updates.setdefault(shape, []).append(update_params(change.key, change.values))
        for statement, rows in updates.items():
            await execute_many(session, statement, rows)
        await execute_many(session, statements.add_entry, list(timeline.values()))
        # A delivery's outcome depends on the one before it: runs of one shape, in order.
        for statement, run in groupby(deliveries, key=itemgetter(0)):
            await execute_many(session, statement, [params for _, params in run])
        await execute_many(session, statements.notify, notices)


def batch_of(session: AsyncSession) -> Batch:
    """The current transaction's batch (a new transaction starts an empty one)."""
    return transaction_memory(session, "tandem_api_gateway.projection_batch", Batch)


@dataclass(frozen=True)
class FlushStatements:
    """The statements a batch's flush writes with (parameters as projection_store's)."""

    add_entry: Statement  # a timeline entry, kept if there
    notify: Statement  # a live-feed message
    create_accounts: Statement  # accounts by key (:keys), kept if there


def defer_until_commit(uow: UnitOfWork, statements: FlushStatements) -> None:
    """Queue the projections' writes in this unit of work until it flushes."""
    batch = batch_of(uow.session)
    if batch.deferring:
        return
    batch.deferring = True
    session = uow.session

    async def flush() -> None:
        await batch.flush(session, statements)

    uow.before_commit(flush)
