"""The read side at scale: metric columns, indexes matching each listing, retention roll-ups.

Revision ID: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
# What the metrics read of a handoff, computed by PostgreSQL on every write (see tables.py).
HANDED_OFF_AT = "coalesce(decided_at, sla_started_at, sort_at)"
TEAM = (
    "CASE WHEN lower(coalesce(assignee_role, '')) IN ('marketer', 'marketing') "
    "THEN 'marketing' ELSE 'sales' END"
)
TOUCH_SECONDS = f"extract(epoch FROM first_touch_at - {HANDED_OFF_AT})::float8"


def upgrade() -> None:
    op.add_column(
        "handoffs", sa.Column("handed_off_at", _TS, sa.Computed(HANDED_OFF_AT, persisted=True))
    )
    op.add_column("handoffs", sa.Column("team", sa.Text, sa.Computed(TEAM, persisted=True)))
    op.add_column(
        "handoffs", sa.Column("touch_seconds", sa.Float, sa.Computed(TOUCH_SECONDS, persisted=True))
    )
    measured = sa.text("tier IS NOT NULL AND signal IS NOT NULL")
    # Metrics: a period's cohort (by handoff time) in (tier, touch time) order, so percentiles
    # need no sort; its verdicts (by outcome time). Both read from the index alone.
    op.create_index(
        "handoffs_touch",
        "handoffs",
        ["tier", "touch_seconds"],
        postgresql_include=["handed_off_at", "signal", "team", "sla_outcome"],
        postgresql_where=measured,
    )
    op.create_index(
        "handoffs_verdicts",
        "handoffs",
        ["outcome_at"],
        postgresql_include=["tier", "team", "sla_outcome", "first_touch_at"],
        postgresql_where=sa.text(
            "tier IS NOT NULL AND signal IS NOT NULL AND outcome_at IS NOT NULL"
        ),
    )
    # Listings: newest first under each filter, resumed from a (sort_at, id) cursor.
    op.drop_index("handoffs_assignee", "handoffs")
    for column in ("account_key", "tier", "signal", "assignee_id", "sla_outcome"):
        op.create_index(f"handoffs_by_{column}", "handoffs", [column, "sort_at", "handoff_id"])
    # An account's open handoffs, counted on every account listed.
    op.create_index(
        "handoffs_open",
        "handoffs",
        ["account_key"],
        postgresql_where=sa.text("sla_outcome = 'running'"),
    )
    for column in ("account_key", "kind"):
        op.create_index(f"alerts_by_{column}", "alerts", [column, "sort_at", "alert_id"])
    op.create_index("alert_deliveries_at", "alert_deliveries", ["at"])
    # An account's timeline in its keyset order; activity per account for the coverage metric.
    op.drop_index("timeline_account", "timeline")
    op.create_index("timeline_account", "timeline", ["account_key", "at", "rank", "entry_id"])
    op.create_index(
        "timeline_activity",
        "timeline",
        ["account_key", "kind", "at"],
        postgresql_where=sa.text("kind IN ('sales_activity', 'engagement')"),
    )
    op.create_index("timeline_at", "timeline", ["at"])
    op.create_index(
        "accounts_merged_into",
        "accounts",
        ["merged_into"],
        postgresql_where=sa.text("merged_into IS NOT NULL"),
    )
    # Roll-ups of raw rows past their retention (see retention.py).
    op.create_table(
        "activity_days",
        sa.Column("account_key", sa.Text, primary_key=True),
        sa.Column("team", sa.Text, primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("first_at", _TS, nullable=False),
        sa.Column("last_at", _TS, nullable=False),
    )
    op.create_table(
        "delivery_days",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, primary_key=True),
        sa.Column("deliveries", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
