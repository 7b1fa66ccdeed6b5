"""Actions on handoffs by id (asked, then taken or refused) and people's run-time availability,
projected from tandem.handoff-actions and tandem.people.

Revision ID: 0009
"""

import sqlalchemy as sa
from alembic import op

from tandem_shared.availability import create_availability_table

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "handoff_action_requests",
        sa.Column("action_id", sa.Text, primary_key=True),
        sa.Column("handoff_id", sa.Text, nullable=False),
        sa.Column("account_key", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("actor_id", sa.Text, nullable=False),
        sa.Column("via", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("hand_on_to", sa.Text),
        sa.Column("target_id", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("note", sa.Text),
        sa.Column("code", sa.Text),
        sa.Column("message", sa.Text),
        sa.Column("assignee_id", sa.Text),
        sa.Column("requested_at", _TS),
        sa.Column("decided_at", _TS),
    )
    create_availability_table()


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
