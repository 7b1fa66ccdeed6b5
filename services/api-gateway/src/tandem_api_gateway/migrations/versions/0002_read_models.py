"""The gateway's read models, TAL workflow records and API keys.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_key", sa.Text, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("tier", sa.Text),
        sa.Column("in_tal", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("tal_status", sa.Text),
        sa.Column("ae_id", sa.Text),
        sa.Column("sdr_id", sa.Text),
        sa.Column("marketer_id", sa.Text),
        sa.Column("territory", sa.Text),
        sa.Column("engagement_score", sa.Float, nullable=False, server_default="0"),
        sa.Column("engagement_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("intent", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("last_sales_activity_at", sa.DateTime(timezone=True)),
        sa.Column("last_marketing_activity_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("alert_id", sa.Text, primary_key=True),
        sa.Column("recipient_id", sa.Text, primary_key=True),
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("destination", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("permanent", sa.Boolean),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text),
        sa.Column("urgency", sa.Text),
        sa.Column("title", sa.Text),
        sa.Column("summary", sa.Text),
        sa.Column("account_key", sa.Text),
        sa.Column("account_name", sa.Text),
        sa.Column("handoff_id", sa.Text),
        sa.Column("tier", sa.Text),
        sa.Column("signal", sa.Text),
        sa.Column("recipient_ids", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("channel_ids", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("requested_at", sa.DateTime(timezone=True)),
        sa.Column("sort_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("alerts_sort", "alerts", ["sort_at", "alert_id"])
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.Text, primary_key=True),
        sa.Column("key_hash", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("person_id", sa.Text, nullable=False),
        sa.Column("label", sa.Text, nullable=False, server_default=""),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "deals",
        sa.Column("deal_id", sa.Text, primary_key=True),
        sa.Column("account_key", sa.Text),
        sa.Column("name", sa.Text),
        sa.Column("stage", sa.Text),
        sa.Column("amount", sa.Float),
        sa.Column("currency", sa.Text),
        sa.Column("is_closed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("is_won", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("owner_id", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "handoffs",
        sa.Column("handoff_id", sa.Text, primary_key=True),
        sa.Column("decision_id", sa.Text),
        sa.Column("account_key", sa.Text),
        sa.Column("account_name", sa.Text),
        sa.Column("tier", sa.Text),
        sa.Column("in_tal", sa.Boolean),
        sa.Column("signal", sa.Text),
        sa.Column("assignee_id", sa.Text),
        sa.Column("assignee_role", sa.Text),
        sa.Column("notified_ids", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("explanation", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("context", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("sort_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sla_status", sa.Text),
        sa.Column("sla_outcome", sa.Text),
        sa.Column("sla_started_at", sa.DateTime(timezone=True)),
        sa.Column("sla_deadline", sa.DateTime(timezone=True)),
        sa.Column("sla_allowed_seconds", sa.Integer),
        sa.Column("sla_policy_version", sa.Text),
        sa.Column("outcome_at", sa.DateTime(timezone=True)),
        sa.Column("first_touch_at", sa.DateTime(timezone=True)),
        sa.Column("escalation_level", sa.Integer),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
    )
    op.create_index("handoffs_sort", "handoffs", ["sort_at", "handoff_id"])
    op.create_index("handoffs_assignee", "handoffs", ["assignee_id"])
    op.create_table(
        "tal_entries",
        sa.Column("account_key", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("tier", sa.Text, nullable=False),
        sa.Column("suggested_tier", sa.Text, nullable=False),
        sa.Column("proposal_reason", sa.Text, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("fit_score", sa.Float),
        sa.Column("intent", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("ae_id", sa.Text),
        sa.Column("sdr_id", sa.Text),
        sa.Column("marketer_id", sa.Text),
        sa.Column("territory", sa.Text),
        sa.Column("approvals", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "tal_history",
        sa.Column("account_key", sa.Text, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("actor_id", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("side", sa.Text),
        sa.Column("tier", sa.Text),
    )
    op.create_table(
        "timeline",
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("entry_id", sa.Text, primary_key=True),
        sa.Column("account_key", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rank", sa.SmallInteger, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("actor_id", sa.Text),
        sa.Column("data", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.create_index("timeline_account", "timeline", ["account_key", "at", "rank"])
    op.create_table(
        "projection_state",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("group_id", sa.Text, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
