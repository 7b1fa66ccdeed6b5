"""Deleted deals: when the CRM deleted a deal, so it leaves pipeline and win rate.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deals", sa.Column("deleted_at", sa.DateTime(timezone=True)))
    # Deletions projected before this revision were recorded as closed-lost; they cannot be told
    # apart from real losses any more, and a rebuild of the projections re-reads them correctly.


def downgrade() -> None:
    raise NotImplementedError("Tandem migrations only go forward")
