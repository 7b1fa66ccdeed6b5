"""A sent Slack message keeps the conversation Slack posted it in (a DM's D... id, which
chat.update needs), and a coalesced summary's rows are found by its ts: every message about a
handoff is updated after an action on it.

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("slack_channel", sa.Text))
    op.create_index(
        "deliveries_slack_summary",
        "deliveries",
        ["slack_ts"],
        postgresql_where=sa.text("coalesced AND slack_ts IS NOT NULL"),
    )


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
