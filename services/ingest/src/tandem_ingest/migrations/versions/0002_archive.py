"""The raw payload archive (with upload chunks) and the dedupe keys.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "raw_payloads",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_type", sa.Text),
        sa.Column("headers", JSONB, nullable=False),
        sa.Column("body", sa.LargeBinary),
        sa.Column("body_bytes", sa.BigInteger, nullable=False),
        sa.Column("signature_scheme", sa.Text, nullable=False),
        sa.Column("meta", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("result", JSONB, nullable=False),
    )
    op.create_index("raw_payloads_source_received", "raw_payloads", ["source", "received_at"])
    op.create_index("raw_payloads_received", "raw_payloads", ["received_at"])
    op.create_table(
        "raw_payload_chunks",
        sa.Column(
            "payload_id",
            UUID(as_uuid=True),
            sa.ForeignKey("raw_payloads.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "dedupe_keys",
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("dedupe_key", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("payload_id", UUID(as_uuid=True), nullable=False),
        sa.Column(
            "first_seen_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )
    op.create_index("dedupe_keys_first_seen", "dedupe_keys", ["first_seen_at"])


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
