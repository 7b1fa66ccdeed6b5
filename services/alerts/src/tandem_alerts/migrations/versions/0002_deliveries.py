"""Alerts, deliveries, attempts, destination (pacing, circuit) and digest state.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.Text, primary_key=True),
        sa.Column("request_event_id", sa.Text, nullable=False),
        sa.Column("account_key", sa.Text),
        sa.Column("handoff_id", sa.Text),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_index(
        "alerts_handoff",
        "alerts",
        ["handoff_id"],
        postgresql_where=sa.text("handoff_id IS NOT NULL"),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("idempotency_key", sa.Text, nullable=False, unique=True),
        sa.Column("alert_id", sa.Text, nullable=False),
        sa.Column("recipient_id", sa.Text, nullable=False),
        sa.Column("channel", sa.Text),
        sa.Column("destination", sa.Text),
        sa.Column("on_behalf_of", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("coalesced", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("slack_ts", sa.Text),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.CheckConstraint(
            "status IN ('pending', 'deferred', 'sent', 'failed')", name="deliveries_status"
        ),
    )
    op.create_index(
        "deliveries_due",
        "deliveries",
        ["due_at", "channel", "destination"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "deliveries_digest_queue",
        "deliveries",
        ["recipient_id"],
        postgresql_where=sa.text("status = 'deferred'"),
    )
    op.create_index("deliveries_alert", "deliveries", ["alert_id"])
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("delivery_id", sa.BigInteger, sa.ForeignKey("deliveries.id"), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("coalesced", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("digest", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("delivery_attempts_delivery", "delivery_attempts", ["delivery_id"])
    op.create_table(
        "destinations",
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("destination", sa.Text, primary_key=True),
        sa.Column("pacer", JSONB),
        sa.Column("circuit", JSONB),
        sa.Column("leased_until", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_table(
        "digests",
        sa.Column("recipient_id", sa.Text, primary_key=True),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_until", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
