"""The router's state: accounts, round-robin pools, handoffs, decisions and the event archive.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _timestamp(name: str, *, default: bool = False, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    server_default = sa.func.now() if default else None
    return sa.Column(
        name, sa.DateTime(timezone=True), nullable=nullable, server_default=server_default
    )


def upgrade() -> None:
    op.create_table(
        "account_states",
        sa.Column("account_key", sa.Text, primary_key=True),
        sa.Column("state", JSONB, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("match_domains", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("crm_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
        _timestamp("updated_at", default=True),
    )
    op.create_index(
        "account_states_match_domains",
        "account_states",
        ["match_domains"],
        postgresql_using="gin",
    )
    op.create_index("account_states_crm_ids", "account_states", ["crm_ids"], postgresql_using="gin")
    op.create_table(
        "round_robin_pools",
        sa.Column("pool_id", sa.Text, primary_key=True),
        sa.Column("state", JSONB, nullable=False),
        _timestamp("updated_at", default=True),
    )
    op.create_table(
        "handoffs",
        sa.Column("handoff_id", sa.Text, primary_key=True),
        sa.Column("account_key", sa.Text),
        sa.Column("assignee_id", sa.Text, nullable=False),
        sa.Column("tier", sa.Text, nullable=False),
        sa.Column("signal", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("decision_id", sa.Text, nullable=False),
        _timestamp("opened_at"),
        _timestamp("closed_at", nullable=True),
        sa.CheckConstraint("status IN ('open', 'closed')", name="handoffs_status"),
    )
    # Open handoffs per rep are counted on every assignment.
    op.create_index(
        "handoffs_open_by_assignee",
        "handoffs",
        ["assignee_id"],
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "decisions",
        sa.Column("decision_id", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("handoff_id", sa.Text, nullable=False),
        sa.Column("account_key", sa.Text),
        sa.Column("rule_set_version", sa.Text, nullable=False),
        sa.Column("assignee_id", sa.Text, nullable=False),
        sa.Column("explanation", JSONB, nullable=False),
        sa.Column("routing", JSONB, nullable=False),
        _timestamp("decided_at"),
    )
    op.create_index("decisions_event_id", "decisions", ["event_id"])
    op.create_table(
        "routed_events",
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False, unique=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("account_key", sa.Text),
        sa.Column("payload", JSONB, nullable=False),
        _timestamp("occurred_at"),
    )
    op.create_index("routed_events_occurred_at", "routed_events", ["occurred_at"])


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
