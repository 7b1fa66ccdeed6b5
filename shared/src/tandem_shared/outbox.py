"""The transactional outbox and inbox every stateful service keeps in its own schema.

Rows are written in the handler's transaction; a relay publishes them afterwards, so an event
leaves the service exactly when its state change committed (at least once, never before).
Published rows are kept a while (`outbox_published`) for a broker that loses them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from tandem_shared.db import Statement, fetch
from tandem_shared.envelope import EncodedEnvelope, Envelope
from tandem_shared.telemetry import current_traceparent
from tandem_shared.topics import BULK_TOPICS

runtime_metadata = sa.MetaData()

outbox = sa.Table(
    "outbox",
    runtime_metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("key", sa.LargeBinary, nullable=False),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("headers", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("published_at", sa.DateTime(timezone=True)),
)
# The relay only ever scans unpublished rows, in order.
sa.Index("outbox_pending", outbox.c.id, postgresql_where=outbox.c.published_at.is_(None))

inbox = sa.Table(
    "inbox",
    runtime_metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column(
        "processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

# Published rows, kept `OutboxSettings.keep_published_hours` so a broker that lost them (an
# embedded broker restarted, a topic recreated) can be given them again. Append-only: the relay's
# claim moves rows here in the statement that deletes them from the outbox.
retention_metadata = sa.MetaData()

outbox_published = sa.Table(
    "outbox_published",
    retention_metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),  # the row's outbox id: its original order
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("key", sa.LargeBinary, nullable=False),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("headers", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column(
        "published_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)
# BRIN, not B-tree: the purge finds old rows of an append-only table for almost no write cost.
sa.Index("outbox_published_at", outbox_published.c.published_at, postgresql_using="brin")

# Per partition, the first offset of the last batch the broker acknowledged for this schema's
# rows: a broker whose end offset is not beyond it has lost them.
outbox_offsets = sa.Table(
    "outbox_offsets",
    retention_metadata,
    sa.Column("topic", sa.Text, primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

NOTIFY_CHANNEL_SUFFIX = "_outbox"


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel that wakes a schema's relay."""
    return f"{schema}{NOTIFY_CHANNEL_SUFFIX}"


def create_runtime_tables(schema: str) -> None:
    """Alembic step: create the outbox and inbox (call from a service's first migration)."""
    runtime_metadata.create_all(op.get_bind())
    # A statement-level trigger wakes the relay once per transaction that wrote to the outbox.
    channel = notify_channel(schema)
    op.execute(
        f"""
        CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('{channel}', ''); RETURN NULL; END $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
    )


# Pending rows of the real-time topics, so the relay finds them without scanning a bulk backlog
# (a 100,000-row intent file) first. The list is spelled out for the planner to match the
# relay's claim to this index: a change of `BULK_TOPICS` needs a migration that rebuilds it.
REALTIME_PENDING = "published_at IS NULL AND topic NOT IN ({})".format(
    ", ".join(f"'{topic}'" for topic in sorted(BULK_TOPICS))
)


def create_retention_tables() -> None:
    """Alembic step: the published-row archive, the acknowledged offsets, the real-time index."""
    retention_metadata.create_all(op.get_bind())
    op.execute(f"CREATE INDEX outbox_pending_realtime ON outbox (id) WHERE {REALTIME_PENDING}")


def outbox_row(
    topic: str, envelope: Envelope, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Return the outbox row that publishes `envelope` on `topic`, in the current trace."""
    return _row(topic, envelope, {**current_traceparent(), **(headers or {})})


def outbox_rows(events: Iterable[tuple[str, Envelope | EncodedEnvelope]]) -> list[dict[str, Any]]:
    """Return the outbox rows that publish (topic, envelope) pairs, all in the current trace."""
    # One trace-context lookup for a whole request's rows: they all share its span.
    carrier = current_traceparent()
    return [_row(topic, envelope, carrier) for topic, envelope in events]


def _row(
    topic: str, envelope: Envelope | EncodedEnvelope, headers: dict[str, str]
) -> dict[str, Any]:
    # The relay publishes later, outside this span: the row keeps the W3C context for Kafka.
    return {
        "event_id": envelope.id,
        "topic": topic,
        "key": envelope.key,
        "value": envelope.to_bytes(),
        "headers": {"ce_type": envelope.type, **headers},
    }


# A batch's rows in one statement of one shape (prepared once per connection), not one
# execution per row: columns travel as arrays. On the transaction's asyncpg connection, as
# every batch runs it: a third of the CPU of the same statement through the session.
_INSERT_ROWS = Statement.of(
    "INSERT INTO outbox (event_id, topic, key, value, headers) "
    "SELECT * FROM unnest(CAST(:event_ids AS text[]), CAST(:topics AS text[]), "
    "CAST(:keys AS bytea[]), CAST(:values AS bytea[]), CAST(CAST(:headers AS text[]) AS jsonb[]))"
)


async def add_to_outbox(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert outbox rows in the session's transaction."""
    if not rows:
        return
    await fetch(
        session,
        _INSERT_ROWS,
        {
            "event_ids": [row["event_id"] for row in rows],
            "topics": [row["topic"] for row in rows],
            "keys": [row["key"] for row in rows],
            "values": [row["value"] for row in rows],
            "headers": [orjson.dumps(row["headers"]).decode() for row in rows],
        },
    )


# One round trip claims a whole batch; the statement's shape never changes, so it is prepared
# once per connection.
_CLAIM_INBOX = Statement.of(
    "INSERT INTO inbox (event_id, topic) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:topics AS text[])) "
    "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)


async def claim_inbox_batch(session: AsyncSession, claims: Sequence[tuple[str, str]]) -> set[str]:
    """Record (event id, topic) pairs as processed in this transaction; return the new ids."""
    records = await fetch(
        session, _CLAIM_INBOX, {"ids": [c[0] for c in claims], "topics": [c[1] for c in claims]}
    )
    return {record[0] for record in records}


async def claim_inbox(session: AsyncSession, *, event_id: str, topic: str) -> bool:
    """Record an event as processed in this transaction; False when it already was."""
    return event_id in await claim_inbox_batch(session, [(event_id, topic)])


async def purge_published(session: AsyncSession, *, older_than: datetime) -> int:
    """Delete outbox rows published before `older_than`; return how many."""
    result = await session.execute(sa.delete(outbox).where(outbox.c.published_at < older_than))
    kept = await session.execute(
        sa.delete(outbox_published).where(outbox_published.c.published_at < older_than)
    )
    return int(result.rowcount or 0) + int(kept.rowcount or 0)  # type: ignore[attr-defined]
