"""Handoff actions: where a handoff stands after people acted on it, and who did what last.

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # assigned / acknowledged / accepted / unassigned (None: nobody acted yet)
    op.add_column("handoffs", sa.Column("action_status", sa.Text))
    op.add_column("handoffs", sa.Column("last_action", sa.Text))
    op.add_column("handoffs", sa.Column("last_action_by", sa.Text))
    op.add_column("handoffs", sa.Column("last_action_via", sa.Text))
    op.add_column("handoffs", sa.Column("last_action_at", _TS))


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
