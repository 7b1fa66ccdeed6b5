"""The ingest schema's own tables (the outbox and inbox come from tandem_shared)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = sa.MetaData()

# Every authenticated delivery, kept for audit and replay until the retention purges it.
raw_payloads = sa.Table(
    "raw_payloads",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("source", sa.Text, nullable=False),  # the configured source name
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("content_type", sa.Text),
    sa.Column("headers", JSONB, nullable=False),  # the subset worth keeping (no credentials)
    sa.Column("body", sa.LargeBinary),  # NULL for uploads: their bytes are in raw_payload_chunks
    sa.Column("body_bytes", sa.BigInteger, nullable=False),
    sa.Column("signature_scheme", sa.Text, nullable=False),
    sa.Column("meta", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("status", sa.SmallInteger, nullable=False),  # the HTTP status answered
    sa.Column("result", JSONB, nullable=False),  # counts and element errors
)
sa.Index("raw_payloads_source_received", raw_payloads.c.source, raw_payloads.c.received_at)
sa.Index("raw_payloads_received", raw_payloads.c.received_at)

# An upload's bytes, in order: a file of any size is archived without holding it in memory.
raw_payload_chunks = sa.Table(
    "raw_payload_chunks",
    metadata,
    sa.Column(
        "payload_id",
        UUID(as_uuid=True),
        sa.ForeignKey("raw_payloads.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

# One row per canonical event ever accepted: a redelivery finds its key and is not published.
dedupe_keys = sa.Table(
    "dedupe_keys",
    metadata,
    sa.Column("source", sa.Text, primary_key=True),  # the envelope source, e.g. /ingest/hubspot
    sa.Column("dedupe_key", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("payload_id", UUID(as_uuid=True), nullable=False),  # no FK: outlives a purge
    sa.Column(
        "first_seen_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)
sa.Index("dedupe_keys_first_seen", dedupe_keys.c.first_seen_at)

# Events announced by ids only, waiting for the vendor's API (claimed FOR UPDATE SKIP LOCKED).
lookups = sa.Table(
    "lookups",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),  # the id of the event it becomes
    sa.Column("source", sa.Text, nullable=False),  # the envelope source
    sa.Column("dedupe_key", sa.Text, nullable=False),
    sa.Column("source_name", sa.Text, nullable=False),  # the configured source (its config)
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("request", JSONB, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("last_error", sa.Text),
    sa.Column(
        "enqueued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)
sa.Index("lookups_due", lookups.c.due_at)
