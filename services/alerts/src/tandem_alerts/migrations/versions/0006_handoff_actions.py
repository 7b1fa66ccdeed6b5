"""Handoff actions in Slack and email: where each handoff stands, clicks awaiting the router's
answer, the Slack calls (chat.update, chat.postEphemeral) that answer them, used email links; and
people's availability set at run time.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from tandem_shared.availability import create_availability_table

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "handoff_states",
        sa.Column("handoff_id", sa.Text, primary_key=True),
        sa.Column("assignee_id", sa.Text),
        sa.Column("acknowledged_by", sa.Text),
        sa.Column("accepted_by", sa.Text),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "slack_actions",
        sa.Column("action_id", sa.Text, primary_key=True),
        sa.Column("handoff_id", sa.Text, nullable=False),
        sa.Column("alert_id", sa.Text),
        sa.Column("person_id", sa.Text, nullable=False),
        sa.Column("slack_user_id", sa.Text, nullable=False),
        sa.Column("channel_id", sa.Text),
        sa.Column("message_ts", sa.Text),
        sa.Column("requested_at", _TS, nullable=False),
    )
    op.create_table(
        "slack_calls",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("idempotency_key", sa.Text, nullable=False, unique=True),
        sa.Column("method", sa.Text, nullable=False),  # chat.update / chat.postEphemeral
        sa.Column("arguments", JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name="slack_calls_status"),
    )
    op.create_table(
        "email_action_links",
        sa.Column("link_id", sa.Text, primary_key=True),
        sa.Column("action_id", sa.Text, nullable=False),
        sa.Column("person_id", sa.Text, nullable=False),
        sa.Column("handoff_id", sa.Text, nullable=False),
        sa.Column("used_at", _TS, nullable=False),
    )
    create_availability_table()
    op.create_index(
        "slack_calls_pending", "slack_calls", ["id"], postgresql_where=sa.text("status = 'pending'")
    )


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
