"""Follow-up clocks, superseded clocks and early activities.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _created_at(name: str) -> sa.Column[sa.DateTime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "clocks",
        sa.Column("handoff_id", sa.Text, primary_key=True),
        sa.Column("decision_id", sa.Text, nullable=False),
        sa.Column("assignee_id", sa.Text, nullable=False),
        sa.Column("account_key", sa.Text),
        sa.Column("contact_email", sa.Text),
        sa.Column("team_ids", ARRAY(sa.Text), nullable=False),
        sa.Column("tier", sa.Text, nullable=False),
        sa.Column("signal", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("met_at", sa.DateTime(timezone=True)),
        sa.Column("next_due_at", sa.DateTime(timezone=True)),
        sa.Column("clock", JSONB, nullable=False),
        _created_at("updated_at"),
    )
    # The timer's only query: a partial index keeps it to the clocks that still fire.
    op.create_index(
        "clocks_due", "clocks", ["next_due_at"], postgresql_where=sa.text("next_due_at IS NOT NULL")
    )
    op.create_index("clocks_account", "clocks", ["account_key"])
    op.create_index("clocks_contact", "clocks", ["contact_email"])
    op.create_index("clocks_started", "clocks", ["started_at"])

    op.create_table(
        "superseded_clocks",
        sa.Column("decision_id", sa.Text, primary_key=True),
        sa.Column("handoff_id", sa.Text, nullable=False),
        sa.Column("superseded_by", sa.Text, nullable=False),
        sa.Column("clock", JSONB, nullable=False),
        _created_at("superseded_at"),
    )
    op.create_index("ix_superseded_clocks_handoff_id", "superseded_clocks", ["handoff_id"])

    op.create_table(
        "early_activities",
        sa.Column("activity_id", sa.Text, primary_key=True),
        sa.Column("account_key", sa.Text),
        sa.Column("contact_email", sa.Text),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activity", JSONB, nullable=False),
        _created_at("stored_at"),
    )
    op.create_index("early_activities_account", "early_activities", ["account_key", "occurred_at"])
    op.create_index("early_activities_contact", "early_activities", ["contact_email"])
    op.create_index("early_activities_stored", "early_activities", ["stored_at"])


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
